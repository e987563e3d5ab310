"""Bandwidth caps of uploads: per run (``bandwidth_limit``) and per region
(``region_bandwidth_limit``).

A sync must not fill a WAN link: the cap of a run stands for the host's
link (every region's uploads of the run share it), the cap of a region for
the link of that region. Each cap is a :class:`Bandwidth`, a pacing of the
generic cell rate algorithm kind: a chunk of ``n`` bytes may leave once the
bytes before it, at ``rate`` bytes per second, would have left; a chunk
waits for that. Over any stretch of time the bytes sent stay within
``rate`` times its length plus one chunk. Server-side copies
(``glance-download``) move no byte through this host and are not paced.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterable, Iterator, Sequence

__all__ = ["Bandwidth", "throttled"]


class Bandwidth:
    """``rate`` bytes per second at most, shared by every thread taking from it."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError(f"a bandwidth must be positive, not {rate}")
        self.rate = float(rate)
        self._clock = clock
        self._sleep = sleep
        self._guard = threading.Lock()
        self._free_at = 0.0  # when the bytes taken so far have left, at ``rate``

    def take(self, size: int) -> None:
        """Wait until ``size`` more bytes may be sent (they are counted as sent)."""
        if size <= 0:
            return
        with self._guard:
            now = self._clock()
            start = max(self._free_at, now)
            self._free_at = start + size / self.rate
            wait = start - now
        if wait > 0:
            self._sleep(wait)

    def __repr__(self) -> str:
        return f"<Bandwidth {self.rate:.0f} B/s>"


def throttled(chunks: Iterable[bytes], caps: Sequence[Bandwidth]) -> Iterator[bytes]:
    """``chunks`` as they are, each one let through once every cap allows it."""
    for chunk in chunks:
        for cap in caps:
            cap.take(len(chunk))
        yield chunk
