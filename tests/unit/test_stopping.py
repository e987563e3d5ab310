"""Stopping a run (issue 22, case 1): the library's side, on real local regions.

A :class:`~glancesync.StopRequest` set by another thread (as a signal
handler or a watch loop does) while data moves: the transfer under way is
aborted, nothing new starts, the image the run created and did not finish
is deleted, the lock is released, and the result says what was not done.
The regions are real local regions; a wrapper region only sets the request
at a chosen moment of an upload (:class:`StopsMidUpload`). Nothing of ours
is patched.
"""
from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Iterable, Iterator

import pytest

from glancesync import GlanceSync, StopRequest, StoppedError
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.demo import PROJECT, build_federation
from glancesync.errors import ExitStatus, LockedError
from glancesync.executor import NOT_STARTED, STOPPED, Executor
from glancesync.image import Image
from glancesync.lock import RegionLock, acquire, hold
from glancesync.retry import RetryPolicy
from glancesync.stopping import signal_handlers
from glancesync.transfer import ImageCache, MasterImageSource
from tests import scenarios
from tests.engine import DirectSource, plan_region

MIB = 1024 * 1024


def from_another_thread(stop: StopRequest, reason: str = "test stop") -> None:
    """Set ``stop`` from a thread of its own, as a signal handler or a watcher does."""
    thread = threading.Thread(target=stop.set, args=(reason,))
    thread.start()
    thread.join()


class StopsMidUpload(LocalRegionAdapter):
    """A real local region; ``stop`` is set once ``after`` chunks of an upload arrived."""

    def __init__(self, name: str, path: Path, project_id: str) -> None:
        super().__init__(name, path, project_id)
        self.stop: StopRequest | None = None
        self.after = 1
        self.seen_during_upload: list[str] = []

    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        def counted() -> Iterator[bytes]:
            for number, chunk in enumerate(chunks, 1):
                yield chunk
                if number == self.after and self.stop is not None:
                    self.seen_during_upload.append(self.get_image(image_id).status)
                    from_another_thread(self.stop)
        return super().upload_data(image_id, counted(), size)


@pytest.fixture
def master(tmp_path: Path) -> LocalRegionAdapter:
    return LocalRegionAdapter("master:Master", tmp_path / "Master", "p-master")


@pytest.fixture
def region(tmp_path: Path) -> StopsMidUpload:
    return StopsMidUpload("master:RegionA", tmp_path / "RegionA", "p-region")


def unfinished(region: LocalRegionAdapter) -> list[Image]:
    return [i for i in region.list_images() if i.status not in ("active",)]


def three_images(master: LocalRegionAdapter) -> None:
    for name in ("one", "two", "three"):
        scenarios.put(master, name, scenarios.content(name, 3 * MIB + 5))


@pytest.mark.parametrize("source", ["chunks", "file"])
def test_a_stop_mid_upload_aborts_it_deletes_the_image_and_starts_nothing(
        master, region, tmp_path, source):
    three_images(master)
    stop = StopRequest()
    region.stop = stop
    data = (DirectSource(master) if source == "chunks"
            else MasterImageSource(master, ImageCache(tmp_path / "cache")))
    plan = plan_region(master, region, scenarios.target())
    result = Executor(region, data, retry=RetryPolicy(retries=3, sleep=lambda s: None),
                      stop=stop).execute(plan)
    assert region.seen_during_upload == ["saving"]  # the stop came while data moved
    kinds = [outcome.result for outcome in result.outcomes]
    assert kinds == [STOPPED, NOT_STARTED, NOT_STARTED], result.outcomes
    assert result.not_done == 3 and not result.success and result.uploaded == 0
    assert "STOPPED" in result.summary() and "3 operation(s) not done" in result.summary()
    assert region.list_images() == []  # the half-made image was deleted
    # Only one image was ever created, and nothing was sent after the stop.
    assert result.bytes_uploaded == 0


