"""Server-side copies (``glance-download``): where from, and watching one to its end.

A region of the master's Keystone can copy an image itself from another
region of that Keystone: the master, or a region that already holds a
verified copy (a relay). :class:`CopySources` is the run's list of such
copies, shared by the regions synchronised in parallel, and chooses for
each new copy the source that has served the fewest so far.
:func:`watch_import` polls a region until the copy is ``active``, its
import task failed, or its deadline passed: Glance shows no progress of a
copy (the size stays unknown until the end), only its state.

What a failure means for the image (stream into it, or delete it) is the
executor's decision; this module only observes.
"""
from __future__ import annotations

import collections
import dataclasses
import enum
import logging
import threading
import time
from typing import Callable

from glancesync.backends.base import RegionAdapter
from glancesync.errors import ImageNotFoundError
from glancesync.image import Image

__all__ = ["CopySources", "ImportOutcome", "Outcome", "Source", "watch_import"]

LOG = logging.getLogger(__name__)

#: Seconds before the first look at an import, and the longest pause
#: between two looks (the pause grows by half at each look).
FIRST_POLL = 0.5
MAX_POLL = 5.0


@dataclasses.dataclass(frozen=True)
class Source:
    """A region and the id of the image a server-side copy reads there."""

    region: str  #: the region's name in the catalog (``glance_region``)
    image_id: str
    relay: bool = False  #: a region's copy rather than the master image

    def __str__(self) -> str:
        return self.region


class CopySources:
    """Where server-side copies may take their data from, for one run.

    The master region is always a source (the plan checked that the
    importing region can read the master image). A region's verified copy
    is one too, for the regions of the same target (same Keystone, same
    credential: they can read it even while it is private), once it is
    :meth:`add`\\ ed: found ``ok`` by the region's plan, or made in this run.
    :meth:`choose` gives the source that has served the fewest copies in
    this run (a relay rather than the master on a tie), so that no single
    region serves everyone. Thread-safe.
    """

    def __init__(self) -> None:
        self._copies: dict[tuple[str, str], dict[str, str]] = {}
        self._served: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def add(self, target: str, region: str, master_id: str, image_id: str) -> None:
        """Record that ``region`` of ``target`` holds a verified copy of ``master_id``."""
        with self._lock:
            self._copies.setdefault((target, master_id), {})[region] = image_id

    def discard(self, target: str, region: str, master_id: str) -> None:
        """Stop offering ``region``'s copy of ``master_id`` (a copy from it failed)."""
        with self._lock:
            self._copies.get((target, master_id), {}).pop(region, None)

    def holders(self, target: str, master_id: str) -> dict[str, str]:
        """Region -> image id of the known copies of ``master_id`` in ``target``."""
        with self._lock:
            return dict(self._copies.get((target, master_id), {}))

    def choose(self, target: str, region: str, master_region: str,
               master_id: str) -> Source:
        """The source of a copy of ``master_id`` into ``region`` of ``target``."""
        with self._lock:
            candidates = [Source(master_region, master_id)]
            candidates += [Source(holder, image_id, relay=True) for holder, image_id
                           in sorted(self._copies.get((target, master_id), {}).items())
                           if holder not in (region, master_region)]
            # On a tie a relay wins: the master serves its own users too.
            chosen = min(candidates,
                         key=lambda source: (self._served[source.region], not source.relay))
            self._served[chosen.region] += 1
            return chosen


class Outcome(str, enum.Enum):
    """How a server-side copy ended."""

    ACTIVE = "active"  #: the copy is there (its hashes still to verify)
    FAILED = "failed"  #: the region's import task failed
    STALLED = "stalled"  #: no result before the deadline
    GONE = "gone"  #: the image disappeared

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True)
class ImportOutcome:
    """What :func:`watch_import` saw last: the outcome, the image, the region's words."""

    outcome: Outcome
    image: Image | None
    message: str = ""


def watch_import(adapter: RegionAdapter, image_id: str, timeout: float, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> ImportOutcome:
    """Poll ``image_id`` until its copy is active, failed, or ``timeout`` seconds passed.

    Active is judged on the image (its task may still be finishing); failed
    on its latest import task, read only while the image is ``queued``
    (Glance puts a failed copy back there). Time is the longer of the
    clock's and the pauses slept (so a test's instant ``sleep`` still
    reaches the deadline).
    """
    started = clock()
    slept = 0.0
    pause = FIRST_POLL
    while True:
        try:
            image = adapter.get_image(image_id)
        except ImageNotFoundError:
            return ImportOutcome(Outcome.GONE, None, "the image disappeared")
        if image.status == "active":
            return ImportOutcome(Outcome.ACTIVE, image)
        if image.status in ("killed", "deleted", "deactivated"):
            return ImportOutcome(Outcome.FAILED, image, f"the image became {image.status}")
        if image.status == "queued":
            task = adapter.import_task(image_id)
            if task is not None and task.failed:
                return ImportOutcome(Outcome.FAILED, image,
                                     f"import task {task.task_id} failed: {task.message}")
        elapsed = max(clock() - started, slept)
        if elapsed >= timeout:
            return ImportOutcome(Outcome.STALLED, image,
                                 f"still {image.status} after {timeout:g} s")
        step = min(pause, timeout - elapsed)
        sleep(step)
        slept += step
        pause = min(pause * 1.5, MAX_POLL)
