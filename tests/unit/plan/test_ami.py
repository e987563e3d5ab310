"""glancesync.plan.ami: kernel and ramdisk ids translated; the order of operations."""
from __future__ import annotations

from glancesync.plan import ami, matching
from glancesync.plan.context import Phase
from glancesync.plan.model import Operation, OperationKind, Status

from tests.unit.plan.builders import context, m, r


def classified(masters, regional, **policy):
    ctx = context(masters, regional, **policy)
    matching.match_regional(ctx)
    matching.classify_synchronised(ctx)
    return ctx


def test_a_kernel_already_in_the_region_gives_its_regional_id():
    ctx = classified([m("k"), m("vm", kernel_id="m-k")], [r("k")])
    ami.resolve(ctx)
    assert ctx.ops["vm"].changes["properties"]["kernel_id"] == "r-k-c1"
    assert ctx.ops["vm"].ami_refs == {}


def test_an_image_waits_for_its_pending_kernel():
    ctx = classified([m("k"), m("vm", kernel_id="m-k")], [])
    ami.resolve(ctx)
    assert ctx.ops["vm"].ami_refs == {"kernel_id": "k"}
    assert ctx.statuses["vm"].status is Status.PENDING_AMI
    assert ctx.statuses["vm"].reason == "pending_upload after k"


def test_a_kernel_that_is_not_synchronised_is_error_ami_and_drops_the_operation():
    ctx = classified([m("vm", kernel_id="m-gone")], [])
    ami.resolve(ctx)
    assert ctx.statuses["vm"].status is Status.ERROR_AMI and "vm" not in ctx.ops
    known, waiting, error = ami.references(ctx, {"kernel_id": "m-gone"})
    assert error == "kernel_id m-gone is not a synchronised master image"


def test_an_existing_copy_gets_its_wrong_kernel_id_corrected():
    ctx = classified([m("k"), m("vm", kernel_id="m-k")],
                     [r("k"), r("vm", properties={"kernel_id": "stale"})])
    ami.resolve(ctx)
    assert ctx.ops["vm"].changes == {"kernel_id": "r-k-c1"}
    assert ctx.statuses["vm"].status is Status.PENDING_METADATA


def test_uploads_are_smallest_first_but_kernels_before_their_users():
    big_kernel = Operation(OperationKind.UPLOAD, "k", size=100)
    small_vm = Operation(OperationKind.UPLOAD, "vm", size=1, ami_refs={"kernel_id": "k"})
    other = Operation(OperationKind.UPLOAD, "z", size=50)
    assert [op.name for op in ami.order_uploads([other, small_vm, big_kernel])] == [
        "k", "vm", "z"]


def test_order_puts_metadata_updates_first_and_uploads_with_what_waits_for_them():
    ctx = classified([m("k"), m("vm", kernel_id="m-k"), m("a", type="x")], [r("a")])
    ami.resolve(ctx)
    ami.order(ctx)
    plan = ctx.finish()
    assert [(op.kind, op.name) for op in plan.operations] == [
        (OperationKind.UPDATE_METADATA, "a"), (OperationKind.UPLOAD, "k"),
        (OperationKind.UPLOAD, "vm")]
    assert Phase.METADATA < Phase.UPLOAD
