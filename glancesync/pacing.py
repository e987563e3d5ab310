"""The pace of requests: :class:`RatePacer`, at most so many requests per second.

Providers limit the requests a client may send per second and answer
``429 Too Many Requests`` beyond (multi-cloud uploaders such as rclone
offer ``--tpslimit`` for it). A pacer shared by every request of a target
keeps a run under such a limit instead of hitting it; the answers that
still come are retried by :mod:`glancesync.retry` after their
``Retry-After``.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

__all__ = ["RatePacer"]


class RatePacer:
    """At most ``rate`` requests per second, shared by the threads that use it.

    :meth:`wait` returns once the previous request (through this pacer)
    began at least ``1 / rate`` seconds ago: a steady pace, no burst.
    ``rate`` <= 0: no limit. ``clock`` (seconds, monotonic) and ``sleep``
    are injectable for tests.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Wait for this request's turn (at once without a limit); the seconds waited."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + 1.0 / self.rate
        if start > now:
            self.sleep(start - now)
        return start - now