def test_a_stop_during_the_download_creates_nothing_and_caches_nothing(master, region,
                                                                       tmp_path):
    three_images(master)
    stop = StopRequest()

    class StopsMidDownload(LocalRegionAdapter):
        def download_data(self, image_id: str) -> Iterator[bytes]:
            for number, chunk in enumerate(super().download_data(image_id), 1):
                yield chunk
                if number == 1:
                    from_another_thread(stop)

    slow_master = StopsMidDownload("master:Master", tmp_path / "Master", "p-master")
    cache = ImageCache(tmp_path / "cache")
    source = MasterImageSource(slow_master, cache, stop=stop)
    plan = plan_region(master, region, scenarios.target())
    result = Executor(region, source, stop=stop).execute(plan)
    assert [o.result for o in result.outcomes] == [STOPPED, NOT_STARTED, NOT_STARTED]
    assert region.list_images() == []
    assert cache.entries() == []
    assert source.bytes_downloaded < 3 * MIB


def test_a_run_stopped_before_it_starts_changes_nothing(master, region):
    three_images(master)
    stop = StopRequest()
    stop.set("stopped early")
    plan = plan_region(master, region, scenarios.target())
    result = Executor(region, DirectSource(master), stop=stop).execute(plan)
    assert {o.result for o in result.outcomes} == {NOT_STARTED}
    assert all(o.error == "stopped: stopped early" for o in result.outcomes)
    assert region.list_images() == []


def test_without_a_stop_the_same_region_is_synchronised(master, region):
    three_images(master)
    plan = plan_region(master, region, scenarios.target())
    result = Executor(region, DirectSource(master)).execute(plan)
    assert result.success and result.uploaded == 3 and result.not_done == 0


# --- the stop request and the signal handlers ------------------------------------------


def test_the_first_reason_is_kept_and_the_exit_status_follows_the_signal():
    stop = StopRequest()
    assert not stop.is_set() and stop.wait(0) is False
    assert stop.set("SIGTERM received", signal.SIGTERM) is True
    assert stop.set("later") is False
    assert stop.reason == "SIGTERM received" and stop.exit_status == ExitStatus.TERMINATED
    with pytest.raises(StoppedError) as caught:
        stop.check("master:RegionA")
    assert caught.value.exit_status == 143 and "SIGTERM received" in str(caught.value)
    with pytest.raises(StoppedError):
        stop.sleep(3600)  # returns at once: already set
    assert StopRequest().exit_status == ExitStatus.INTERRUPTED == 130


def test_signal_handlers_set_the_request_and_are_removed_after():
    said: list[str] = []
    before = signal.getsignal(signal.SIGTERM)
    with signal_handlers(StopRequest(), "prog", say=said.append) as stop:
        signal.raise_signal(signal.SIGTERM)
        assert stop.wait(30)
        signal.raise_signal(signal.SIGINT)  # no KeyboardInterrupt: already stopping
        for _ in range(5):
            signal.raise_signal(signal.SIGTERM)
    assert stop.signum == signal.SIGTERM and stop.exit_status == 143
    assert said[0].startswith("prog: SIGTERM received: stopping")
    assert "already stopping" in said[1]
    assert len(said) == 2  # a storm of signals is not a flood of lines
    assert signal.getsignal(signal.SIGTERM) is before


# --- locks: waiting through the protocol, and a stop while waiting ---------------------


class Held:
    """A lock of the protocol held elsewhere for ``free_after`` calls of acquire."""

    heartbeat_interval = None

    def __init__(self, free_after: int | None) -> None:
        self.free_after = free_after
        self.calls: list[float | None] = []
        self.locked = False
        self.name = "RegionA@test"

    def acquire(self, timeout: float | None = 0.0) -> None:
        self.calls.append(timeout)
        if self.free_after is not None and len(self.calls) > self.free_after:
            self.locked = True
            return
        raise LockedError("another glancesync run holds the lock (pid 1)",
                          region="RegionA")

    def release(self) -> None:
        self.locked = False

    def holder(self) -> str | None:
        return "pid 1"

    def heartbeat(self) -> None:
        pass


