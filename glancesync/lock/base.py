"""What a run needs of a region's lock: :class:`Lock`, and :func:`hold` to hold one.

A run takes the lock of each region it changes, so that two runs (cron
overlapping itself, an operator, another host) never work on the same
region. Whatever keeps the lock (a ``flock`` on this machine, a
coordination service for several hosts), a caller needs only this:
take it, now or within a time; know who holds it; release it; keep it
alive while it is held (a lock with a time to live expires unless its
holder says it is still there, as tooz's locks do: their ``acquire``
takes ``blocking`` as True, False or seconds, and ``heartbeat`` renews
them). :func:`hold` does all of it for a ``with`` block.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Callable, Iterator, Protocol, runtime_checkable

from glancesync.errors import CoordinationError, GlanceSyncError, LockedError
from glancesync.stopping import StopRequest

LOG = logging.getLogger("glancesync.lock")

#: Seconds of one ``acquire`` while waiting for a lock with a stop request:
#: the request is looked at between two of them.
STOP_SLICE = 1.0


@runtime_checkable
class Lock(Protocol):
    """The lock of one region, as a run uses it."""

    #: Seconds between two :meth:`heartbeat` calls while the lock is held;
    #: None when it needs none.
    heartbeat_interval: float | None

    @property
    def name(self) -> str:
        """What is locked (the region's lock name)."""

    @property
    def locked(self) -> bool:
        """True while this object holds the lock."""

    def acquire(self, timeout: float | None = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (0: not at all; None: as
        long as it takes).

        :raises LockedError: another holder has it (still, after ``timeout``).
        :raises GlanceSyncError: the lock cannot be used at all.
        """

    def release(self) -> None:
        """Release the lock (nothing if it is not held)."""

    def holder(self) -> str | None:
        """Who holds it, as messages name them; None when free or unknown."""

    def heartbeat(self) -> None:
        """Tell whatever keeps the lock that its holder is still there.

        :raises GlanceSyncError: the lock could not be renewed.
        """


class _KeepAlive:
    """Calls ``lock.heartbeat()`` every ``lock.heartbeat_interval`` seconds until stopped.

    The lock is lost when its heartbeats failed for ``lock.ttl`` seconds (a lock
    with a time to live: it expired, another holder may have it) or when the lock
    says so (``lock.lost``): :attr:`lost` then says why, ``stop`` (if any) is set
    with that reason, and no heartbeat is tried again.
    """

    def __init__(self, lock: Lock, stop: StopRequest | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lock = lock
        self.stop_request = stop
        self.lost: str | None = None
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"keep-alive {lock.name}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self.lock.heartbeat_interval or 0.0
        ttl = getattr(self.lock, "ttl", None)
        renewed = self._clock()
        while not self._stop.wait(interval):
            try:
                self.lock.heartbeat()
                renewed = self._clock()
            except GlanceSyncError as error:
                LOG.error("the lock of %s could not be kept alive: %s", self.lock.name, error)
                if getattr(self.lock, "lost", False) or (
                        ttl is not None and self._clock() - renewed >= ttl):
                    self._lose(error, ttl)
                    return

    def _lose(self, error: GlanceSyncError, ttl: float | None) -> None:
        """The lock is lost: say so, and stop the work done under it."""
        after = f" (not renewed for {ttl:g} s, lock_ttl)" if ttl is not None else ""
        self.lost = f"{after}: another host may hold it now ({error.message})"
        LOG.error("the lock of %s was lost%s; stopping the work in that region",
                  self.lock.name, self.lost)
        if self.stop_request is not None:
            self.stop_request.set(f"the lock of {self.lock.name} was lost{self.lost}")


def acquire(lock: Lock, timeout: float | None = 0.0, stop: StopRequest | None = None,
            clock: Callable[[], float] = time.monotonic) -> None:
    """Take ``lock``, waiting up to ``timeout`` seconds (0: not at all; None: as long
    as it takes) and no longer once ``stop`` is set.

    Only :meth:`Lock.acquire` and :meth:`Lock.holder` are used (any
    implementation): a wait is logged once, naming the holder; with a stop
    request, ``acquire`` is called for at most ``STOP_SLICE`` seconds at a
    time, else once with ``timeout``.

    :raises LockedError: another holder has it (still, after ``timeout``: the
        message says how long it waited).
    :raises StoppedError: ``stop`` was set before the lock was taken.
    """
    if stop is not None:
        stop.check()
    if timeout != 0:
        try:
            holder = lock.holder()
        except GlanceSyncError:
            holder = None  # only for the log: the wait itself tells
        if holder is not None:
            LOG.info("the lock of %s is held by %s; waiting for it up to %s", lock.name,
                     holder, "as long as it takes" if timeout is None else f"{timeout:g} s")
    if stop is None or timeout == 0:
        _acquire_within(lock, timeout)
        return
    deadline = None if timeout is None else clock() + timeout
    while True:
        stop.check()
        left = None if deadline is None else max(0.0, deadline - clock())
        try:
            lock.acquire(STOP_SLICE if left is None else min(STOP_SLICE, left))
            return
        except LockedError as error:
            if left is not None and left <= STOP_SLICE:
                raise _waited(error, timeout) from None


def _acquire_within(lock: Lock, timeout: float | None) -> None:
    try:
        lock.acquire(timeout)
    except LockedError as error:
        if not timeout:
            raise
        raise _waited(error, timeout) from None


def _waited(error: LockedError, timeout: float | None) -> LockedError:
    """``error``, saying how long the run waited for the lock."""
    if timeout is None:
        return error
    return LockedError(f"{error.message} (still, after waiting {timeout:g} s)",
                       region=error.region, image=error.image)


@contextlib.contextmanager
def hold(lock: Lock, timeout: float | None = 0.0,
         stop: StopRequest | None = None) -> Iterator[Lock]:
    """Hold ``lock`` for a ``with`` block: taken (waiting up to ``timeout`` seconds,
    and no longer once ``stop`` is set: :func:`acquire`), kept alive while
    the block runs when it needs it, released at the end.

    A lock lost while the block runs (its heartbeats failed for ``lock.ttl``
    seconds, or ``lock.lost``) sets ``stop`` with the reason: give a request
    of the work under the lock only (``StopRequest.scoped()``), so that the
    rest of the run goes on.

    :raises LockedError: another holder has it (still, after ``timeout``).
    :raises StoppedError: ``stop`` was set before the lock was taken.
    :raises CoordinationError: after the block, when the lock was lost during it.
    """
    acquire(lock, timeout, stop)
    keeper = _KeepAlive(lock, stop) if lock.heartbeat_interval else None
    try:
        if keeper is not None:
            keeper.start()
        yield lock
    finally:
        if keeper is not None:
            keeper.stop()
        lock.release()
    if keeper is not None and keeper.lost:
        raise CoordinationError(f"the lock of {lock.name} was lost{keeper.lost}; the work in"
                                " that region was stopped (the transfer under way aborted,"
                                " the images this run made there and did not finish deleted)")
