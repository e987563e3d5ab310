"""glancesync.plan.endoflife: the SCS image metadata properties of end of life."""
from __future__ import annotations

import datetime

from glancesync.config import TargetConfig
from glancesync.image import Provenance
from glancesync.plan import OperationKind, RegionPlan, Status, keep_promised_ids, make_plan
from glancesync.plan.endoflife import add_months, end_of_life, id_promised, overdue, problems
from glancesync.selection import select_master

from tests.unit.plan.builders import MASTER_PROJECT, MASTER_REGION, NOW, PROJECT, m, r

# NOW is 2030-01-01 12:00 UTC.


def plan(masters, regional, **policy):
    return make_plan("RegionA", select_master(masters, MASTER_PROJECT, MASTER_REGION),
                     regional, PROJECT, TargetConfig(name="t", **policy), now=NOW)


def lines(result, name):
    return {s.status for s in result.statuses if s.name == name}


def test_provided_until_is_the_last_day():
    assert end_of_life(m("a", provided_until="2030-01-01"), NOW) is None
    assert "past its provided_until 2029-12-31" in end_of_life(
        m("a", provided_until="2029-12-31"), NOW)
    for value in ("none", "notice", "2029-13-45", "yesterday", ""):
        assert end_of_life(m("a", provided_until=value), NOW) is None


def test_replacement_is_due_after_the_frequency_and_three_days():
    monthly = m("a", image_build_date="2029-11-30", replace_frequency="monthly")
    assert overdue(monthly, NOW) is None  # due 2029-12-30, 3 days late allowed: 2 Jan
    late = m("a", image_build_date="2029-11-27 10:00", replace_frequency="monthly")
    assert "a new image was due 2029-12-27" in overdue(late, NOW)
    assert overdue(m("a", image_build_date="2020-01-01", replace_frequency="never"), NOW) is None
    assert overdue(m("a", image_build_date="2029-12-20", replace_frequency="weekly"), NOW)
    # A build date in the future (a wrong clock somewhere) is never overdue.
    assert overdue(m("a", image_build_date="2031-01-01", replace_frequency="daily"), NOW) is None
    assert add_months(datetime.datetime(2030, 1, 31), 1) == datetime.datetime(2030, 2, 28)


def test_values_not_as_the_standard_says_are_named():
    found = problems(m("a", image_build_date="last tuesday", replace_frequency="hourly",
                       provided_until="2030-02-30", uuid_validity="last-x"))
    assert len(found) == 4 and all("SCS image metadata" in p for p in found)
    assert problems(m("a", image_build_date="2029-01-01 10:00:00", replace_frequency="yearly",
                      provided_until="notice", uuid_validity="last-3")) == []


def test_with_keep_the_lines_are_added_and_the_image_still_synchronised():
    expired = m("a", provided_until="2029-06-30", replace_frequency="monthly",
                image_build_date="2029-01-01")
    copy = r("a")
    copy.properties = dict(expired.properties)
    result = plan([expired], [copy])
    assert lines(result, "a") == {Status.OK, Status.INFO_END_OF_LIFE,
                                  Status.INFO_REPLACEMENT_OVERDUE}
    assert result.status_of("a").status is Status.OK  # its own line first
    assert not result.operations


def test_with_a_removal_policy_an_expired_image_is_retired_with_grace():
    expired = m("a", provided_until="2029-06-30")
    result = plan([expired, m("b")], [r("a"), r("b")], removal_policy="hide")
    assert result.status_of("a").status is Status.INFO_END_OF_LIFE
    assert Status.INFO_REMOVAL_GRACE in lines(result, "a")  # the lifecycle's grace first
    # No new copy in a region that has none.
    fresh = plan([expired], [], removal_policy="delete")
    assert fresh.operations == [] and fresh.status_of("a").status is Status.INFO_END_OF_LIFE


def test_a_promised_id_is_hidden_not_deleted():
    copy = r("a", provenance=Provenance("m-a", MASTER_REGION, "md5:c1"))
    copy.properties = {"uuid_validity": "2030-06-30"}
    expired_master = m("a", provided_until="2029-06-30", uuid_validity="forever")
    result = plan([expired_master], [copy], removal_policy="delete", removal_grace_hours=0)
    (op,) = result.removals
    assert op.kind is OperationKind.DELETE
    assert keep_promised_ids([result], {"m-a": expired_master}, NOW) == 1
    assert op.kind is OperationKind.HIDE and op.changes["os_hidden"] is True
    assert "uuid_validity = 2030-06-30 promises its id" in result.removal_status(op).reason
    assert not id_promised("2029-12-31", NOW) and not id_promised("none", NOW)
    assert id_promised("last-2", NOW) and id_promised("notice", NOW)


def test_a_promise_past_its_date_lets_the_delete_go():
    copy = r("a")
    copy.properties = {"uuid_validity": "2029-12-31"}
    result = plan([m("a", provided_until="2029-06-30")], [copy], removal_policy="delete",
                  removal_grace_hours=0)
    assert keep_promised_ids([result], {}, NOW) == 0
    assert result.removals[0].kind is OperationKind.DELETE
    assert keep_promised_ids([RegionPlan("x")], {}, NOW) == 0


def test_a_hidden_copy_with_a_promised_id_is_never_deleted_later():
    copy = r("a", os_hidden=True)
    copy.properties = {"uuid_validity": "forever"}
    result = plan([m("a", provided_until="2029-06-30")], [copy], removal_policy="delete",
                  removal_grace_hours=0)
    assert result.removals[0].kind is OperationKind.DELETE
    assert keep_promised_ids([result], {}, NOW) == 1
    assert result.removals == []
    retired = [s for s in result.statuses if s.regional_id == copy.id]
    assert retired[0].status is Status.OK_RETIRED and "promises its id" in retired[0].reason


def test_the_lifecycle_guards_hold_for_expired_images():
    from glancesync.plan import hold_removals
    expired = [m(n, provided_until="2029-06-30") for n in ("a", "b", "c", "d")]
    protected = r("a", protected=True)
    foreign = r("b", owner="p-other")
    result = plan(expired, [protected, foreign, r("c"), r("d")], removal_policy="delete",
                  removal_grace_hours=0, only_tenant_images=False)
    skipped = [s for s in result.statuses if s.status is Status.INFO_REMOVAL_SKIPPED]
    assert {s.regional_id for s in skipped} == {protected.id, foreign.id}
    assert len(result.removals) == 2
    assert hold_removals([result], max_deletes=1) == 2 and result.removals == []
    assert sum(s.status is Status.ERROR_MAX_DELETES for s in result.statuses) == 2
