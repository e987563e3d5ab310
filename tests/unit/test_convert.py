"""Disk format conversion (convert_to) with the real qemu-img, on local regions.

qemu-img is a system package that ``make test`` installs: these tests need
it and never skip. Master images are real qcow2 files made by qemu-img
from pseudo-random raw data.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.convert import INSTALL_HINT, QEMU_FORMATS, convert, require_qemu_img
from glancesync.errors import ConfigError, ExitStatus, TransferError
from glancesync.executor import Executor
from glancesync.facade import GlanceSync
from glancesync.image import Image
from glancesync.options import CONVERT_FORMATS
from glancesync.plan import Status, make_plan
from glancesync.selection import select_master
from glancesync.strategy import RegionTransfer
from glancesync.transfer import TEMP_PREFIX, ImageCache, MasterImageSource
from tests import scenarios

MIB = 1024 * 1024
PROJECT = "p-sync"
TO_RAW = RegionTransfer(convert_to="raw")


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def make_qcow2(folder: Path, size: int = 4 * MIB, name: str = "disk") -> tuple[bytes, bytes]:
    """A real qcow2 file of ``size`` virtual bytes: (its bytes, the raw bytes it holds)."""
    raw = scenarios.content(name, size // 2) + bytes(size // 2)  # half data, half zeros
    (folder / f"{name}.raw").write_bytes(raw)
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(folder / f"{name}.raw"),
             str(folder / f"{name}.qcow2"))
    return (folder / f"{name}.qcow2").read_bytes(), raw


@pytest.fixture
def master(tmp_path) -> LocalRegionAdapter:
    adapter = LocalRegionAdapter("master:Master", tmp_path / "Master", PROJECT)
    yield adapter
    adapter.close()


def region(tmp_path: Path, name: str) -> LocalRegionAdapter:
    return LocalRegionAdapter(f"master:{name}", tmp_path / name, PROJECT)


def sync(master: LocalRegionAdapter, adapter: LocalRegionAdapter, source: MasterImageSource,
         transfer: RegionTransfer = TO_RAW):
    plan = make_plan(adapter.name, select_master(master.list_images(), PROJECT),
                     adapter.list_images(), PROJECT, scenarios.target(), transfer=transfer)
    return Executor(adapter, source, progress=False).execute(plan), plan


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.startswith(TEMP_PREFIX)) \
        if cache.exists() else []


def test_every_format_of_convert_to_has_its_qemu_img_name():
    assert set(QEMU_FORMATS) == set(CONVERT_FORMATS)


def test_a_qcow2_master_is_converted_once_for_every_raw_region(tmp_path, master):
    qcow2, raw = make_qcow2(tmp_path)
    image = scenarios.put(master, "img", qcow2, disk_format="qcow2")
    source = MasterImageSource(master, ImageCache(tmp_path / "cache"))
    for name in ("RegionA", "RegionB"):
        adapter = region(tmp_path, name)
        result, plan = sync(master, adapter, source)
        assert result.success and result.uploaded == 1
        assert plan.status_of("img").reason == "missing in the region; stream, qcow2 to raw"
        (copy,) = adapter.list_images()
        assert copy.disk_format == "raw" and copy.size == len(raw)
        assert copy.os_hash_value == hashlib.sha512(raw).hexdigest()
        assert copy.provenance.is_copy_of(image)  # the master's content, recorded
        assert not image.same_content(copy)
        again, _ = sync(master, adapter, source)
        assert again.plan.status_of("img").status is Status.OK
    assert (source.downloads, source.conversions) == (1, 1)
    assert leftovers(tmp_path / "cache") == []
    # A later run finds the conversion and its record in the cache.
    later = MasterImageSource(master, ImageCache(tmp_path / "cache"))
    path, converted = later.converted(image, "raw")
    assert path.read_bytes() == raw and converted.os_hash_value == copy.os_hash_value
    assert (later.downloads, later.conversions) == (0, 0)


def test_a_raw_master_becomes_qcow2_and_qcow2_copies_stay(tmp_path, master):
    raw = scenarios.content("raw master", 3 * MIB)
    image = scenarios.put(master, "img", raw, disk_format="raw")
    source = MasterImageSource(master, ImageCache(tmp_path / "cache"))
    adapter = region(tmp_path, "RegionA")
    result, _ = sync(master, adapter, source, RegionTransfer(convert_to="qcow2"))
    assert result.success
    (copy,) = adapter.list_images()
    assert copy.disk_format == "qcow2"
    got = tmp_path / "got.qcow2"
    got.write_bytes(b"".join(adapter.download_data(copy.id)))
    qemu_img("convert", "-f", "qcow2", "-O", "raw", str(got), str(tmp_path / "back.raw"))
    assert (tmp_path / "back.raw").read_bytes() == raw
    # Not converting (convert_to empty): the qcow2 copy is other content.
    again, _ = sync(master, adapter, source, RegionTransfer())
    assert again.plan.status_of("img").status is Status.ERROR_CHECKSUM
    assert image.disk_format == "raw"


def test_a_converted_file_altered_in_the_cache_is_made_again(tmp_path, master):
    qcow2, raw = make_qcow2(tmp_path)
    image = scenarios.put(master, "img", qcow2, disk_format="qcow2")
    cache = ImageCache(tmp_path / "cache")
    path, _ = MasterImageSource(master, cache).converted(image, "raw")
    path.write_bytes(b"\x01" + raw[1:])
    source = MasterImageSource(master, ImageCache(tmp_path / "cache"))
    path, converted = source.converted(image, "raw")
    assert path.read_bytes() == raw and source.conversions == 1
    assert converted.os_hash_value == hashlib.sha512(raw).hexdigest()


@pytest.mark.parametrize("case", ["backing file", "truncated", "too large"])
def test_a_failed_conversion_leaves_nothing(tmp_path, master, case):
    if case == "backing file":
        _, _ = make_qcow2(tmp_path, name="base")
        qemu_img("create", "-f", "qcow2", "-b", str(tmp_path / "base.qcow2"), "-F", "qcow2",
                 str(tmp_path / "disk.qcow2"))
        data, wanted, words = (tmp_path / "disk.qcow2").read_bytes(), "raw", "backing_file"
    elif case == "truncated":
        qcow2, _ = make_qcow2(tmp_path, 8 * MIB)
        data, wanted, words = qcow2[:len(qcow2) // 2], "raw", "damaged"
    else:
        qemu_img("create", "-f", "qcow2", str(tmp_path / "huge.qcow2"), "3T")
        data, wanted, words = ((tmp_path / "huge.qcow2").read_bytes(), "vhd",
                               "larger than convert_max_virtual_size")
    scenarios.put(master, "img", data, disk_format="qcow2")
    source = MasterImageSource(master, ImageCache(tmp_path / "cache"))
    adapter = region(tmp_path, "RegionA")
    result, plan = sync(master, adapter, source, RegionTransfer(convert_to=wanted))
    if case == "truncated":  # damaged: a failure of this run
        assert result.errors == 1 and words in result.failed["img"]
    else:  # refused before qemu-img runs: error_refused, for an operator
        assert result.errors == 0 and result.needs_operator == 1
        assert plan.status_of("img").status is Status.ERROR_REFUSED
        assert words in plan.status_of("img").reason
    assert adapter.list_images() == []  # nothing created in the region
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 1 and not cached[0].startswith(".")  # the master file only
    assert source.conversions == 0


def test_convert_refuses_a_format_it_does_not_know(tmp_path):
    with pytest.raises(TransferError, match="cannot convert iso to raw"):
        convert(tmp_path / "x", "iso", tmp_path / "y", "raw")


def config(tmp_path: Path, region_section: str) -> io.StringIO:
    return io.StringIO(textwrap.dedent(f"""
        [main]
        master_region = Master
        cache_dir = {tmp_path / 'cache'}
        [master]
        type = local
        path = {tmp_path / 'regions'}
        regions = Master, RegionA, RegionB
    """) + textwrap.dedent(region_section))


def test_a_sync_needing_qemu_img_stops_at_once_when_it_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    gs = GlanceSync(config(tmp_path, "[master:RegionB]\nconvert_to = raw\n"), progress=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert gs.sync(["RegionA"], dry_run=True).exit_status == 0  # no conversion: fine
    for call in (lambda: gs.sync(["RegionA", "RegionB"], dry_run=True),
                 lambda: gs.sync_region("RegionB")):
        with pytest.raises(ConfigError) as caught:
            call()
        assert caught.value.exit_status == ExitStatus.USAGE
        assert "qemu-img is missing" in str(caught.value)
        assert "convert_to = raw of region master:RegionB" in str(caught.value)
        assert INSTALL_HINT in str(caught.value)
    with pytest.raises(ConfigError):
        require_qemu_img("a test")


def test_status_shows_the_conversion_of_each_region(tmp_path, monkeypatch):
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    gs = GlanceSync(config(tmp_path, "[master:RegionB]\nconvert_to = raw\n"), progress=False)
    qcow2, _ = make_qcow2(tmp_path)
    scenarios.put(gs.adapter("Master"), "img", qcow2, disk_format="qcow2")
    reasons = {s.region: s.reason for s in gs.status(["RegionA", "RegionB"]).statuses}
    assert reasons == {"master:RegionA": "missing in the region; stream",
                       "master:RegionB": "missing in the region; stream, qcow2 to raw"}
    result = gs.sync(["RegionA", "RegionB"])
    assert result.exit_status == 0
    formats = {r: [i.disk_format for i in gs.adapter(r).list_images()]
               for r in ("RegionA", "RegionB")}
    assert formats == {"RegionA": ["qcow2"], "RegionB": ["raw"]}
    assert {s.status for s in gs.status(["RegionA", "RegionB"]).statuses} == {Status.OK}
    assert isinstance(gs.adapter("RegionB").list_images()[0], Image)


def test_a_conversion_works_under_a_cpu_limit_lower_than_its_own(tmp_path):
    """A process started with a CPU time limit (``ulimit -t``, systemd ``LimitCPU=``,
    mutmut's workers) below ``convert_timeout`` still converts: qemu-img's limit is
    capped at the inherited hard limit, never asked above it (which only a process
    allowed to raise limits may do). Checked in a forked child that lowers its own
    hard limit; the conversion itself is checked in this process too."""
    import resource
    qcow2, raw = make_qcow2(tmp_path, size=MIB)
    convert(tmp_path / "disk.qcow2", "qcow2", tmp_path / "here.raw", "raw")
    assert (tmp_path / "here.raw").read_bytes() == raw
    pid = os.fork()
    if pid == 0:  # the child: exits 0 when the conversion worked under its limit
        status = 1
        try:
            used = int(resource.getrusage(resource.RUSAGE_SELF).ru_utime
                       + resource.getrusage(resource.RUSAGE_SELF).ru_stime)
            resource.setrlimit(resource.RLIMIT_CPU, (used + 600, used + 601))
            convert(tmp_path / "disk.qcow2", "qcow2", tmp_path / "child.raw", "raw")
            status = 0 if (tmp_path / "child.raw").read_bytes() == raw else 2
        except BaseException as exc:  # reported through the file and the status
            (tmp_path / "child.error").write_text(repr(exc))
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    error = (tmp_path / "child.error").read_text() if (tmp_path / "child.error").exists() \
        else ""
    assert os.waitstatus_to_exitcode(status) == 0, error
