"""glancesync.plan.matching: regional images matched by name and content, classified."""
from __future__ import annotations

import pytest

from glancesync.image import Provenance
from glancesync.plan import matching
from glancesync.plan.model import OperationKind, Status

from tests.unit.plan.builders import MASTER_REGION, context, m, matched, r


def test_the_match_prefers_the_master_s_content_then_the_project_s_image():
    other_content = r("a", "c2", id_="r1", created_at="2000-01-01")
    theirs = r("a", id_="r2", owner="another", provenance=None)
    mine = r("a", id_="r3")
    ctx = matched(context([m("a")], [other_content, theirs, mine], only_tenant_images=False))
    assert ctx.match["a"] is mine
    assert ctx.warnings == ["3 images named 'a' (r3, r2, r1); using r3"]


def test_other_projects_images_are_not_matched_with_only_tenant_images():
    ctx = matched(context([m("a")], [r("a", owner="another")]))
    assert ctx.match == {}


def test_a_master_without_hash_has_the_same_content_as_our_verified_copy_only():
    master = m("a", checksum=None, size=10)
    record = Provenance("m-a", MASTER_REGION, "md5:c9")
    copy = r("a", "c9", provenance=record)
    ctx = context([master])
    assert matching.same_content(ctx, master, copy)
    copy.size = 11
    assert not matching.same_content(ctx, master, copy)
    assert not matching.same_content(ctx, master, r("a", "c9", provenance=None))


def test_classify_a_missing_image_plans_an_upload():
    ctx = matched(context([m("a")]))
    matching.classify(ctx, "a", ctx.synced["a"])
    assert ctx.statuses["a"].status is Status.PENDING_UPLOAD
    assert ctx.ops["a"].kind is OperationKind.UPLOAD


def test_classify_different_content_without_directive_is_an_error():
    ctx = matched(context([m("a")], [r("a", "c2")]))
    matching.classify(ctx, "a", ctx.synced["a"])
    assert ctx.statuses["a"].status is Status.ERROR_CHECKSUM and "a" not in ctx.ops


def test_classify_another_project_s_copy_with_the_content_is_ok_unmanaged():
    ctx = matched(context([m("a", type="x")], [r("a", owner="another")],
                          only_tenant_images=False))
    matching.classify(ctx, "a", ctx.synced["a"])
    status = ctx.statuses["a"]
    assert status.status is Status.OK and "metadata not managed" in status.reason


def test_classify_a_master_without_hash_is_unverifiable_by_default():
    ctx = matched(context([m("a", checksum=None)]))
    matching.classify(ctx, "a", ctx.synced["a"])
    assert ctx.statuses["a"].status is Status.ERROR_UNVERIFIABLE
    ctx = matched(context([m("a", checksum=None)], sync_without_checksum=True))
    matching.classify(ctx, "a", ctx.synced["a"])
    assert ctx.statuses["a"].status is Status.PENDING_UPLOAD


def test_classify_a_deactivated_copy_follows_deactivated_copies():
    ctx = matched(context([m("a")], [r("a", status="deactivated")]))
    matching.classify(ctx, "a", ctx.synced["a"])
    assert ctx.statuses["a"].status is Status.ERROR_DEACTIVATED


def test_classify_synchronised_covers_every_selected_name():
    ctx = matched(context([m("b"), m("a"), m("p", visibility="private")], [r("a")]))
    matching.classify_synchronised(ctx)
    assert sorted(ctx.statuses) == ["a", "b"]


def test_a_master_name_of_several_images_is_error_duplicate_where_it_would_go():
    ctx = context([m("a", id_="m1"), m("a", id_="m2"), m("p", id_="m3", visibility="private"),
                   m("p", id_="m4", visibility="private")], [r("a")])
    matching.classify_duplicates(ctx)
    assert list(ctx.statuses) == ["a"]  # the private name reaches no region
    assert ctx.statuses["a"].status is Status.ERROR_DUPLICATE
    assert ctx.statuses["a"].regional_id == "r-a-c1"
    assert "used by 2 images (m1, m2)" in ctx.warnings[-1]


def test_a_deactivated_master_image_is_reported_only():
    ctx = context([m("a", status="deactivated")], [r("a")])
    matching.master_deactivated(ctx)
    assert ctx.statuses["a"].status is Status.INFO_MASTER_DEACTIVATED
    assert ctx.ops == {}


