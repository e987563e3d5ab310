"""Planning concern: AMI references, and the order of a region's operations (SPEC section 5).

``kernel_id`` and ``ramdisk_id`` of a master image name master UUIDs; in a
region they must name the regional copies of the same images. A copy
whose kernel or ramdisk is already in the region gets its regional id; one
whose kernel or ramdisk is pending itself waits for it (``pending_ami``,
the executor fills the new id in); one whose kernel or ramdisk is not
synchronised, or in an error status, is ``error_ami`` and nothing is
done. Then the order: metadata updates first, then uploads smallest first,
every kernel and ramdisk before the images using it, whatever their sizes.
"""
from __future__ import annotations

from glancesync.image import AMI_PROPERTIES, Image
from glancesync.plan.context import Phase, PlanContext, reason_keys
from glancesync.plan.model import CONTENT_PENDING, CONTENT_SAME, Operation, OperationKind, Status

#: Statuses of an image whose AMI references are not looked at: nothing is
#: done to it anyway.
_UNTOUCHED = frozenset({Status.ERROR_CHECKSUM, Status.OK_STALLED_CHECKSUM,
                        Status.ERROR_DEACTIVATED, Status.ERROR_UNVERIFIABLE})


def resolve(ctx: PlanContext) -> None:
    """Translate the kernel and ramdisk ids of every synchronised image that has any."""
    for name in sorted(ctx.synced):
        master = ctx.synced[name]
        refs = {key: master.properties[key] for key in AMI_PROPERTIES
                if master.properties.get(key)}
        if not refs:
            continue
        current = ctx.statuses[name]
        if current.status in _UNTOUCHED:
            continue
        if not ctx.match.get(name) or ctx.own(ctx.match[name]) or \
                current.status in CONTENT_PENDING:
            translate(ctx, name, master, refs)


def references(ctx: PlanContext, refs: dict[str, str]
               ) -> tuple[dict[str, str], dict[str, str], str | None]:
    """Where the master ids of ``refs`` (``kernel_id`` -> master id) are in the region.

    Returns the regional ids already known, the names of the images to
    wait for (both by key), and the error that makes the image
    ``error_ami`` (None when there is none).
    """
    known: dict[str, str] = {}
    waiting: dict[str, str] = {}
    for key, master_ref in refs.items():
        used = ctx.synced_by_id.get(master_ref)
        if used is None:
            return known, waiting, f"{key} {master_ref} is not a synchronised master image"
        used_status = ctx.statuses[used.name]
        if used_status.status in CONTENT_PENDING or used_status.status is Status.PENDING_AMI:
            waiting[key] = used.name
        elif used_status.status in CONTENT_SAME:
            known[key] = used_status.regional_id
        else:
            return known, waiting, f"{key} image {used.name} is {used_status.status.value}"
    return known, waiting, None


def translate(ctx: PlanContext, name: str, master: Image, refs: dict[str, str]) -> None:
    """Give the copy (new or existing) of ``name`` its regional kernel and ramdisk ids."""
    current = ctx.statuses[name]
    op = ctx.ops.get(name)
    regional = ctx.match.get(name)
    known, waiting, error = references(ctx, refs)
    if error is not None:
        error_ami(ctx, name, master, regional, error)
        return
    after = ", ".join(sorted(set(waiting.values())))
    if op is not None and op.uploads:
        op.changes["properties"].update(known)
        op.ami_refs = waiting
        if waiting:
            ctx.set_status(Status.PENDING_AMI, name, master, regional,
                           f"{current.status.value} after {after}")
            ctx.statuses[name].transfer = current.transfer
        return
    # The regional image exists with the right content: compare the ids.
    assert regional is not None
    wrong = {k: v for k, v in known.items() if regional.properties.get(k) != v}
    if not wrong and not waiting:
        return
    if op is None:
        op = Operation(OperationKind.UPDATE_METADATA, name, master=master, regional=regional)
        ctx.ops[name] = op
    op.changes.update(wrong)
    op.ami_refs = waiting
    if waiting:
        ctx.set_status(Status.PENDING_AMI, name, master, regional, f"update after {after}")
    elif current.status is not Status.PENDING_REACTIVATE:
        keys = reason_keys(op.changes) + reason_keys(op.remove)
        ctx.set_status(Status.PENDING_METADATA, name, master, regional,
                       f"metadata differs: {', '.join(keys)}")


def error_ami(ctx: PlanContext, name: str, master: Image, regional: Image | None,
              reason: str) -> None:
    """``error_ami``: the image's operation is dropped, an operator must act."""
    ctx.set_status(Status.ERROR_AMI, name, master, regional, reason)
    ctx.ops.pop(name, None)
    ctx.needs_operator(f"image {name}: {reason}")


def order(ctx: PlanContext) -> None:
    """The operations of the synchronised images, in their phases: metadata updates
    that wait for nothing first (by name), then uploads and what waits for them."""
    metadata_ops = [ctx.ops[n] for n in sorted(ctx.ops)
                    if not ctx.ops[n].uploads and not ctx.ops[n].ami_refs]
    first = {id(op) for op in metadata_ops}
    ctx.add(Phase.METADATA, metadata_ops)
    ctx.add(Phase.UPLOAD, order_uploads([op for op in ctx.ops.values() if id(op) not in first]))


def order_uploads(ops: list[Operation]) -> list[Operation]:
    """Smallest first, but every kernel/ramdisk before the images using it."""
    by_name = {op.name: op for op in ops}
    ordered: list[Operation] = []
    done: set[str] = set()

    def emit(op: Operation, stack: tuple[str, ...]) -> None:
        if op.name in done or op.name in stack:
            return
        for dep in sorted(set(op.ami_refs.values()),
                          key=lambda n: (by_name[n].size if n in by_name else 0, n)):
            if dep in by_name:
                emit(by_name[dep], stack + (op.name,))
        done.add(op.name)
        ordered.append(op)

    for op in sorted(ops, key=lambda o: (o.size if o.uploads else 0, o.name)):
        emit(op, ())
    return ordered
