"""Copies GlanceSync takes for its own, on the test bed's real Glance (issue 21, cases 5, 6, 13).

Case 5: with ``only_tenant_images = false`` and ``transfer = glance-download``,
another project's ``ok`` image was offered as the source of RegionB's copy;
Glance copies the source's ``hw_*``, ``trait:*``, ``os_secure_boot``... on
import, and the new public copy kept the tenant's. Only GlanceSync's own
copies relay, and a server-side copy's properties are made exactly the
planned ones (what Glance copied and the plan did not ask for is removed).

Case 6: with ``only_tenant_images = false`` and ``convert_to``, a tenant's
image carrying a forged ``glancesync.*`` provenance record was taken for the
converted copy (``ok``) and the real copy was never uploaded.

Case 13: a relay whose stored bytes are corrupt (its API still shows the
master's hashes) was chosen again and again, the copy failed verification
with no fall-back to streaming, and the error named the master. The copy
is now streamed instead, the relay named, and offered no more.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.image import Provenance, content_hash
from glancesync.plan import Status
from tests.integration.test_transfer_testbed import (MIB, Bed, _add_qcow2, assert_in_sync,
                                                     facade)

pytestmark = pytest.mark.integration

REGIONS = ["RegionA", "RegionB"]
#: What the tenant set on its own image, and Glance copies on import.
TENANT_PROPERTIES = {"os_secure_boot": "disabled", "hw_firmware_type": "bios",
                     "trait:CUSTOM_TENANT": "required", "hw_disk_bus": "ide"}


@pytest.fixture
def bed(testbed, monkeypatch, tmp_path):
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Bed(testbed)
    yield made
    made.clean()


def alice(bed: Bed, region: str) -> GlanceRegionAdapter:
    """``region`` as alice (project alpha, role member) sees it: a tenant."""
    cloud = bed.info.clouds["master-alice"]
    session = ksa_session.Session(auth=v3.Password(
        **{k: v for k, v in cloud.items() if k != "project_id"}))
    return GlanceRegionAdapter(f"master:{region}", session, region,
                               bed.info.project_id("master-alice"))


def test_a_tenants_image_never_relays_and_a_copy_gets_only_the_planned_properties(
        bed, tmp_path, caplog):
    master, data = bed.add_master("tenant", 2 * MIB, os_distro="debian")
    tenant = alice(bed, "RegionA")
    image = tenant.create_image(master.name, visibility="shared", disk_format="raw",
                                container_format="bare", properties=TENANT_PROPERTIES)
    planted = tenant.upload_data(image.id, [data], len(data))
    assert master.same_content(planted)
    with facade(bed, tmp_path, transfer="glance-download", only_tenant_images="false") as gs, \
            caplog.at_level(logging.INFO, logger="glancesync.executor"):
        plan_a = gs.status(["RegionA"]).plans["master:RegionA"]
        assert plan_a.statuses[0].status is Status.OK  # same bytes, the tenant's
        assert plan_a.relays == {}
        result = gs.sync(REGIONS)  # RegionA first: its image could have relayed
        assert result.exit_status == 0
        assert result.results["master:RegionB"].copied_server_side == 1
        assert f"master:RegionB: importing image {master.name}" in caplog.text
        assert "from RegionA" not in caplog.text
    (copy,) = [i for i in bed.mine("RegionB") if i.owner != planted.owner]
    assert master.same_content(copy) and copy.visibility == "public"
    assert copy.properties == master.properties  # nothing of the tenant's


def test_a_copy_from_the_master_loses_what_metadata_set_does_not_ask_for(bed, tmp_path):
    """Variant: the source is the master itself, and ``metadata_set`` names only
    some of its properties: what Glance copied beyond them is removed."""
    master, _ = bed.add_master("metaset", 2 * MIB, os_distro="debian", gs_wanted="yes",
                               hw_firmware_type="uefi", os_secure_boot="required")
    with facade(bed, tmp_path, transfer="glance-download", metadata_set="gs_wanted") as gs:
        result = gs.sync(["RegionA"])
        assert result.exit_status == 0
        assert result.results["master:RegionA"].copied_server_side == 1
        (copy,) = bed.mine("RegionA")
        # os_distro: an upload always carries it; the hw_/os_secure_boot ones are not asked.
        assert copy.properties == {"os_distro": "debian", "gs_wanted": "yes"}
        assert gs.status(["RegionA"]).statuses[0].status is Status.OK


def corrupt_stored_data(bed: Bed, region: str, image_id: str) -> None:
    """Flip bytes of the image's file in the region's file store (same size)."""
    path = Path(bed.info.run_dir) / f"glance-{region}" / "images" / image_id
    with open(path, "r+b") as stored:
        stored.seek(1000)
        stored.write(os.urandom(64))


def test_a_corrupt_relay_is_named_and_the_copy_streamed_instead(bed, tmp_path, caplog):
    master, _ = bed.add_master("corrupt", 3 * MIB)
    with facade(bed, tmp_path, transfer="glance-download") as gs:
        assert gs.sync(["RegionA"]).exit_status == 0
        (relay,) = bed.mine("RegionA")
        assert gs.status(["RegionA"]).plans["master:RegionA"].relays == {master.id: relay.id}
        corrupt_stored_data(bed, "RegionA", relay.id)
        with caplog.at_level(logging.INFO):
            result = gs.sync(REGIONS)  # RegionA is ok and relays RegionB's copy
        assert result.exit_status == 0, result.failures
        region_b = result.results["master:RegionB"]
        assert region_b.uploaded == 1 and region_b.copied_server_side == 0
        assert region_b.bytes_uploaded == master.size  # streamed after all
        assert f"from RegionA (the copy {relay.id} made there) failed" in caplog.text
        assert (f"made from RegionA's image {relay.id} does not hold the master's bytes"
                in caplog.text)
        assert_in_sync(bed, gs, master, regions=("RegionB",))


def test_a_tenants_forged_record_is_not_taken_for_the_converted_copy(bed, tmp_path):
    master, _ = _add_qcow2(bed, tmp_path, "forged", os.urandom(2 * MIB))
    record = Provenance.of(master, "Master").stamped().as_properties()
    tenant = alice(bed, "RegionA")
    forged = tenant.create_image(master.name, visibility="shared", disk_format="raw",
                                 container_format="bare", properties=record)
    forged = tenant.upload_data(forged.id, [b"not the master's content" * 1000], 24000)
    assert forged.provenance is not None and forged.provenance.is_copy_of(master)
    with facade(bed, tmp_path, transfer="stream", convert_to="raw",
                only_tenant_images="false") as gs:
        assert gs.status(["RegionA"]).statuses[0].status is Status.PENDING_UPLOAD
        assert gs.sync(["RegionA"]).exit_status == 0
        (copy,) = [i for i in bed.mine("RegionA") if i.id != forged.id]
        assert copy.disk_format == "raw" and copy.owner != forged.owner
        assert copy.provenance.copy_hash == content_hash(copy)
        status = gs.status(["RegionA"]).statuses[0]
        assert (status.status, status.regional_id) == (Status.OK, copy.id)
