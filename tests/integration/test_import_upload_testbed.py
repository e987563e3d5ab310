"""Uploads through Glance's import API (glance-direct) on the test bed (issue 23, case 7).

A region whose ``policy.yaml`` forbids the direct upload (``upload_image:
"!"``) still accepts data staged then imported (``glance-direct``): with
``upload_method = auto`` (the default) GlanceSync switches to the import
API at the first refusal and the copy is made and verified; ``direct``
keeps the refusal, whose message names the policy rule instead of blaming
the credential's role; ``glance-direct`` uses the import API on any region.
RegionC is on the other Keystone, where no server-side copy is possible:
streaming is the only way there.
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
from glancesync.plan import Status
from glancesync.testbed import RegionSettings
from tests.testbed_config import write_config

pytestmark = pytest.mark.integration

SIZE = 3 * 1024 * 1024 + 17
NO_DIRECT_UPLOAD = RegionSettings(policy={"upload_image": "!"})


class Bed:
    """Admin adapters of the bed's regions and this test's images (unique prefix)."""

    def __init__(self, testbed) -> None:
        self.info = testbed.info
        self.prefix = f"gs-imp-{uuid.uuid4().hex[:8]}-"
        self.sessions = {cloud: ksa_session.Session(auth=v3.Password(**self.info.auth(cloud)))
                         for cloud in ("master-admin", "other-admin")}

    def adapter(self, region: str) -> GlanceRegionAdapter:
        cloud = "other-admin" if region == "RegionC" else "master-admin"
        target = "other" if region == "RegionC" else "master"
        return GlanceRegionAdapter(f"{target}:{region}", self.sessions[cloud], region,
                                   self.info.project_id(cloud))

    def add_master(self, name: str) -> Image:
        adapter = self.adapter("Master")
        image = adapter.create_image(self.prefix + name, visibility="public",
                                     disk_format="raw", container_format="bare")
        return adapter.upload_data(image.id, [os.urandom(SIZE)], SIZE)

    def mine(self, region: str) -> list[Image]:
        return [i for i in self.adapter(region).list_images()
                if (i.name or "").startswith(self.prefix)]

    def clean(self) -> None:
        for region in ("Master", "RegionA", "RegionC"):
            for image in self.mine(region):
                try:
                    self.adapter(region).delete_image(image.id)
                except ImageNotFoundError:
                    pass

    def facade(self, folder: Path, extra: dict | None = None, main: dict | None = None,
               **options: object) -> GlanceSync:
        condition = f"image.name.startswith('{self.prefix}')"
        target = {"metadata_condition": condition, **options}
        path = write_config(self.info, folder / "glancesync.conf",
                            main={"retries": 1, "retry_wait": 0.2, **(main or {})},
                            master=target, other=target, extra_sections=extra)
        with open(path) as stream:
            return GlanceSync(stream, progress=False)


@pytest.fixture
def bed(testbed, monkeypatch, tmp_path) -> Iterator[Bed]:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Bed(testbed)
    yield made
    made.clean()


@pytest.fixture
def no_direct_upload(testbed) -> Iterator[None]:
    """RegionC (the other Keystone) refuses the direct upload by policy meanwhile."""
    with testbed.region_configured("RegionC", NO_DIRECT_UPLOAD):
        yield


def assert_copy(bed: Bed, region: str, master: Image) -> None:
    (copy,) = [image for image in bed.mine(region) if image.name == master.name]
    assert copy.status == "active" and master.same_content(copy)
    assert copy.visibility == "public"


def test_auto_switches_to_the_import_api_when_the_policy_forbids_direct_upload(
        bed, no_direct_upload, tmp_path, caplog):
    master = bed.add_master("auto")
    second = bed.add_master("auto-2")
    with bed.facade(tmp_path) as gs, caplog.at_level(logging.INFO):
        result = gs.sync(["other:RegionC"])
        assert result.exit_status == 0, result.results["other:RegionC"].errors
        assert result.results["other:RegionC"].uploaded == 2
        assert {s.status for s in gs.status(["other:RegionC"]).statuses} == {Status.OK}
    assert "policy (rule upload_image) forbids the direct upload" in caplog.text
    assert caplog.text.count("through the import API (glance-direct) from now on") == 1, \
        "learnt once per region: the second image goes through the import API at once"
    assert_copy(bed, "RegionC", master)
    assert_copy(bed, "RegionC", second)


def test_auto_switches_for_data_streamed_from_the_master_too(bed, no_direct_upload,
                                                             tmp_path, caplog):
    """The image bigger than the cache: its chunks come from the master, not a file;
    the refused first attempt is sent again from the master's first byte."""
    master = bed.add_master("streamed")
    with bed.facade(tmp_path, main={"cache_max_size": "1M"}) as gs, \
            caplog.at_level(logging.INFO):
        result = gs.sync(["other:RegionC"])
    assert result.exit_status == 0, result.results["other:RegionC"].outcomes
    assert "to one region without caching" in caplog.text
    assert "switched to glance-direct; sending" in caplog.text
    assert_copy(bed, "RegionC", master)


def test_direct_keeps_the_refusal_and_names_the_policy_rule_not_the_role(
        bed, no_direct_upload, tmp_path):
    bed.add_master("direct")
    with bed.facade(tmp_path, upload_method="direct") as gs:
        result = gs.sync(["other:RegionC"])
    assert result.exit_status != 0
    (text,) = [o.error for o in result.results["other:RegionC"].outcomes if o.error]
    assert "forbidden (HTTP 403) by the region's policy (rule upload_image)" in text
    assert "not by a missing role of the credential" in text
    assert "role or project does not allow" not in text
    assert "upload_method = glance-direct" in text
    assert bed.mine("RegionC") == [], "the failed upload left nothing"


def test_glance_direct_set_for_one_region_uploads_through_the_import_api(
        bed, tmp_path, caplog):
    master = bed.add_master("set")
    gs = bed.facade(tmp_path, extra={"master:RegionA": {"upload_method": "glance-direct"}})
    with gs, caplog.at_level(logging.DEBUG, logger="glancesync.backends.openstack.glance"):
        result = gs.sync(["RegionA", "other:RegionC"])
    assert result.exit_status == 0
    sent = [line for line in caplog.messages if " of image " in line and
            ("(stage)" in line or "(file)" in line)]
    assert len(sent) == 2 and any(line.startswith("master:RegionA: staging") and
                                  line.endswith("(stage)") for line in sent), sent
    assert any(line.startswith("other:RegionC: uploading") and line.endswith("(file)")
               for line in sent), sent
    assert_copy(bed, "RegionA", master)
    assert_copy(bed, "RegionC", master)


def test_auto_without_glance_direct_says_both_ways_are_closed(testbed, bed, tmp_path):
    closed = RegionSettings(policy={"upload_image": "!"},
                            glance_conf={"DEFAULT": {"enabled_import_methods":
                                                     "[web-download]"}})
    bed.add_master("closed")
    with testbed.region_configured("RegionC", closed), bed.facade(tmp_path) as gs:
        result = gs.sync(["other:RegionC"])
    assert result.exit_status != 0
    (text,) = [o.error for o in result.results["other:RegionC"].outcomes if o.error]
    assert "policy (rule upload_image)" in text
    assert "offers no glance-direct either (import methods: web-download)" in text
    assert bed.mine("RegionC") == []
