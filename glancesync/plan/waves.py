"""Planning concern over a run's plans: waves (``rollout_waves``, ``wave_soak_hours``).

``rollout_waves`` (``[main]``) orders regions in waves, e.g. ``RegionA;
RegionB, other:RegionC``; the regions it does not name are a last wave. A
new master image (or new bytes under a name: a new master image too)
reaches a region of wave *k* only when every region of wave *k - 1* holds
an accepted copy of it (:func:`accepted_since`), for at least
``wave_soak_hours``. Until then the region's upload of it is held: its
status is ``info_wave_waiting`` and the reason says what it waits for. Only new
copies wait; metadata, obsolete images and the lifecycle do not.

Waves move across runs: the plans of a run are made before any of its
regions changes, so each run takes an image at most one wave further.

Clocks: the time a copy was accepted is this host's (or another GlanceSync
host's) record on the copy. One in the future of this host's clock by more
than :data:`CLOCK_SKEW` is not believed: the wave waits and the reason
says to check the clocks (a clock set back never shortens a soak; a
clock set forward can only be caught by the operator).
"""
from __future__ import annotations

import dataclasses
import datetime
from typing import Iterable, Mapping, Sequence

from glancesync.image import Image
from glancesync.plan.context import parse_time
from glancesync.plan.model import Operation, RegionPlan, Status
from glancesync.plan.validation import FAILED, MARK_VALIDATED, MARK_VALIDATION, PENDING

#: How far in the future a record may be before it is not believed.
CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclasses.dataclass(frozen=True)
class Waves:
    """The waves of a run: region names (``target:Region``) per wave, in order;
    ``soak_hours`` between waves; ``master_region`` (copies of its images count)."""

    waves: tuple[tuple[str, ...], ...]
    soak_hours: float = 0.0
    master_region: str | None = None

    def wave_of(self, region: str) -> int:
        """The index of ``region``'s wave (the regions not named: the last one)."""
        for index, members in enumerate(self.waves):
            if region in members:
                return index
        return len(self.waves)

    def previous(self, region: str) -> tuple[str, ...]:
        """The regions of the wave before ``region``'s (none for the first wave)."""
        index = self.wave_of(region)
        return self.waves[index - 1] if index else ()

    @property
    def earlier_regions(self) -> list[str]:
        """Every region whose copies some other wave waits for."""
        return [region for members in self.waves for region in members]


def accepted_since(images: Iterable[Image], master: Image,
                   master_region: str | None) -> datetime.datetime | None | bool:
    """When a region's copy of ``master`` was accepted: its validation time, else its
    copy time; True for a copy without a time; None when it has no accepted copy."""
    found: datetime.datetime | None | bool = None
    for image in images:
        record = image.provenance
        if (record is None or record.master_image_id != master.id
                or (master_region and record.master_region not in (None, master_region))
                or image.status != "active"
                or image.marks.get(MARK_VALIDATION) in (PENDING, FAILED)):
            continue
        when = parse_time(image.marks.get(MARK_VALIDATED)) or parse_time(record.copied_at)
        if when is None:
            found = found or True
        elif found is None or found is True or when < found:
            found = when
    return found


def hold_waves(plans: Mapping[str, RegionPlan], waves: Waves,
               copies: Mapping[str, Sequence[Image] | None],
               now: datetime.datetime) -> int:
    """Hold the uploads of regions whose previous wave is not ready; the number held.

    ``copies`` maps each region of :attr:`Waves.earlier_regions` to its
    images (None: it could not be listed, so it is not ready).
    """
    held = 0
    for region, plan in plans.items():
        previous = waves.previous(region)
        if not previous:
            continue
        kept: list[Operation] = []
        for op in plan.operations:
            why = wait_reason(op, previous, waves, copies, now) if op.uploads else None
            if why is None:
                kept.append(op)
                continue
            held += 1
            status = plan.status_of(op.name)
            if status is not None:
                status.status = Status.INFO_WAVE_WAITING
                status.reason = f"{status.reason}; waits for its wave: {why}"
        plan.operations = kept
    return held


def wait_reason(op: Operation, previous: Sequence[str], waves: Waves,
                copies: Mapping[str, Sequence[Image] | None],
                now: datetime.datetime) -> str | None:
    """Why ``op`` waits for the regions of the ``previous`` wave; None when it may go."""
    waiting: list[str] = []
    soak = datetime.timedelta(hours=waves.soak_hours)
    for region in previous:
        images = copies.get(region)
        if images is None:
            waiting.append(f"{region} could not be listed")
            continue
        since = accepted_since(images, op.master, waves.master_region)
        if since is None:
            waiting.append(f"{region} has no accepted copy yet")
        elif since is True:
            if soak:
                waiting.append(f"{region}'s copy records no time to count"
                               " wave_soak_hours from")
        elif since > now + CLOCK_SKEW:
            waiting.append(f"{region}'s copy was accepted at {since:%Y-%m-%dT%H:%M:%SZ}, in"
                           f" the future of this host's clock ({now:%Y-%m-%dT%H:%M:%SZ}):"
                           " check the clocks")
        elif min(since, now) + soak > now:  # within the usual skew: counted from now
            left = (since + soak - now).total_seconds() / 3600
            waiting.append(f"{region} since {since:%Y-%m-%dT%H:%M:%SZ}, {left:.1f} h of"
                           f" wave_soak_hours = {waves.soak_hours:g} left")
    return "; ".join(waiting) or None
