"""Planning concern: leftovers of GlanceSync's own interrupted uploads.

A leftover is a ``queued``, ``saving`` or ``importing`` (a server-side
copy) image of the project that carries the provenance GlanceSync gives
every image it creates (naming a master image of this master region), and
that nothing touched for ``stalled_upload_age`` seconds: it gets a
clean-up (its own ``pending_cleanup`` line, after the line of its name).
Any other image is never touched: an operator's upload in progress,
another tool's image. A protected leftover is only warned about.
"""
from __future__ import annotations

from glancesync.image import Image
from glancesync.plan.context import LOG, Phase, PlanContext, parse_time
from glancesync.plan.model import ImageStatus, Operation, OperationKind, Status


def plan(ctx: PlanContext) -> None:
    """The clean-ups of the region's leftovers, and their lines."""
    ops = []
    for image in sorted(ctx.regional, key=lambda i: (i.name or "", i.id)):
        if image.status not in ("queued", "saving", "importing") or not ctx.own(image):
            continue
        if not made_by_us(ctx, image):
            LOG.debug("%s: %s image %s (%s) was not created by GlanceSync: left alone",
                      ctx.region, image.status, image.name, image.id)
            continue
        unchanged = age(ctx, image)
        if unchanged is None or unchanged < ctx.stalled_upload_age:
            continue
        if image.protected:
            ctx.warn(f"leftover {image.status} image {image.name} ({image.id}) of an "
                     "interrupted upload is protected: left alone (unprotect it to "
                     "let the next sync delete it)")
            continue
        ops.append(Operation(OperationKind.CLEANUP, image.name or image.id, regional=image,
                             provenance=image.provenance))
    for op in ops:
        ctx.add_line(cleanup_status(ctx, op))
    ctx.add(Phase.CLEANUP, ops)


def made_by_us(ctx: PlanContext, image: Image) -> bool:
    """True when ``image`` records a GlanceSync copy of this master region."""
    record = image.provenance
    return (record is not None and bool(record.master_image_id)
            and (ctx.master.region is None
                 or record.master_region in (None, ctx.master.region)))


def age(ctx: PlanContext, image: Image) -> float | None:
    """Seconds since ``image`` last changed (None: unknown)."""
    when = parse_time(image.updated_at) or parse_time(image.created_at)
    return None if when is None else (ctx.now - when).total_seconds()


def cleanup_status(ctx: PlanContext, op: Operation) -> ImageStatus:
    """The status line of a planned clean-up."""
    image = op.regional
    assert image is not None and image.provenance is not None
    unchanged = age(ctx, image) or 0.0
    return ImageStatus(Status.PENDING_CLEANUP, ctx.region, op.name,
                       image.provenance.master_image_id, image.id,
                       f"leftover {image.status} image {image.id} of an interrupted "
                       f"upload by GlanceSync, unchanged for {unchanged:.0f} s: to delete")
