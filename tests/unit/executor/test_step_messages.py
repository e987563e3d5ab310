"""glancesync.executor.steps: what each step tells the operator, and what it counts.

The log lines of the steps are the operator's account of what a sync did to
a region (and why it left an image alone): their words are pinned here, as
are the counters that the region's summary adds up over a run (issue 27:
mutants that changed them passed every test). Real local regions.
"""
from __future__ import annotations

import dataclasses
import logging

import pytest

from glancesync.executor import Executor
from glancesync.executor import steps
from glancesync.executor.results import RegionResult
from glancesync.plan.model import Operation, OperationKind

from tests.scenarios import put
from tests.unit.executor.regions import Recording

REGION = "master:RegionA"


@pytest.fixture
def region(tmp_path):
    return Recording(REGION, tmp_path / "RegionA")


def run_of(region, dry_run=False):
    return Executor(region, None, dry_run=dry_run, progress=False)


def lines(caplog) -> list[tuple[str, str]]:
    """(level, message) of the executor's records (formatting them: a missing or
    extra argument fails here)."""
    return [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "glancesync.executor"]


@pytest.fixture
def caplog(caplog):
    caplog.set_level(logging.DEBUG, logger="glancesync.executor")
    return caplog


def test_an_update_says_what_it_changes_and_why_and_counts_each(region, caplog):
    image = put(region, "vm", b"x")
    run = run_of(region)
    run.new_ids["k"] = "kernel-id"
    result = RegionResult(REGION)
    op = Operation(OperationKind.UPDATE_METADATA, "vm", regional=image,
                   changes={"type": "y"}, ami_refs={"kernel_id": "k"},
                   reason="metadata differs")
    steps.update(run, op, result)
    plain = dataclasses.replace(op, reason="", changes={"type": "z"}, ami_refs={},
                                remove=("old",))
    steps.update(run, plain, result)
    assert lines(caplog) == [
        ("INFO", f"{REGION}: updating image vm (kernel_id=kernel-id, type=y): metadata differs"),
        ("INFO", f"{REGION}: updating image vm (type=z, -old)"),
    ]
    assert result.updated == 2


def test_an_update_shares_the_image_it_updates(region, caplog):
    other = put(region, "other", b"y", visibility="shared")
    region.add_member(other.id, "p-gone")  # shared first: only this image's share goes
    image = put(region, "vm", b"x", visibility="shared")
    region.add_member(image.id, "p-gone")
    result = RegionResult(REGION)
    op = Operation(OperationKind.UPDATE_METADATA, "vm", regional=image,
                   add_members=("p-new",), remove_members=("p-gone",))
    steps.update(run_of(region), op, result)
    assert [m for m in region.list_members(image.id)] == ["p-new"]
    assert region.list_members(other.id) == ["p-gone"]
    assert lines(caplog) == [
        ("INFO", f"{REGION}: sharing image vm with project p-new"),
        ("INFO", f"{REGION}: unsharing image vm from project p-gone"),
    ]
    assert result.updated == 1


def test_a_reactivation_says_which_copy(region, caplog):
    image = put(region, "vm", b"x")
    region.deactivate_image(image.id)
    op = Operation(OperationKind.REACTIVATE, "vm", regional=image)
    steps.reactivate(run_of(region), op, RegionResult(REGION))
    assert region.get_image(image.id).status == "active"
    assert lines(caplog)[0] == ("INFO", f"{REGION}: reactivating image vm ({image.id})")


def test_an_obsolete_copy_is_renamed_or_only_updated_as_planned(region, caplog):
    image = put(region, "vm", b"x")
    result = RegionResult(REGION)
    rename = Operation(OperationKind.OBSOLETE_RENAME, "vm_obsolete", regional=image,
                       changes={"name": "vm_obsolete"})
    steps.obsolete(run_of(region), rename, result)
    renamed = region.get_image(image.id)
    update = Operation(OperationKind.OBSOLETE_UPDATE, "vm_obsolete", regional=renamed,
                       changes={"type": "old"})
    steps.obsolete(run_of(region), update, result)
    assert lines(caplog) == [
        ("INFO", f"{REGION}: renaming image vm to vm_obsolete (name=vm_obsolete)"),
        ("INFO", f"{REGION}: updating obsolete image vm_obsolete (type=old)"),
    ]
    assert result.obsoleted == 2
    assert region.get_image(image.id).properties["type"] == "old"


@pytest.mark.parametrize("kind, verb", [(OperationKind.DELETE, "deleting"),
                                        (OperationKind.HIDE, "hiding"),
                                        (OperationKind.DEACTIVATE, "deactivating")])
def test_a_removal_step_names_the_copy_and_the_reason(region, caplog, kind, verb):
    image = put(region, "a", b"x")
    changes = {"os_hidden": True} if kind is OperationKind.HIDE else {"m": "x"}
    op = Operation(kind, "a", regional=image, changes=changes, reason="its master is gone")
    steps.remove(run_of(region), op, RegionResult(REGION))
    assert lines(caplog)[-1] == ("INFO", f"{REGION}: {verb} image a ({image.id}):"
                                         " its master is gone")
    if kind is OperationKind.DEACTIVATE:  # its mark first (a debug line)
        assert lines(caplog)[-2] == ("DEBUG", f"{REGION}: marking image a (m=x)")


