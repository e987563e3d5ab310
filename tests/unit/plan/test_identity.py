"""glancesync.plan.identity: keep_image_id, the master's id for new copies."""
from __future__ import annotations

from glancesync.plan import make_plan
from glancesync.selection import select_master

from tests.unit.plan.builders import MASTER_PROJECT, MASTER_REGION, NOW, PROJECT, m, r
from glancesync.config import TargetConfig


def plan(masters, regional, **policy):
    return make_plan("RegionA", select_master(masters, MASTER_PROJECT, MASTER_REGION),
                     regional, PROJECT, TargetConfig(name="t", **policy), now=NOW)


def test_off_by_default_a_new_copy_asks_for_no_id():
    (op,) = plan([m("a")], []).operations
    assert op.image_id is None and "as id" not in op.describe()


UUID = "6f1c3d6e-8d5b-4c47-9d7a-1f2e3a4b5c6d"


def test_a_new_copy_is_asked_to_have_the_masters_id():
    result = plan([m("a", id_=UUID)], [], keep_image_id=True)
    (op,) = result.operations
    assert op.image_id == UUID and op.describe().endswith(f"as id {UUID}")
    assert f"keep_image_id: to be created with id {UUID}" in result.status_of("a").reason


def test_a_master_id_that_is_not_a_uuid_is_not_asked_for():
    # Glance refuses any other id with a 400 (a refusal for good, error_refused).
    result = plan([m("a", id_="m-a; DROP TABLE images")], [], keep_image_id=True)
    (op,) = result.operations
    assert op.image_id is None and "is not a UUID" in result.status_of("a").reason


def test_an_id_the_region_lists_is_not_asked_for():
    # Another project's image already has the master's id (a hostile tenant, or
    # the same cloud): the copy gets a new id and the status says whose it is.
    taken = r("other", id_=UUID, owner="p-stranger", provenance=None, visibility="public")
    result = plan([m("a", id_=UUID)], [taken], keep_image_id=True, only_tenant_images=True)
    (op,) = result.operations
    assert op.image_id is None
    reason = result.status_of("a").reason
    assert f"id {UUID} is taken in the region by project p-stranger's image 'other'" in reason


def test_a_replaced_copy_holding_the_id_keeps_it_and_the_new_one_gets_another():
    old = r("a", checksum="c0", id_=UUID)
    result = plan([m("a", id_=UUID)], [old], keep_image_id=True, replace=frozenset({"any"}))
    (op,) = [o for o in result.operations if o.uploads]
    assert op.image_id is None and "this project's image 'a'" in result.status_of("a").reason


def test_the_status_says_which_copies_share_the_masters_id():
    result = plan([m("a"), m("b")], [r("a", id_="m-a"), r("b")], keep_image_id=True)
    assert result.status_of("a").reason.endswith("same id as the master image")
    assert "same id" not in result.status_of("b").reason
    assert not result.operations  # existing copies are left as they are


UUID2 = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def _ctx(ops_and_statuses, regional=(), keep=True):
    """A context holding the given (operation, reason or None) pairs, in order."""
    from glancesync.plan.model import Operation, OperationKind, Status
    from tests.unit.plan.builders import context
    ctx = context([], list(regional), keep_image_id=keep)
    for kind, master, reason in ops_and_statuses:
        ctx.ops[master.name] = Operation(kind, master.name, master=master)
        if reason is not None:
            ctx.set_status(Status.PENDING_UPLOAD if kind.uploads else Status.PENDING_METADATA,
                           master.name, master, None, reason)
    return ctx


def test_each_new_copy_is_judged_on_its_own_and_the_reasons_added_to():
    from glancesync.plan import identity
    from glancesync.plan.model import OperationKind as K
    taken = r("other", id_=UUID2, owner="p-stranger", provenance=None)
    ctx = _ctx([(K.UPDATE_METADATA, m("a", id_=UUID), "meta"),  # not an upload: left alone
                (K.UPLOAD, m("d", id_=UUID), "missing"),
                (K.UPLOAD, m("b", id_="not-a-uuid"), "missing"),
                (K.UPLOAD, m("c", id_=UUID2), "missing"),
                (K.UPLOAD, m("e", id_="e" * 36), None)], [taken])  # no status: left alone
    identity.keep_ids(ctx)
    assert [op.image_id for op in ctx.ops.values()] == [None, UUID, None, None, None]
    reasons = {name: status.reason for name, status in ctx.statuses.items()}
    assert reasons == {
        "a": "meta",
        "b": "missing; keep_image_id: master id 'not-a-uuid' is not a UUID (Glance takes no"
             " other): the copy gets a new id",
        "c": f"missing; keep_image_id: id {UUID2} is taken in the region by project"
             " p-stranger's image 'other' (active): the copy gets a new id (Glance never"
             " reuses one)",
        "d": f"missing; keep_image_id: to be created with id {UUID}"}


def test_the_same_id_is_added_to_a_reason_or_is_the_reason():
    from glancesync.plan import identity
    from glancesync.plan.model import Status
    from tests.unit.plan.builders import context
    ctx = context([], keep_image_id=True)
    ctx.set_status(Status.OK, "a", m("a"), r("a", id_="m-a"), "")
    ctx.set_status(Status.PENDING_METADATA, "b", m("b"), r("b", id_="m-b"), "visibility")
    identity.keep_ids(ctx)
    assert ctx.statuses["a"].reason == "same id as the master image"
    assert ctx.statuses["b"].reason == "visibility; same id as the master image"
