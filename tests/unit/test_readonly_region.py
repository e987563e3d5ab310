"""A local region used only for reading opens read-only (issue 15, case 4).

The documented use: a master region that is an offline mirror on
read-only media. The folder is made really read-only: as root (who ignores
file modes) by a read-only bind mount in a private mount namespace
(``unshare -m``) around the command; otherwise by removing the write
permissions, which then hold.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.backends.local.store import LocalStore, RequestContext
from glancesync.demo import PROJECT, build_federation
from glancesync.errors import ServiceError

BIN = Path(sys.executable).parent
ROOT = os.geteuid() == 0


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path -> (size, mtime in ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@contextlib.contextmanager
def read_only(folder: Path):
    """A command prefix under which ``folder`` is really read-only."""
    if ROOT:
        yield ["unshare", "-m", "--propagation", "private", "sh", "-c",
               'set -e; mount --bind "$1" "$1"; mount -o remount,bind,ro "$1"; shift;'
               ' exec "$@"', "sh", str(folder)]
        return
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    for path, mode in modes.items():
        path.chmod(mode & ~0o222)
    try:
        yield []
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


class Federation:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = build_federation(folder)
        self.master = folder / "federation" / "Master"
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("OS_", "GLANCESYNC_"))}
        self.env.update(GLANCESYNC_LOCK_DIR=str(folder / "locks"), HOME=str(folder),
                        XDG_STATE_HOME=str(folder / "state"))

    def run(self, prefix: list[str], command: str, *args: str) -> subprocess.CompletedProcess:
        argv = [*prefix, str(BIN / f"glancesync-{command}"), "--config-file",
                str(self.config), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env,
                              cwd=self.folder, timeout=120)


@pytest.fixture
def fed(tmp_path) -> Federation:
    return Federation(tmp_path)


def test_a_read_only_master_region_feeds_a_sync(fed):
    before = tree(fed.master)
    with read_only(fed.master) as prefix:
        done = fed.run(prefix, "sync", "--no-progress", "RegionA")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "master:RegionA: sync done: 0 ok, 0 updated, 5 uploaded" in done.stdout
    assert tree(fed.master) == before  # nothing created, nothing changed
    region = LocalRegionAdapter("master:RegionA", fed.folder / "federation" / "RegionA",
                                PROJECT)
    assert len(region.list_images()) == 5
    region.close()


def test_status_and_reports_of_a_read_only_master_region(fed):
    before = tree(fed.master)
    with read_only(fed.master) as prefix:
        status = fed.run(prefix, "sync", "--show-status")
        printed = fed.run(prefix, "printimages", "master", "RegionB")
    assert status.returncode == 3, status.stderr
    assert "pending_upload,master:RegionA,debian-12" in status.stdout
    assert printed.returncode == 0, printed.stderr
    assert "Master region Master: images to synchronise" in printed.stdout
    assert tree(fed.master) == before


def test_a_read_only_destination_fails_cleanly(fed):
    region = fed.folder / "federation" / "RegionA"
    with read_only(region) as prefix:
        done = fed.run(prefix, "sync", "--no-progress", "RegionA")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stdout.splitlines() if "RegionA" in line]
    assert any("0 uploaded" in line and "5 errors" in line for line in errors), done.stdout
    assert "is not writable (read-only media?): the region can be read" in done.stderr


def test_reading_a_writable_region_creates_nothing(fed):
    before = tree(fed.master)
    adapter = LocalRegionAdapter("master:Master", fed.master, PROJECT, create=False)
    images = adapter.list_images()
    assert len(images) == 7
    adapter.get_image(images[0].id)
    assert b"".join(adapter.download_data(images[0].id))
    adapter.close()
    assert tree(fed.master) == before


def test_a_read_only_store_refuses_every_change(fed):
    store = LocalStore(fed.master, readonly=True)
    context = RequestContext(PROJECT, is_admin=True)
    image = store.image_get_all(context)[0]
    for change in (lambda: store.image_create(context, {"name": "x"}),
                   lambda: store.image_update(context, image["id"], {"min_ram": 1}),
                   lambda: store.image_destroy(context, image["id"]),
                   lambda: store.write_data(context, image["id"], [b"x"])):
        with pytest.raises(ServiceError, match="open for reading only"):
            change()
    store.close()


def test_a_read_only_store_needs_an_existing_database(tmp_path):
    with pytest.raises(ServiceError, match="does not exist"):
        LocalStore(tmp_path / "nothing", readonly=True)
    assert not (tmp_path / "nothing").exists()
