"""Planning concern: a new copy of a master image (SPEC section 5).

An image missing in the region, or whose content a ``rename`` or
``replace`` directive lets sync change, gets a new copy: its status, its
upload operation (every field and property it carries, the members it is
shared with, the provenance record it gets) and how its data travels
(the region's :class:`~glancesync.strategy.RegionTransfer` chooses stream
or a server-side copy, and the disk format).
"""
from __future__ import annotations

from glancesync.image import Image, Provenance
from glancesync.plan import metadata
from glancesync.plan.context import LOG, PlanContext
from glancesync.plan.model import Operation, OperationKind, Status, name_problem
from glancesync.strategy import Strategy


def upload(ctx: PlanContext, kind: OperationKind, status: Status, name: str, master: Image,
           regional: Image | None, reason: str) -> None:
    """Plan a new copy of ``master``: its status, its operation and its transfer.

    A ``glance-download`` asked for but not possible is a warning (the copy
    is streamed); ``auto`` falling back to streaming is logged only.
    """
    problem = name_problem(name)
    if problem is not None:
        reason = f"{reason}, but {problem}: nothing uploaded"
        ctx.set_status(Status.ERROR_NAME, name, master, regional, reason)
        ctx.needs_operator(f"image {name}: {reason}")
        return
    transfer = ctx.transfer.choose(master)
    if transfer.note and ctx.transfer.transfer == Strategy.GLANCE_DOWNLOAD.value:
        ctx.warn(f"image {name}: transfer = {Strategy.GLANCE_DOWNLOAD} is not possible, "
                 f"streamed instead: {transfer.note}")
    elif transfer.note:
        LOG.info("%s: image %s is streamed: %s", ctx.region, name, transfer.note)
    ctx.set_status(status, name, master, regional, f"{reason}; {transfer.describe()}")
    ctx.statuses[name].transfer = transfer.strategy.value
    ctx.ops[name] = Operation(kind, name, master=master, regional=regional,
                              size=master.size or 0,
                              changes=metadata.upload_fields(ctx, master),
                              provenance=provenance(ctx, master),
                              add_members=metadata.wanted_members(ctx, master)[0],
                              transfer=transfer)
    metadata.report_unmapped(ctx, name, master)


def provenance(ctx: PlanContext, master: Image) -> Provenance:
    """The record a new copy of ``master`` carries."""
    return Provenance.of(master, ctx.master.region)
