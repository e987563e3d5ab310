"""GlanceSync.sync_images: a sync of named master images, with the whole machinery.

On the demo federation of local regions (see test_facade_local): what the
watcher of issue 24 will ask for each event (one master image id, every
covered region), and ``--image`` uses the same path.
"""
from __future__ import annotations

import logging

import pytest

from glancesync.errors import ExitStatus, UsageError
from glancesync.facade import GlanceSync
from glancesync.plan import Status

from tests.unit.test_facade_local import (Federation, data, facade, federation,  # noqa: F401
                                          template)


def master_id(federation: Federation, name: str) -> str:
    (image,) = federation.named("Master", name)
    return image.id


def names(federation: Federation, region: str) -> list[str]:
    return sorted(i.name for i in federation.images(region))


def reopened(federation: Federation, *overrides: str) -> GlanceSync:
    with open(federation.config) as stream:
        return GlanceSync(stream, progress=False, overrides=list(overrides))


def test_a_new_image_is_uploaded_alone_to_every_region(federation, facade):
    ubuntu = master_id(federation, "ubuntu-22.04")
    result = facade.sync_images([ubuntu], ["RegionA", "RegionC"])
    assert result.exit_status == ExitStatus.OK and result.image_ids == (ubuntu,)
    assert names(federation, "RegionA") == ["ubuntu-22.04"]
    for region, outcome in result.results.items():
        assert [o.name for o in outcome.outcomes] == ["ubuntu-22.04"], region
    # every other image is left alone: a full dry run still has them to do
    assert not facade.sync(["RegionA"], dry_run=True).plans["master:RegionA"].in_sync


def test_an_image_brings_the_kernel_and_ramdisk_its_upload_needs(federation, facade):
    machine = master_id(federation, "cirros-machine")
    result = facade.sync_images([machine], ["RegionA"])
    assert result.exit_status == ExitStatus.OK
    assert names(federation, "RegionA") == ["cirros-kernel", "cirros-machine",
                                            "cirros-ramdisk"]
    plan = result.plans["master:RegionA"]
    assert any("cirros-kernel included" in warning for warning in plan.warnings)


def test_a_changed_image_is_updated_and_no_other(federation, facade):
    assert facade.sync(["RegionA"]).exit_status == ExitStatus.OK
    master = federation.adapter("Master")
    for name in ("debian-12", "ubuntu-22.04"):
        (image,) = [i for i in master.list_images() if i.name == name]
        master.update_image(image.id, {"nid": "new"})
    master.close()
    result = facade.sync_images([master_id(federation, "debian-12")], ["RegionA"])
    assert result.results["master:RegionA"].updated == 1
    still = {s.name: s.status for s in facade.get_status("RegionA")}
    assert still["debian-12"] is Status.OK and still["ubuntu-22.04"] is Status.PENDING_METADATA


def test_a_deleted_image_s_copies_go_through_the_lifecycle_and_its_guards(federation, facade):
    assert facade.sync().exit_status == ExitStatus.OK
    debian, ubuntu = master_id(federation, "debian-12"), master_id(federation, "ubuntu-22.04")
    master = federation.adapter("Master")
    master.delete_image(debian)
    master.delete_image(ubuntu)
    master.close()
    regions = ("RegionA", "RegionB", "RegionC")
    # Three regions, one copy each: 3 removal steps of debian-12 only (ubuntu's not counted).
    with reopened(federation, "removal_policy=delete", "removal_grace_hours=0",
                  "max_deletes=2") as held:
        result = held.sync_images([debian])
        assert result.exit_status == ExitStatus.NEEDS_OPERATOR
        lines = [s for plan in result.plans.values() for s in plan.statuses]
        assert {(s.name, s.status) for s in lines} == {("debian-12", Status.ERROR_MAX_DELETES)}
        assert all("debian-12" in names(federation, region) for region in regions)
    with reopened(federation, "removal_policy=delete", "removal_grace_hours=0",
                  "max_deletes=3") as allowed:
        result = allowed.sync_images([debian])
        assert result.exit_status == ExitStatus.OK
        assert sum(r.deleted for r in result.results.values()) == 3
    for region in regions:
        assert "debian-12" not in names(federation, region)
        assert "ubuntu-22.04" in names(federation, region)


def test_a_deleted_image_within_its_grace_period_is_only_marked(federation, facade):
    assert facade.sync(["RegionA"]).exit_status == ExitStatus.OK
    debian = master_id(federation, "debian-12")
    master = federation.adapter("Master")
    master.delete_image(debian)
    master.close()
    with reopened(federation, "removal_policy=delete") as gs:
        result = gs.sync_images([debian], ["RegionA"])
    (line,) = result.plans["master:RegionA"].statuses
    assert line.status is Status.INFO_REMOVAL_GRACE
    assert "debian-12" in names(federation, "RegionA")


def test_an_image_that_is_not_selected_changes_nothing(federation, facade, caplog):
    private = master_id(federation, "tools-private")
    before = federation.snapshot()
    with caplog.at_level(logging.INFO, logger="glancesync.facade"):
        result = facade.sync_images([private])
    assert result.exit_status == ExitStatus.OK
    assert all(plan.statuses == [] and plan.operations == [] for plan in result.plans.values())
    assert federation.snapshot() == before
    assert f"image {private}: nothing to do in 3 region(s)" in caplog.text


def test_hostile_ids_change_nothing(federation, facade):
    regional = federation.add("RegionA", "not-a-master-image", data("r"))
    before = federation.snapshot()
    result = facade.sync_images([regional.id, "x" * 100_000, "../../etc/passwd", "'; DROP"])
    assert result.exit_status == ExitStatus.OK
    assert federation.snapshot() == before


def test_a_dry_run_of_named_images_changes_nothing_and_says_what_it_would_do(federation,
                                                                               facade):
    ubuntu = master_id(federation, "ubuntu-22.04")
    before = federation.snapshot()
    result = facade.sync_images([ubuntu], ["RegionA"], dry_run=True)
    assert result.exit_status == ExitStatus.PENDING and result.dry_run
    assert [op.name for op in result.plans["master:RegionA"].operations] == ["ubuntu-22.04"]
    assert federation.snapshot() == before


def test_no_image_id_is_a_usage_error_not_a_sync_of_everything(federation, facade):
    before = federation.snapshot()
    for ids in ([], [""]):
        with pytest.raises(UsageError, match="at least one master image"):
            facade.sync_images(ids)
    assert federation.snapshot() == before


def test_the_status_of_named_images(federation, facade):
    ubuntu = master_id(federation, "ubuntu-22.04")
    report = facade.status(["RegionA"], image_ids=[ubuntu])
    assert report.image_ids == (ubuntu,)
    assert [(s.name, s.status) for s in report.statuses] == [
        ("ubuntu-22.04", Status.PENDING_UPLOAD)]


def test_an_image_no_longer_selected_has_its_copies_retired(federation, facade):
    assert facade.sync(["RegionA"]).exit_status == ExitStatus.OK
    ubuntu = master_id(federation, "ubuntu-22.04")
    master = federation.adapter("Master")
    master.update_image(ubuntu, {"visibility": "private"})
    master.close()
    with reopened(federation, "removal_policy=hide", "removal_grace_hours=0") as gs:
        result = gs.sync_images([ubuntu], ["RegionA"])
    assert result.results["master:RegionA"].retired == 1
    (line,) = result.plans["master:RegionA"].statuses
    assert line.status is Status.PENDING_REMOVAL and "no longer selected" in line.reason
    (copy,) = federation.named("RegionA", "ubuntu-22.04")
    assert copy.os_hidden
