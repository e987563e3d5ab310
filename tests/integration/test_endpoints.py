"""Image endpoints as deployment tools register them, on the test bed (issue 10, case 1).

Each test registers extra regions in Keystone #1 whose image endpoint is a
bed Glance reached another way: with the API version in the URL
(``http://host:port/v2``), behind a reverse proxy under a path prefix
(``http://host:port/image``), or through a wrong URL. Listing, status and
sync must work through the first two (the same API the OpenStack CLI finds)
and the last must be reported as a wrong endpoint naming its URL. The
registrations are removed after each test; images carry a unique prefix.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.errors import EndpointError
from glancesync.facade import GlanceSync
from glancesync.plan import Status
from tests.catalog import Catalog
from tests.faultproxy import FaultProxy, Recorder
from tests.testbed_config import write_config

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
DATA = b"glancesync endpoint test " * 300


class Bed:
    """The test's catalog entries, configuration and images."""

    def __init__(self, testbed, folder: Path) -> None:
        self.info = testbed.info
        self.folder = folder
        self.catalog = Catalog(self.info)
        self.prefix = f"gs-ep-{uuid.uuid4().hex[:8]}-"
        condition = f"image.name.startswith('{self.prefix}')"
        self.config = write_config(self.info, folder / "glancesync.conf",
                                   master={"metadata_condition": condition})
        self.session = ksa_session.Session(auth=v3.Password(**self.info.auth("master-admin")))

    def port(self, region: str) -> int:
        return int(self.info.glance_urls[region].rsplit(":", 1)[1].strip("/"))

    def adapter(self, region: str) -> GlanceRegionAdapter:
        return GlanceRegionAdapter(f"master:{region}", self.session, region,
                                   self.info.project_id("master-admin"))

    def put_master(self, short: str) -> str:
        master = self.adapter("Master")
        image = master.create_image(self.prefix + short, visibility="public",
                                    disk_format="raw", container_format="bare")
        master.upload_data(image.id, [DATA], len(DATA))
        return self.prefix + short

    def names(self, region: str) -> set[str]:
        return {i.name for i in self.adapter(region).list_images()
                if (i.name or "").startswith(self.prefix)}

    def facade(self) -> GlanceSync:
        with open(self.config) as stream:
            return GlanceSync(stream, progress=False)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
        env.update(GLANCESYNC_LOCK_DIR=str(self.folder / "locks"),
                   XDG_STATE_HOME=str(self.folder / "state"))
        return subprocess.run([str(BIN / "glancesync-sync"), "--config-file",
                               str(self.config), *args], capture_output=True, text=True,
                              env=env, cwd=self.folder, timeout=300)

    def close(self) -> None:
        self.catalog.remove()
        for region in ("Master", "RegionA", "RegionB"):
            adapter = self.adapter(region)
            for image in adapter.list_images():
                if (image.name or "").startswith(self.prefix):
                    adapter.delete_image(image.id)
        self.session.session.close()


@pytest.fixture
def bed(testbed, tmp_path) -> Iterator[Bed]:
    made = Bed(testbed, tmp_path)
    yield made  # the teardown runs whatever the test's outcome
    made.close()


def status_of(gs: GlanceSync, region: str) -> list[Status]:
    report = gs.status([region])
    assert report.failures == {}, report.failures
    return [s.status for s in report.statuses]


def sync_and_check(bed: Bed, region: str, short: str, same_glance_as: str) -> None:
    """Status, dry run and sync of ``region``; the copy lands in its Glance."""
    name = bed.put_master(short)
    with bed.facade() as gs:
        assert status_of(gs, region) == [Status.PENDING_UPLOAD]
        assert gs.sync([region], dry_run=True).exit_status == 3
        result = gs.sync([region])
        assert result.exit_status == 0, (result.failures, result.results)
        assert result.results[f"master:{region}"].uploaded == 1
        assert status_of(gs, region) == [Status.OK]
        assert gs.get_images_region(region)
    assert bed.names(same_glance_as) == {name}


@pytest.mark.parametrize("suffix", ["/v2", "/v2/"])
def test_a_versioned_endpoint_lists_and_syncs(bed, suffix):
    """The catalog URL holds the API version, as some deployment tools write it."""
    region = bed.catalog.add(Catalog.unique("Versioned"),
                             bed.info.glance_urls["RegionA"] + suffix)
    sync_and_check(bed, region, "versioned", same_glance_as="RegionA")


