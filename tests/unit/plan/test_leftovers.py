"""glancesync.plan.leftovers: GlanceSync's own interrupted uploads, and nothing else."""
from __future__ import annotations

from glancesync.image import Provenance
from glancesync.plan import leftovers
from glancesync.plan.model import OperationKind, Status

from tests.unit.plan.builders import context, r

OLD = "2030-01-01T10:00:00Z"  # two hours before the plan's time
RECENT = "2030-01-01T11:59:00Z"


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
