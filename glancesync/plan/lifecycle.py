"""Planning concern: the image lifecycle and retention (``removal_policy``,
``removal_grace_hours``, ``keep_old_copies``, ``max_deletes``).

Candidates are the copies of this master region recognised by their
provenance whose master image is gone or no longer selected
(:func:`orphaned`), after ``removal_grace_hours``; and the ``NAME.old``
copies marked by a rename beyond the newest ``keep_old_copies`` (no grace
period). Never touched: other projects' images and protected ones
(reported), images named like a synchronised master image (the sync's
conflicts decide), images without provenance or whose master image is
still listed in any state, and everything when the master offers no image
at all. Their lines come after every other line, their marks and removal
steps after every other operation, removal steps last. Across the plans
of a run, :func:`hold_removals` applies ``max_deletes``.
"""
from __future__ import annotations

from typing import Iterable

from glancesync.image import MARK_ORPHANED, MARK_RENAMED, MARK_RETIRED, Image, utc_stamp
from glancesync.plan.context import Phase, PlanContext, parse_time
from glancesync.plan.model import (OLD_SUFFIX, REMOVAL_STEPS, ImageStatus, Operation,
                                   OperationKind, RegionPlan, Status)
from glancesync.selection import is_obsolete_name

#: A lifecycle line and its step (None: nothing to do).
Line = tuple[ImageStatus, Operation | None]


def plan(ctx: PlanContext) -> None:
    """Statuses and steps of the image lifecycle, added last to the plan."""
    found: list[Line] = []
    policy = ctx.target.removal_policy
    if policy in REMOVAL_STEPS and not ctx.master.candidates:
        ctx.warn("the master region offers no image at all: no copy is removed"
                 " (check the master target's credentials and project)")
        return
    old_copies(ctx, found)
    for image in sorted(ctx.regional, key=lambda i: (i.name or "", i.id)):
        why = orphaned(ctx, image)
        if why is not None and policy in REMOVAL_STEPS:
            retire(ctx, found, image, why, grace=True)
        elif why is None and MARK_ORPHANED in image.marks and ctx.own(image) \
                and image.name not in ctx.synced:
            # Its master image came back (under another name): the clock stops.
            found.append(line(ctx, Status.PENDING_METADATA, image,
                              "its master image is back: lifecycle mark removed",
                              Operation(OperationKind.UPDATE_METADATA,
                                        image.name or image.id, regional=image,
                                        remove=(MARK_ORPHANED,))))
    for status, op in sorted(found, key=lambda p: (p[0].name, p[0].regional_id)):
        ctx.add_line(status, last=True)
        if op is not None:
            # Removal steps after everything else, marks included.
            ctx.add(Phase.REMOVAL if op.kind.removes else Phase.LIFECYCLE, [op])


def orphaned(ctx: PlanContext, image: Image) -> str | None:
    """Why ``image`` is a copy of ours whose master image is gone or no longer
    selected for the target; None when it is not one.

    The master image of an ``X_obsolete`` name is handled by the obsolete
    convention (when ``support_obsolete_images``); one still listed by
    the master region in any other state (deactivated, name used twice,
    not active) is not gone.
    """
    record = image.provenance
    if (record is None or record.master_region != ctx.master.region
            or image.status not in ("active", "deactivated")
            or image.name in ctx.synced or renamed_old(image)
            or record.master_image_id in ctx.synced_by_id):
        return None
    master = ctx.master.by_id().get(record.master_image_id)
    if master is not None:
        if is_obsolete_name(master.name) and ctx.target.support_obsolete_images:
            return None
        return (f"master image {master.name} ({master.id}) is no longer selected for"
                " this target")
    listed = ctx.master.listed_ids | {i.id for i in ctx.master.deactivated.values()}
    if record.master_image_id in listed:
        return None
    return f"master image {record.master_image_id} is gone from the master region"


def renamed_old(image: Image) -> bool:
    """A ``NAME.old`` image a rename made: ``keep_old_copies`` decides on it."""
    return bool(image.name and image.name.endswith(OLD_SUFFIX)
                and parse_time(image.marks.get(MARK_RENAMED)))


def old_copies(ctx: PlanContext, found: list[Line]) -> None:
    """The ``NAME.old`` copies beyond the newest ``keep_old_copies`` of each name."""
    limit = ctx.target.keep_old_copies
    if limit is None or ctx.target.removal_policy not in REMOVAL_STEPS:
        return
    groups: dict[str, list[Image]] = {}
    for image in ctx.regional:
        if renamed_old(image) and image.status in ("active", "deactivated"):
            groups.setdefault(image.name, []).append(image)
    for name, copies in sorted(groups.items()):
        copies.sort(key=lambda i: (parse_time(i.marks[MARK_RENAMED]), i.id), reverse=True)
        for image in copies[limit:]:
            retire(ctx, found, image,
                   f"{len(copies)} {name} copies, keep_old_copies = {limit}:"
                   f" renamed {image.marks[MARK_RENAMED]}, one of the oldest", grace=False)


