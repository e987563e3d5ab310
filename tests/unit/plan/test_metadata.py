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


def _line(ctx, name="a"):
    s = ctx.statuses[name]
    return s.status, s.master_id, s.regional_id, s.reason


def test_an_adopted_copy_records_the_master_its_region_hash_and_creation_time():
    master = m("a")
    created = r("a", provenance=None, created_at="2029-06-01T10:00:00+02:00")
    assert metadata.adoption(context([master]), master, created) == {
        "glancesync.master_image_id": "m-a", "glancesync.master_region": "Master",
        "glancesync.master_hash": "md5:c1", "glancesync.copied_at": "2029-06-01T08:00:00Z"}
    undated = r("a", provenance=None)
    assert metadata.adoption(context([master]), master, undated) == {
        "glancesync.master_image_id": "m-a", "glancesync.master_region": "Master",
        "glancesync.master_hash": "md5:c1"}


def test_compare_s_reason_operation_and_status_in_full():
    master = m("a", visibility="shared", type="x", os="linux")
    master.members, master.tags = ("mp1", "mp2", "mp3"), ["t1", "t2"]
    regional = r("a", visibility="shared", provenance=None, marks={MARK_ORPHANED: "x"},
                 tags=["t0", "t1"], properties={"extra": "y"})
    ctx = context([master], [regional], sync_members=True, sync_tags=True,
                  members={"mp1": ("one", "rp1"), "mp2": ("two", None)})
    metadata.compare(ctx, "a", master, regional, Status.OK)
    unmapped = "not shared with mp3, two: no project of that name and domain in the region"
    assert _line(ctx) == (Status.PENDING_METADATA, "m-a", regional.id,
                          "metadata differs: os, type, extra; record"
                          " provenance (a copy made before GlanceSync recorded it: same name"
                          " and content as the master image); its master image is back:"
                          " lifecycle marks removed; tags differ: +t2 -t0; members differ:"
                          f" +one; {unmapped}")
    assert ctx.warnings == [f"image a: {unmapped}"]
    op = ctx.ops["a"]
    assert (op.master, op.regional, op.add_members, op.remove_members) == (
        master, regional, ("rp1",), ())


def test_members_to_remove_alone_make_an_update():
    master = m("a", visibility="shared")
    master.members = ("mp1",)
    regional = r("a", visibility="shared", members=("rp1", "rp-gone"))
    ctx = context([master], [regional], sync_members=True, members={"mp1": ("one", "rp1")})
    metadata.compare(ctx, "a", master, regional, Status.OK)
    assert _line(ctx)[3] == "members differ: -rp-gone"
    assert (ctx.ops["a"].add_members, ctx.ops["a"].remove_members) == ((), ("rp-gone",))


def test_unmapped_members_alone_are_an_info_line_and_in_sync_is_an_empty_reason():
    master = m("a", visibility="shared")
    master.members = ("mp1", "mp2")
    regional = r("a", visibility="shared", members=("rp1",))
    ctx = context([master], [regional], sync_members=True,
                  members={"mp1": ("one", "rp1"), "mp2": ("two", None)})
    metadata.compare(ctx, "a", master, regional, Status.OK)
    assert _line(ctx) == (Status.INFO_MEMBERS_UNMAPPED, "m-a", regional.id,
                          "not shared with two: no project of that name and domain in the"
                          " region")
    ctx = context([master], [regional])
    metadata.compare(ctx, "a", master, regional, Status.OK)
    assert _line(ctx) == (Status.OK, "m-a", regional.id, "")


