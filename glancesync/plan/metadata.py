"""Planning concern: the metadata and members of a copy (SPEC section 5).

What a copy holding the master's content must carry, and the operation
that brings it there: the managed user properties (``metadata_set``, empty
= all; ``kernel_id`` / ``ramdisk_id`` apart, translated by
:mod:`glancesync.plan.ami`; signature properties dropped with
``signature_properties = drop``), visibility, ``min_ram``, ``min_disk``,
``os_hidden``, tags (``sync_tags``), members (``sync_members``: master
projects mapped to the region's by name and domain), the provenance of a
copy made before GlanceSync recorded it (adoption) and the lifecycle marks
of a copy whose master image is back. Deactivated copies follow
``deactivated_copies``. Also what a new copy carries (:func:`upload_fields`).
"""
from __future__ import annotations

from typing import Any

from glancesync.image import (AMI_PROPERTIES, MARK_ORPHANED, MARK_RETIRED, SIGNATURE_PROPERTIES,
                              UPLOAD_PROPERTIES, Image, Provenance, content_hash,
                              is_user_property, metadata_diff, utc_stamp)
from glancesync.plan.context import PlanContext, parse_time, reason_keys
from glancesync.plan.model import (DEACTIVATED_KEEP, DEACTIVATED_REACTIVATE,
                                   SIGNATURES_AFTER_UPLOAD, SIGNATURES_DROP, Operation,
                                   OperationKind, Status)


def compare(ctx: PlanContext, name: str, master: Image, regional: Image,
            in_sync: Status, *, kind: OperationKind | None = None, why: str = "") -> None:
    """Status and operation of a copy holding the master's content.

    ``in_sync`` is the status when nothing differs; ``kind`` forces an
    operation (a reactivation) with ``why`` as its reason.
    """
    changes, remove = diff(ctx, master, regional)
    add, drop = member_diff(ctx, master, regional)
    unmapped = report_unmapped(ctx, name, master)
    adopted = adoption(ctx, master, regional)
    back = back_marks(regional)
    changes.update(adopted)
    remove += back
    if not (changes or remove or add or drop or kind is not None):
        if unmapped:
            ctx.set_status(Status.INFO_MEMBERS_UNMAPPED, name, master, regional, unmapped)
        else:
            ctx.set_status(in_sync, name, master, regional,
                           "deactivated copy kept" if in_sync is Status.OK_DEACTIVATED
                           else "")
        return
    parts = [why] if why else []
    keys = reason_keys(set(changes) - {"tags"}) + reason_keys(remove)
    if keys:
        parts.append(f"metadata differs: {', '.join(keys)}")
    if adopted:
        parts.append("record provenance (a copy made before GlanceSync recorded"
                     " it: same name and content as the master image)")
    if back:
        parts.append("its master image is back: lifecycle marks removed")
    if "tags" in changes:
        wanted = set(changes["tags"])
        delta = ([f"+{t}" for t in sorted(wanted - set(regional.tags))]
                 + [f"-{t}" for t in sorted(set(regional.tags) - wanted)])
        parts.append(f"tags differ: {' '.join(delta)}")
    if add or drop:
        parts.append("members differ: " + " ".join(
            [f"+{member_label(ctx, p)}" for p in add] + [f"-{p}" for p in drop]))
    if unmapped:
        parts.append(unmapped)
    status = (Status.PENDING_REACTIVATE if kind is OperationKind.REACTIVATE
              else Status.PENDING_METADATA)
    ctx.set_status(status, name, master, regional, "; ".join(parts))
    ctx.ops[name] = Operation(kind or OperationKind.UPDATE_METADATA, name,
                              master=master, regional=regional, changes=changes,
                              remove=tuple(remove), add_members=add, remove_members=drop)


def deactivated_copy(ctx: PlanContext, name: str, master: Image, regional: Image) -> None:
    """A regional copy with the master's content that an operator deactivated.

    One that ``removal_policy = deactivate`` deactivated while its master
    image was gone is reactivated, whatever ``deactivated_copies`` says.
    """
    policy = ctx.target.deactivated_copies
    if ctx.own(regional) and regional.marks.get(MARK_RETIRED) == "deactivate":
        compare(ctx, name, master, regional, Status.PENDING_REACTIVATE,
                kind=OperationKind.REACTIVATE,
                why="deactivated by removal_policy while its master image was gone:"
                    " reactivate it")
        return
    if policy == DEACTIVATED_KEEP:
        if ctx.own(regional):
            compare(ctx, name, master, regional, Status.OK_DEACTIVATED)
        else:
            ctx.set_status(Status.OK_DEACTIVATED, name, master, regional,
                           f"deactivated copy kept; owned by project {regional.owner},"
                           " metadata not managed")
        return
    if policy == DEACTIVATED_REACTIVATE and ctx.own(regional):
        compare(ctx, name, master, regional, Status.PENDING_REACTIVATE,
                kind=OperationKind.REACTIVATE,
                why=f"regional copy {regional.id} is deactivated: reactivate it")
        return
    reason = (f"regional copy {regional.id} is deactivated (an operator's decision):"
              f" reactivate it (openstack image set --activate {regional.id}) or"
              " delete it for a new copy; deactivated_copies = reactivate or keep"
              " decides it for every copy")
    if not ctx.own(regional):
        reason += (f" (owned by project {regional.owner}: GlanceSync never changes"
                   " it)")
    ctx.set_status(Status.ERROR_DEACTIVATED, name, master, regional, reason)
    ctx.needs_operator(f"image {name}: {reason}")


