"""glancesync.plan.metadata: what a copy carries, members, adoption, deactivated copies."""
from __future__ import annotations

from glancesync.image import MARK_ORPHANED, MARK_RETIRED, PROVENANCE_IMAGE_ID
from glancesync.plan import metadata
from glancesync.plan.model import OperationKind, Status

from tests.unit.plan.builders import context, m, r


def test_metadata_set_limits_the_compared_properties_and_removes_what_the_master_lacks():
    master = m("a", type="x", os="linux")
    regional = r("a", properties={"type": "y", "extra": "kept", "os": "linux", "flavor": "z"})
    ctx = context(metadata_set=frozenset({"type", "flavor"}))
    changes, remove = metadata.diff(ctx, master, regional)
    assert changes == {"type": "x"} and remove == ["flavor"]


def test_every_user_property_is_compared_without_metadata_set_but_ami_ids():
    master = m("a", type="x", kernel_id="m-k")
    regional = r("a", properties={"extra": "y"})
    assert metadata.managed_properties(context(), master, regional) == {"type", "extra"}


def test_compare_plans_an_update_with_its_reason_or_says_ok():
    master, regional = m("a", type="x"), r("a", tags=["old"])
    ctx = context([master], [regional])
    metadata.compare(ctx, "a", master, regional, Status.OK)
    status, op = ctx.statuses["a"], ctx.ops["a"]
    assert status.status is Status.PENDING_METADATA
    assert status.reason == "metadata differs: type; tags differ: -old"
    assert op.kind is OperationKind.UPDATE_METADATA and op.changes["type"] == "x"
    ctx = context([master], [r("a", properties={"type": "x"})])
    metadata.compare(ctx, "a", master, ctx.regional[0], Status.OK)
    assert ctx.statuses["a"].status is Status.OK and ctx.ops == {}


def test_a_copy_without_provenance_is_adopted_and_lifecycle_marks_leave():
    master, regional = m("a"), r("a", provenance=None, marks={MARK_ORPHANED: "x"})
    ctx = context([master], [regional])
    adopted = metadata.adoption(ctx, master, regional)
    assert adopted[PROVENANCE_IMAGE_ID] == "m-a"
    assert metadata.back_marks(regional) == [MARK_ORPHANED]
    metadata.compare(ctx, "a", master, regional, Status.OK)
    assert "record provenance" in ctx.statuses["a"].reason
    assert ctx.ops["a"].remove == (MARK_ORPHANED,)
    assert metadata.adoption(ctx, master, r("a", owner="another", provenance=None)) == {}


def test_deactivated_copies_report_keep_or_reactivate():
    master = m("a")
    for policy, expected in (("report", Status.ERROR_DEACTIVATED), ("keep", Status.OK_DEACTIVATED),
                             ("reactivate", Status.PENDING_REACTIVATE)):
        regional = r("a", status="deactivated")
        ctx = context([master], [regional], deactivated_copies=policy)
        metadata.deactivated_copy(ctx, "a", master, regional)
        assert ctx.statuses["a"].status is expected, policy


def test_a_copy_deactivated_by_the_lifecycle_is_reactivated_whatever_the_policy():
    master = m("a")
    regional = r("a", status="deactivated", marks={MARK_RETIRED: "deactivate"})
    ctx = context([master], [regional], deactivated_copies="report")
    metadata.deactivated_copy(ctx, "a", master, regional)
    assert ctx.ops["a"].kind is OperationKind.REACTIVATE
    assert ctx.ops["a"].remove == (MARK_RETIRED,)


def test_upload_fields_set_signature_properties_late_or_drop_them():
    master = m("a", img_signature="sig", type="x")
    master.protected = True
    fields = metadata.upload_fields(context(), master)
    assert fields["properties"] == {"type": "x"}
    assert fields["late_properties"] == {"img_signature": "sig"}
    assert fields["protected"] is True and fields["disk_format"] == "qcow2"
    fields = metadata.upload_fields(context(signature_properties="drop"), master)
    assert fields["properties"] == {"type": "x"} and fields["late_properties"] == {}


def test_members_are_mapped_compared_and_named_by_their_master_label():
    master = m("a", visibility="shared")
    master.members = ("mp1", "mp2")
    regional = r("a", visibility="shared", members=("rp-gone",))
    ctx = context([master], [regional], sync_members=True,
                  members={"mp1": ("one", "rp1"), "mp2": ("two", None)})
    assert metadata.wanted_members(ctx, master) == (("rp1",), ["two"])
    assert metadata.member_diff(ctx, master, regional) == (("rp1",), ("rp-gone",))
    assert metadata.member_label(ctx, "rp1") == "one"
    metadata.compare(ctx, "a", master, regional, Status.OK)
    assert "members differ: +one -rp-gone" in ctx.statuses["a"].reason
    assert "not shared with two" in ctx.statuses["a"].reason
