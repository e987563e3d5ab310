"""glancesync.plan.uploads: a new copy's status, operation, transfer and provenance."""
from __future__ import annotations

import logging

from glancesync.plan import uploads
from glancesync.plan.model import OperationKind, Status
from glancesync.strategy import RegionTransfer

from tests.unit.plan.builders import MASTER_REGION, context, m, r


def test_a_new_copy_carries_its_fields_provenance_and_transfer():
    master = m("a", type="x")
    ctx = context([master])
    uploads.upload(ctx, OperationKind.UPLOAD, Status.PENDING_UPLOAD, "a", master, None,
                   "missing in the region")
    status, op = ctx.statuses["a"], ctx.ops["a"]
    assert (status.status, status.transfer) == (Status.PENDING_UPLOAD, "stream")
    assert status.reason.startswith("missing in the region; ")
    assert op.kind is OperationKind.UPLOAD and op.size == 10 and op.regional is None
    assert op.changes["properties"] == {"type": "x"}
    assert op.provenance.master_image_id == "m-a"
    assert op.provenance.master_region == MASTER_REGION
    assert op.provenance.master_hash == "md5:c1" and op.provenance.copied_at is None
    assert op.transfer.strategy.value == "stream"


def test_a_replacement_keeps_the_image_it_replaces():
    master, old = m("a"), r("a", "c2")
    ctx = context([master], [old])
    uploads.upload(ctx, OperationKind.REPLACE, Status.PENDING_REPLACE, "a", master, old, "x")
    assert ctx.ops["a"].regional is old and ctx.statuses["a"].regional_id == old.id


def test_a_server_side_copy_asked_for_but_impossible_is_streamed_with_a_warning():
    master = m("a")
    ctx = context([master], transfer=RegionTransfer("glance-download"))
    uploads.upload(ctx, OperationKind.UPLOAD, Status.PENDING_UPLOAD, "a", master, None, "x")
    assert ctx.statuses["a"].transfer == "stream"
    assert ctx.warnings and "glance-download is not possible" in ctx.warnings[0]


def test_a_new_copy_is_shared_with_the_mapped_projects_and_the_rest_reported():
    master = m("a", visibility="shared")
    master.members = ("mp1", "mp2")
    ctx = context([master], sync_members=True,
                  members={"mp1": ("one", "rp1"), "mp2": ("two", None)})
    uploads.upload(ctx, OperationKind.UPLOAD, Status.PENDING_UPLOAD, "a", master, None, "x")
    assert ctx.ops["a"].add_members == ("rp1",)
    assert ctx.warnings == ["image a: not shared with two: no project of that name and domain"
                            " in the region"]


def test_a_name_too_long_for_glance_is_an_error_and_nothing_is_uploaded():
    name = "n" * 256
    master, old = m(name), r(name, "c0")
    ctx = context([master], [old])
    uploads.upload(ctx, OperationKind.REPLACE, Status.PENDING_REPLACE, name, master, old,
                   "content differs")
    status = ctx.statuses[name]
    reason = ("content differs, but the name " + "n" * 40 + "... would have 256 characters,"
              " more than the 255 Glance accepts: nothing uploaded")
    assert (status.status, status.name, status.master_id, status.regional_id, status.reason) \
        == (Status.ERROR_NAME, name, master.id, old.id, reason)
    assert ctx.ops == {} and ctx.warnings == [f"image {name}: {reason}"]


def test_auto_falling_back_to_streaming_is_logged_only(caplog):
    master = m("a", size=None)
    ctx = context([master], transfer=RegionTransfer("auto", region="RegionA"))
    with caplog.at_level(logging.INFO, logger="glancesync.plan"):
        uploads.upload(ctx, OperationKind.UPLOAD, Status.PENDING_UPLOAD, "a", master, None, "x")
    assert ctx.warnings == []
    assert [r.getMessage() for r in caplog.records] == [
        "RegionA: image a is streamed: RegionA is not in the master's Keystone"]
    status, op = ctx.statuses["a"], ctx.ops["a"]
    assert (status.master_id, status.regional_id, status.transfer) == ("m-a", None, "stream")
    assert op.size == 0 and op.master is master