def adoption(ctx: PlanContext, master: Image, regional: Image) -> dict[str, str]:
    """The provenance to record on ``regional``, a copy made before GlanceSync
    recorded it (the caller checked it holds ``master``'s content).

    Only images of the project without any provenance, when the master has
    a hash; ``copied_at`` is the image's creation time. Empty otherwise.
    """
    if (regional.provenance is not None or not ctx.own(regional)
            or content_hash(master) is None):
        return {}
    created = parse_time(regional.created_at)
    record = Provenance(master.id, ctx.master.region, content_hash(master),
                        utc_stamp(created) if created else None)
    return record.as_properties()


def back_marks(regional: Image) -> list[str]:
    """The lifecycle marks to remove from a copy whose master image is synchronised."""
    return [key for key in (MARK_ORPHANED, MARK_RETIRED) if key in regional.marks]


def managed_properties(ctx: PlanContext, master: Image, regional: Image | None) -> set[str]:
    """User properties compared for this pair (SPEC section 5)."""
    if ctx.target.metadata_set:
        keys = set(ctx.target.metadata_set)
    else:
        keys = set(master.properties)
        if regional is not None:
            keys |= set(regional.properties)
    excluded = set(AMI_PROPERTIES)
    if ctx.target.signature_properties == SIGNATURES_DROP:
        excluded |= set(SIGNATURE_PROPERTIES)
    return {k for k in keys if is_user_property(k) and k not in excluded}


def diff(ctx: PlanContext, master: Image, regional: Image) -> tuple[dict[str, Any], list[str]]:
    """The changes (fields and properties to set, properties to remove) that give
    ``regional`` the master's synchronised metadata."""
    properties = {key: master.properties.get(key)
                  for key in sorted(managed_properties(ctx, master, regional))}
    fields = {"visibility": master.visibility, "min_ram": master.min_ram or 0,
              "min_disk": master.min_disk or 0, "os_hidden": bool(master.os_hidden),
              "tags": list(master.tags) if ctx.target.sync_tags else None}
    return metadata_diff(regional, fields, properties)


def upload_fields(ctx: PlanContext, master: Image) -> dict[str, Any]:
    """Everything a new regional copy of ``master`` carries (AMI ids apart).

    ``properties`` go with the creation; ``late_properties`` (signature
    properties under ``signature_properties = after-upload``), like
    ``visibility``, ``protected``, ``os_hidden`` and ``tags``, are set
    once the data is verified.
    """
    fields: dict[str, Any] = {
        "visibility": master.visibility,
        "disk_format": ctx.transfer.disk_format(master),
        "container_format": master.container_format,
        "min_ram": master.min_ram or 0,
        "min_disk": master.min_disk or 0,
        "protected": bool(master.protected),
        "os_hidden": bool(master.os_hidden),
        "tags": sorted(set(master.tags)) if ctx.target.sync_tags else [],
    }
    keys = managed_properties(ctx, master, None) | set(UPLOAD_PROPERTIES)
    props = {k: master.properties[k] for k in sorted(keys) if k in master.properties}
    late = {}
    if ctx.target.signature_properties == SIGNATURES_AFTER_UPLOAD:
        late = {k: props.pop(k) for k in SIGNATURE_PROPERTIES if k in props}
    fields["properties"] = props
    fields["late_properties"] = late
    return fields


# -- members (sync_members) ----------------------------------------------------
def wanted_members(ctx: PlanContext, master: Image) -> tuple[tuple[str, ...], list[str]]:
    """(regional project ids, master projects that do not exist in the region)."""
    if ctx.members is None or master.visibility != "shared" or not master.members:
        return (), []
    found, missing = [], []
    for project in master.members:
        label, regional_id = ctx.members.get(project, (project, None))
        if regional_id is None:
            missing.append(label)
        elif regional_id not in found:
            found.append(regional_id)
    return tuple(sorted(found)), sorted(missing)


def member_diff(ctx: PlanContext, master: Image,
                regional: Image) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Projects to share ``regional`` with, and to stop sharing it with."""
    if ctx.members is None or master.visibility != "shared":
        return (), ()
    wanted = set(wanted_members(ctx, master)[0])
    current = set(regional.members or ())
    return tuple(sorted(wanted - current)), tuple(sorted(current - wanted))


def member_label(ctx: PlanContext, regional_id: str) -> str:
    """How messages name a regional project (the master project's label)."""
    for label, found in (ctx.members or {}).values():
        if found == regional_id:
            return label
    return regional_id


def report_unmapped(ctx: PlanContext, name: str, master: Image) -> str:
    """Warn about master members without a project in the region; the reason text."""
    missing = wanted_members(ctx, master)[1]
    if not missing:
        return ""
    text = (f"not shared with {', '.join(missing)}: no project of that name and domain"
            " in the region")
    ctx.warn(f"image {name}: {text}")
    return text
