"""Two image endpoints for one region on the test bed (issue 23, case 12).

A region's Keystone catalog lists two public image endpoints (an IPv4 and
an IPv6 address in the field). When one does not answer, GlanceSync uses
the other and says so; when none does, the error names every endpoint it
tried. The bed's ``second_endpoint`` switch: ``dead`` (a loopback port
nobody serves, listed first here) or ``process`` (a second glance-api of
the region, same database and store; the first one is then killed).
"""
from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.errors import ImageNotFoundError
from glancesync.facade import GlanceSync
from glancesync.image import Image
from glancesync.testbed import RegionSettings
from tests.testbed_config import write_config

pytestmark = pytest.mark.integration

SIZE = 1024 * 1024 + 3
DEAD_FIRST = RegionSettings(second_endpoint="dead", second_endpoint_first=True)
SECOND_PROCESS = RegionSettings(second_endpoint="process")


class Bed:
    """This test's master image (unique prefix), and a configuration that syncs it."""

    def __init__(self, testbed, folder: Path) -> None:
        self.testbed = testbed
        self.info = testbed.info
        self.prefix = f"gs-2ep-{uuid.uuid4().hex[:8]}-"
        self.session = ksa_session.Session(auth=v3.Password(**self.info.auth("master-admin")))
        condition = f"image.name.startswith('{self.prefix}')"
        self.config = write_config(self.info, folder / "glancesync.conf",
                                   main={"retries": 1, "retry_wait": 0.2},
                                   master={"metadata_condition": condition})

    def adapter(self, region: str) -> GlanceRegionAdapter:
        # A stock region's own endpoint (the catalog may list a dead one first).
        return GlanceRegionAdapter(f"master:{region}", self.session, region,
                                   self.info.project_id("master-admin"),
                                   endpoint_override=self.info.glance_urls[region])

    def add_master(self) -> Image:
        adapter = self.adapter("Master")
        image = adapter.create_image(self.prefix + "m", visibility="public",
                                     disk_format="raw", container_format="bare")
        return adapter.upload_data(image.id, [os.urandom(SIZE)], SIZE)

    def mine(self, region: str) -> list[Image]:
        return [i for i in self.adapter(region).list_images()
                if (i.name or "").startswith(self.prefix)]

    def facade(self) -> GlanceSync:
        with open(self.config) as stream:
            return GlanceSync(stream, progress=False)

    def clean(self) -> None:
        for region in ("Master", "RegionA", "RegionB"):
            for image in self.mine(region):
                try:
                    self.adapter(region).delete_image(image.id)
                except ImageNotFoundError:
                    pass


@pytest.fixture
def bed(testbed, monkeypatch, tmp_path) -> Iterator[Bed]:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Bed(testbed, tmp_path)
    yield made
    made.clean()


def test_a_dead_endpoint_listed_first_is_passed_over_and_named(testbed, bed, caplog):
    master = bed.add_master()
    with testbed.region_configured("RegionB", DEAD_FIRST):
        dead, alive = testbed.image_endpoints("RegionB")
        with bed.facade() as gs, caplog.at_level(logging.WARNING):
            result = gs.sync(["RegionB"])
        assert result.exit_status == 0, result.failures
        (copy,) = bed.mine("RegionB")
        assert copy.status == "active" and master.same_content(copy)
    warnings = [r.getMessage() for r in caplog.records if "endpoint" in r.getMessage()]
    assert any(dead in line and alive in line for line in warnings), warnings


def test_the_second_process_serves_when_the_first_is_killed(testbed, bed, caplog):
    master = bed.add_master()
    with testbed.region_configured("RegionA", SECOND_PROCESS):
        first, second = testbed.image_endpoints("RegionA")
        testbed.stop_region("RegionA")
        try:
            with bed.facade() as gs, caplog.at_level(logging.WARNING):
                result = gs.sync(["RegionA"])
            assert result.exit_status == 0, result.failures
        finally:
            testbed.start_region("RegionA")
        (copy,) = bed.mine("RegionA")
        assert copy.status == "active" and master.same_content(copy)
    assert any(first in r.getMessage() and second in r.getMessage()
               for r in caplog.records), caplog.text


def test_when_no_endpoint_answers_the_error_names_each(testbed, bed):
    with testbed.region_configured("RegionB", DEAD_FIRST):
        dead, own = testbed.image_endpoints("RegionB")
        testbed.stop_region("RegionB")
        try:
            with bed.facade() as gs:
                result = gs.sync(["RegionB"])
        finally:
            testbed.start_region("RegionB")
    assert result.exit_status != 0
    text = str(result.failures["master:RegionB"])
    assert "none of the 2 image endpoints (public) of region RegionB" in text, text
    assert dead in text and own in text, text


def test_an_endpoint_that_dies_during_a_run_gives_way_to_the_other(testbed, bed, caplog):
    """The API found at the first call is found again after a connection failure."""
    with testbed.region_configured("RegionA", SECOND_PROCESS):
        first, second = testbed.image_endpoints("RegionA")
        with bed.facade() as gs:
            assert gs.sync(["RegionA"]).exit_status == 0  # nothing yet: finds the first
            master = bed.add_master()
            testbed.stop_region("RegionA")
            try:
                with caplog.at_level(logging.WARNING):
                    result = gs.sync(["RegionA"])
                assert result.exit_status == 0, result.failures
            finally:
                testbed.start_region("RegionA")
        (copy,) = bed.mine("RegionA")
        assert copy.status == "active" and master.same_content(copy)
    assert any(first in r.getMessage() and second in r.getMessage()
               for r in caplog.records), caplog.text
