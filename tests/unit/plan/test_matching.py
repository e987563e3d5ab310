"""glancesync.plan.matching: regional images matched by name and content, classified."""
from __future__ import annotations

import pytest

from glancesync.image import Provenance
from glancesync.plan import matching
from glancesync.plan.model import OperationKind, Status

from glancesync.strategy import RegionTransfer

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


def _line(ctx, name="a"):
    s = ctx.statuses[name]
    return s.status, s.master_id, s.regional_id, s.reason


UNVERIFIABLE = ("the master image has no checksum nor os_hash_value: a copy could not be"
                " verified (sync_without_checksum = true copies it, verified by size and by the"
                " hash computed while sending it)")


def test_a_master_without_hash_says_why_and_leaves_the_regional_image():
    regional = r("a", "c5", provenance=None)
    ctx = matched(context([m("a", checksum=None)], [regional]))
    matching.classify(ctx, "a", ctx.synced["a"])
    reason = f"{UNVERIFIABLE}; regional image {regional.id} left as it is"
    assert _line(ctx) == (Status.ERROR_UNVERIFIABLE, "m-a", regional.id, reason)
    assert ctx.warnings == [f"image a: {reason}"]
    # Our verified copy of it is in sync, without sync_without_checksum.
    copy = r("a", "c9", provenance=Provenance("m-a", MASTER_REGION, "md5:c9"))
    ctx = matched(context([m("a", checksum=None)], [copy]))
    matching.classify(ctx, "a", ctx.synced["a"])
    assert _line(ctx) == (Status.OK, "m-a", copy.id, "")


def test_another_project_s_copy_in_sync_is_ok_and_named():
    theirs = r("a", owner="another")
    ctx = matched(context([m("a")], [theirs], only_tenant_images=False))
    matching.classify(ctx, "a", ctx.synced["a"])
    assert _line(ctx) == (Status.OK, "m-a", theirs.id,
                          "same content; owned by project another, metadata not managed")


def test_a_provenance_proves_nothing_on_another_project_s_image():
    forged = r("a", "c9", owner="another", provenance=Provenance("m-a", MASTER_REGION, "md5:c9"))
    assert not matching.same_content(context(), m("a", checksum=None), forged)
    converted = m("a")
    ctx = context(transfer=RegionTransfer(convert_to="raw"))
    assert ctx.transfer.converts(converted)
    assert not matching.same_content(ctx, converted, r("a", owner="another"))
    assert not matching.comparable_by_hashes(ctx, converted)
    assert not matching.comparable_by_hashes(context(), m("a", checksum=None))


def test_a_copy_of_a_master_without_hash_matches_on_its_md5_whatever_its_case():
    master = m("a", checksum=None, size=10)
    copy = r("a", "C9", provenance=Provenance("m-a", MASTER_REGION, "md5:c9"),
             os_hash_algo="sha512", os_hash_value="abc")
    assert matching.same_content(context(), master, copy)


def test_duplicate_master_names_are_each_judged_and_said_in_full():
    masters = [m("a", id_="m1", visibility="private"), m("a", id_="m2", visibility="private"),
               m("b", id_="m3"), m("b", id_="m4")]
    copy = r("b", id_="r-b")
    ctx = context(masters, [r("other", id_="r-o"), r("b", status="queued", id_="r-q"), copy])
    matching.classify_duplicates(ctx)
    reason = ("master image name 'b' is used by 2 images (m3, m4): none is synchronised;"
              " rename or delete the extra ones in the master region")
    assert _line(ctx, "b") == (Status.ERROR_DUPLICATE, None, "r-b", reason)
    assert "a" not in ctx.statuses


def test_deactivated_master_images_are_each_judged_and_said_in_full():
    masters = [m("a", status="deactivated", visibility="private"),
               m("b", status="deactivated"), m("c", status="deactivated")]
    copy = r("b", status="deactivated", id_="r-b")
    regional = [r("other", id_="r-o"), r("b", status="queued", id_="r-q"),
                r("b", owner="another", id_="r-x"), copy, r("c", id_="r-c")]
    ctx = context(masters, regional)
    matching.master_deactivated(ctx)
    assert "a" not in ctx.statuses  # never synchronised anyway
    assert _line(ctx, "b") == (Status.INFO_MASTER_DEACTIVATED, "m-b", "r-b",
                               "deactivated in the master region: not synchronised; regional"
                               " image r-b (deactivated) left as it is")
    assert _line(ctx, "c")[2:] == ("r-c", "deactivated in the master region: not synchronised;"
                                          " regional image r-c (active) left as it is")
    ctx = context([m("d", status="deactivated")], [])
    matching.master_deactivated(ctx)
    assert _line(ctx, "d") == (Status.INFO_MASTER_DEACTIVATED, "m-d", None,
                               "deactivated in the master region: not synchronised")


