"""Planning concern: obsolete images (SPEC section 6).

A master image named ``X_obsolete`` is never uploaded. A regional ``X`` of
the project with its content is renamed ``X_obsolete``, given the master's
visibility and ``obsolete_syncprops``; an ``X_obsolete`` already renamed
has those corrected. Handled whatever the selection rules say (an image
made obsolete is often made private too); not when a synchronised ``X``
also exists in the master (a warning), nor on other projects' images, nor
with ``support_obsolete_images = false``.
"""
from __future__ import annotations

from typing import Any

from glancesync.image import Image
from glancesync.plan import matching, metadata
from glancesync.plan.context import Phase, PlanContext
from glancesync.plan.model import Operation, OperationKind, Status, name_problem
from glancesync.selection import OBSOLETE_SUFFIX, is_obsolete_name


def plan(ctx: PlanContext) -> None:
    """The renames and corrections of every ``X_obsolete`` master image, and their
    statuses."""
    if not ctx.target.support_obsolete_images:
        return
    ops: list[Operation] = []
    for obsolete_name in sorted(ctx.master.candidates):
        if not is_obsolete_name(obsolete_name):
            continue
        master = ctx.master.candidates[obsolete_name]
        base = obsolete_name[:-len(OBSOLETE_SUFFIX)]
        if base in ctx.synced:
            ctx.warn(f"master holds both {base!r} (synchronised) and {obsolete_name!r}: "
                     f"{obsolete_name!r} is not applied")
            continue
        own_same = [i for i in ctx.regional if i.status == "active" and ctx.own(i)
                    and matching.same_content(ctx, master, i)]
        renamed = [i for i in own_same if i.name == obsolete_name]
        to_rename = [i for i in own_same if i.name == base]
        problem = name_problem(obsolete_name) if to_rename else None
        if problem is not None:
            reason = f"obsolete: {base} cannot be renamed: {problem}; nothing changed"
            ctx.set_status(Status.ERROR_NAME, obsolete_name, master, to_rename[0], reason)
            ctx.needs_operator(f"image {obsolete_name}: {reason}")
            continue
        for image in renamed:
            wanted = changes(ctx, master, image)
            if wanted:
                ops.append(Operation(OperationKind.OBSOLETE_UPDATE, obsolete_name,
                                     master=master, regional=image, changes=wanted))
        for image in to_rename:
            wanted = changes(ctx, master, image)
            wanted["name"] = obsolete_name
            ops.append(Operation(OperationKind.OBSOLETE_RENAME, obsolete_name, master=master,
                                 regional=image, changes=wanted))
        regional = (to_rename or renamed or [None])[0]
        if regional is not None:
            pending = bool(to_rename) or any(op.master is master for op in ops)
            ctx.set_status(Status.PENDING_METADATA if pending else Status.OK,
                           obsolete_name, master, regional,
                           f"obsolete: rename {base} to {obsolete_name}" if to_rename
                           else ("obsolete: correct visibility and properties"
                                 if pending else "obsolete"))
    ctx.add(Phase.OBSOLETE, ops)


def changes(ctx: PlanContext, master: Image, regional: Image) -> dict[str, Any]:
    """Visibility and ``obsolete_syncprops`` from the master (and the provenance of
    a copy made before GlanceSync recorded it)."""
    wanted: dict[str, Any] = {}
    if regional.visibility != master.visibility:
        wanted["visibility"] = master.visibility
    for key in sorted(ctx.target.obsolete_syncprops):
        if key in master.properties and regional.properties.get(key) != master.properties[key]:
            wanted[key] = master.properties[key]
    wanted.update(metadata.adoption(ctx, master, regional))
    return wanted
