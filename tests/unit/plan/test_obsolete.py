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


def test_every_obsolete_name_gets_its_operation_and_status():
    masters = [m("a"), m("b_obsolete", visibility="private"), m("c_obsolete"),
               m("d_obsolete", visibility="private"), m("a_obsolete")]
    b_old, c_done, d_copy = r("b_obsolete"), r("c_obsolete"), r("d")
    ctx, plan = plan_of(masters, [b_old, c_done, d_copy])
    assert [(op.kind, op.name, op.master, op.regional, op.changes) for op in plan.operations] \
        == [(OperationKind.OBSOLETE_UPDATE, "b_obsolete", masters[1], b_old,
             {"visibility": "private"}),
            (OperationKind.OBSOLETE_RENAME, "d_obsolete", masters[3], d_copy,
             {"visibility": "private", "name": "d_obsolete"})]
    lines = {name: (s.status, s.master_id, s.regional_id, s.reason)
             for name, s in ctx.statuses.items()}
    assert lines == {
        "b_obsolete": (Status.PENDING_METADATA, "m-b_obsolete", b_old.id,
                       "obsolete: correct visibility and properties"),
        "c_obsolete": (Status.OK, "m-c_obsolete", c_done.id, "obsolete"),
        "d_obsolete": (Status.PENDING_METADATA, "m-d_obsolete", d_copy.id,
                       "obsolete: rename d to d_obsolete")}
    assert ctx.warnings == ["master holds both 'a' (synchronised) and 'a_obsolete':"
                            " 'a_obsolete' is not applied"]


def test_a_name_error_stops_only_its_own_rename():
    base = "b" * 247
    masters = [m(base + "_obsolete"), m("c_obsolete", visibility="private"),
               m("d" * 250 + "_obsolete")]  # no copy in the region: nothing to say
    too_long, other = r(base), r("c")
    ctx, plan = plan_of(masters, [too_long, other])
    line = ctx.statuses[base + "_obsolete"]
    assert (line.master_id, line.regional_id) == (masters[0].id, too_long.id)
    assert ctx.warnings == [f"image {base}_obsolete: {line.reason}"]
    assert line.reason.startswith(f"obsolete: {base} cannot be renamed: the name ")
    assert line.reason.endswith(" more than the 255 Glance accepts; nothing changed")
    assert [op.name for op in plan.operations] == ["c_obsolete"]
    assert set(ctx.statuses) == {base + "_obsolete", "c_obsolete"}


def test_syncprops_are_set_only_where_the_master_has_them_and_they_differ():
    master = m("a_obsolete", type="old")
    ctx = context([master], obsolete_syncprops=frozenset({"type", "absent"}))
    assert obsolete.changes(ctx, master, r("a", properties={"type": "old"})) == {}
    assert obsolete.changes(ctx, master, r("a", properties={"type": "new"})) == {"type": "old"}
