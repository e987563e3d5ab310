"""Planning concern: copies ``validate_command`` refused, or did not finish with.

A new copy is made with the mark ``glancesync.validation = pending`` and
published only when the region's ``validate_command`` accepts it
(``passed``); a refused one stays private, marked ``failed``, with the
command's last lines (:mod:`glancesync.executor.validation`). Such a copy
is never taken for the regional copy of its name (it would be published
by a metadata update): :func:`set_aside` removes it from matching and
:func:`report` gives the name the status ``error_validation`` and no new
upload (every run would make and refuse the same copy), while the
previous copy stays in service. An operator deletes the refused copy to
have a new one made and validated at the next run (or removes its mark
to accept it as it is). A copy marked ``pending`` was left by a run that
stopped during validation: the same.

Marked copies of an earlier master image are given back to the
lifecycle (``removal_policy`` may retire them) and named in a warning.
"""
from __future__ import annotations

from glancesync.plan.context import PlanContext
from glancesync.plan.model import Status

#: The marks of a validation on a regional copy (never user properties).
MARK_VALIDATION = "glancesync.validation"  #: pending, passed or failed
MARK_VALIDATED = "glancesync.validated_at"  #: when the command accepted the copy (UTC)
MARK_VALIDATION_OUTPUT = "glancesync.validation_output"  #: its last lines (failed only)
PENDING, PASSED, FAILED = "pending", "passed", "failed"


def set_aside(ctx: PlanContext) -> None:
    """Keep the project's copies refused or not yet accepted out of matching."""
    keep, ctx.aside = [], []
    for image in ctx.regional:
        unaccepted = image.marks.get(MARK_VALIDATION) in (PENDING, FAILED)
        (ctx.aside if unaccepted and ctx.own(image) else keep).append(image)
    ctx.regional = keep


def report(ctx: PlanContext) -> None:
    """``error_validation`` for a name whose master image has a refused copy; the
    copies set aside go back to the region's images (for the later steps)."""
    for image in sorted(ctx.aside, key=lambda i: (i.name or "", i.id)):
        record = image.provenance
        master = ctx.synced.get(image.name or "")
        if master is None or record is None or record.master_image_id != master.id:
            ctx.warn(f"image {image.name} ({image.id}): a copy validate_command did not"
                     f" accept ({image.marks[MARK_VALIDATION]}) of an earlier master image;"
                     " delete it when it is of no more use")
            continue
        op = ctx.ops.get(image.name)
        if op is not None and op.uploads:
            del ctx.ops[image.name]
        in_service = ctx.match.get(image.name)
        why = ("refused by validate_command" if image.marks[MARK_VALIDATION] == FAILED
               else "left unvalidated by an interrupted run")
        reason = f"new copy {image.id} {why}; it stays private"
        output = image.marks.get(MARK_VALIDATION_OUTPUT)
        if output:
            reason += f" (last lines: {output})"
        reason += (f"; copy {in_service.id} stays in service" if in_service is not None
                   else "; no copy in service")
        reason += "; delete the new copy to have another made and validated"
        ctx.set_status(Status.ERROR_VALIDATION, image.name, master, image, reason)
        ctx.needs_operator(f"image {image.name}: {reason}")
    ctx.regional = [*ctx.regional, *ctx.aside]
    if ctx.target.validate_command:
        for name, op in ctx.ops.items():
            status = ctx.statuses.get(name)
            if op.uploads and status is not None:
                status.reason += "; validate_command checks it before it is published"
