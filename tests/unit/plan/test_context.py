"""glancesync.plan.context: what the steps of a plan share, and how the plan is assembled."""
from __future__ import annotations

import logging

from glancesync.plan.context import Phase, parse_time, reason_keys
from glancesync.plan.model import ImageStatus, Operation, OperationKind, Status

from tests.unit.plan.builders import NOW, context, m, r


def line(name: str, status: Status = Status.OK) -> ImageStatus:
    return ImageStatus(status, "RegionA", name, None, None)


def test_lines_are_by_name_a_name_s_own_status_first_and_last_lines_after_all():
    ctx = context()
    ctx.add_line(line("b", Status.PENDING_CLEANUP))
    ctx.add_line(line("a", Status.PENDING_REMOVAL), last=True)
    ctx.set_status(Status.PENDING_UPLOAD, "b", None, None, "")
    ctx.set_status(Status.OK, "c", None, None, "")
    ctx.add_line(line("a", Status.PENDING_CLEANUP))
    plan = ctx.finish()
    assert [(s.name, s.status) for s in plan.statuses] == [
        ("a", Status.PENDING_CLEANUP), ("b", Status.PENDING_UPLOAD),
        ("b", Status.PENDING_CLEANUP), ("c", Status.OK), ("a", Status.PENDING_REMOVAL)]


def test_operations_go_phase_by_phase_in_the_order_each_phase_got_them():
    ctx = context()
    op = {name: Operation(OperationKind.UPDATE_METADATA, name) for name in "abcdef"}
    ctx.add(Phase.REMOVAL, [op["a"]])
    ctx.add(Phase.UPLOAD, [op["b"], op["c"]])
    ctx.add(Phase.METADATA, [op["d"]])
    ctx.add(Phase.UPLOAD, [op["e"]])
    ctx.add(Phase.LIFECYCLE, [op["f"]])
    assert [o.name for o in ctx.finish().operations] == ["d", "b", "c", "e", "f", "a"]


def test_the_removal_phase_is_the_last():
    assert max(Phase) is Phase.REMOVAL and min(Phase) is Phase.METADATA


def test_warnings_begin_with_the_master_selection_s_and_are_logged(caplog):
    ctx = context([m("a"), m("a", id_="m-a2")])  # one name, two images: the selection warns
    with caplog.at_level(logging.WARNING, logger="glancesync.plan"):
        ctx.warn("mine")
    assert len(ctx.warnings) == 2 and ctx.warnings[-1] == "mine"
    assert ctx.finish().warnings == ctx.warnings
    assert "RegionA: mine" in caplog.text


def test_ownership_visibility_and_members_follow_the_policy():
    mine, theirs = r("a"), r("b", owner="another")
    ctx = context(only_tenant_images=True, members={"p": ("p", "q")})
    assert ctx.own(mine) and not ctx.own(theirs)
    assert ctx.visible(mine) and not ctx.visible(theirs)
    assert ctx.members is None  # sync_members is off
    ctx = context(only_tenant_images=False, sync_members=True, members={"p": ("p", "q")})
    assert ctx.visible(theirs) and ctx.members == {"p": ("p", "q")}


def test_synchronised_names_and_ids_come_from_the_selection():
    ctx = context([m("a"), m("b", visibility="private"), m("c_obsolete")])
    assert set(ctx.synced) == {"a"} and set(ctx.synced_by_id) == {"m-a"}


def test_parse_time_and_reason_keys():
    assert parse_time("2030-01-01T12:00:00Z") == NOW
    assert parse_time("2030-01-01T12:00:00") == NOW  # no zone: UTC
    assert parse_time("soon") is None and parse_time(None) is None
    assert reason_keys(["b", "glancesync.master_image_id", "a"]) == ["a", "b"]


def test_parse_time_gives_utc_whatever_the_offset():
    parsed = parse_time("2030-01-01T13:00:00+01:00")
    assert parsed == NOW and parsed.utcoffset().total_seconds() == 0
    assert f"{parsed:%H:%M}" == "12:00"


def test_an_error_is_logged_as_an_error_with_the_region_first(caplog):
    ctx = context()
    with caplog.at_level(logging.WARNING, logger="glancesync.plan"):
        ctx.warn("careful")
        ctx.needs_operator("act")
    assert [(rec.levelno, rec.getMessage()) for rec in caplog.records] == [
        (logging.WARNING, "RegionA: careful"), (logging.ERROR, "RegionA: act")]
    assert ctx.warnings == ["careful", "act"]


def test_a_fresh_context_has_nothing_set_aside_and_its_plan_names_the_region():
    ctx = context()
    assert ctx.aside == [] and ctx.finish().region == "RegionA"


def test_only_an_upper_case_z_is_read_as_utc():
    # Glance and GlanceSync write "Z"; anything else is not a time they wrote.
    assert parse_time("2030-01-01T12:00:00z") is None


def test_parse_time_gives_utc_whatever_this_host_s_zone(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        parsed = parse_time("2030-01-01T13:00:00+01:00")
        assert f"{parsed:%H:%M}" == "12:00" and parsed.utcoffset().total_seconds() == 0
    finally:
        monkeypatch.undo()
        time.tzset()
