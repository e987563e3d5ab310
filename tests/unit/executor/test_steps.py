"""glancesync.executor.steps: metadata, removal and clean-up steps on a real local region."""
from __future__ import annotations

import pytest

from glancesync.errors import GlanceSyncError
from glancesync.executor import Executor
from glancesync.executor import steps
from glancesync.executor.results import RegionResult
from glancesync.plan.model import Operation, OperationKind

from tests.scenarios import put
from tests.unit.executor.regions import Recording


@pytest.fixture
def region(tmp_path):
    return Recording("master:RegionA", tmp_path / "RegionA")


def run_of(region, dry_run=False):
    return Executor(region, None, dry_run=dry_run, progress=False)


def test_an_update_resolves_the_kernel_uploaded_earlier_in_the_run(region):
    image = put(region, "vm", b"x")
    run = run_of(region)
    run.new_ids["k"] = "kernel-id"
    op = Operation(OperationKind.UPDATE_METADATA, "vm", regional=image,
                   changes={"type": "y"}, ami_refs={"kernel_id": "k"})
    result = RegionResult("master:RegionA")
    steps.update(run, op, result)
    assert region.changes[-1] == ("update", {"type": "y", "kernel_id": "kernel-id"})
    assert result.updated == 1


def test_an_update_waiting_for_a_kernel_that_failed_fails(region):
    image = put(region, "vm", b"x")
    op = Operation(OperationKind.UPDATE_METADATA, "vm", regional=image,
                   ami_refs={"kernel_id": "k"})
    with pytest.raises(GlanceSyncError, match="kernel_id image k was not synchronised"):
        steps.update(run_of(region), op, RegionResult("master:RegionA"))


def test_a_removal_step_leaves_a_copy_changed_since_the_plan_alone(region):
    image = put(region, "a", b"x")
    region.update_image(image.id, {"name": "renamed"})
    region.changes.clear()
    op = Operation(OperationKind.DELETE, "a", regional=image, reason="gone")
    result = RegionResult("master:RegionA")
    steps.remove(run_of(region), op, result)
    assert region.changes == [] and result.deleted == 0


def test_a_deactivation_marks_the_copy_first(region):
    image = put(region, "a", b"x")
    region.changes.clear()
    op = Operation(OperationKind.DEACTIVATE, "a", regional=image,
                   changes={"glancesync.retired": "deactivate"}, reason="gone")
    result = RegionResult("master:RegionA")
    steps.remove(run_of(region), op, result)
    assert region.changes == [("update", {"glancesync.retired": "deactivate"})]
    assert region.get_image(image.id).status == "deactivated" and result.retired == 1


def test_a_dry_run_step_changes_nothing(region):
    image = put(region, "a", b"x")
    region.changes.clear()
    op = Operation(OperationKind.HIDE, "a", regional=image, changes={"os_hidden": True},
                   reason="gone")
    steps.remove(run_of(region, dry_run=True), op, RegionResult("master:RegionA"))
    assert region.changes == [] and region.get_image(image.id).os_hidden is False


def test_a_leftover_that_cannot_be_deleted_is_left_for_the_next_run(region):
    leftover = region.create_image("a", disk_format="raw", container_format="bare")
    region.delete_image(leftover.id)
    op = Operation(OperationKind.CLEANUP, "a", regional=leftover)
    result = RegionResult("master:RegionA")
    steps.cleanup(run_of(region), op, result)  # gone already: nothing to count
    assert (result.cleaned, result.uncleaned) == (0, 0)
