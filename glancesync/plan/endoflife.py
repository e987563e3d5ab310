"""Planning concern: end of life, from the SCS image metadata standard.

The Sovereign Cloud Stack's image metadata standard (scs-0102,
https://docs.scs.community/standards/scs-0102-v1-image-metadata) gives
master images these properties, read here:

``image_build_date``
    ``YYYY-MM-DD`` or ``YYYY-MM-DD hh:mm[:ss]`` (UTC): when the image was
    built (else its ``created_at`` counts).
``replace_frequency``
    ``yearly``, ``quarterly``, ``monthly``, ``weekly``, ``daily`` (a new
    image under the name at least that often; up to 3 days late is no
    violation), ``critical_bug`` or ``never``.
``provided_until``
    ``YYYY-MM-DD`` (UTC; the image is provided until the end of that day),
    ``none`` or ``notice``.
``uuid_validity``
    ``none``, ``last-N``, ``YYYY-MM-DD``, ``notice`` or ``forever``: how long
    the image stays reachable by its id.

What GlanceSync does with them (:func:`plan`, a step of every region's plan):

* a synchronised master image past its ``provided_until`` gets an
  ``info_end_of_life`` line, one overdue for replacement an
  ``info_replacement_overdue`` line (the views, reports and metrics show
  them); a value that is not as the standard says is a warning;
* with a ``removal_policy`` other than ``keep``, a master image past its
  ``provided_until`` is no longer synchronised: no new copies, and its
  copies get the lifecycle's removal step, with its grace period and
  guards (:mod:`glancesync.plan.lifecycle`);
* :func:`keep_promised_ids`, over the plans of a run: a copy whose master
  image promises its id for longer (``uuid_validity`` a later date,
  ``notice``, ``forever`` or ``last-N``) is hidden, not deleted.
"""
from __future__ import annotations

import calendar
import datetime
import re
from typing import Iterable, Mapping

from glancesync.image import MARK_RETIRED, Image
from glancesync.plan.context import PlanContext, parse_time
from glancesync.plan.model import (REMOVAL_STEPS, ImageStatus, Operation, OperationKind,
                                   RegionPlan, Status)

BUILD_DATE = "image_build_date"
REPLACE_FREQUENCY = "replace_frequency"
PROVIDED_UNTIL = "provided_until"
UUID_VALIDITY = "uuid_validity"

#: Months (or days, negative) of each replace_frequency; the others never fall due.
FREQUENCIES = {"yearly": 12, "quarterly": 3, "monthly": 1, "weekly": -7, "daily": -1}
NEVER_DUE = ("critical_bug", "never")
#: How late a replacement may be and still keep the promise (the standard's 3 days).
TOLERANCE = datetime.timedelta(days=3)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BUILD = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$")
_LAST_N = re.compile(r"^last-\d{1,6}$")


def parse_date(value: str) -> datetime.date | None:
    """A ``YYYY-MM-DD`` date; None when it is not one."""
    if not _DATE.match(value):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def build_time(image: Image) -> datetime.datetime | None:
    """``image_build_date`` (UTC), else ``created_at``; None when neither is a time."""
    value = image.properties.get(BUILD_DATE, "").strip()
    if value and _BUILD.match(value):
        return parse_time(value)  # fromisoformat takes any separator (Python 3.7+)
    return parse_time(image.created_at)


def add_months(when: datetime.datetime, months: int) -> datetime.datetime:
    """``when`` plus calendar months (the day kept, or the month's last one)."""
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    return when.replace(year=year, month=month,
                        day=min(when.day, calendar.monthrange(year, month)[1]))


def end_of_life(image: Image, now: datetime.datetime) -> str | None:
    """Why ``image`` is past its ``provided_until``; None when it is not."""
    value = image.properties.get(PROVIDED_UNTIL, "").strip()
    until = parse_date(value) if value else None
    if until is None or now.date() <= until:
        return None
    return f"past its provided_until {until.isoformat()} (SCS image metadata)"


def overdue(image: Image, now: datetime.datetime) -> str | None:
    """Why ``image`` is overdue for replacement; None when it is not."""
    frequency = image.properties.get(REPLACE_FREQUENCY, "").strip()
    step = FREQUENCIES.get(frequency)
    built = build_time(image)
    if step is None or built is None:
        return None
    due = add_months(built, step) if step > 0 else built + datetime.timedelta(days=-step)
    if now <= due + TOLERANCE:
        return None
    return (f"built {built:%Y-%m-%d}, replace_frequency = {frequency}: a new image was due"
            f" {due:%Y-%m-%d} (SCS image metadata)")


