"""glancesync.lock: what a run needs of a region's lock, the file lock as its first
implementation, chosen in one place (make_lock), held with hold().

Waits are deterministic: the lock's ``sleep`` and ``clock`` are the test's
(the way RetryPolicy takes its ``sleep``), nothing of ours is patched.
"""
from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from glancesync import lock
from glancesync.errors import GlanceSyncError, LockedError
from glancesync.facade import GlanceSync
from glancesync.lock import WAIT_POLL, Lock, RegionLock, hold, lock_dir_of, make_lock


class Clock:
    """A clock that moves only when the lock sleeps; ``on_sleep`` runs at each sleep."""

    def __init__(self, on_sleep=None) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()


def test_the_file_lock_is_a_lock(tmp_path):
    region = RegionLock(tmp_path, "RegionA@here")
    assert isinstance(region, Lock)
    assert region.name == "RegionA@here" and region.heartbeat_interval is None
    region.heartbeat()  # nothing to renew


def test_without_a_timeout_a_held_lock_fails_at_once(tmp_path):
    holder = RegionLock(tmp_path, "R")
    holder.acquire()
    clock = Clock()
    waiter = RegionLock(tmp_path, "R", sleep=clock.sleep, clock=clock)
    with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
        waiter.acquire()
    assert clock.sleeps == [] and not waiter.locked
    holder.release()


def test_a_waiter_takes_the_lock_once_its_holder_releases_it(tmp_path):
    holder = RegionLock(tmp_path, "R")
    holder.acquire()
    clock = Clock(on_sleep=holder.release)  # released while the waiter waits
    waiter = RegionLock(tmp_path, "R", sleep=clock.sleep, clock=clock)
    waiter.acquire(timeout=None)
    assert waiter.locked and clock.sleeps == [WAIT_POLL]
    waiter.release()


def test_a_wait_gives_up_after_its_timeout(tmp_path):
    holder = RegionLock(tmp_path, "R")
    holder.acquire()
    clock = Clock()
    waiter = RegionLock(tmp_path, "R", sleep=clock.sleep, clock=clock)
    with pytest.raises(LockedError, match="another glancesync run is synchronising region R"):
        waiter.acquire(timeout=1.2)
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.2])
    holder.release()


def test_the_holder_is_named_while_it_holds_the_lock(tmp_path):
    holder = RegionLock(tmp_path, "R")
    other = RegionLock(tmp_path, "R")
    assert other.holder() is None
    holder.acquire()
    assert other.holder() == f"pid {os.getpid()}" == holder.holder()
    holder.release()
    assert other.holder() is None


class Renewed:
    """A lock with a time to live (as a coordination service's): renewed by heartbeats."""

    heartbeat_interval = 0.01
    name = "R@service"

    def __init__(self, fail: bool = False) -> None:
        self.locked = False
        self.beats = 0
        self.beaten = threading.Event()
        self.fail = fail
        self.timeouts: list[float | None] = []

    def acquire(self, timeout: float | None = 0.0) -> None:
        self.timeouts.append(timeout)
        self.locked = True

    def release(self) -> None:
        self.locked = False

    def holder(self) -> str | None:
        return "me" if self.locked else None

    def heartbeat(self) -> None:
        self.beats += 1
        self.beaten.set()
        if self.fail:
            raise GlanceSyncError("the coordination service is gone")


def test_hold_keeps_a_lock_with_a_time_to_live_alive_then_releases_it():
    renewed = Renewed()
    assert isinstance(renewed, Lock)
    with hold(renewed, timeout=30) as held:
        assert held is renewed and renewed.locked
        assert renewed.beaten.wait(60), "no heartbeat while held"
    assert not renewed.locked and renewed.timeouts == [30]
    beats = renewed.beats
    assert renewed.beats == beats  # the keep-alive stopped with the block


def test_a_failed_heartbeat_is_logged_and_the_lock_still_released(caplog):
    renewed = Renewed(fail=True)
    with caplog.at_level("ERROR", logger="glancesync.lock"):
        with hold(renewed):
            assert renewed.beaten.wait(60)
    assert not renewed.locked
    assert "the lock of R@service could not be kept alive" in caplog.text


def test_a_file_lock_is_held_without_a_keep_alive_thread(tmp_path):
    before = threading.active_count()
    with hold(RegionLock(tmp_path, "R")) as held:
        assert held.locked and threading.active_count() == before
    assert not held.locked


class Settings:
    def __init__(self, lock_dir):
        self.lock_dir = lock_dir


def test_make_lock_chooses_the_file_lock_in_the_configured_folder(tmp_path):
    made = make_lock("R@x", Settings(tmp_path / "configured"), environ={})
    assert isinstance(made, RegionLock) and made.lock_dir == tmp_path / "configured"
    made = make_lock("R@x", Settings(tmp_path / "configured"),
                     environ={"GLANCESYNC_LOCK_DIR": str(tmp_path / "env")})
    assert made.lock_dir == tmp_path / "env"
    assert lock_dir_of(Settings(None), environ={}) is None  # the machine-wide default


def test_the_facade_locks_through_the_factory(tmp_path, monkeypatch):
    folder = tmp_path / "regions"
    monkeypatch.delenv("GLANCESYNC_LOCK_DIR", raising=False)
    config = io.StringIO(f"[main]\nmaster_region = Master\nlock_dir = {tmp_path / 'locks'}\n"
                         f"[master]\ntype = local\npath = {folder}\nproject = p\n"
                         "regions = Master, RegionA\n")
    with GlanceSync(config, progress=False) as gs:
        region_lock = gs.region_lock("RegionA")
        assert isinstance(region_lock, Lock) and region_lock.name == gs.lock_name("RegionA")
        assert Path(region_lock.lock_dir) == tmp_path / "locks"
        with hold(region_lock):
            result = gs.sync(["RegionA"])
        assert isinstance(result.failures["master:RegionA"], LockedError)
        assert gs.sync(["RegionA"]).exit_status == 0


def test_the_lock_package_keeps_its_names():
    for name in ("MACHINE_LOCK_DIR", "RegionLock", "default_lock_dir", "lock_file_name",
                 "user_lock_dir", "Lock", "hold", "make_lock"):
        assert hasattr(lock, name), name


@pytest.mark.timeout(60)
@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir,
                                  lambda path: Path(path).write_text("not a pid\n"),
                                  lambda path: Path(path).write_text("999999999\n")])
def test_a_hostile_lock_path_names_no_holder_and_never_hangs(tmp_path, make):
    """Another local user may put anything at a lock path in a shared folder:
    holder() names nobody (and does not block on a FIFO)."""
    region = RegionLock(tmp_path, "R")
    make(region.path)
    assert region.holder() is None


def test_a_link_at_the_lock_path_is_not_followed_to_name_a_holder(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text(f"{os.getpid()}\n")
    region = RegionLock(tmp_path / "locks", "R")
    region.lock_dir.mkdir()
    region.path.symlink_to(target)
    assert region.holder() is None