def test_a_wait_for_a_lock_goes_through_acquire_of_the_protocol(caplog):
    lock = Held(free_after=0)  # taken within the wait (the protocol's acquire waits)
    with caplog.at_level(logging.INFO, logger="glancesync.lock"), hold(lock, 60) as held:
        assert held.locked
    assert lock.calls == [60] and not lock.locked  # one call: the protocol waits
    assert "the lock of RegionA@test is held by pid 1; waiting for it up to 60 s" in caplog.text
    lock = Held(free_after=None)
    with pytest.raises(LockedError) as caught:
        acquire(lock, 0)
    assert lock.calls == [0] and "after waiting" not in str(caught.value)
    with pytest.raises(LockedError) as caught:
        acquire(lock, 5)
    assert "still, after waiting 5 s" in str(caught.value)


def test_a_stop_ends_a_wait_for_a_lock():
    lock = Held(free_after=None)
    stop = StopRequest()
    calls = lock.acquire

    def acquire_then_stop(timeout: float | None = 0.0) -> None:
        if len(lock.calls) == 2:  # while waiting
            from_another_thread(stop)
        calls(timeout)

    lock.acquire = acquire_then_stop  # type: ignore[method-assign]
    with pytest.raises(StoppedError):
        acquire(lock, None, stop)  # "as long as it takes", but not past a stop
    assert all(t is not None and t <= 1.0 for t in lock.calls)


def test_a_real_lock_is_waited_for_and_taken_when_freed(tmp_path):
    holder = RegionLock(tmp_path, "RegionA@x")
    holder.acquire()
    waiter = RegionLock(tmp_path, "RegionA@x")
    threading.Timer(0.5, holder.release).start()
    with hold(waiter, 60, StopRequest()):
        assert waiter.locked
    assert not waiter.locked


# --- the facade: GlanceSync.stop() from another thread, KeyboardInterrupt -------------


