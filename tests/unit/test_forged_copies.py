"""Copies recognised by their provenance record: a record proves nothing by itself.

Issue 21, case 6: with ``only_tenant_images = false`` and ``convert_to``, a
tenant's image carrying forged ``glancesync.*`` provenance was taken as the
converted copy (``ok``, owned by another project), and the real copy was
never uploaded. A copy whose content hashes cannot prove (a converted copy,
a copy of a master without hash) counts only when it is the project's own
and, for a converted copy, when its hash is the one recorded once it was
verified against the file GlanceSync made. Local regions and the real
``qemu-img``; the tenant is another project writing in the same region.
"""
from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.facade import GlanceSync
from glancesync.image import PROVENANCE_COPY_HASH, Provenance, content_hash
from glancesync.plan import Status
from tests import craftedimages, scenarios

pytestmark = pytest.mark.timeout(300)

TENANT = "tenant-project"


def facade(tmp_path: Path, *extra: str) -> GlanceSync:
    lines = "\n".join(extra)
    return GlanceSync(io.StringIO(textwrap.dedent(f"""
        [main]
        master_region = Master
        cache_dir = {tmp_path / 'cache'}
        [master]
        type = local
        path = {tmp_path / 'regions'}
        regions = Master, RegionA
        only_tenant_images = false
        """) + lines + "\n"), progress=False)


def tenant(tmp_path: Path) -> LocalRegionAdapter:
    """RegionA as another project sees it (it may create images there)."""
    return LocalRegionAdapter("master:RegionA", tmp_path / "regions" / "RegionA", TENANT)


def qcow2_master(gs: GlanceSync, tmp_path: Path):
    work = tmp_path / "craft"
    work.mkdir(exist_ok=True)
    craftedimages.qemu_img("create", "-f", "qcow2", str(work / "disk.qcow2"), "1M")
    return scenarios.put(gs.adapter("Master"), "disk", (work / "disk.qcow2").read_bytes(),
                         disk_format="qcow2")


def forged_copy(tmp_path: Path, master, disk_format: str = "raw", **extra: str):
    record = Provenance.of(master, "Master").stamped().as_properties()
    return scenarios.put(tenant(tmp_path), master.name, b"the tenant's own bytes" * 100,
                         visibility="shared", disk_format=disk_format, **record, **extra)


def test_a_tenants_image_with_forged_provenance_is_not_the_converted_copy(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    gs = facade(tmp_path, "convert_to = raw")
    master = qcow2_master(gs, tmp_path)
    forged = forged_copy(tmp_path, master)
    status = gs.status(["RegionA"]).statuses[0]
    assert status.status is Status.PENDING_UPLOAD, status.reason
    result = gs.sync(["RegionA"])
    assert result.exit_status == 0
    ours = [i for i in gs.adapter("RegionA").list_images()
            if i.name == "disk" and i.owner != TENANT]
    assert len(ours) == 1 and ours[0].disk_format == "raw"
    assert ours[0].provenance.copy_hash == content_hash(ours[0])  # what we verified
    assert gs.adapter("RegionA").get_image(forged.id).properties == forged.properties
    after = gs.status(["RegionA"]).statuses[0]
    assert after.status is Status.OK and after.regional_id == ours[0].id


def test_a_converted_copy_whose_hash_is_not_the_recorded_one_is_not_ok(tmp_path,
                                                                        monkeypatch):
    """Variant: the project's own image, a record naming the master, a copy hash
    that is not the image's (its bytes are not what GlanceSync verified)."""
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    gs = facade(tmp_path, "convert_to = raw")
    master = qcow2_master(gs, tmp_path)
    record = Provenance.of(master, "Master").stamped().as_properties()
    record[PROVENANCE_COPY_HASH] = "sha512:" + "0" * 128
    scenarios.put(gs.adapter("RegionA"), "disk", b"other bytes" * 100, **record)
    status = gs.status(["RegionA"]).statuses[0]
    assert status.status is Status.ERROR_CHECKSUM, status.reason


def test_a_tenants_forged_copy_of_a_master_without_hash_is_not_ok(tmp_path, monkeypatch):
    """Variant: ``sync_without_checksum``, whose copies are recognised by the
    hash their provenance records: a tenant writes that record on its own image."""
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    gs = facade(tmp_path, "sync_without_checksum = true")
    data = b"master data without hash" * 100
    master = scenarios.put(gs.adapter("Master"), "nohash", data)
    store = LocalRegionAdapter("master:Master", tmp_path / "regions" / "Master",
                               "local-project")
    store.writable_store.image_update(store.context, master.id, {
        "checksum": None, "os_hash_algo": None, "os_hash_value": None})
    master = store.get_image(master.id)
    assert content_hash(master) is None
    forged = scenarios.put(tenant(tmp_path), "nohash", b"X" * len(data), visibility="shared")
    record = Provenance(master.id, "Master", content_hash(forged)).stamped()
    tenant(tmp_path).update_image(forged.id, record.as_properties())
    status = gs.status(["RegionA"]).statuses[0]
    assert status.status is Status.PENDING_UPLOAD, status.reason
