"""What GlanceSync reads back from its folders is trusted only if only it could write it.

Issue 21, case 4 (the cache, the run folders, the throughput measurements)
and case 10 (the previous metrics file): another local user who can write
in a folder plants files there; a FIFO planted where a file is read back
must not hang the run. Files of "another user" are made by chown to
``nobody``, which needs root: those tests say so and skip otherwise; the
same attacks through group or other write permissions run as any user.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import pytest

from glancesync import readback
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import UnsafeFileError
from glancesync.runlog import RunLogs, prune_runs
from glancesync.throughput import ThroughputLog
from glancesync.transfer import ImageCache, MasterImageSource, _record_path
from glancesync.views import metrics
from tests import craftedimages, scenarios

PROJECT = "p-sync"
NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.fixture
def master(tmp_path) -> LocalRegionAdapter:
    adapter = LocalRegionAdapter("master:Master", tmp_path / "Master", PROJECT)
    yield adapter
    adapter.close()


def qcow2_master(tmp_path: Path, master: LocalRegionAdapter):
    craftedimages.qemu_img("create", "-f", "qcow2", str(tmp_path / "m.qcow2"), "1M")
    return scenarios.put(master, "img", (tmp_path / "m.qcow2").read_bytes(),
                         disk_format="qcow2")


def plant_conversion(cache: ImageCache, image, payload: bytes) -> Path:
    """What an attacker writes: a converted file and its record, hashes matching."""
    path = cache.converted_path(image, "raw")
    path.write_bytes(payload)
    _record_path(path).write_text(json.dumps({
        "size": len(payload), "md5": hashlib.md5(payload).hexdigest(),
        "os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(payload).hexdigest()}))
    return path


# --- the cache ----------------------------------------------------------------------

def test_a_cache_folder_others_may_write_is_refused(tmp_path, master):
    image = qcow2_master(tmp_path, master)
    folder = tmp_path / "cache"
    folder.mkdir()
    os.chmod(folder, 0o777)  # as if shared: anyone may plant files
    cache = ImageCache(folder)
    plant_conversion(cache, image, b"PLANTED" * 100)
    source = MasterImageSource(master, cache, progress=False)
    with pytest.raises(UnsafeFileError, match=r"cache folder \(cache_dir\) .* may be written by"
                                              r" others \(mode 0777\): chmod go-w"):
        source.converted(image, "raw")
    with pytest.raises(UnsafeFileError):
        source.path(image)


@needs_root
def test_a_conversion_planted_by_another_user_is_never_served(tmp_path, master):
    image = qcow2_master(tmp_path, master)
    cache = ImageCache(tmp_path / "cache")
    cache.ready()
    planted = plant_conversion(cache, image, b"PLANTED" * 100)
    os.chown(planted, NOBODY, NOBODY)
    os.chown(_record_path(planted), NOBODY, NOBODY)
    source = MasterImageSource(master, cache, progress=False)
    path, converted = source.converted(image, "raw")
    assert b"PLANTED" not in path.read_bytes() and source.conversions == 1
    assert path.stat().st_uid == os.geteuid() and converted.size == 1024 * 1024


@pytest.mark.timeout(60)  # before the fix, reading the FIFO hangs for ever
@pytest.mark.parametrize("where", ["record", "converted file", "master file"])
def test_a_fifo_planted_in_the_cache_does_not_hang_the_run(tmp_path, master, where):
    image = qcow2_master(tmp_path, master)
    cache = ImageCache(tmp_path / "cache")
    cache.ready()
    if where == "master file":
        os.mkfifo(cache.path_for(image))
    else:
        planted = plant_conversion(cache, image, b"PLANTED" * 100)
        target = _record_path(planted) if where == "record" else planted
        target.unlink()
        os.mkfifo(target)
    source = MasterImageSource(master, cache, progress=False)
    path, _ = source.converted(image, "raw")
    assert b"PLANTED" not in path.read_bytes()
    assert not any(p.is_fifo() for p in cache.directory.iterdir())  # removed


@pytest.mark.parametrize("kind", ["link", "group-writable", "oversize"])
def test_a_record_that_cannot_be_trusted_is_removed(tmp_path, master, kind):
    image = qcow2_master(tmp_path, master)
    cache = ImageCache(tmp_path / "cache")
    cache.ready()
    planted = plant_conversion(cache, image, b"PLANTED" * 100)
    record = _record_path(planted)
    if kind == "link":
        elsewhere = tmp_path / "elsewhere.json"
        record.rename(elsewhere)
        record.symlink_to(elsewhere)
    elif kind == "group-writable":
        os.chmod(record, 0o664)
    else:
        record.write_text(record.read_text() + " " * 5000)
    source = MasterImageSource(master, cache, progress=False)
    path, _ = source.converted(image, "raw")
    assert b"PLANTED" not in path.read_bytes() and source.conversions == 1


def test_the_cache_folder_is_made_private(tmp_path, master):
    image = qcow2_master(tmp_path, master)
    source = MasterImageSource(master, ImageCache(tmp_path / "new" / "cache"), progress=False)
    source.path(image)
    assert (tmp_path / "new" / "cache").stat().st_mode & 0o777 == 0o700


# --- the guard itself ----------------------------------------------------------------

def test_the_guard_refuses_what_another_user_could_have_written(tmp_path):
    folder = tmp_path / "ours"
    readback.make_folder(folder, "a folder")
    (folder / "ok").write_bytes(b"{}")
    assert readback.read_json(folder / "ok", max_size=10) == {}
    os.mkfifo(folder / "fifo")
    (folder / "link").symlink_to(folder / "ok")
    (folder / "big").write_bytes(b"x" * 11)
    (folder / "shared").write_bytes(b"{}")
    os.chmod(folder / "shared", 0o666)
    for name, words in [("fifo", "not a regular file"), ("link", "symbolic link"),
                        ("big", "more than the 10"), ("shared", "written by others")]:
        with pytest.raises(UnsafeFileError, match=words):
            readback.read_bytes(folder / name, max_size=10)
    with pytest.raises(FileNotFoundError):
        readback.read_bytes(folder / "missing", max_size=10)
    os.chmod(folder, 0o770)
    with pytest.raises(UnsafeFileError, match="its group"):
        readback.read_bytes(folder / "ok", max_size=10)
    os.chmod(folder, 0o700)
    os.chmod(tmp_path, 0o777)  # the folder above: others could rename ours away
    try:
        with pytest.raises(UnsafeFileError, match="is not sticky"):
            readback.read_bytes(folder / "ok", max_size=10)
        os.chmod(tmp_path, 0o1777)  # sticky, as /tmp: fine
        assert readback.read_bytes(folder / "ok", max_size=10) == b"{}"
    finally:
        os.chmod(tmp_path, 0o700)


# --- throughput.json, run folders ----------------------------------------------------

@pytest.mark.timeout(60)
def test_throughput_measurements_that_cannot_be_trusted_are_ignored(tmp_path, caplog):
    folder = tmp_path / "runs"
    folder.mkdir(mode=0o700)
    path = folder / "throughput.json"
    os.mkfifo(path)
    with caplog.at_level(logging.WARNING):
        assert ThroughputLog(path).rates == {}  # no hang
    assert "not a regular file" in caplog.text
    path.unlink()
    path.write_text(json.dumps({"master:RegionA": [1.0]}))
    os.chmod(path, 0o666)
    assert ThroughputLog(path).rates == {}
    os.chmod(path, 0o600)
    assert ThroughputLog(path).rates == {"master:RegionA": [1.0]}


def test_run_folders_are_neither_written_nor_pruned_in_a_shared_run_dir(tmp_path, caplog):
    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    old = run_dir / "run_20200101_000000_000000"
    old.mkdir()
    os.chmod(run_dir, 0o777)
    with caplog.at_level(logging.ERROR):
        assert prune_runs(run_dir, 0) == []
        with RunLogs(run_dir, ["master:RegionA"]) as logs:
            assert logs.paths == {}
    assert old.exists() and "cannot be trusted" in caplog.text
    os.chmod(run_dir, 0o700)
    assert prune_runs(run_dir, 0) == [old]


# --- the previous metrics file (case 10) ----------------------------------------------

@pytest.mark.timeout(60)
def test_a_previous_metrics_file_that_cannot_be_read_back_is_an_error(tmp_path, caplog):
    folder = tmp_path / "prom"
    folder.mkdir(mode=0o700)
    path = folder / "glancesync.prom"
    os.mkfifo(path)
    with caplog.at_level(logging.ERROR):
        assert metrics.previous_successes(path) == {}  # no hang
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "cannot be read back" in caplog.text and "lost" in caplog.text
    path.unlink()
    path.write_text('glancesync_last_success_timestamp_seconds{region="a\rb"} 1.0\n'
                    "not the text format {\n")
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert metrics.previous_successes(path) == {}
    assert "ERROR" in [r.levelname for r in caplog.records]


def test_every_control_character_of_a_label_is_escaped_and_read_back(tmp_path):
    from glancesync.facade import RunResult
    from glancesync.plan import RegionPlan
    names = ["Region\rA", "Reg\u2028ion\x85B", "tab\there\x1b[31m", "plain"]
    result = RunResult(dry_run=False, started=time.time())
    result.finished = result.started + 1
    for name in names:
        result.plans[name] = RegionPlan(name)
    path = tmp_path / "m.prom"
    metrics.write(path, result)
    text = path.read_bytes().decode()
    assert not any(ch in text for ch in "\r\x85\u2028\x1b\t")
    first = metrics.previous_successes(path)
    assert len(first) == 4 and "Region\\x0dA" in first
    # Read back and written again: the same series, not doubled, times kept.
    later = RunResult(dry_run=True, started=time.time() + 5)
    later.finished = later.started
    metrics.write(path, later)
    assert metrics.previous_successes(path) == first


def test_a_run_dir_that_does_not_exist_yet_is_no_reason_for_a_warning(tmp_path, caplog):
    # A long-running watcher syncs again and again before run_dir exists (no
    # --parallel, no upload measured yet): each sync read the throughput back.
    from glancesync.demo import build_federation
    from glancesync.facade import GlanceSync
    config = build_federation(tmp_path / "demo")
    run_dir = tmp_path / "state" / "runs"
    with caplog.at_level(logging.WARNING):
        with GlanceSync(str(config), overrides=[f"main.run_dir={run_dir}"],
                        progress=False) as gs:
            for _ in range(2):
                gs.sync(["RegionA"], dry_run=True)
    assert "cannot be trusted" not in caplog.text and "afresh" not in caplog.text, caplog.text
    assert not run_dir.exists(), "a dry run makes no folder"


def test_the_throughput_folder_is_made_private_when_first_saved(tmp_path, caplog):
    path = tmp_path / "state" / "runs" / "throughput.json"
    with caplog.at_level(logging.WARNING):
        log = ThroughputLog(path)
        assert log.record("master:RegionA", [(10 * 1024 * 1024, 2.0)])
        log.save()
    assert caplog.text == ""
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert ThroughputLog(path).rates == {"master:RegionA": [5 * 1024 * 1024]}


def test_a_missing_folder_reads_as_a_missing_file_but_a_dangling_link_does_not(tmp_path):
    with pytest.raises(FileNotFoundError):
        readback.read_json(tmp_path / "nowhere" / "x.json", max_size=10)
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(UnsafeFileError, match="cannot be examined"):
        readback.read_json(tmp_path / "link" / "x.json", max_size=10)