def problems(image: Image) -> list[str]:
    """What in ``image``'s SCS properties is not as the standard says."""
    props, found = image.properties, []
    checks = ((BUILD_DATE, lambda v: bool(_BUILD.match(v)) and parse_time(v) is not None),
              (REPLACE_FREQUENCY, lambda v: v in FREQUENCIES or v in NEVER_DUE),
              (PROVIDED_UNTIL, lambda v: v in ("none", "notice") or parse_date(v) is not None),
              (UUID_VALIDITY, lambda v: v in ("none", "notice", "forever")
                  or bool(_LAST_N.match(v)) or parse_date(v) is not None))
    for key, valid in checks:
        value = props.get(key)
        if value is not None and not valid(value.strip()):
            found.append(f"{key} = {value[:40]!r} is not as the SCS image metadata standard"
                         " says: ignored")
    return found


def plan(ctx: PlanContext) -> None:
    """The end-of-life lines of the synchronised master images; with a removal
    policy, those past ``provided_until`` are no longer synchronised."""
    policy = ctx.target.removal_policy
    for name in sorted(ctx.synced):
        master = ctx.synced[name]
        for problem in problems(master):
            ctx.warn(f"image {name}: {problem}")
        expired, late = end_of_life(master, ctx.now), overdue(master, ctx.now)
        if expired and policy in REMOVAL_STEPS:
            del ctx.synced[name]
            ctx.synced_by_id.pop(master.id, None)
            ctx.set_status(Status.INFO_END_OF_LIFE, name, master, None,
                           f"{expired}: no longer synchronised; its copies get"
                           f" removal_policy = {policy} (after removal_grace_hours)")
            continue
        if expired:
            ctx.add_line(line(ctx, Status.INFO_END_OF_LIFE, name, master,
                              f"{expired}; removal_policy = keep: its copies are kept"))
        if late:
            ctx.add_line(line(ctx, Status.INFO_REPLACEMENT_OVERDUE, name, master, late))


def line(ctx: PlanContext, status: Status, name: str, master: Image,
         reason: str) -> ImageStatus:
    """A line about the master image ``name`` (its regional copy named, if any)."""
    copy = next((i for i in ctx.regional if i.name == name and ctx.visible(i)
                 and i.status in ("active", "deactivated")), None)
    return ImageStatus(status, ctx.region, name, master.id, copy.id if copy else None, reason)


def id_promised(value: str | None, now: datetime.datetime) -> bool:
    """True when ``uuid_validity`` still promises the image's id at ``now``."""
    value = (value or "").strip()
    if value in ("notice", "forever") or _LAST_N.match(value):
        return True
    until = parse_date(value)
    return until is not None and now.date() <= until


def keep_promised_ids(plans: Iterable[RegionPlan], masters: Mapping[str, Image],
                      now: datetime.datetime) -> int:
    """Hide, rather than delete, copies whose ``uuid_validity`` (the copy's own, else
    its master image's, by id in ``masters``) still promises their id (one hidden
    already: no step, ``ok_retired``); the number of deletions not taken."""
    changed = 0
    for region_plan in plans:
        kept = []
        for op in region_plan.operations:
            value = promise(op, masters)
            if value is None or not id_promised(value, now):
                kept.append(op)
                continue
            changed += 1
            status = region_plan.removal_status(op)
            note = f"not deleted: uuid_validity = {value} promises its id"
            if op.regional.os_hidden:  # hidden already: nothing to do
                if status is not None:
                    status.status = Status.OK_RETIRED
                    status.reason = f"{status.reason.rsplit(':', 1)[0]}; hidden, {note}"
                continue
            op.kind = OperationKind.HIDE
            op.changes = {"os_hidden": True, MARK_RETIRED: "hide"}
            op.reason = f"{op.reason}; hidden, {note}"
            if status is not None:
                status.reason = f"{status.reason}; hidden, {note}"
            kept.append(op)
        region_plan.operations = kept
    return changed


def promise(op: Operation, masters: Mapping[str, Image]) -> str | None:
    """The ``uuid_validity`` that applies to the copy a ``delete`` step removes."""
    copy = op.regional
    if op.kind is not OperationKind.DELETE or copy is None:
        return None
    master = masters.get(copy.provenance.master_image_id) if copy.provenance else None
    return copy.properties.get(UUID_VALIDITY) or (
        master.properties.get(UUID_VALIDITY) if master else None)
