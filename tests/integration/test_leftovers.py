"""Leftovers on a real Glance: only GlanceSync's own are cleaned (issue 10, case 4).

A ``queued`` image of the project named like a synchronised image used to
be deleted whoever made it: an operator's upload in progress could vanish,
and a protected one made every run fail with HTTP 403. Here, on the test
bed, with ``stalled_upload_age = 0`` (every leftover counts as abandoned):
an operator's queued image is never touched; a leftover carrying
GlanceSync's provenance has a ``pending_cleanup`` line and is deleted; a
protected one is a warning and the run succeeds.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.facade import GlanceSync
from glancesync.image import Image, Provenance
from glancesync.plan import Status
from tests.testbed_config import write_config

pytestmark = pytest.mark.integration

DATA = b"glancesync leftover test " * 300


class Bed:
    def __init__(self, testbed, folder: Path) -> None:
        self.info = testbed.info
        self.prefix = f"gs-left-{uuid.uuid4().hex[:8]}-"
        condition = f"image.name.startswith('{self.prefix}')"
        self.config = write_config(self.info, folder / "glancesync.conf",
                                   main={"stalled_upload_age": 0},
                                   master={"metadata_condition": condition})
        self.session = ksa_session.Session(auth=v3.Password(**self.info.auth("master-admin")))
        self.name = self.prefix + "img"

    def adapter(self, region: str) -> GlanceRegionAdapter:
        return GlanceRegionAdapter(f"master:{region}", self.session, region,
                                   self.info.project_id("master-admin"))

    def put_master(self) -> Image:
        master = self.adapter("Master")
        image = master.create_image(self.name, visibility="public", disk_format="raw",
                                    container_format="bare")
        return master.upload_data(image.id, [DATA], len(DATA))

    def queued(self, *, provenance: Provenance | None = None) -> Image:
        """A queued image of the project in RegionA, named like the master image."""
        properties = provenance.as_properties() if provenance else None
        return self.adapter("RegionA").create_image(
            self.name, visibility="private", disk_format="raw", container_format="bare",
            properties=properties)

    def facade(self) -> GlanceSync:
        with open(self.config) as stream:
            return GlanceSync(stream, progress=False)

    def clean(self) -> None:
        for region in ("Master", "RegionA"):
            adapter = self.adapter(region)
            for image in adapter.list_images():
                if (image.name or "").startswith(self.prefix):
                    if image.protected:
                        adapter.update_image(image.id, {"protected": False})
                    adapter.delete_image(image.id)
        self.session.session.close()


@pytest.fixture
def bed(testbed, tmp_path, monkeypatch) -> Iterator[Bed]:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Bed(testbed, tmp_path)
    try:
        yield made
    finally:
        made.clean()


def test_an_operators_upload_in_progress_is_never_deleted(bed):
    bed.put_master()
    operator = bed.queued()
    with bed.facade() as gs:
        statuses = [s.status for s in gs.status(["RegionA"]).statuses]
        assert statuses == [Status.PENDING_UPLOAD]
        result = gs.sync(["RegionA"])
        assert result.exit_status == 0
        assert result.results["master:RegionA"].cleaned == 0
    assert bed.adapter("RegionA").get_image(operator.id).status == "queued"


def test_a_leftover_of_ours_is_shown_then_cleaned(bed):
    master = bed.put_master()
    ours = bed.queued(provenance=Provenance.of(master, "Master").stamped())
    with bed.facade() as gs:
        report = gs.status(["RegionA"])
        assert report.exit_status == 3
        (line,) = [s for s in report.statuses if s.status is Status.PENDING_CLEANUP]
        assert line.regional_id == ours.id and ours.id in line.reason
        assert line.master_id == master.id
        result = gs.sync(["RegionA"])
        assert result.exit_status == 0
        assert result.results["master:RegionA"].cleaned == 1
        assert [s.status for s in gs.status(["RegionA"]).statuses] == [Status.OK]
    assert {i.id for i in bed.adapter("RegionA").list_images()}.isdisjoint({ours.id})


def test_a_protected_leftover_is_a_warning_not_a_failed_region(bed, caplog):
    master = bed.put_master()
    ours = bed.queued(provenance=Provenance.of(master, "Master").stamped())
    bed.adapter("RegionA").update_image(ours.id, {"protected": True})
    with bed.facade() as gs, caplog.at_level(logging.WARNING, logger="glancesync"):
        for _ in range(2):  # not at every run either
            result = gs.sync(["RegionA"])
            assert result.exit_status == 0, result.results["master:RegionA"].failed
            assert result.results["master:RegionA"].success
    assert f"({ours.id}) of an interrupted upload is protected" in caplog.text
    assert bed.adapter("RegionA").get_image(ours.id).status == "queued"