def test_two_copies_of_one_master_image_made_by_us_need_an_operator():
    ctx = context([m("a")], [r("a", id_="r1"), r("a", id_="r2")])
    matching.report_own_duplicates(ctx)
    (warning,) = ctx.warnings
    assert warning.startswith("2 copies of master image m-a (from Master) made by GlanceSync")


def test_two_images_of_a_synchronised_name_are_never_ok():
    """Issue 23 case 3: the compared copy is in sync, another image has the name."""
    ctx = context([m("a")], [r("a", id_="r1"), r("a", "c2", id_="r2")])
    for step in (matching.match_regional, matching.classify_synchronised,
                 matching.report_regional_duplicates):
        step(ctx)
    line = ctx.statuses["a"]
    assert line.status is Status.ERROR_REGIONAL_DUPLICATE and "r2" in line.reason


def test_only_our_own_recorded_copy_may_relay_server_side_copies():
    """Issue 21, case 5: another project's image with the master's bytes is ``ok``
    but never a relay (Glance would copy its properties); nor is an image of ours
    without a record of this master content, nor a deactivated copy."""
    for regional, relays in [
            (r("a", owner="another"), {}),
            (r("a", owner="another", provenance=Provenance("m-a", MASTER_REGION, "md5:c1")),
             {}),
            (r("a", provenance=None), {}),
            (r("a", provenance=Provenance("m-a", "ElseWhere", "md5:c1")), {}),
            (r("a", status="deactivated"), {}),
            (r("a", id_="mine"), {"m-a": "mine"})]:
        ctx = matched(context([m("a")], [regional], only_tenant_images=False))
        matching.classify(ctx, "a", ctx.synced["a"])
        assert ctx.finish().relays == relays, regional


# -- a copy renamed by hand (issue 23, case 8) ----------------------------------------

def test_a_copy_renamed_by_hand_is_recognised_and_not_uploaded_again():
    renamed = r("a-prod", id_="r1", provenance=Provenance("m-a", MASTER_REGION, "md5:c1"))
    ctx = matched(context([m("a")], [renamed]))
    matching.classify(ctx, "a", ctx.synced["a"])
    status = ctx.statuses["a"]
    assert status.status is Status.INFO_RENAMED and status.regional_id == "r1"
    assert "named 'a-prod' in the region" in status.reason
    assert "not uploaded again" in status.reason
    assert "a" not in ctx.ops


def test_renamed_copies_beside_a_copy_of_the_name_are_reported_not_diagnosed_as_lock_trouble():
    record = Provenance("m-a", MASTER_REGION, "md5:c1")
    ctx = context([m("a")], [r("a", id_="r0"), r("a-prod", id_="r1", provenance=record)])
    matching.report_own_duplicates(ctx)
    assert ctx.warnings == []
    matched(ctx)
    matching.classify(ctx, "a", ctx.synced["a"])
    assert ctx.statuses["a"].status is Status.OK
    plan = ctx.finish()
    (line,) = [s for s in plan.statuses if s.status is Status.INFO_RENAMED]
    assert line.regional_id == "r1" and "another copy" in line.reason


@pytest.mark.parametrize("renamed, why", [
    (r("a-prod", "c2", id_="r1", provenance=Provenance("m-a", MASTER_REGION, "md5:c2")),
     "other content"),
    (r("a-prod", id_="r1", provenance=Provenance("m-a", "Elsewhere", "md5:c1")),
     "another master region"),
    (r("a-prod", id_="r1", owner="another", provenance=Provenance("m-a", MASTER_REGION,
                                                                   "md5:c1")),
     "another project's"),
    (r("a.old", id_="r1", provenance=Provenance("m-a", MASTER_REGION, "md5:c1"),
       marks={"glancesync.renamed_at": "2029-01-01T00:00:00Z"}), "GlanceSync's own rename"),
    (r("a-prod", id_="r1", provenance=None), "no provenance"),
])
def test_only_our_copies_of_the_master_content_count_as_renamed(renamed, why):
    ctx = matched(context([m("a")], [renamed]))
    matching.classify(ctx, "a", ctx.synced["a"])
    assert ctx.statuses["a"].status is Status.PENDING_UPLOAD, why