def test_every_deactivated_copy_s_status_in_full():
    master = m("a")

    def outcome(regional, **policy):
        ctx = context([master], [regional], only_tenant_images=False, **policy)
        metadata.deactivated_copy(ctx, "a", master, regional)
        op = ctx.ops.get("a")
        return _line(ctx), (op.kind if op else None), ctx.warnings

    retired = r("a", status="deactivated", marks={MARK_RETIRED: "deactivate"})
    assert outcome(retired) == (
        (Status.PENDING_REACTIVATE, "m-a", retired.id, "deactivated by removal_policy while"
         " its master image was gone: reactivate it; its master image is back: lifecycle"
         " marks removed"), OperationKind.REACTIVATE, [])
    own = r("a", status="deactivated")
    assert outcome(own, deactivated_copies="keep") == (
        (Status.OK_DEACTIVATED, "m-a", own.id, "deactivated copy kept"), None, [])
    theirs = r("a", status="deactivated", owner="another")
    assert outcome(theirs, deactivated_copies="keep") == (
        (Status.OK_DEACTIVATED, "m-a", theirs.id, "deactivated copy kept; owned by project"
         " another, metadata not managed"), None, [])
    assert outcome(own, deactivated_copies="reactivate") == (
        (Status.PENDING_REACTIVATE, "m-a", own.id,
         f"regional copy {own.id} is deactivated: reactivate it"), OperationKind.REACTIVATE, [])
    reason = (f"regional copy {own.id} is deactivated (an operator's decision): reactivate it"
              f" (openstack image set --activate {own.id}) or delete it for a new copy;"
              " deactivated_copies = reactivate or keep decides it for every copy")
    assert outcome(own, deactivated_copies="report") == (
        (Status.ERROR_DEACTIVATED, "m-a", own.id, reason), None, [f"image a: {reason}"])
    assert outcome(theirs, deactivated_copies="reactivate")[0][3] == (
        f"regional copy {theirs.id} is deactivated (an operator's decision): reactivate it"
        f" (openstack image set --activate {theirs.id}) or delete it for a new copy;"
        " deactivated_copies = reactivate or keep decides it for every copy (owned by project"
        " another: GlanceSync never changes it)")


def test_diff_compares_min_disk_os_hidden_and_tags_only_with_sync_tags():
    master = m("a")
    master.min_disk, master.os_hidden, master.tags = 5, True, ["t"]
    regional = r("a", tags=["other"])
    assert metadata.diff(context(sync_tags=False), master, regional) == (
        {"min_disk": 5, "os_hidden": True}, [])
    assert metadata.diff(context(), master, regional)[0]["tags"] == ["t"]


def test_dropped_signatures_leave_the_ami_ids_excluded_too():
    master = m("a", kernel_id="m-k", img_signature="s", type="x")
    assert metadata.managed_properties(context(signature_properties="drop"), master, None) \
        == {"type"}


def test_members_are_compared_only_for_shared_images_with_sync_members():
    shared = m("a", visibility="shared")
    shared.members = ("mp1",)
    private = m("a", visibility="private")
    private.members = ("mp1",)
    regional = r("a", visibility="shared", members=("rp1",))
    mapping = {"mp1": ("one", "rp1")}
    assert metadata.member_diff(context(), shared, regional) == ((), ())
    assert metadata.member_diff(context(sync_members=True, members=mapping), private,
                                regional) == ((), ())
    assert metadata.wanted_members(context(), shared) == ((), [])
    assert metadata.wanted_members(context(sync_members=True, members=mapping), private) \
        == ((), [])
    # A master project the mapping does not know is named by its id.
    unknown = m("a", visibility="shared")
    unknown.members = ("mp9",)
    assert metadata.wanted_members(context(sync_members=True, members=mapping), unknown) \
        == ((), ["mp9"])


def test_upload_fields_in_full():
    master = m("a", type="x")
    master.min_ram, master.min_disk, master.os_hidden, master.tags = None, None, True, ["b", "a"]
    expected = {"visibility": "public", "disk_format": "qcow2", "container_format": "bare",
                "min_ram": 0, "min_disk": 0, "protected": False, "os_hidden": True,
                "tags": [], "properties": {"type": "x"}, "late_properties": {}}
    assert metadata.upload_fields(context(sync_tags=False), master) == expected
    assert metadata.upload_fields(context(), master)["tags"] == ["a", "b"]
