"""Planning concern: a regional copy whose content differs from the master's (SPEC section 5).

The target's directives decide, on the regional checksum (md5
``checksum`` or ``os_hash_value``): ``dontupdate`` keeps it
(``ok_stalled_checksum``), ``rename`` uploads a new copy and renames the
old one ``NAME.old``, ``replace`` uploads a new copy and deletes the old
one. Explicit checksums first (``dontupdate`` > ``rename`` > ``replace``),
then ``any`` in the same order. A protected image is never replaced
(``error_protected``): GlanceSync never unprotects nor removes it; nor
renamed when ``NAME.old`` would be too long for the region
(``error_name``, checked before any change).
Another project's image is never renamed, and only an explicit checksum
in ``replace`` replaces it. No directive:
``error_checksum``, nothing touched.
"""
from __future__ import annotations

from glancesync.image import Image, content_hash
from glancesync.plan import uploads
from glancesync.plan.context import PlanContext
from glancesync.plan.model import OLD_SUFFIX, OperationKind, Status, name_problem

#: The directive value that matches every checksum.
ANY = "any"


def conflict(ctx: PlanContext, name: str, master: Image, regional: Image) -> None:
    """Different content: apply the directives and their precedence."""
    decision = decide(ctx, regional)
    checksum = regional.checksum or regional.os_hash_value
    if decision is None:
        reason = unresolved(ctx, master, regional)
        ctx.set_status(Status.ERROR_CHECKSUM, name, master, regional, reason)
        ctx.needs_operator(f"image {name}: {reason}")
        return
    status, why = decision
    if status is Status.OK_STALLED_CHECKSUM:
        ctx.set_status(status, name, master, regional,
                       f"regional checksum {checksum} in dontupdate ({why})")
        return
    if status is Status.PENDING_REPLACE and regional.protected:
        reason = (f"regional checksum {checksum} in replace ({why}), but regional image"
                  f" {regional.id} is protected: GlanceSync never unprotects nor deletes"
                  " it (unprotect or delete it, or list its checksum in rename or"
                  " dontupdate)")
        ctx.set_status(Status.ERROR_PROTECTED, name, master, regional, reason)
        ctx.needs_operator(f"image {name}: {reason}")
        return
    problem = (name_problem(name + OLD_SUFFIX) if status is Status.PENDING_RENAME
               else None)
    if problem is not None:
        reason = (f"regional checksum {checksum} in rename ({why}), but the old image"
                  f" cannot be renamed: {problem}; nothing changed (shorten the master"
                  " image's name, or list the checksum in replace or dontupdate)")
        ctx.set_status(Status.ERROR_NAME, name, master, regional, reason)
        ctx.needs_operator(f"image {name}: {reason}")
        return
    kind = (OperationKind.RENAME if status is Status.PENDING_RENAME
            else OperationKind.REPLACE)
    uploads.upload(ctx, kind, status, name, master, regional,
                   f"regional checksum {checksum} in {kind} ({why})")


def decide(ctx: PlanContext, regional: Image) -> tuple[Status, str] | None:
    """The status the directives give ``regional`` and why (``checksum listed`` or
    ``'any'``); None when no directive applies."""
    hashes = {h for h in (regional.checksum, regional.os_hash_value) if h}
    t = ctx.target
    own = ctx.own(regional)
    ordered: list[tuple[frozenset[str], bool, Status]] = [
        (t.dontupdate, True, Status.OK_STALLED_CHECKSUM),
        (t.rename, True, Status.PENDING_RENAME),
        (t.replace, True, Status.PENDING_REPLACE),
        (t.dontupdate, False, Status.OK_STALLED_CHECKSUM),
        (t.rename, False, Status.PENDING_RENAME),
        (t.replace, False, Status.PENDING_REPLACE),
    ]
    for directive, explicit, status in ordered:
        if (hashes & directive) if explicit else (ANY in directive):
            if not own and status is Status.PENDING_RENAME:
                continue
            if not own and status is Status.PENDING_REPLACE and not explicit:
                continue
            return status, "checksum listed" if explicit else "'any'"
    return None


def unresolved(ctx: PlanContext, master: Image, regional: Image) -> str:
    """Why no directive applies to ``regional`` and what the operator can do."""
    checksum = regional.checksum or regional.os_hash_value
    if content_hash(master) is None:
        reason = (f"the master image has no checksum: regional image {regional.id}"
                  " cannot be compared with it (list 'any' in rename or replace"
                  " for a verified copy, or in dontupdate to keep it)")
    elif checksum is None:
        reason = (f"regional image {regional.id} has no checksum: its content"
                  " cannot be compared with the master's (list 'any' in rename or"
                  " replace for a verified copy, or in dontupdate to keep it)")
    else:
        reason = (f"regional checksum {checksum} differs from master's and has no"
                  " directive (list it in rename, replace or dontupdate)")
    if not ctx.own(regional):
        reason += (f" (owned by project {regional.owner}: only an explicit "
                   "checksum in replace allows changing it)")
    return reason
