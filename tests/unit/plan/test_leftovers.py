"""glancesync.plan.leftovers: GlanceSync's own interrupted uploads, and nothing else."""
from __future__ import annotations

import pytest

from glancesync.image import Provenance
from glancesync.plan import leftovers
from glancesync.plan.model import Operation, OperationKind, Status

from tests.unit.plan.builders import MASTER_REGION, context, r

OLD = "2030-01-01T10:00:00Z"  # two hours before the plan's time
RECENT = "2030-01-01T11:59:00Z"
NOW_TEXT = "2030-01-01T12:00:00Z"  # the plan's time


def test_an_old_queued_upload_of_ours_is_cleaned_with_its_own_line():
    leftover = r("a", status="queued", updated_at=OLD)
    ctx = context([], [leftover])
    leftovers.plan(ctx)
    plan = ctx.finish()
    (op,) = plan.operations
    assert op.kind is OperationKind.CLEANUP and op.regional is leftover
    (line,) = plan.statuses
    assert line.status is Status.PENDING_CLEANUP and line.master_id == "m-a"
    assert "unchanged for 7200 s" in line.reason


def test_recent_foreign_or_unknown_images_are_left_alone():
    images = [r("a", status="saving", updated_at=RECENT),
              r("b", status="queued", updated_at=OLD, provenance=None),
              r("c", status="queued", updated_at=OLD, owner="another"),
              r("d", status="active", updated_at=OLD),
              r("e", status="queued")]  # no time: its age is unknown
    ctx = context([], images)
    leftovers.plan(ctx)
    assert ctx.finish().operations == []


def test_a_protected_leftover_is_only_warned_about():
    ctx = context([], [r("a", status="importing", updated_at=OLD, protected=True)])
    leftovers.plan(ctx)
    assert ctx.finish().operations == [] and "is protected: left alone" in ctx.warnings[0]


def test_made_by_us_means_a_provenance_of_this_master_region():
    ctx = context()
    assert leftovers.made_by_us(ctx, r("a"))
    elsewhere = r("a", provenance=Provenance("m-a", "Elsewhere"))
    assert not leftovers.made_by_us(ctx, elsewhere)
    assert leftovers.age(ctx, r("a", updated_at=OLD)) == 7200


def test_every_image_is_judged_on_its_own_in_name_order(caplog):
    import logging
    images = [r("a", status="queued", updated_at=OLD, provenance=None),  # not ours
              r("b", status="queued", updated_at=RECENT),  # too recent
              r("c", status="saving", updated_at=OLD, protected=True),
              r("d", status="queued", created_at=OLD),  # no update time: created
              r(None, status="queued", updated_at=OLD, id_="r-nameless",
                provenance=Provenance("m-x", MASTER_REGION)),
              r("B", status="importing", updated_at=OLD)]
    ctx = context([], images)
    with caplog.at_level(logging.DEBUG, logger="glancesync.plan"):
        leftovers.plan(ctx)
    plan = ctx.finish()
    assert [(op.name, op.regional, op.provenance) for op in plan.operations] == [
        ("r-nameless", images[4], images[4].provenance), ("B", images[5], images[5].provenance),
        ("d", images[3], images[3].provenance)]
    assert ctx.warnings == [
        "leftover saving image c (r-c-c1) of an interrupted upload is protected: left alone"
        " (unprotect it to let the next sync delete it)"]
    assert "RegionA: queued image a (r-a-c1) was not created by GlanceSync: left alone" in [
        record.getMessage() for record in caplog.records]


def test_a_cleanup_line_names_the_region_and_the_time_unchanged():
    leftover = r("a", status="queued", updated_at=NOW_TEXT)
    ctx = context([], [leftover], stalled_upload_age=0)
    leftovers.plan(ctx)
    (line,) = ctx.finish().statuses
    assert (line.region, line.name, line.master_id, line.regional_id) == (
        "RegionA", "a", "m-a", "r-a-c1")
    assert line.reason == ("leftover queued image r-a-c1 of an interrupted upload by"
                           " GlanceSync, unchanged for 0 s: to delete")


def test_a_cleanup_line_needs_an_image_with_its_provenance():
    op = Operation(OperationKind.CLEANUP, "a", regional=r("a", provenance=None))
    with pytest.raises(AssertionError):
        leftovers.cleanup_status(context(), op)
