"""The embedded demo: a federation of local regions, synchronised.

``python -m glancesync.demo [--dir DIR]`` (``make demo``) builds, with no
cloud at all, a master region holding a handful of small real images and
three destination regions (empty, partly synchronised, in conflict), writes
a configuration file for them, then runs the real command
``glancesync-sync``: status, sync, status again.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import sys
import time
from pathlib import Path

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import UsageError

PROJECT = "demo-project"
MIB = 1024 * 1024
#: The file that marks a folder made by the demo: only such a folder is emptied.
MARKER = ".glancesync-demo"
DESCRIPTION = ("Build a federation of local regions (a master region and three"
               " destination regions: empty, partly synchronised, in conflict) in DIR,"
               " with its configuration file, then run glancesync-sync on it: status,"
               " sync, status again. No cloud is needed.")


def _data(seed: int, size: int) -> bytes:
    """Deterministic bytes: the demo's images are the same at every run."""
    return random.Random(seed).randbytes(size)


def _add(region: LocalRegionAdapter, name: str, data: bytes, **fields) -> str:
    fields.setdefault("disk_format", "raw")
    fields.setdefault("container_format", "bare")
    fields.setdefault("visibility", "public")
    image = region.create_image(name, **fields)
    region.upload_data(image.id, [data], len(data))
    return image.id


def build_federation(folder: Path) -> Path:
    """Create the demo regions under ``folder`` and return the config file."""
    regions = folder / "federation"
    master = LocalRegionAdapter("master:Master", regions / "Master", PROJECT)
    empty = LocalRegionAdapter("master:RegionA", regions / "RegionA", PROJECT)
    partial = LocalRegionAdapter("master:RegionB", regions / "RegionB", PROJECT)
    conflict = LocalRegionAdapter("master:RegionC", regions / "RegionC", PROJECT)

    kernel = _add(master, "cirros-kernel", _data(1, MIB // 2),
                  disk_format="aki", container_format="aki")
    ramdisk = _add(master, "cirros-ramdisk", _data(2, MIB // 4),
                   disk_format="ari", container_format="ari")
    # The machine image is smaller than its kernel: it must still come after it.
    _add(master, "cirros-machine", _data(3, MIB // 8), disk_format="ami",
         container_format="ami",
         properties={"kernel_id": kernel, "ramdisk_id": ramdisk, "type": "baseimage"})
    ubuntu = _data(4, 3 * MIB)
    _add(master, "ubuntu-22.04", ubuntu,
         properties={"type": "baseimage", "nid": "101", "os_distro": "ubuntu"})
    _add(master, "debian-12", _data(5, 2 * MIB),
         properties={"type": "baseimage", "nid": "102", "os_distro": "debian"})
    old_centos = _data(6, MIB)
    _add(master, "centos-7_obsolete", old_centos, properties={"nid": "90"})
    _add(master, "tools-private", _data(7, MIB // 2), visibility="private")

    # RegionB: partly synchronised: one image with stale metadata, one image
    # that the master has since declared obsolete.
    _add(partial, "ubuntu-22.04", ubuntu,
         properties={"type": "baseimage", "nid": "100", "os_distro": "ubuntu"})
    _add(partial, "centos-7", old_centos, properties={"nid": "90"})
    # RegionC: a local build of debian-12 whose checksum the operator allowed
    # to be renamed out of the way (kept as debian-12.old).
    local_build = _data(8, 2 * MIB)
    _add(conflict, "debian-12", local_build, properties={"type": "baseimage"})
    empty.ensure_exists()  # an empty region still exists
    for region in (master, empty, partial, conflict):
        region.close()

    config = folder / "glancesync.conf"
    config.write_text(f"""\
# Configuration of the GlanceSync demo federation (written by glancesync.demo).
[main]
master_region = Master
preferable_order = RegionA, RegionB, RegionC
max_children = 3
cache_dir = {folder / 'cache'}
run_dir = {folder / 'runs'}

[master]
# Every region is a folder under path: no cloud needed.
type = local
path = {regions}
project = {PROJECT}
# debian-12 in RegionC is a local build: rename it to debian-12.old.
rename = {hashlib.md5(local_build).hexdigest()}
""")
    return config


def prepare_folder(folder: Path) -> None:
    """Make ``folder`` an empty demo folder.

    An absent or empty folder is used; one made by an earlier demo (it holds
    :data:`MARKER`) is emptied first. Any other folder is refused: the demo
    never deletes files it did not create.

    :raises UsageError: ``folder`` holds other files, or is not a folder.
    """
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UsageError(f"{folder} is not a folder: choose another --dir")
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).is_file():
            raise UsageError(f"{folder} is not empty and was not made by the demo:"
                             " choose a new or empty folder with --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by python -m glancesync.demo; emptied by its next run\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m glancesync.demo",
                                     description=DESCRIPTION)
    parser.add_argument("--dir", type=Path, default=Path(".demo"),
                        help="folder of the demo: new, empty, or made by an earlier demo"
                             " (then recreated; default: .demo)")
    args = parser.parse_args(argv)
    from glancesync_scripts import sync

    started = time.monotonic()
    try:
        prepare_folder(args.dir)
    except UsageError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return int(error.exit_status)
    config = build_federation(args.dir.resolve())
    print(f"Demo federation created in {args.dir}/federation: master region Master "
          "(7 images) and RegionA (empty), RegionB (partly synchronised), "
          f"RegionC (in conflict). Configuration: {config}\n")
    steps = [
        ("Status before the sync", ["--show-status", "--format", "table"]),
        ("Synchronising every region, in parallel", ["--parallel", "--no-progress"]),
        ("Status after the sync", ["--show-status", "--format", "table"]),
    ]
    status = 0
    for title, options in steps:
        command = ["--config-file", str(config), *options]
        print(f"== {title}: glancesync-sync {' '.join(command)}")
        sys.stdout.flush()
        status = sync.main(command)
        print(f"(exit status {status})\n")
    command = Path(sys.executable).parent / "glancesync-printimages"
    if not command.exists():
        command = Path("glancesync-printimages")
    print(f"Demo done in {time.monotonic() - started:.1f} s. Explore it with:\n"
          f"  {command} --config-file {config} RegionC")
    return status


if __name__ == "__main__":
    sys.exit(main())
