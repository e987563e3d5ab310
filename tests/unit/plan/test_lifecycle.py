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


def _at(hours=0.0, seconds=0.0):
    """NOW moved by ``hours`` and ``seconds``, as the records write it."""
    import datetime
    from tests.unit.plan.builders import NOW
    return (NOW + datetime.timedelta(hours=hours, seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _one(image, **policy):
    """The lifecycle line and step of one copy whose master image is gone."""
    policy.setdefault("removal_policy", "delete")
    ctx, plan = plan_of([m("kept")], [image], **policy)
    (line,) = plan.statuses
    (op,) = plan.operations or [None]
    return ctx, (line.status, line.region, line.master_id, line.regional_id, line.reason), op


GONE = "master image m-gone-a is gone from the master region"


def test_a_grace_period_starts_with_a_mark_of_the_target_s_clock():
    copy = gone()
    ctx, line, op = _one(copy, removal_grace_hours=1)
    assert line == (Status.INFO_REMOVAL_GRACE, "RegionA", "m-gone-a", copy.id,
                    f"{GONE}: to delete in 1 h (removal_grace_hours)")
    assert (op.regional, op.changes, op.reason) == (
        copy, {MARK_ORPHANED: "2030-01-01T12:00:00Z"},
        "record since when its master image is gone")


def test_a_mark_from_the_future_is_recorded_again_and_said():
    copy = gone(marks={MARK_ORPHANED: _at(hours=1000)})
    ctx, line, op = _one(copy, removal_grace_hours=2)
    note = (f"its mark glancesync.orphaned_at = {_at(hours=1000)} is 1000.0 h ahead of the"
            " target's clock (2030-01-01T12:00:00Z): written by a host whose clock was ahead,"
            " not trusted; recorded again now")
    assert line[4] == f"{GONE}: {note}; to delete in 2 h (removal_grace_hours)"
    assert ctx.warnings == [f"image a ({copy.id}): {note}"]
    assert (op.changes, op.reason) == ({MARK_ORPHANED: "2030-01-01T12:00:00Z"},
                                       "a mark from the future, recorded again by the target's"
                                       " clock")
    # Five minutes ahead is the clocks' usual difference: trusted.
    _, line, _ = _one(gone(marks={MARK_ORPHANED: _at(seconds=300)}), removal_grace_hours=1000)
    assert line[4] == f"{GONE} (since {_at(seconds=300)}): to delete in 1000.1 h" \
                      " (removal_grace_hours)"


def test_the_grace_period_counts_from_the_mark_or_a_later_change():
    _, line, _ = _one(gone(marks={MARK_ORPHANED: _at()}), removal_grace_hours=1000)
    assert line[4] == f"{GONE} (since {_at()}): to delete in 1000.0 h (removal_grace_hours)"
    changed = gone(marks={MARK_ORPHANED: _at(hours=-2)}, updated_at=_at(hours=-1))
    _, line, _ = _one(changed, removal_grace_hours=3)
    assert line[4] == (f"{GONE} (since {_at(hours=-1)}, its last change, later than its mark"
                       f" {_at(hours=-2)}): to delete in 2.0 h (removal_grace_hours)")
    # A change within the clocks' tolerance of the mark is the marking itself.
    marked = gone(marks={MARK_ORPHANED: _at(hours=-2)}, updated_at=_at(hours=-2, seconds=300))
    _, line, _ = _one(marked, removal_grace_hours=3)
    assert line[4] == f"{GONE} (since {_at(hours=-2)}): to delete in 1.0 h (removal_grace_hours)"


def test_the_grace_period_ends_at_its_last_second():
    _, line, op = _one(gone(marks={MARK_ORPHANED: _at(hours=-24)}), removal_grace_hours=24)
    assert line[0] is Status.PENDING_REMOVAL and op.kind is OperationKind.DELETE
    _, line, op = _one(gone(marks={MARK_ORPHANED: _at(hours=-24, seconds=1)}),
                       removal_grace_hours=24)
    assert line[0] is Status.INFO_REMOVAL_GRACE


def test_each_policy_s_step_and_reason_in_full():
    copy = gone(marks={MARK_ORPHANED: _at(hours=-48)})
    expected = {"delete": {}, "hide": {"os_hidden": True, "glancesync.retired": "hide"},
                "deactivate": {"glancesync.retired": "deactivate"}}
    for policy, changes in expected.items():
        _, line, op = _one(copy, removal_policy=policy)
        assert line[4] == f"{GONE}: to {policy}", policy
        assert (op.changes, op.reason) == (changes, f"{GONE} (removal_policy = {policy})")
    _, line, _ = _one(gone(os_hidden=True), removal_policy="hide")
    assert line[:2] == (Status.OK_RETIRED, "RegionA") and line[4] == f"{GONE}; hide done"


def test_a_copy_whose_master_is_back_under_another_name_loses_its_mark():
    back = r("renamed", provenance=Provenance("m-kept", MASTER_REGION, "md5:c1"),
             marks=dict(ORPHANED_LONG_AGO))
    ctx, line, op = _one(back)
    assert line[0] is Status.PENDING_METADATA
    assert line[4] == "its master image is back: lifecycle mark removed"
    assert (op.kind, op.regional, op.remove) == (OperationKind.UPDATE_METADATA, back,
                                                 (MARK_ORPHANED,))


def test_lifecycle_lines_come_after_every_other_line_and_warnings_in_name_order():
    future = {MARK_ORPHANED: _at(hours=10)}
    images = [gone("B", marks=dict(future)),
              gone(None, id_="r-nameless", marks=dict(future),
                   provenance=Provenance("m-gone-x", MASTER_REGION, "md5:c1"))]
    ctx = context([m("kept")], images, removal_policy="delete")
    ctx.set_status(Status.OK, "zzz", None, None, "")
    lifecycle.plan(ctx)
    assert [s.name for s in ctx.finish().statuses] == ["zzz", "B", "r-nameless"]
    assert [w.split(":")[0] for w in ctx.warnings] == ["image None (r-nameless)",
                                                       "image B (r-B-c1)"]


def test_nothing_is_removed_without_master_images_and_the_warning_says_what_to_check():
    ctx, _ = plan_of([], [gone(marks=ORPHANED_LONG_AGO)], removal_policy="delete")
    assert ctx.warnings == ["the master region offers no image at all: no copy is removed"
                            " (check the master target's credentials and project)"]


def test_a_master_no_longer_selected_is_named_with_its_id():
    ctx = context([m("private", visibility="private")])
    assert lifecycle.orphaned(ctx, r("x", provenance=Provenance("m-private", MASTER_REGION))) \
        == "master image private (m-private) is no longer selected for this target"


def test_old_copies_deactivated_count_and_the_newest_renamed_are_kept():
    def old(id_, day, **fields):
        return r("a.old", id_=id_, provenance=None,
                 marks={MARK_RENAMED: f"2029-12-0{day}T00:00:00Z"}, **fields)
    copies = [old("r1", 3), old("r2", 1, status="deactivated"), old("r3", 2)]
    _, plan = plan_of([m("a")], copies, removal_policy="delete", keep_old_copies=1)
    assert [op.regional.id for op in plan.operations] == ["r2", "r3"]
    assert plan.status_of("a.old").reason == (
        "3 a.old copies, keep_old_copies = 1: renamed 2029-12-01T00:00:00Z, one of the"
        " oldest: to delete")


def test_hold_all_removals_counts_every_plan_s_steps():
    plans = [plan_of([m("kept")], [gone(n, marks=ORPHANED_LONG_AGO) for n in "ab"],
                     removal_policy="delete")[1] for _ in range(2)]
    assert lifecycle.hold_all_removals(plans, Status.ERROR_MAX_DELETES, "held") == 4
    assert lifecycle.hold_all_removals(plans, Status.ERROR_MAX_DELETES, "held") == 0
