"""What a region needs, as plain data (SPEC sections 5 and 6).

:func:`make_plan` is pure: master selection and regional images in, a
:class:`RegionPlan` out. Status reports, dry runs and syncs all use it, so
they can never disagree; only :mod:`glancesync.executor` acts on a plan.

The plan's data is :mod:`glancesync.plan.model` (every name importable from
here too). Planning is :data:`STEPS`, one concern a module, run in the
order of the SPEC on one :class:`~glancesync.plan.context.PlanContext`:

==============================  ==============================================
:mod:`~glancesync.plan.matching`   matching by name and content; duplicates
:mod:`~glancesync.plan.uploads`    a new copy: status, operation, transfer
:mod:`~glancesync.plan.conflicts`  different content: the directives
:mod:`~glancesync.plan.metadata`   metadata, members, adoption, deactivated copies
:mod:`~glancesync.plan.ami`        kernel and ramdisk ids; the order of operations
:mod:`~glancesync.plan.identity`   ``keep_image_id``: the master's id for new copies
:mod:`~glancesync.plan.validation` copies ``validate_command`` did not accept
:mod:`~glancesync.plan.waves`      ``rollout_waves``: over the plans of a run
:mod:`~glancesync.plan.endoflife`  SCS end of life (``provided_until``...)
:mod:`~glancesync.plan.obsolete`   ``X_obsolete`` images (SPEC section 6)
:mod:`~glancesync.plan.leftovers`  leftovers of interrupted uploads
:mod:`~glancesync.plan.lifecycle`  removal policy, retention, ``max_deletes``
==============================  ==============================================

A new concern is a module with a step ``(PlanContext) -> None`` and one
line in :data:`STEPS`; a concern over the plans of a whole run (like
``max_deletes``) is a function of the plans, called by the facade where it
calls :func:`hold_removals`.

Decisions the SPEC leaves open, taken here:

* Updates compare ``visibility`` (always), ``min_ram`` and ``min_disk`` (they
  decide where an image can boot) and the user properties of SPEC section 5.
  ``protected``, ``disk_format`` and ``container_format`` are set on upload
  only: protection is a regional operating choice, formats follow the data.
* ``kernel_id`` and ``ramdisk_id`` of a master image are always synchronised
  (translated), whatever ``metadata_set`` says: an AMI without them is
  broken. Uploads also always carry :data:`~glancesync.image.UPLOAD_PROPERTIES`.
* Conflicts: explicit checksums first (``dontupdate``, then ``rename``, then
  ``replace``), then ``any`` in the same order. A directive matches the
  regional md5 ``checksum`` or its ``os_hash_value``.
* Obsolete master images (``X_obsolete``) are handled whatever rules 2-6 of
  SPEC section 4 say: the regional ``X`` they act on is recognised by its
  content and owner, and a master image made obsolete is often also made
  private.
* Regional images of other projects (``only_tenant_images`` false) count as
  the regional copy; they are never updated, renamed or cleaned, and only
  an explicit checksum in ``replace`` lets sync replace them.
* Leftovers: only images GlanceSync created (they carry its provenance)
  are ever cleaned, once ``queued`` or ``saving`` and unchanged for
  ``stalled_upload_age``; each clean-up has a ``pending_cleanup`` line.
* A master name held by several candidates is ``error_duplicate`` in every
  region one of them should reach.
* Adoption: a regional image of the project without provenance, with the
  master's name and content, gets the provenance recorded (a copy made
  before GlanceSync recorded it); nothing else is ever taken for a copy.
* Lifecycle (``removal_policy``, ``keep_old_copies``): the copies of ours
  whose master image is gone or no longer selected, and the ``NAME.old``
  copies beyond the limit, get a removal step, always the last operations
  of a plan; see :mod:`glancesync.plan.lifecycle` for what is never touched.
* Every upload operation carries its :class:`~glancesync.strategy.Transfer`
  (stream or server-side copy, disk format), decided by the region's
  :class:`~glancesync.strategy.RegionTransfer`; with ``convert_to``, a copy
  is compared with the master on its provenance record and disk format.
"""
from __future__ import annotations

import datetime
from typing import Callable, Iterable, Mapping, Sequence