def test_removal_steps_count_each_copy(region):
    result = RegionResult(REGION)
    for kind in (OperationKind.DELETE, OperationKind.DELETE, OperationKind.HIDE,
                 OperationKind.DEACTIVATE):
        image = put(region, "a", b"x")
        changes = {"os_hidden": True} if kind is OperationKind.HIDE else {"m": "x"}
        steps.remove(run_of(region), Operation(kind, "a", regional=image, changes=changes,
                                               reason="gone"), result)
    assert (result.deleted, result.retired) == (2, 2)


def test_a_removal_step_says_a_copy_already_gone_is_left(region, caplog):
    image = put(region, "a", b"x")
    region.delete_image(image.id)
    result = RegionResult(REGION)
    steps.remove(run_of(region), Operation(OperationKind.DELETE, "a", regional=image,
                                           reason="gone"), result)
    assert lines(caplog) == [("INFO", f"{REGION}: image a ({image.id}) is already gone")]
    assert result.deleted == 0


def test_a_removal_step_names_every_field_changed_since_the_plan(region, caplog):
    image = put(region, "a", b"x")
    region.update_image(image.id, {"protected": True})
    planned = dataclasses.replace(image, name="was", owner="another")
    steps.remove(run_of(region), Operation(OperationKind.DELETE, "a", regional=planned,
                                           reason="gone"), RegionResult(REGION))
    assert lines(caplog) == [
        ("WARNING", f"{REGION}: image a ({image.id}) changed since it was listed"
                    " (name, owner, protected): left alone")]


def test_a_clean_up_says_what_it_deletes_and_counts_each(region, caplog):
    result = RegionResult(REGION)
    ids = []
    for _ in range(2):
        leftover = region.create_image("a", disk_format="raw", container_format="bare")
        ids.append(leftover.id)
        op = Operation(OperationKind.CLEANUP, "a", regional=region.get_image(leftover.id))
        steps.cleanup(run_of(region), op, result)
    assert result.cleaned == 2 and region.list_images() == []
    assert lines(caplog) == [("INFO", f"{REGION}: deleting leftover queued image a ({i})")
                             for i in ids]


def test_a_clean_up_says_why_it_leaves_a_changed_leftover(region, caplog):
    leftover = region.create_image("a", disk_format="raw", container_format="bare")
    listed = dataclasses.replace(region.get_image(leftover.id), name="before")
    result = RegionResult(REGION)
    steps.cleanup(run_of(region), Operation(OperationKind.CLEANUP, "a", regional=listed),
                  result)
    assert lines(caplog) == [("INFO", f"{REGION}: leftover queued image a ({leftover.id})"
                                      " changed since it was listed (now queued): left alone")]
    assert (result.cleaned, result.uncleaned) == (0, 0)


def test_a_clean_up_says_a_leftover_already_gone_is_left(region, caplog):
    leftover = region.create_image("a", disk_format="raw", container_format="bare")
    listed = region.get_image(leftover.id)
    region.delete_image(leftover.id)
    steps.cleanup(run_of(region), Operation(OperationKind.CLEANUP, "a", regional=listed),
                  RegionResult(REGION))
    assert lines(caplog) == [("INFO", f"{REGION}: leftover queued image a ({leftover.id})"
                                      " is already gone")]


def test_a_leftover_that_cannot_be_deleted_is_a_warning_counted_each_time(region, caplog):
    result = RegionResult(REGION)
    for _ in range(2):
        leftover = region.create_image("a", disk_format="raw", container_format="bare",
                                       protected=True)
        op = Operation(OperationKind.CLEANUP, "a", regional=region.get_image(leftover.id))
        steps.cleanup(run_of(region), op, result)
        (level, message) = lines(caplog)[-1]
        assert level == "WARNING"
        assert message.startswith(f"{REGION}: could not delete leftover queued image a"
                                  f" ({leftover.id}): ")
        assert message.endswith("; it is left for the next run")
        assert "protected" in message.lower()
    assert (result.cleaned, result.uncleaned) == (0, 2)
    assert len(region.list_images()) == 2


def test_a_dry_run_says_what_it_would_do_in_the_verbs_base_form(region, caplog):
    image = put(region, "a", b"x")
    op = Operation(OperationKind.HIDE, "a", regional=image, changes={"os_hidden": True},
                   reason="gone")
    steps.remove(run_of(region, dry_run=True), op, RegionResult(REGION))
    assert lines(caplog) == [("INFO", f"{REGION}: would hide image a ({image.id}): gone")]


def test_an_update_waiting_for_a_failed_kernel_names_its_image(region):
    from glancesync.errors import GlanceSyncError
    image = put(region, "vm", b"x")
    op = Operation(OperationKind.UPDATE_METADATA, "vm", regional=image,
                   ami_refs={"kernel_id": "k"})
    with pytest.raises(GlanceSyncError) as failed:
        steps.update(run_of(region), op, RegionResult(REGION))
    assert (failed.value.region, failed.value.image) == (REGION, "vm")
    assert failed.value.message == "kernel_id image k was not synchronised in this run"
