"""glancesync.plan.obsolete: X_obsolete master images rename or correct regional copies."""
from __future__ import annotations

from glancesync.plan import obsolete
from glancesync.plan.model import OperationKind, Status

from tests.unit.plan.builders import context, m, r


def plan_of(masters, regional, **policy):
    ctx = context(masters, regional, **policy)
    obsolete.plan(ctx)
    return ctx, ctx.finish()


def test_a_regional_copy_is_renamed_with_the_master_s_visibility_and_syncprops():
    master = m("a_obsolete", visibility="private", type="old")
    ctx, plan = plan_of([master], [r("a", properties={"type": "new"})],
                        obsolete_syncprops=frozenset({"type"}))
    (op,) = plan.operations
    assert op.kind is OperationKind.OBSOLETE_RENAME and op.name == "a_obsolete"
    assert op.changes == {"name": "a_obsolete", "visibility": "private", "type": "old"}
    assert ctx.statuses["a_obsolete"].status is Status.PENDING_METADATA
    assert ctx.statuses["a_obsolete"].reason == "obsolete: rename a to a_obsolete"


def test_an_obsolete_copy_already_renamed_is_corrected_or_ok():
    master = m("a_obsolete", visibility="private")
    _, plan = plan_of([master], [r("a_obsolete")])
    assert [op.kind for op in plan.operations] == [OperationKind.OBSOLETE_UPDATE]
    ctx, plan = plan_of([master], [r("a_obsolete", visibility="private")])
    assert plan.operations == [] and ctx.statuses["a_obsolete"].status is Status.OK


def test_a_synchronised_x_keeps_x_obsolete_from_applying():
    ctx, plan = plan_of([m("a"), m("a_obsolete", id_="m-ao")], [r("a")])
    assert plan.operations == [] and "'a_obsolete' is not applied" in ctx.warnings[0]


def test_other_projects_images_and_support_off_are_left_alone():
    _, plan = plan_of([m("a_obsolete")], [r("a", owner="another")])
    assert plan.operations == []
    _, plan = plan_of([m("a_obsolete")], [r("a")], support_obsolete_images=False)
    assert plan.operations == []


def test_changes_are_the_visibility_the_syncprops_and_an_adoption():
    master = m("a_obsolete", visibility="private", type="old")
    changes = obsolete.changes(context([master], obsolete_syncprops=frozenset({"type"})),
                               master, r("a", provenance=None))
    assert changes["visibility"] == "private" and changes["type"] == "old"
    assert changes["glancesync.master_image_id"] == "m-a_obsolete"


def test_a_rename_to_an_obsolete_name_too_long_for_glance_changes_nothing():
    """Issue 23 case 3: every name a sync would write is checked before any change."""
    base = "b" * 247
    ctx, plan = plan_of([m(base + "_obsolete")], [r(base)])
    assert plan.operations == []
    line = ctx.statuses[base + "_obsolete"]
    assert line.status is Status.ERROR_NAME and "255" in line.reason