from glancesync.image import Image
from glancesync.plan import (ami, endoflife, identity, leftovers, lifecycle, matching,
                             obsolete, validation)
from glancesync.plan.conflicts import ANY
from glancesync.plan.context import PlanContext
from glancesync.plan.endoflife import keep_promised_ids
from glancesync.plan.lifecycle import hold_all_removals, hold_removals
from glancesync.plan.waves import Waves, hold_waves
from glancesync.plan.model import (CONTENT_PENDING, CONTENT_SAME, DEACTIVATED_KEEP,
                                   DEACTIVATED_REACTIVATE, DEACTIVATED_REPORT, OLD_SUFFIX,
                                   REMOVAL_STEPS, SIGNATURES_AFTER_UPLOAD, SIGNATURES_AT_UPLOAD,
                                   SIGNATURES_DROP, ImageStatus, MemberTarget, Operation,
                                   OperationKind, RegionPlan, Status, StatusCategory,
                                   TargetPolicy)
from glancesync.selection import MasterSelection
from glancesync.strategy import RegionTransfer

__all__ = [
    "ANY", "CONTENT_PENDING", "CONTENT_SAME", "DEACTIVATED_KEEP", "DEACTIVATED_REACTIVATE",
    "DEACTIVATED_REPORT", "OLD_SUFFIX", "REMOVAL_STEPS", "SIGNATURES_AFTER_UPLOAD",
    "SIGNATURES_AT_UPLOAD", "SIGNATURES_DROP", "STEPS", "Step", "ImageStatus", "MemberTarget",
    "Operation", "OperationKind", "RegionPlan", "Status", "StatusCategory", "TargetPolicy",
    "Waves", "hold_all_removals", "hold_removals", "hold_waves", "keep_promised_ids", "make_plan",
]

#: One step of planning: reads the context, adds to it.
Step = Callable[[PlanContext], None]

#: The steps of a region's plan, in the order of the SPEC; each reads what
#: the ones before it decided and adds to it.
STEPS: tuple[Step, ...] = (
    matching.report_own_duplicates,  # two copies of one master image made by GlanceSync
    endoflife.plan,  # SCS end of life: past provided_until, overdue for replacement
    validation.set_aside,  # copies validate_command did not accept: never matched
    matching.match_regional,  # section 5: regional images matched by name
    matching.classify_synchronised,  # section 5: content, conflicts, metadata, new copies
    validation.report,  # ... their names: error_validation, the previous copy in service
    matching.classify_duplicates,  # section 4: a name held by several master images
    matching.report_regional_duplicates,  # never ok with two images of one name
    matching.master_deactivated,  # deactivated master images: reported
    ami.resolve,  # section 5: kernel and ramdisk ids
    ami.order,  # section 5: metadata updates first, then uploads, kernels first
    identity.keep_ids,  # keep_image_id: new copies with the master's id
    obsolete.plan,  # section 6: X_obsolete images
    leftovers.plan,  # leftovers of interrupted uploads
    lifecycle.plan,  # removal_policy and keep_old_copies: always last
)


def make_plan(region: str, master: MasterSelection, regional_images: Iterable[Image],
              regional_project_id: str | None, target: TargetPolicy, *,
              now: datetime.datetime | None = None,
              stalled_upload_age: float = 3600,
              members: Mapping[str, MemberTarget] | None = None,
              transfer: RegionTransfer | None = None,
              steps: Sequence[Step] = STEPS) -> RegionPlan:
    """Compute statuses and operations of ``region`` for ``target``.

    ``members`` (with ``sync_members``) maps each master project an image
    is shared with to its :data:`MemberTarget` in the region; the images'
    :attr:`~glancesync.image.Image.members` must then have been read
    (:mod:`glancesync.sharing` does both). ``transfer`` says how copies may
    reach the region (default: streamed, in the master's disk format).
    ``steps``: the planning steps (default :data:`STEPS`).
    """
    ctx = PlanContext(region, master, list(regional_images), regional_project_id, target,
                      now or datetime.datetime.now(datetime.timezone.utc),
                      stalled_upload_age, members, transfer or RegionTransfer())
    for step in steps:
        step(ctx)
    return ctx.finish()