@pytest.fixture
def federation(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = build_federation(tmp_path)
    big = LocalRegionAdapter("master:Master", tmp_path / "federation" / "Master", PROJECT)
    scenarios.put(big, "big", scenarios.content("big", 24 * MIB + 3))
    return config


def regions_of(config: Path) -> dict[str, LocalRegionAdapter]:
    folder = config.parent / "federation"
    return {name: LocalRegionAdapter(f"master:{name}", folder / name, PROJECT)
            for name in ("RegionA", "RegionB", "RegionC")}


class OnUpload(logging.Handler):
    """Calls ``action`` when the executor logs the start of the first upload."""

    def __init__(self, action) -> None:
        super().__init__(logging.INFO)
        self.action = action
        self.fired = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.fired and " uploading image " in record.getMessage():
            self.fired = True
            self.action()


def watching_uploads(action) -> OnUpload:
    handler = OnUpload(action)
    logger = logging.getLogger("glancesync.executor")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def assert_clean(config: Path, glancesync: GlanceSync) -> None:
    """No queued or saving image in any region; every region's lock free."""
    for name, adapter in regions_of(config).items():
        assert unfinished(adapter) == [], name
        lock = glancesync.region_lock(f"master:{name}")
        lock.acquire()
        lock.release()


def test_stop_from_another_thread_stops_the_sync_and_leaves_regions_clean(federation):
    with GlanceSync(federation, progress=False) as glancesync:
        handler = watching_uploads(lambda: from_another_thread(glancesync.stop_request,
                                                               "stopped by the test"))
        try:
            result = glancesync.sync(["RegionA", "RegionB", "RegionC"])
        finally:
            logging.getLogger("glancesync.executor").removeHandler(handler)
        assert handler.fired
        assert result.stopped is not None and "stopped by the test" in str(result.stopped)
        assert result.exit_status == ExitStatus.INTERRUPTED
        region_a = result.results["master:RegionA"]
        assert region_a.not_done >= 1 and not region_a.success
        assert any(o.result == STOPPED for o in region_a.outcomes)
        for name in ("master:RegionB", "master:RegionC"):
            assert isinstance(result.failures[name], StoppedError)
            assert "not synchronised" in str(result.failures[name])
        assert "big" not in {i.name for i in regions_of(federation)["RegionA"].list_images()}
        assert_clean(federation, glancesync)
        # The request stays: a later run of this object starts nothing.
        with pytest.raises(StoppedError):
            glancesync.sync(["RegionB"])


def test_a_keyboard_interrupt_of_the_caller_leaves_regions_as_clean_as_a_failure(
        federation):
    with GlanceSync(federation, progress=False) as glancesync:
        def interrupt() -> None:  # Ctrl-C without handlers: KeyboardInterrupt in main
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            # The upload (this worker thread) goes on only once the main thread has
            # turned the interrupt into a stop request: however loaded the machine,
            # the sync cannot end before the interrupt lands.
            assert glancesync.stop_request.wait(60)

        handler = watching_uploads(interrupt)
        try:
            with pytest.raises(KeyboardInterrupt):
                glancesync.sync(["RegionA", "RegionB", "RegionC"])
        finally:
            logging.getLogger("glancesync.executor").removeHandler(handler)
        assert handler.fired
        assert "KeyboardInterrupt" in glancesync.stop_request.reason
        assert_clean(federation, glancesync)
        assert "big" not in {i.name for i in regions_of(federation)["RegionA"].list_images()}


@pytest.mark.parametrize("wait", [-1, float("nan"), float("inf")])
def test_wait_lock_must_be_seconds(federation, wait):
    from glancesync.errors import UsageError
    with pytest.raises(UsageError, match="wait_lock"):
        GlanceSync(federation, wait_lock=wait)


def test_a_sync_without_stop_still_completes(federation):
    with GlanceSync(federation, progress=False,
                    overrides=["master.rename="]) as glancesync:
        result = glancesync.sync(["RegionA"])
        assert result.stopped is None and result.results["master:RegionA"].uploaded >= 1


def test_the_summary_of_a_stopped_run_names_what_was_not_done_up_to_a_bound():
    from glancesync import cli
    from glancesync.executor import OperationOutcome, RegionResult
    from glancesync.facade import RunResult
    from glancesync.plan import OperationKind
    stop = StopRequest()
    stop.set("SIGTERM received", signal.SIGTERM)
    region = RegionResult("master:RegionA", uploaded=1)
    region.outcomes = [OperationOutcome(OperationKind.UPLOAD, "done-one", "done"),
                       OperationOutcome(OperationKind.UPLOAD, "cut", STOPPED)]
    region.outcomes += [OperationOutcome(OperationKind.UPLOAD, f"image-{n}", NOT_STARTED)
                        for n in range(30)]
    region.not_done = 31
    result = RunResult(stopped=stop.error())
    result.results["master:RegionA"] = region
    result.failures["master:RegionB"] = stop.error("master:RegionB")
    lines = cli.summary_lines(result)
    assert "master:RegionA: sync STOPPED:" in lines[0] and "31 operation(s) not done" in lines[0]
    assert lines[1].startswith("master:RegionB: NOT DONE: stopped: SIGTERM received")
    stopped = lines.index(next(line for line in lines if line.startswith("run stopped")))
    assert lines[stopped] == ("run stopped (SIGTERM received): 31 operation(s) not done in 1"
                              " region(s), 1 region(s) not reached; the images it had not"
                              " finished were deleted (unless an error above says otherwise)")
    assert lines[stopped + 1] == "master:RegionA: not done: upload cut (stopped)"
    named = [line for line in lines if ": not done: " in line]
    assert len(named) == cli.MAX_NOT_DONE_LINES
    assert lines[-1] == ("... and 11 more operation(s) not done (the run report and the log"
                         " list them)")
    assert result.exit_status == 143
    assert cli.summary_lines(result, quiet=True)[-1] == lines[-1]  # --quiet says it too


# --- a region's lock lost: that region stopped, the others go on -------------------------

class Expiring:
    """A lock with a time to live (a coordination service's) whose heartbeats fail from
    ``failing_from`` on (the service unreachable), for ``failures`` of them."""

    heartbeat_interval = 0.02
    name = "R@service"

    def __init__(self, ttl: float = 0.2, failures: int = 10**9) -> None:
        self.ttl = ttl
        self.locked = False
        self.beats = 0
        self.failures = failures

    def acquire(self, timeout: float | None = 0.0) -> None:
        self.locked = True

    def release(self) -> None:
        self.locked = False

    def holder(self) -> str | None:
        return None

    def heartbeat(self) -> None:
        self.beats += 1
        if self.beats <= self.failures:
            from glancesync.errors import CoordinationError
            raise CoordinationError("the coordination service does not answer")


class WaitsMidUpload(LocalRegionAdapter):
    """A real local region whose uploads take as long as it takes ``until`` to be set
    (60 s at most) after their first chunk: a large upload in flight."""

    until: StopRequest | None = None

    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        def slow() -> Iterator[bytes]:
            for number, chunk in enumerate(chunks, 1):
                yield chunk
                if number == 1 and self.until is not None:
                    self.until.wait(60)
        return super().upload_data(image_id, slow(), size)


def test_a_region_whose_lock_is_lost_mid_upload_stops_and_the_others_go_on(master, tmp_path):
    from glancesync.errors import CoordinationError
    three_images(master)
    run = StopRequest()
    lost = WaitsMidUpload("master:RegionA", tmp_path / "RegionA", "p-region")
    other = LocalRegionAdapter("master:RegionB", tmp_path / "RegionB", "p-region")
    lost.until = stop = run.scoped()
    retry = RetryPolicy(retries=3, sleep=lambda s: None)
    results = []
    with pytest.raises(CoordinationError) as raised:
        with hold(Expiring(), stop=stop):
            results.append(Executor(lost, DirectSource(master), retry=retry, stop=stop)
                           .execute(plan_region(master, lost, scenarios.target())))
    message = str(raised.value)
    assert "the lock of R@service was lost (not renewed for 0.2 s, lock_ttl)" in message
    assert "another host may hold it" in message and "transfer under way aborted" in message
    kinds = [outcome.result for outcome in results[0].outcomes]
    assert kinds == [STOPPED, NOT_STARTED, NOT_STARTED], results[0].outcomes
    assert lost.list_images() == [], "the half-made image was deleted"
    assert stop.is_set() and not run.is_set(), "only that region was stopped"
    done = Executor(other, DirectSource(master), retry=retry, stop=run.scoped()).execute(
        plan_region(master, other, scenarios.target()))
    assert done.uploaded == 3 and not unfinished(other)


def test_heartbeats_failing_for_less_than_the_time_to_live_stop_nothing(master, tmp_path):
    lock = Expiring(ttl=3600, failures=3)
    stop = StopRequest()
    with hold(lock, stop=stop):
        waited = threading.Event()
        for _ in range(3000):  # 60 s at most: a bound, not a delay
            if lock.beats >= 6 or waited.wait(0.02):
                break
    assert not stop.is_set() and lock.beats >= 4


def test_a_scoped_request_follows_its_run_and_not_the_other_way():
    run = StopRequest()
    region, other = run.scoped(), run.scoped()
    region.set("the lock was lost")
    assert not run.is_set() and not other.is_set()
    run.set("SIGTERM received", signal.SIGTERM)
    assert other.is_set() and other.reason == "SIGTERM received"
    assert other.exit_status == ExitStatus.TERMINATED
    assert region.reason == "the lock was lost", "the first reason is kept"
    late = run.scoped()
    assert late.is_set() and late.reason == "SIGTERM received"