@pytest.mark.parametrize("suffix", ["/image", "/image/v2"])
def test_an_endpoint_behind_a_path_prefix_lists_and_syncs(bed, suffix):
    """Glance behind a reverse proxy under /image: every call goes through it."""
    with FaultProxy(bed.port("RegionB"), prefix="/image", lifetime=240) as proxy:
        region = bed.catalog.add(Catalog.unique("Prefixed"), proxy.url + suffix)
        sync_and_check(bed, region, "prefixed", same_glance_as="RegionB")
        assert proxy.uploads == 1 and proxy.requests > 5
        assert proxy.outside_prefix == 0


def test_a_version_document_naming_another_host_keeps_the_catalogs_host(bed):
    """Glance's links name another host (no public_endpoint behind a proxy).

    The catalog endpoint is versioned and reached through a proxy whose
    version documents name a recorder's host instead; the API root found
    stays on the catalog's host and port (keystoneauth keeps them), so the
    origin guard of the target's session lets the whole sync through and
    nothing, no token, ever reaches the other host.
    """
    renamed: list[bytes] = []
    with Recorder(lifetime=240) as elsewhere:
        def rename_hosts(method: bytes, path: bytes, body: bytes) -> bytes:
            if b'"version' not in body:
                return body
            changed = re.sub(rb"http://127\.0\.0\.1:\d+", elsewhere.url.encode(), body)
            if changed != body:
                renamed.append(path)
            return changed

        with FaultProxy(bed.port("RegionA"), rewrite=rename_hosts, lifetime=240) as proxy:
            region = bed.catalog.add(Catalog.unique("Elsewhere"), proxy.url + "/v2")
            sync_and_check(bed, region, "elsewhere", same_glance_as="RegionA")
            assert proxy.uploads == 1
    assert renamed, "no version document named a host"
    assert elsewhere.received == []


def test_a_wrong_endpoint_is_reported_as_an_endpoint_problem(bed):
    """A typo in the prefix: the region fails with the URL named, not 'image not found'."""
    bed.put_master("wrong")
    with FaultProxy(bed.port("RegionB"), prefix="/image", lifetime=240) as proxy:
        url = proxy.url + "/imgae"
        region = bed.catalog.add(Catalog.unique("Wrong"), url)
        with bed.facade() as gs:
            report = gs.status([region])
            error = report.failures[f"master:{region}"]
            assert isinstance(error, EndpointError) and not error.transient
            message = str(error)
            assert url in message and "catalog of target master" in message
            assert "image not found" not in message
            assert report.exit_status == 1
        done = bed.run("--show-status", region)
    assert done.returncode == 1, done.stderr
    assert url in done.stderr and "Traceback" not in done.stderr
    assert "image not found" not in done.stderr


def test_an_endpoint_of_another_service_is_reported(bed):
    """The image endpoint points at Keystone: a version document without Image API v2."""
    keystone_root = bed.info.keystone_urls["master"].removesuffix("/v3")
    region = bed.catalog.add(Catalog.unique("Keystone"), keystone_root)
    with bed.facade() as gs:
        error = gs.status([region]).failures[f"master:{region}"]
    assert isinstance(error, EndpointError)
    assert keystone_root in str(error) and "no Image API v2" in str(error)


def test_a_catalog_region_with_a_blank_in_its_name_is_ignored(bed, caplog):
    """Issue 10, case 2, on a real catalog: ``ignore_regions = Test Lab-..., Nowhere``."""
    lab = bed.catalog.add(Catalog.unique("Test Lab"), bed.info.glance_urls["RegionA"])
    bed.config = write_config(bed.info, bed.folder / "lab.conf",
                              master={"ignore_regions": f"{lab}, Nowhere"})
    with bed.facade() as gs, caplog.at_level("WARNING", logger="glancesync"):
        assert gs.get_regions() == ["RegionA", "RegionB"]
        assert gs.resolve_regions([f"master:{lab}"]) == [f"master:{lab}"]
    assert "ignore_regions of target master: 'Nowhere' matches no region" in caplog.text
