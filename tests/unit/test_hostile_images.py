"""A hostile master image cannot make qemu-img publish a host file (issue 21, cases 1-3).

Every image of :data:`tests.craftedimages.HOSTILE` is put in a real local
master region, declared as an attacker would, and converted as a region
with ``convert_to`` asks: it must be refused (``ImageRefusedError``),
before the real ``qemu-img`` runs at all, and the host file's bytes must
reach neither the cache nor a region. ``qemu-img`` is the real one, seen
through a wrapper on ``PATH`` that records how it was started (arguments,
working directory, resource limits) before running it.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from glancesync import convert
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import ExitStatus, ImageRefusedError
from glancesync.facade import GlanceSync
from glancesync.plan import Status
from glancesync.transfer import ImageCache, MasterImageSource
from tests import craftedimages, scenarios
from tests.craftedimages import HOSTILE, SAFE, SECRET

PROJECT = "p-sync"
MIB = 1024 * 1024


@pytest.fixture
def qemu_log(tmp_path, monkeypatch) -> Path:
    """Every start of qemu-img: ``ulimit -v -t -f``, its working folder and arguments."""
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "qemu-img.log"
    log.write_text("")
    wrapper = folder / "qemu-img"
    wrapper.write_text(f'#!/bin/sh\necho "$(ulimit -v) $(ulimit -t) $(ulimit -f)'
                       f' $(pwd) $(ls -A) $*" >> {log}\nexec {shutil.which("qemu-img")} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.fixture
def master(tmp_path) -> LocalRegionAdapter:
    adapter = LocalRegionAdapter("master:Master", tmp_path / "Master", PROJECT)
    yield adapter
    adapter.close()


def files_holding(folder: Path, marker: bytes) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and marker in path.read_bytes():
            found.append(path)
    return found


def target_format(declared: str) -> str:
    return "qcow2" if declared == "raw" else "raw"


@pytest.mark.timeout(120)  # before the fix, the FIFO extents hang qemu-img for ever
@pytest.mark.parametrize("crafted", HOSTILE, ids=lambda c: c.name)
def test_a_crafted_image_is_refused_before_qemu_img_reads_it(tmp_path, master, qemu_log,
                                                             crafted):
    work = tmp_path / "craft"
    work.mkdir()
    secret = craftedimages.plant_secret(work)
    image = scenarios.put(master, "hostile", crafted.data(work, secret),
                          disk_format=crafted.disk_format)
    cache = tmp_path / "cache"
    source = MasterImageSource(master, ImageCache(cache), progress=False)
    with pytest.raises(ImageRefusedError, match="refused before conversion") as caught:
        source.converted(image, target_format(crafted.disk_format))
    assert caught.value.exit_status == ExitStatus.NEEDS_OPERATOR and not caught.value.transient
    assert qemu_log.read_text() == ""  # qemu-img never ran on it
    assert files_holding(cache, SECRET[:24]) == []
    assert [p.name for p in cache.iterdir()] == [source.cache.path_for(image).name]
    assert source.conversions == 0
    # Asked again in the same run (another region): the same answer, no new work.
    with pytest.raises(ImageRefusedError):
        source.converted(image, target_format(crafted.disk_format))


@pytest.mark.parametrize("crafted", SAFE, ids=lambda c: c.name)
def test_safe_images_convert_with_qemu_img_confined(tmp_path, master, qemu_log, crafted):
    work = tmp_path / "craft"
    work.mkdir()
    image = scenarios.put(master, "safe", crafted.data(work, work / "none"),
                          disk_format=crafted.disk_format)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache"), progress=False,
                               limits=convert.Limits(max_virtual_size=64 * MIB, timeout=600))
    path, converted = source.converted(image, target_format(crafted.disk_format))
    assert path.exists() and converted.size == path.stat().st_size
    runs = qemu_log.read_text().splitlines()
    verbs = [line.split()[5] for line in runs]
    assert verbs[0] == "info" and verbs[-1] == "convert"
    for line in runs:
        memory, cpu, file_size, folder, entries, *args = line.split()
        assert memory != "unlimited" and int(memory) <= 4 * 1024 * 1024  # KiB
        assert cpu != "unlimited" and int(cpu) <= 600
        assert "--force-share" in args
        assert args[args.index("-f") + 1] in convert.QEMU_FORMATS.values()
        assert Path(folder).name.startswith(".partial-qemu-") and entries == "source"
        assert args[-1] == str(Path(folder) / "source") or args[-2] == str(Path(folder) / "source")
        if args[0] == "convert":
            assert file_size != "unlimited"
    assert not list((tmp_path / "cache").glob(".partial-qemu-*"))  # the folder is gone


def test_a_virtual_size_over_the_limit_is_refused_before_qemu_img(tmp_path, master, qemu_log):
    craftedimages.qemu_img("create", "-f", "qcow2", str(tmp_path / "big.qcow2"), "5M")
    image = scenarios.put(master, "big", (tmp_path / "big.qcow2").read_bytes(),
                          disk_format="qcow2")
    source = MasterImageSource(master, ImageCache(tmp_path / "cache"), progress=False,
                               limits=convert.Limits(max_virtual_size=4 * MIB))
    with pytest.raises(ImageRefusedError, match=r"virtual size, 5242880 bytes, is larger than"
                                                r" convert_max_virtual_size \(4194304"):
        source.converted(image, "raw")
    assert qemu_log.read_text() == ""


def test_a_conversion_past_its_time_limit_is_refused(tmp_path, master):
    craftedimages.qemu_img("create", "-f", "qcow2", str(tmp_path / "d.qcow2"), "1M")
    image = scenarios.put(master, "slow", (tmp_path / "d.qcow2").read_bytes(),
                          disk_format="qcow2")
    source = MasterImageSource(master, ImageCache(tmp_path / "cache"), progress=False,
                               limits=convert.Limits(timeout=1e-9))
    with pytest.raises(ImageRefusedError, match="convert_timeout"):
        source.converted(image, "raw")


@pytest.mark.timeout(60)
def test_a_qemu_img_that_blocks_is_killed_at_its_time_limit(tmp_path):
    fifo = craftedimages.fifo(tmp_path)  # opening it blocks until a writer comes: never
    with pytest.raises(ImageRefusedError, match="took longer than 2 s and was stopped"):
        convert._run(["info", "-f", "raw", str(fifo)], "qemu-img info", "x", folder=tmp_path,
                     seconds=2, address_space=convert.INFO_ADDRESS_SPACE)
    readers = subprocess.run(["fuser", str(fifo)], capture_output=True, text=True)
    assert readers.stdout.strip() == ""  # nothing is left holding it


def config(tmp_path: Path) -> io.StringIO:
    return io.StringIO(textwrap.dedent(f"""
        [main]
        master_region = Master
        cache_dir = {tmp_path / 'cache'}
        [master]
        type = local
        path = {tmp_path / 'regions'}
        regions = Master, RegionA, RegionB
        convert_to = raw
    """))


@pytest.mark.timeout(120)
def test_a_refused_image_is_error_refused_and_the_run_goes_on(tmp_path, monkeypatch, qemu_log):
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    work = tmp_path / "craft"
    work.mkdir()
    secret = craftedimages.plant_secret(work)
    gs = GlanceSync(config(tmp_path), progress=False)
    master = gs.adapter("Master")
    hostile = HOSTILE[0]
    scenarios.put(master, "hostile", hostile.data(work, secret), disk_format="vmdk")
    craftedimages.qemu_img("create", "-f", "qcow2", str(work / "good.qcow2"), "1M")
    scenarios.put(master, "good", (work / "good.qcow2").read_bytes(), disk_format="qcow2")
    result = gs.sync(["RegionA", "RegionB"])
    assert result.exit_status == ExitStatus.NEEDS_OPERATOR
    for region in ("master:RegionA", "master:RegionB"):
        status = result.plans[region].status_of("hostile")
        assert status.status is Status.ERROR_REFUSED
        assert "refused before conversion" in status.reason and "other files" in status.reason
        # GlanceSync's own refusal, not the region's: the region was never asked.
        assert status.reason.startswith("GlanceSync refused to convert the master image")
        assert "region refused" not in status.reason
        assert result.plans[region].status_of("good").status is Status.PENDING_UPLOAD
        assert result.results[region].uploaded == 1
        assert [i.name for i in gs.adapter(region).list_images()] == ["good"]
    assert files_holding(tmp_path / "regions", SECRET[:24]) == [] \
        or files_holding(tmp_path / "regions", SECRET[:24]) == []
    assert files_holding(tmp_path / "cache", SECRET[:24]) == []
    assert sum(" convert " in f" {line} " for line in qemu_log.read_text().splitlines()) == 1
