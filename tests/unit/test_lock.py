"""RegionLock: one run per region, across processes."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from glancesync.errors import ExitStatus, LockedError
from glancesync.lock import RegionLock, default_lock_dir, lock_file_name

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from glancesync.lock import RegionLock
    with RegionLock(Path(sys.argv[1]), sys.argv[2]):
        print("locked", flush=True)
        sys.stdin.readline()
""")


@pytest.fixture
def holder(tmp_path: Path):
    """Start a process holding the lock of ``master:RegionOne``; yield it."""
    processes = []

    def start(region: str = "master:RegionOne") -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), region],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        processes.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in processes:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=10)


def test_lock_held_by_another_process_is_refused_with_its_pid(tmp_path, holder):
    proc = holder()
    lock = RegionLock(tmp_path, "master:RegionOne")
    with pytest.raises(LockedError) as info:
        lock.acquire()
    message = str(info.value)
    assert "another glancesync run is synchronising region master:RegionOne" in message
    assert f"pid {proc.pid}" in message
    assert str(lock.path) in message
    assert info.value.exit_status == ExitStatus.LOCKED
    assert not lock.locked


def test_lock_is_free_again_when_the_holder_exits(tmp_path, holder):
    proc = holder()
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    with RegionLock(tmp_path, "master:RegionOne") as lock:
        assert lock.locked
        assert lock.path.read_text().strip() == str(os.getpid())
    assert not lock.locked


def test_lock_is_released_when_the_holder_is_killed(tmp_path, holder):
    proc = holder()
    proc.kill()
    proc.wait(timeout=10)
    with RegionLock(tmp_path, "master:RegionOne"):
        pass


def test_other_regions_are_not_blocked(tmp_path, holder):
    holder("master:RegionOne")
    with RegionLock(tmp_path, "master:RegionTwo"), RegionLock(tmp_path, "other:RegionOne"):
        pass


def test_same_region_twice_in_one_process_is_refused(tmp_path):
    with RegionLock(tmp_path, "t:R"):
        with pytest.raises(LockedError):
            RegionLock(tmp_path, "t:R").acquire()
    with RegionLock(tmp_path, "t:R"):
        pass


def test_lock_directory_is_created(tmp_path):
    folder = tmp_path / "a" / "b"
    with RegionLock(folder, "r") as lock:
        assert lock.path.parent == folder
        assert lock.path.exists()


def test_file_names_are_safe_and_distinct():
    names = {lock_file_name(region) for region in
             ("master:RegionOne", "master_RegionOne", "../etc/passwd", "a/b", "a:b", "a_b")}
    assert len(names) == 6
    for name in names:
        assert "/" not in name and ":" not in name and not name.startswith(".")
    assert lock_file_name("plain-Region.1") == "plain-Region.1.lock"


def test_default_lock_dir_is_under_the_user_state_dir():
    folder = default_lock_dir()
    assert folder.name == "locks"
    assert "glancesync" in folder.parts
