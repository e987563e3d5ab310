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


def test_add_months_across_years():
    assert add_months(datetime.datetime(2029, 12, 15), 1) == datetime.datetime(2030, 1, 15)
    assert add_months(datetime.datetime(2029, 11, 30), 3) == datetime.datetime(2030, 2, 28)
    assert add_months(datetime.datetime(2029, 6, 15), 24) == datetime.datetime(2031, 6, 15)


def test_the_build_date_is_the_standard_s_form_else_created_at():
    late = m("a", replace_frequency="daily")
    late.created_at = "2029-12-01T00:00:00Z"
    assert overdue(late, NOW) == ("built 2029-12-01, replace_frequency = daily: a new image"
                                  " was due 2029-12-02 (SCS image metadata)")
    # Not as the standard says (a T): ignored, created_at counts.
    odd = m("a", replace_frequency="daily", image_build_date="2029-12-31T10:00:00")
    odd.created_at = "2029-12-01T00:00:00Z"
    assert "built 2029-12-01" in overdue(odd, NOW)


def test_days_are_added_for_weekly_and_daily_and_the_last_moment_is_in_time():
    assert overdue(m("a", image_build_date="2029-12-26", replace_frequency="weekly"), NOW) is None
    assert overdue(m("a", image_build_date="2029-12-28 12:00", replace_frequency="daily"),
                   NOW) is None  # due 12-29 12:00, three days late: NOW exactly
    assert overdue(m("a", image_build_date="2029-12-28 11:59", replace_frequency="daily"), NOW)


def test_the_id_is_promised_on_the_last_day():
    assert id_promised("2030-01-01", NOW) and id_promised(" forever ", NOW)
    assert not id_promised(None, NOW) and not id_promised("last-", NOW)


def test_every_value_the_standard_allows_is_accepted_and_the_others_named():
    allowed = m("a", provided_until="none", uuid_validity="none")
    assert problems(allowed) == []
    for value in ("notice", "forever", "2030-01-01"):
        assert problems(m("a", uuid_validity=value)) == []
    assert problems(m("a", image_build_date="2029-13-45")) == [
        "image_build_date = '2029-13-45' is not as the SCS image metadata standard says:"
        " ignored"]
    long = "x" * 50
    assert problems(m("a", uuid_validity=long)) == [
        f"uuid_validity = {'x' * 40!r} is not as the SCS image metadata standard says: ignored"]


def test_the_end_of_life_lines_in_full():
    expired = m("a", provided_until="2029-06-30", replace_frequency="monthly",
                image_build_date="2029-01-01", uuid_validity="soon")
    copy = r("a", status="deactivated")
    others = [r("b"), r("a", status="queued", id_="r-q"), r("a", owner="another", id_="r-x")]
    result = plan([expired], [*others, copy], only_tenant_images=True)
    assert result.warnings[0] == (
        "image a: uuid_validity = 'soon' is not as the SCS image metadata standard says:"
        " ignored")
    got = [(s.status, s.region, s.master_id, s.regional_id, s.reason)
           for s in result.statuses if s.name == "a"][1:]
    assert got == [
        (Status.INFO_END_OF_LIFE, "RegionA", "m-a", copy.id,
         "past its provided_until 2029-06-30 (SCS image metadata); removal_policy = keep: its"
         " copies are kept"),
        (Status.INFO_REPLACEMENT_OVERDUE, "RegionA", "m-a", copy.id,
         "built 2029-01-01, replace_frequency = monthly: a new image was due 2029-02-01 (SCS"
         " image metadata)")]
    active = plan([expired], [r("a")])
    assert {s.regional_id for s in active.statuses if s.name == "a"} == {"r-a-c1"}
    alone = plan([expired], [])
    assert [s.regional_id for s in alone.statuses if s.name == "a"][1:] == [None, None]
    retired = plan([expired], [r("a")], removal_policy="hide")
    line = retired.status_of("a")
    assert (line.master_id, line.reason) == (
        "m-a", "past its provided_until 2029-06-30 (SCS image metadata): no longer"
        " synchronised; its copies get removal_policy = hide (after removal_grace_hours)")


def test_every_promised_copy_of_every_plan_is_kept_and_counted():
    def copy(name, **fields):
        image = r(name, **fields)
        image.properties = {"uuid_validity": "forever"}
        return image
    masters = [m(n, provided_until="2029-06-30") for n in ("a", "b", "c", "x:y")]
    doomed = r("a")  # no promise: deleted
    regional = [doomed, copy("b", os_hidden=True), copy("c"), copy("x:y", os_hidden=True)]
    result = plan(masters, regional, removal_policy="delete", removal_grace_hours=0)
    assert keep_promised_ids([result], {}, NOW) == 3
    assert [(op.kind, op.regional.name) for op in result.operations] == [
        (OperationKind.DELETE, "a"), (OperationKind.HIDE, "c")]
    hide = result.operations[1]
    assert hide.changes == {"os_hidden": True, "glancesync.retired": "hide"}
    assert hide.reason == ("master image c (m-c) is no longer selected for this target"
                           " (removal_policy = delete); hidden, not deleted: uuid_validity ="
                           " forever promises its id")
    retired = [s for s in result.statuses if s.status is Status.OK_RETIRED]
    assert [s.reason for s in retired] == [
        f"master image {n} (m-{n}) is no longer selected for this target; hidden, not deleted:"
        " uuid_validity = forever promises its id" for n in ("b", "x:y")]


def test_the_promise_is_the_copy_s_else_its_master_s_and_only_for_a_delete():
    from glancesync.plan.endoflife import promise
    from glancesync.plan.model import Operation
    master = m("a", uuid_validity="notice")
    plain = r("a")
    assert promise(Operation(OperationKind.DELETE, "a", regional=plain), {"m-a": master}) \
        == "notice"
    assert promise(Operation(OperationKind.DELETE, "a", regional=plain), {}) is None
    assert promise(Operation(OperationKind.DELETE, "a", regional=r("a", provenance=None)),
                   {"m-a": master}) is None
    own = r("a")
    own.properties = {"uuid_validity": "forever"}
    assert promise(Operation(OperationKind.HIDE, "a", regional=own), {}) is None
    assert promise(Operation(OperationKind.DELETE, "a"), {}) is None
