"""glancesync.plan.lifecycle: removal_policy, grace, keep_old_copies and max_deletes."""
from __future__ import annotations

from glancesync.image import MARK_ORPHANED, MARK_RENAMED, Provenance
from glancesync.plan import lifecycle
from glancesync.plan.model import OperationKind, Status

from tests.unit.plan.builders import MASTER_REGION, context, m, r

ORPHANED_LONG_AGO = {MARK_ORPHANED: "2029-12-01T00:00:00Z"}


def gone(name="a", **fields):
    """A copy of ours whose master image ``m-gone-NAME`` is gone."""
    fields.setdefault("provenance", Provenance(f"m-gone-{name}", MASTER_REGION, "md5:c1"))
    return r(name, **fields)


def plan_of(masters, regional, **policy):
    ctx = context(masters, regional, **policy)
    lifecycle.plan(ctx)
    return ctx, ctx.finish()


def test_why_a_copy_is_orphaned_or_not():
    ctx = context([m("kept"), m("private", visibility="private"),
                   m("old_obsolete"), m("off", status="deactivated")])
    assert lifecycle.orphaned(ctx, gone()) == (
        "master image m-gone-a is gone from the master region")
    not_selected = r("x", provenance=Provenance("m-private", MASTER_REGION))
    assert "is no longer selected" in lifecycle.orphaned(ctx, not_selected)
    assert lifecycle.orphaned(ctx, r("x", provenance=Provenance("m-old_obsolete",
                                                                 MASTER_REGION))) is None
    assert lifecycle.orphaned(ctx, r("x", provenance=Provenance("m-off", MASTER_REGION))) is None
    assert lifecycle.orphaned(ctx, r("kept")) is None  # synchronised
    assert lifecycle.orphaned(ctx, gone(provenance=None)) is None
    assert lifecycle.orphaned(ctx, r("x", provenance=Provenance("m-z", "Elsewhere"))) is None


def test_the_first_time_a_grace_period_starts_with_a_mark():
    _, plan = plan_of([m("kept")], [gone()], removal_policy="delete")
    (line,) = plan.statuses
    assert line.status is Status.INFO_REMOVAL_GRACE and line.master_id == "m-gone-a"
    (op,) = plan.operations
    assert op.kind is OperationKind.UPDATE_METADATA and MARK_ORPHANED in op.changes


def test_after_the_grace_period_the_removal_step_comes_after_the_marks():
    _, plan = plan_of([m("kept")], [gone("a", marks=ORPHANED_LONG_AGO), gone("b")],
                      removal_policy="hide")
    assert [(op.kind, op.name) for op in plan.operations] == [
        (OperationKind.UPDATE_METADATA, "b"), (OperationKind.HIDE, "a")]
    assert plan.operations[1].changes["os_hidden"] is True
    assert plan.status_of("a").status is Status.PENDING_REMOVAL


def test_protected_foreign_and_done_copies_are_never_touched():
    _, plan = plan_of([m("kept")],
                      [gone("a", protected=True), gone("b", owner="another"),
                       gone("c", os_hidden=True)], removal_policy="hide",
                      only_tenant_images=False)
    assert plan.operations == []
    assert [s.status for s in plan.statuses] == [
        Status.INFO_REMOVAL_SKIPPED, Status.INFO_REMOVAL_SKIPPED, Status.OK_RETIRED]


def test_nothing_is_removed_when_the_master_offers_no_image():
    ctx, plan = plan_of([], [gone(marks=ORPHANED_LONG_AGO)], removal_policy="delete")
    assert plan.operations == [] and "offers no image at all" in ctx.warnings[0]


def test_keep_old_copies_retires_the_oldest_renamed_copies_at_once():
    copies = [r("a.old", id_=f"r{day}", provenance=None,
                marks={MARK_RENAMED: f"2029-12-0{day}T00:00:00Z"}) for day in (1, 2, 3)]
    _, plan = plan_of([m("a")], copies, removal_policy="delete", keep_old_copies=1)
    assert sorted(op.regional.id for op in plan.operations) == ["r1", "r2"]
    assert all(op.kind is OperationKind.DELETE for op in plan.operations)


def test_hold_removals_takes_none_beyond_max_deletes():
    plans = [plan_of([m("kept")], [gone(n, marks=ORPHANED_LONG_AGO) for n in "ab"],
                     removal_policy="delete")[1] for _ in range(2)]
    assert lifecycle.hold_removals(plans, 4) == 4 and all(p.removals for p in plans)
    assert lifecycle.hold_removals(plans, 3) == 4
    assert all(p.removals == [] for p in plans)
    assert {s.status for p in plans for s in p.statuses} == {Status.ERROR_MAX_DELETES}
