"""glancesync.plan: make_plan runs the concerns' steps in the SPEC's order, on one context."""
from __future__ import annotations

from glancesync import plan
from glancesync.config import TargetConfig
from glancesync.plan.context import Phase, PlanContext
from glancesync.plan.model import Operation, OperationKind, Status
from glancesync.selection import select_master

from tests.unit.plan.builders import MASTER_PROJECT, NOW, PROJECT, m, r


def make(masters, regional, steps=plan.STEPS, **policy):
    return plan.make_plan("RegionA", select_master(masters, MASTER_PROJECT, "Master"), regional,
                          PROJECT, TargetConfig(name="t", **policy), now=NOW, steps=steps)


def test_the_default_steps_make_the_whole_plan():
    result = make([m("a"), m("b", type="x")], [r("b"), r("z", status="queued",
                                                        updated_at="2029-01-01T00:00:00Z")])
    assert [(op.kind, op.name) for op in result.operations] == [
        (OperationKind.UPDATE_METADATA, "b"), (OperationKind.UPLOAD, "a"),
        (OperationKind.CLEANUP, "z")]


def test_a_new_concern_is_a_step_added_to_the_list():
    """A concern of one's own (here: hold every upload of a region, as waves would)
    reads what the steps before it decided and changes the plan; nothing else changes."""
    def hold_uploads(ctx: PlanContext) -> None:
        for name, op in list(ctx.ops.items()):
            if op.uploads:
                del ctx.ops[name]
                ctx.set_status(Status.OK, name, op.master, None, "held")

    steps = list(plan.STEPS)
    steps.insert(steps.index(plan.ami.order), hold_uploads)
    masters, regional = [m("a"), m("b", type="x")], [r("b")]
    held = make(masters, regional, steps=steps)
    assert [op.name for op in held.operations] == ["b"]
    assert held.status_of("a").reason == "held"
    assert [op.name for op in make(masters, regional).operations] == ["b", "a"]


def test_steps_add_operations_in_phases_whatever_their_order():
    def late(ctx: PlanContext) -> None:
        ctx.add(Phase.METADATA, [Operation(OperationKind.UPDATE_METADATA, "first")])

    result = make([m("a")], [], steps=[*plan.STEPS, late])
    assert [op.name for op in result.operations] == ["first", "a"]


def test_make_plan_s_defaults_an_hour_for_leftovers_and_the_time_now():
    # An hour old to the second: a leftover by default.
    hour_old = r("z", status="queued", updated_at="2030-01-01T11:00:00Z")
    result = plan.make_plan("RegionA", select_master([], MASTER_PROJECT, "Master"),
                            [hour_old], PROJECT, TargetConfig(name="t"), now=NOW)
    assert [op.kind for op in result.operations] == [OperationKind.CLEANUP]
    # Without a time: now, in UTC (a leftover of 2020 is old).
    result = plan.make_plan("RegionA", select_master([], MASTER_PROJECT, "Master"),
                            [r("z", status="queued", updated_at="2020-01-01T00:00:00Z")],
                            PROJECT, TargetConfig(name="t"))
    assert [op.kind for op in result.operations] == [OperationKind.CLEANUP]


def test_make_plan_passes_the_members_on():
    master = m("a", visibility="shared")
    master.members = ("mp1",)
    result = plan.make_plan("RegionA", select_master([master], MASTER_PROJECT, "Master"), [],
                            PROJECT, TargetConfig(name="t", sync_members=True,
                                                  forcesyncs=frozenset({"m-a"})), now=NOW,
                            members={"mp1": ("one", "rp1")})
    assert result.operations[0].add_members == ("rp1",)
