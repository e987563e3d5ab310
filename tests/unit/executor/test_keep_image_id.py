"""glancesync.executor.upload: keep_image_id, the copy created under the master's id (issue 27).

The region may refuse the id (used before: Glance never reuses an id, or an
image this project cannot see holds it): the copy gets a new id and the
image's status says why. Real local regions (which refuse a used id, as
Glance does).
"""
from __future__ import annotations

import dataclasses
import logging

import pytest

from glancesync.executor import Executor
from glancesync.executor.results import RegionResult
from glancesync.executor.upload import Upload
from glancesync.plan.model import ImageStatus, RegionPlan, Status

from tests.engine import DirectSource
from tests.scenarios import put
from tests.unit.executor.regions import Recording
from tests.unit.executor.test_upload import upload_op

REGION = "master:RegionA"
DATA = b"\x05" * 2048


@pytest.fixture
def master(tmp_path):
    return Recording("master:Master", tmp_path / "Master", "p-master")


@pytest.fixture
def region(tmp_path):
    return Recording(REGION, tmp_path / "RegionA")


def plan_of(op, reason: str) -> RegionPlan:
    line = ImageStatus(Status.PENDING_UPLOAD, REGION, op.name, op.master.id, None, reason)
    return RegionPlan(REGION, statuses=[line], operations=[op])


def asked(image) -> str:
    return f"keep_image_id: to be created with id {image.id}"


def test_the_copy_is_created_under_the_masters_id(master, region, caplog):
    image = put(master, "a", DATA)
    op = dataclasses.replace(upload_op(image), image_id=image.id)
    plan = plan_of(op, f"missing in the region; {asked(image)}")
    executor = Executor(region, DirectSource(master), progress=False)
    with caplog.at_level(logging.DEBUG, logger="glancesync.executor"):
        Upload(executor, op).apply(RegionResult(REGION, plan=plan))
    assert executor.new_ids["a"] == image.id
    assert region.get_image(image.id).status == "active"
    assert plan.status_of("a").reason == (
        f"missing in the region; keep_image_id: created with id {image.id}")
    assert f"{REGION}: creating image a with id {image.id} (keep_image_id)" in [
        r.getMessage() for r in caplog.records]


def test_a_refused_id_gives_the_copy_a_new_one_and_says_why(master, region, caplog):
    image = put(master, "a", DATA)
    taken = region.create_image("other", image_id=image.id, disk_format="raw",
                                container_format="bare")
    region.changes.clear()
    op = dataclasses.replace(upload_op(image), image_id=image.id)
    plan = plan_of(op, f"missing in the region; {asked(image)}")
    executor = Executor(region, DirectSource(master), progress=False)
    with caplog.at_level(logging.DEBUG, logger="glancesync.executor"):
        Upload(executor, op).apply(RegionResult(REGION, plan=plan))
    new_id = executor.new_ids["a"]
    assert new_id != image.id and region.get_image(taken.id).name == "other"
    assert [kind for kind, _ in region.changes].count("create") == 2
    reason = plan.status_of("a").reason
    assert reason.startswith(f"missing in the region; keep_image_id: the region refused id"
                             f" {image.id} (taken by an image this project cannot see, or"
                             " used before and deleted: Glance never reuses an id; ")
    assert reason.endswith(f"); the copy gets a new id ({new_id})")
    assert asked(image) not in reason
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    why = reason[len("missing in the region; "):-len(f" ({new_id})")]
    assert ("WARNING", f"{REGION}: image a: {why}") in messages
    assert ("DEBUG", f"{REGION}: creating image a with a new id") in messages


def test_a_status_that_did_not_announce_the_id_gets_it_added(master, region):
    image = put(master, "a", DATA)
    op = dataclasses.replace(upload_op(image), image_id=image.id)
    plan = plan_of(op, "missing in the region")
    Upload(Executor(region, DirectSource(master), progress=False), op).apply(
        RegionResult(REGION, plan=plan))
    assert plan.status_of("a").reason == (
        f"missing in the region; keep_image_id: created with id {image.id}")


def test_a_dry_run_leaves_the_status_as_planned(master, region):
    image = put(master, "a", DATA)
    op = dataclasses.replace(upload_op(image), image_id=image.id)
    plan = plan_of(op, f"missing in the region; {asked(image)}")
    Upload(Executor(region, DirectSource(master), progress=False, dry_run=True), op).apply(
        RegionResult(REGION, plan=plan))
    assert plan.status_of("a").reason == f"missing in the region; {asked(image)}"
    assert region.changes == []


def test_without_keep_image_id_the_status_is_left_alone(master, region, caplog):
    image = put(master, "a", DATA)
    op = upload_op(image)
    plan = plan_of(op, "missing in the region")
    executor = Executor(region, DirectSource(master), progress=False)
    with caplog.at_level(logging.DEBUG, logger="glancesync.executor"):
        Upload(executor, op).apply(RegionResult(REGION, plan=plan))
    assert plan.status_of("a").reason == "missing in the region"
    assert executor.new_ids["a"] != image.id
    assert f"{REGION}: creating image a" in [r.getMessage() for r in caplog.records]
