"""glancesync.scope: a plan cut down to the images a run covers, by name or by master id."""
from __future__ import annotations

import datetime

from glancesync.config import TargetConfig
from glancesync.image import MARK_RENAMED, Image, Provenance
from glancesync.plan import OperationKind, Status, make_plan
from glancesync.scope import Scope, restrict
from glancesync.selection import select_master

NOW = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
OLD = "2029-12-01T00:00:00Z"


def m(name, id_=None, **props):
    return Image(id=id_ or f"m-{name}", name=name, status="active", owner="pm",
                 visibility="public", size=10, checksum=f"c-{name}", disk_format="raw",
                 container_format="bare", properties=props)


def r(name, master_id, checksum=None, status="active", **fields):
    image = Image(id=f"r-{name}-{master_id}", name=name, status=status, owner="pr",
                  visibility="public", size=10, checksum=checksum or f"c-{name}",
                  provenance=Provenance(master_id, "Master", f"md5:c-{name}", OLD))
    for key, value in fields.items():
        setattr(image, key, value)
    return image


def planned(masters, regional, **policy):
    selection = select_master(masters, "pm", "Master")
    plan = make_plan("RegionA", selection, regional, "pr", TargetConfig(name="t", **policy),
                     now=NOW, stalled_upload_age=60)
    return plan, selection


def lines(plan):
    return sorted((s.name, s.status.value) for s in plan.statuses)


def test_by_id_only_the_named_master_image_is_kept():
    plan, selection = planned([m("a"), m("b")], [])
    scoped = Scope(image_ids=frozenset({"m-a"})).restrict(plan, selection)
    assert lines(scoped) == [("a", "pending_upload")]
    assert [op.name for op in scoped.operations] == ["a"]


def test_by_id_the_copies_of_a_deleted_image_go_through_the_lifecycle():
    plan, selection = planned([m("kept")], [r("gone", "m-gone"), r("other", "m-other")],
                              removal_policy="delete", removal_grace_hours=0)
    scoped = Scope(image_ids=frozenset({"m-gone"})).restrict(plan, selection)
    assert lines(scoped) == [("gone", "pending_removal")]
    assert [(op.kind, op.regional.id) for op in scoped.operations] == [
        (OperationKind.DELETE, "r-gone-m-gone")]


def test_by_id_a_leftover_goes_with_its_master_image_not_with_its_name():
    queued = r("a", "m-x", status="queued", updated_at=OLD)  # a leftover of m-x named "a"
    plan, selection = planned([m("a")], [queued])
    of_x = Scope(image_ids=frozenset({"m-x"})).restrict(plan, selection)
    assert [(op.kind, op.name) for op in of_x.operations] == [(OperationKind.CLEANUP, "a")]
    assert lines(of_x) == [("a", "pending_cleanup")]
    of_a = Scope(image_ids=frozenset({"m-a"})).restrict(plan, selection)
    assert [(op.kind, op.name) for op in of_a.operations] == [(OperationKind.UPLOAD, "a")]


def test_by_id_a_duplicate_name_and_the_old_copies_of_its_name_go_with_it():
    old = [r(f"{name}.old", f"m-prev-{name}{i}", marks={MARK_RENAMED: f"2029-12-0{i}T00:00:00Z"})
           for name in "ac" for i in (1, 2)]
    plan, selection = planned([m("a"), m("b", id_="m-b1"), m("b", id_="m-b2"), m("c")], old,
                              removal_policy="delete", keep_old_copies=1)
    assert ("c.old", "pending_removal") in lines(plan)
    scoped = Scope(image_ids=frozenset({"m-a", "m-b2"})).restrict(plan, selection)
    assert lines(scoped) == [("a", "pending_upload"), ("a.old", "pending_removal"),
                             ("b", "error_duplicate")]
    assert [(op.kind, op.name) for op in scoped.operations] == [
        (OperationKind.UPLOAD, "a"), (OperationKind.DELETE, "a.old")]


def test_by_id_the_kernel_an_upload_needs_comes_with_it_and_is_said():
    plan, selection = planned([m("k"), m("vm", kernel_id="m-k")], [])
    scoped = Scope(image_ids=frozenset({"m-vm"})).restrict(plan, selection)
    assert [op.name for op in scoped.operations] == ["k", "vm"]
    assert scoped.warnings[-1] == ("image k included: an image this run covers needs it"
                                   " (kernel_id or ramdisk_id)")


def test_an_unknown_or_hostile_id_keeps_nothing():
    plan, selection = planned([m("a")], [r("a", "m-a")])
    for ids in ({"no-such-id"}, {"x" * 100_000}, {"r-a-m-a"}, {"../../etc"}):
        scoped = Scope(image_ids=frozenset(ids)).restrict(plan, selection)
        assert scoped.statuses == [] and scoped.operations == []


def test_patterns_and_ids_together_cover_both_and_nothing_means_everything():
    plan, selection = planned([m("a"), m("b"), m("c")], [])
    both = Scope(("a",), frozenset({"m-b"})).restrict(plan, selection)
    assert [op.name for op in both.operations] == ["a", "b"]
    assert Scope().restrict(plan, selection) is plan and Scope().everything
    assert restrict(plan, ["c"]).operations == Scope(("c",)).restrict(plan).operations
    assert [s.status for s in restrict(plan, ["c"]).statuses] == [Status.PENDING_UPLOAD]
