"""The images waiting for a sync: bursts coalesced, floods bounded.

Events arrive on the bus's threads; the watcher takes them in batches. A
batch is taken once no new event came for ``quiet`` seconds, or ``most``
seconds after its first event (a steady stream still gets synchronised):
one upload followed by five updates is one sync. Beyond ``limit`` distinct
images the batch is dropped and a whole reconciliation asked for instead
(a flood of events, real or forged, costs one sync of everything).
"""
from __future__ import annotations

import dataclasses
import threading
import time

from glancesync.watch.events import Hint


@dataclasses.dataclass
class Batch:
    """Images to synchronise: id -> number of events; ``activated``: id -> when its
    ``image.activate`` arrived (``time.monotonic()``); ``overflow``: too many images,
    reconcile everything instead."""

    events: dict[str, int] = dataclasses.field(default_factory=dict)
    activated: dict[str, float] = dataclasses.field(default_factory=dict)
    overflow: bool = False

    def __bool__(self) -> bool:
        return bool(self.events) or self.overflow


class Pending:
    """Thread-safe set of images waiting for a sync (see the module's docstring)."""

    def __init__(self, quiet: float = 0.5, most: float = 3.0, limit: int = 1000) -> None:
        self.quiet = quiet
        self.most = most
        self.limit = limit
        self._batch = Batch()
        self._first = 0.0
        self._last = 0.0
        self._ready = threading.Condition()

    def add(self, hint: Hint, now: float | None = None) -> None:
        """Record one event (called from the bus's threads)."""
        now = time.monotonic() if now is None else now
        with self._ready:
            batch = self._batch
            if not batch:
                self._first = now
            self._last = now
            if batch.overflow:
                return
            if hint.image_id not in batch.events and len(batch.events) >= self.limit:
                self._batch = Batch(overflow=True)
            else:
                batch.events[hint.image_id] = batch.events.get(hint.image_id, 0) + 1
                if hint.activation:
                    batch.activated.setdefault(hint.image_id, now)
            self._ready.notify_all()

    def take(self, timeout: float) -> Batch:
        """The batch once it is ready, else an empty one after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while True:
                now = time.monotonic()
                if self._batch:
                    due = min(self._last + self.quiet, self._first + self.most)
                    if now >= due:
                        batch, self._batch = self._batch, Batch()
                        return batch
                else:
                    due = deadline
                if now >= deadline:
                    return Batch()
                self._ready.wait(max(0.0, min(due, deadline) - now))

    def clear(self) -> int:
        """Drop what waits (a watcher that is not the leader); the number of images."""
        with self._ready:
            dropped, self._batch = len(self._batch.events), Batch()
            return dropped

    def wake(self) -> None:
        """Wake a waiting :meth:`take` (it returns at its deadline or with a batch)."""
        with self._ready:
            self._ready.notify_all()

    def __len__(self) -> int:
        with self._ready:
            return len(self._batch.events)