def retire(ctx: PlanContext, found: list[Line], image: Image, why: str, *,
           grace: bool) -> None:
    """The status (and step) of a copy that ``removal_policy`` applies to."""
    policy = ctx.target.removal_policy
    if not ctx.own(image):
        found.append(line(ctx, Status.INFO_REMOVAL_SKIPPED, image,
                          f"{why}; owned by project {image.owner}: never touched"))
        return
    if image.protected:
        found.append(line(ctx, Status.INFO_REMOVAL_SKIPPED, image,
                          f"{why}; protected: never touched (unprotect it to let"
                          f" removal_policy = {policy} apply)"))
        return
    if (policy == "hide" and image.os_hidden) or (
            policy == "deactivate" and image.status == "deactivated"):
        found.append(line(ctx, Status.OK_RETIRED, image, f"{why}; {policy} done"))
        return
    waiting = grace_line(ctx, image, why) if grace else None
    if waiting is not None:
        found.append(waiting)
        return
    kind = REMOVAL_STEPS[policy]
    changes = ({"os_hidden": True, MARK_RETIRED: policy} if kind is OperationKind.HIDE
               else {MARK_RETIRED: policy} if kind is OperationKind.DEACTIVATE else {})
    reason = f"{why} (removal_policy = {policy})"
    found.append(line(ctx, Status.PENDING_REMOVAL, image, f"{why}: to {policy}",
                      Operation(kind, image.name or image.id, regional=image,
                                changes=changes, reason=reason)))


#: How far a mark may be ahead of the target's clock before it is taken for
#: one written by a host whose clock was ahead (seconds): the clocks of the
#: target's services may differ by that much.
CLOCK_TOLERANCE = 300.0


def grace_line(ctx: PlanContext, image: Image, why: str) -> Line | None:
    """The line of a copy within ``removal_grace_hours`` (with the step that records
    since when, the first time); None when its grace period is over (or none).

    Time is the target's clock (``ctx.now``, shared by every host). A mark
    ahead of it (a host whose clock was ahead wrote it) is not trusted: it is
    recorded again now, and said. A copy changed after its mark (a host
    whose clock was late wrote it, or someone changed it since) counts from
    that change: a grace period is never shortened by a wrong clock.
    """
    policy = ctx.target.removal_policy
    hours = ctx.target.removal_grace_hours
    if hours <= 0:
        return None
    mark = image.marks.get(MARK_ORPHANED)
    since = parse_time(mark)
    ahead = (since - ctx.now).total_seconds() if since is not None else 0.0
    if since is None or ahead > CLOCK_TOLERANCE:
        reason = f"{why}: to {policy} in {hours:g} h (removal_grace_hours)"
        record = "record since when its master image is gone"
        if since is not None:
            note = (f"its mark {MARK_ORPHANED} = {mark} is {ahead / 3600:.1f} h ahead of"
                    f" the target's clock ({utc_stamp(ctx.now)}): written by a host whose"
                    " clock was ahead, not trusted; recorded again now")
            ctx.warn(f"image {image.name} ({image.id}): {note}")
            reason = f"{why}: {note}; to {policy} in {hours:g} h (removal_grace_hours)"
            record = "a mark from the future, recorded again by the target's clock"
        return line(ctx, Status.INFO_REMOVAL_GRACE, image, reason,
                    Operation(OperationKind.UPDATE_METADATA, image.name or image.id,
                              regional=image, changes={MARK_ORPHANED: utc_stamp(ctx.now)},
                              reason=record))
    start, note = since, f"since {mark}"
    changed = parse_time(image.updated_at)
    if changed is not None and (changed - since).total_seconds() > CLOCK_TOLERANCE:
        start = changed
        note = (f"since {image.updated_at}, its last change, later than its mark"
                f" {mark}")
    left = hours * 3600 - (ctx.now - start).total_seconds()
    if left > 0:
        return line(ctx, Status.INFO_REMOVAL_GRACE, image,
                    f"{why} ({note}): to {policy} in {left / 3600:.1f} h"
                    " (removal_grace_hours)")
    return None


def line(ctx: PlanContext, status: Status, image: Image, reason: str,
         op: Operation | None = None) -> Line:
    """A lifecycle line of ``image`` (named after its master image's id, if known)."""
    record = image.provenance
    return (ImageStatus(status, ctx.region, image.name or image.id,
                        record.master_image_id if record else None, image.id, reason), op)


def hold_removals(plans: Iterable[RegionPlan], max_deletes: int) -> int:
    """Apply ``max_deletes`` to the plans of one run; the number of removal steps.

    When the plans together hold more removal steps (hide, deactivate,
    delete) than ``max_deletes``, none is taken: every one leaves its plan
    and its status becomes ``error_max_deletes``, saying why. Within the
    limit, the plans are left as they are.
    """
    plans = list(plans)
    steps = sum(len(plan.removals) for plan in plans)
    if steps <= max_deletes:
        return steps
    note = (f"not taken: this run would take {steps} removal steps, more than"
            f" max_deletes = {max_deletes} (check them, then allow it once with"
            f" --config max_deletes={steps})")
    hold_all_removals(plans, Status.ERROR_MAX_DELETES, note)
    return steps


def hold_all_removals(plans: Iterable[RegionPlan], status: Status, note: str) -> int:
    """Take every removal step out of ``plans``; the number taken out.

    Each one's ``pending_removal`` line gets ``status`` and ``note`` (why
    it is not taken) after its reason; each plan holding some, a warning.
    """
    count = 0
    for plan in plans:
        held = plan.removals
        for op in held:
            line = plan.removal_status(op)
            if line is not None:
                line.status = status
                line.reason = f"{line.reason}; {note}"
        if held:
            plan.operations = [op for op in plan.operations if not op.kind.removes]
            plan.warnings.append(f"{len(held)} removal step(s) {note}")
            count += len(held)
    return count