def test_the_match_prefers_an_active_then_the_oldest_copy():
    off = r("a", status="deactivated", id_="r0")
    on = r("a", id_="r9")
    assert matched(context([m("a")], [off, on])).match["a"] is on
    old, new = r("a", id_="r9", created_at="2020-01-01"), r("a", id_="r1",
                                                             created_at="2021-01-01")
    assert matched(context([m("a")], [new, old])).match["a"] is old
    undated = r("a", id_="r9")
    assert matched(context([m("a")], [new, undated])).match["a"] is undated


def test_renamed_copies_oldest_first_deactivated_ones_too():
    def copy(name, id_, created_at=None, **fields):
        return r(name, id_=id_, created_at=created_at,
                 provenance=Provenance("m-a", MASTER_REGION, "md5:c1"), **fields)
    copies = [copy("a-3", "r1", "2021-01-01"), copy("a-2", "r2", "2020-01-01"),
              copy("a-1", "r3"), copy("a-0", "r4", "2022-01-01", status="deactivated")]
    ctx = matched(context([m("a")], copies))
    matching.classify(ctx, "a", ctx.synced["a"])
    assert _line(ctx) == (Status.INFO_RENAMED, "m-a", "r3",
                          "copy r3 of master image m-a made by GlanceSync is named 'a-1' in the"
                          " region (renamed by hand, or the master image renamed): not uploaded"
                          " again; rename it 'a' to have it synchronised, or delete it to have a"
                          " new copy made")
    others = [s for s in ctx.finish().statuses if s.regional_id != "r3"]
    assert [(s.region, s.master_id, s.regional_id) for s in others] == [
        ("RegionA", "m-a", "r2"), ("RegionA", "m-a", "r1"), ("RegionA", "m-a", "r4")]
    assert others[0].reason == (
        "copy r2 of master image m-a made by GlanceSync is named 'a-2' in the region (renamed"
        " by hand, or the master image renamed): another copy, left as it is: delete it if"
        " nobody uses it")


def test_own_duplicates_are_grouped_by_master_and_name_and_said_in_full():
    def copy(name, id_, master_id, region=MASTER_REGION, created_at=None):
        return r(name, id_=id_, created_at=created_at,
                 provenance=Provenance(master_id, region, "md5:c1"))
    images = [copy("z", "r2", "m-a", created_at="2020-01-01"), copy("z", "r1", "m-a"),
              copy("z", "r0", "m-a", created_at="2021-01-01"),
              copy("a", "r5", "m-b", region="Alpha"), copy("a", "r6", "m-b", region="Alpha"),
              copy(None, "r7", "m-c"), copy("XXXX", "r8", "m-c")]
    ctx = context([], images)
    matching.report_own_duplicates(ctx)
    assert ctx.warnings == [
        "3 copies of master image m-a (from Master) made by GlanceSync: r1 'z', r2 'z', r0 'z';"
        " runs that did not share a lock folder uploaded it twice (see lock_dir): delete the"
        " extra copies",
        "2 copies of master image m-b (from Alpha) made by GlanceSync: r5 'a', r6 'a'; runs"
        " that did not share a lock folder uploaded it twice (see lock_dir): delete the extra"
        " copies"]


def test_regional_duplicates_leave_pending_work_and_say_every_other_image():
    masters = [m("a", type="new"), m("b")]
    images = [r("a", id_="r1"), r("a", "c2", id_="r2"), r("b", id_="r3"),
              r("b", "c2", id_="r4", visibility="private"), r("b", "c3", id_="r5")]
    ctx = context(masters, images)
    for step in (matching.match_regional, matching.classify_synchronised,
                 matching.report_regional_duplicates):
        step(ctx)
    assert ctx.statuses["a"].status is Status.PENDING_METADATA
    assert _line(ctx, "b") == (Status.ERROR_REGIONAL_DUPLICATE, "m-b", "r3",
                               "; but the region also shows r4 (private, active), r5 (public,"
                               " active) under this name: delete or rename the extra image(s)")
    assert ctx.warnings[-1] == ("image b: 3 images of this name in the region (r3 compared;"
                                " r4 (private, active), r5 (public, active))")
    # A name with duplicates but no status (not classified): left alone.
    ctx = context(masters, images)
    matching.match_regional(ctx)
    matching.report_regional_duplicates(ctx)
    assert ctx.statuses == {}
