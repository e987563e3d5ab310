"""What the steps of one plan share: its inputs, and the lines and operations so far.

A plan is made by steps (:data:`glancesync.plan.STEPS`), one concern each,
run in the order of the SPEC on one :class:`PlanContext`. A step reads the
inputs (the master selection, the regional images, the target's policy,
the time) and what the steps before it decided, and adds to it:

* the status of a synchronised master name (:meth:`PlanContext.set_status`,
  one per name, in :attr:`PlanContext.statuses`) and its operation
  (:attr:`PlanContext.ops`, one per name), which later steps may refine
  (the AMI references) or drop (an AMI error);
* other lines (:meth:`PlanContext.add_line`): a leftover's, shown after the
  line of the name it has; a lifecycle line (``last=True``), after every
  other line;
* operations of its own (:meth:`PlanContext.add`), each in a
  :class:`Phase`: the plan's operations are the phases in order (SPEC
  section 5: metadata first, then uploads; destructive steps last), each in
  the order its steps added them.

:meth:`PlanContext.finish` assembles the :class:`~glancesync.plan.model.RegionPlan`.
Warnings are the plan's, in the order they were given, after the master
selection's own.
"""
from __future__ import annotations

import datetime
import enum
import logging
from typing import Iterable, Mapping

from glancesync.image import PROVENANCE_PREFIX, Image
from glancesync.plan.model import (ImageStatus, MemberTarget, Operation, RegionPlan, Status,
                                   TargetPolicy)
from glancesync.selection import MasterSelection
from glancesync.strategy import RegionTransfer

#: The planner's warnings are logged under the package's name, whichever
#: step gives them.
LOG = logging.getLogger("glancesync.plan")


class Phase(enum.IntEnum):
    """Where an operation goes in the plan, earliest first."""

    METADATA = 10  #: metadata updates and reactivations that wait for nothing
    OBSOLETE = 20  #: obsolete renames and corrections (SPEC section 6)
    UPLOAD = 30  #: uploads, smallest first, and what waits for a kernel or ramdisk
    CLEANUP = 40  #: leftovers of interrupted uploads
    LIFECYCLE = 50  #: the lifecycle's marks
    REMOVAL = 60  #: the lifecycle's removal steps: always last


class PlanContext:
    """One plan in the making: the inputs of :func:`~glancesync.plan.make_plan` and
    what its steps decided so far.

    ``members`` is kept only with ``sync_members``. ``synced`` (name ->
    master image) are the master images selected for the target,
    ``synced_by_id`` the same by id; ``match`` (name -> regional image) is
    the regional copy each synchronised name is compared with.
    """

    def __init__(self, region: str, master: MasterSelection, regional: list[Image],
                 project_id: str | None, target: TargetPolicy, now: datetime.datetime,
                 stalled_upload_age: float,
                 members: Mapping[str, MemberTarget] | None,
                 transfer: RegionTransfer) -> None:
        self.region = region
        self.master = master
        self.regional = regional
        self.project_id = project_id
        self.target = target
        self.now = now
        self.stalled_upload_age = stalled_upload_age
        self.members = members if target.sync_members else None
        self.transfer = transfer
        self.synced = master.synchronised(target)
        self.synced_by_id = {image.id: image for image in self.synced.values()}
        self.match: dict[str, Image] = {}
        #: Synchronised name -> every regional image of it that takes part in
        #: matching, when there are several.
        self.duplicates: dict[str, list[Image]] = {}
        #: Regional images kept out of matching for a while (copies not validated).
        self.aside: list[Image] = []
        self.statuses: dict[str, ImageStatus] = {}
        self.ops: dict[str, Operation] = {}
        #: Master image id -> regional copy fit to relay it (RegionPlan.relays).
        self.relays: dict[str, str] = {}
        self.warnings: list[str] = list(master.warnings)
        self._lines: list[ImageStatus] = []
        self._last_lines: list[ImageStatus] = []
        self._phases: dict[Phase, list[Operation]] = {phase: [] for phase in Phase}

    # -- what every step uses ------------------------------------------------
    def warn(self, message: str, level: int = logging.WARNING) -> None:
        """A warning of the plan (also logged)."""
        self.warnings.append(message)
        LOG.log(level, "%s: %s", self.region, message)

    def needs_operator(self, message: str) -> None:
        """An error status: logged as an error, so that cron runs show it."""
        self.warn(message, logging.ERROR)

    def own(self, image: Image) -> bool:
        """True for an image of the region's project."""
        return image.owner == self.project_id

    def visible(self, image: Image) -> bool:
        """Regional images that take part in matching."""
        return self.own(image) or not self.target.only_tenant_images

    def set_status(self, status: Status, name: str, master: Image | None,
                   regional: Image | None, reason: str) -> None:
        """The status of the synchronised (or reported) master name ``name``."""
        self.statuses[name] = ImageStatus(status, self.region, name,
                                          master.id if master else None,
                                          regional.id if regional else None, reason)

    def add_line(self, line: ImageStatus, *, last: bool = False) -> None:
        """A status line of its own: after the line of its name, or after every line."""
        (self._last_lines if last else self._lines).append(line)

    def add(self, phase: Phase, ops: Iterable[Operation]) -> None:
        """Operations of ``phase``, after those already in it."""
        self._phases[phase].extend(ops)

    # -- the result ------------------------------------------------------------
    def finish(self) -> RegionPlan:
        """The plan: lines by name (a name's own status first), then the last
        lines; operations phase by phase."""
        # A stable sort: a name's own status, before the other lines, stays first.
        named = sorted([*self.statuses.values(), *self._lines], key=lambda s: s.name)
        return RegionPlan(self.region, statuses=named + self._last_lines,
                          operations=[op for phase in Phase for op in self._phases[phase]],
                          warnings=self.warnings, relays=self.relays)


def parse_time(value: str | None) -> datetime.datetime | None:
    """An ISO 8601 time of Glance or of a mark, in UTC (taken as UTC when it has no
    zone; converted when it has another, so that it prints right with a ``Z``);
    None if empty or not a time."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)


def reason_keys(keys: Iterable[str]) -> list[str]:
    """The keys a reason names as differing metadata: GlanceSync's records left out."""
    return sorted(k for k in keys if not k.startswith(PROVENANCE_PREFIX))

