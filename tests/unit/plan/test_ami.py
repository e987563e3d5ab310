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


def _line(ctx, name):
    s = ctx.statuses[name]
    return s.status, s.master_id, s.regional_id, s.reason


def test_an_error_ami_names_the_master_and_the_copy_and_drops_only_its_operation():
    vm = r("vm", properties={"kernel_id": "x"})
    ctx = classified([m("vm", kernel_id="m-gone", type="t")], [vm])
    assert "vm" in ctx.ops
    ami.resolve(ctx)
    reason = "kernel_id m-gone is not a synchronised master image"
    assert _line(ctx, "vm") == (Status.ERROR_AMI, "m-vm", vm.id, reason)
    assert ctx.ops == {} and ctx.warnings == [f"image vm: {reason}"]
    ctx = context([m("vm")])
    ctx.set_status(Status.OK, "vm", m("vm"), None, "")
    ami.error_ami(ctx, "vm", m("vm"), None, "no operation to drop")
    assert ctx.statuses["vm"].status is Status.ERROR_AMI


def test_a_new_copy_waiting_for_its_kernel_and_ramdisk_keeps_its_transfer():
    ctx = classified([m("k"), m("rd"), m("vm", kernel_id="m-k", ramdisk_id="m-rd")], [])
    ami.resolve(ctx)
    assert _line(ctx, "vm") == (Status.PENDING_AMI, "m-vm", None,
                                "pending_upload after k, rd")
    assert ctx.statuses["vm"].transfer == "stream"


def test_an_existing_copy_waits_for_a_new_kernel_in_a_metadata_update():
    vm = r("vm", properties={"kernel_id": "stale"})
    ctx = classified([m("k"), m("rd"), m("vm", kernel_id="m-k", ramdisk_id="m-rd")], [vm])
    ami.resolve(ctx)
    op = ctx.ops["vm"]
    assert (op.kind, op.master, op.regional, op.ami_refs) == (
        OperationKind.UPDATE_METADATA, ctx.synced["vm"], vm,
        {"kernel_id": "k", "ramdisk_id": "rd"})
    assert _line(ctx, "vm") == (Status.PENDING_AMI, "m-vm", vm.id, "update after k, rd")


def test_an_existing_copy_s_wrong_ids_are_named_in_its_status():
    vm = r("vm", properties={"kernel_id": "stale", "ramdisk_id": "stale"})
    ctx = classified([m("k"), m("rd"), m("vm", kernel_id="m-k", ramdisk_id="m-rd")],
                     [r("k"), r("rd"), vm])
    ami.resolve(ctx)
    assert ctx.ops["vm"].master is ctx.synced["vm"] and ctx.ops["vm"].regional is vm
    assert _line(ctx, "vm") == (Status.PENDING_METADATA, "m-vm", vm.id,
                                "metadata differs: kernel_id, ramdisk_id")


def test_images_left_untouched_are_skipped_and_the_next_ones_translated():
    # "a" differs with no directive (error_checksum): its references are not looked at.
    ctx = classified([m("a", "c9", kernel_id="m-gone"), m("k"), m("vm", kernel_id="m-k")],
                     [r("a", "c1"), r("k")])
    ami.resolve(ctx)
    assert ctx.statuses["a"].status is Status.ERROR_CHECKSUM
    assert ctx.ops["vm"].changes["properties"]["kernel_id"] == "r-k-c1"


def test_another_project_s_copy_is_corrected_only_when_it_is_replaced():
    theirs = r("vm", owner="another", properties={"kernel_id": "stale"})
    ctx = classified([m("k"), m("vm", kernel_id="m-k")], [r("k"), theirs],
                     only_tenant_images=False)
    ami.resolve(ctx)
    assert "vm" not in ctx.ops  # never a metadata update on another project's image
    theirs = r("vm", "c0", owner="another")
    ctx = classified([m("k"), m("vm", kernel_id="m-k")], [r("k"), theirs],
                     only_tenant_images=False, replace=frozenset({"c0"}))
    ami.resolve(ctx)
    assert ctx.ops["vm"].kind is OperationKind.REPLACE
    assert ctx.ops["vm"].changes["properties"]["kernel_id"] == "r-k-c1"


def test_a_kernel_not_in_the_uploads_is_not_waited_for():
    vm = Operation(OperationKind.UPLOAD, "vm", size=5, ami_refs={"kernel_id": "gone"})
    assert ami.order_uploads([vm]) == [vm]


def test_operations_other_than_uploads_count_as_size_0():
    waiting = Operation(OperationKind.UPDATE_METADATA, "b", size=100,
                        ami_refs={"kernel_id": "k"})
    small = Operation(OperationKind.UPLOAD, "a", size=1)
    assert [op.name for op in ami.order_uploads([small, waiting])] == ["b", "a"]


def test_a_replacement_waiting_for_its_kernel_still_names_the_copy_it_replaces():
    old = r("vm", "c0")
    ctx = classified([m("k"), m("vm", kernel_id="m-k")], [old], replace=frozenset({"any"}))
    ami.resolve(ctx)
    assert _line(ctx, "vm")[:3] == (Status.PENDING_AMI, "m-vm", old.id)
