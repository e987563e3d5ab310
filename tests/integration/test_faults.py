"""The data path under faults, on the loopback test bed.

Each test breaks something real (a Glance worker SIGKILLed mid-upload, a
region down, a proxy resetting uploads, flipping a byte or answering 503,
a cache file corrupted), checks that the failure is reported, then that a
run ends with every region ``ok``, no ``queued``/``saving`` image of the
project left behind and no image lost. The bed is shared: names carry a
unique prefix, synchronisation is limited to them, stopped regions are
started again in ``finally``.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.base import RegionAdapter
from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.errors import ImageNotFoundError, ServiceError
from glancesync.executor import Executor, RegionResult
from glancesync.facade import GlanceSync
from glancesync.image import Image
from glancesync.plan import Status, make_plan
from glancesync.retry import RetryingAdapter, RetryPolicy
from glancesync.selection import select_master
from tests.faultproxy import FaultProxy
from tests.testbed_config import write_config

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
REGIONS = ("RegionA", "RegionB")  # the destinations of the master target


class Bed:
    """Admin adapters of Keystone #1's regions and this test's images."""

    def __init__(self, testbed, session: ksa_session.Session) -> None:
        self.testbed = testbed
        self.info = testbed.info
        self.session = session
        self.project_id = self.info.project_id("master-admin")
        self.prefix = f"gs-fault-{uuid.uuid4().hex[:8]}-"

    def adapter(self, region: str, endpoint: str | None = None) -> GlanceRegionAdapter:
        return GlanceRegionAdapter(f"master:{region}", self.session, region, self.project_id,
                                   endpoint_override=endpoint)

    def add_master(self, name: str, size: int) -> Image:
        """A public raw image of ``size`` pseudo-random bytes in Master."""
        adapter = self.adapter("Master")
        image = adapter.create_image(self.prefix + name, visibility="public",
                                     disk_format="raw", container_format="bare")
        block = os.urandom(MIB)
        chunks = (bytes([i % 251]) + block[1:] for i in range(size // MIB))
        return adapter.upload_data(image.id, chunks, size - size % MIB)

    def mine(self, region: str) -> list[Image]:
        return [i for i in self.adapter(region).list_images()
                if (i.name or "").startswith(self.prefix)]

    def clean(self) -> None:
        for region in ("Master", *REGIONS):
            for image in self.mine(region):
                try:
                    self.adapter(region).delete_image(image.id)
                except ImageNotFoundError:
                    pass


@pytest.fixture(scope="module")
def session(testbed) -> ksa_session.Session:
    cloud = testbed.info.clouds["master-admin"]
    return ksa_session.Session(auth=v3.Password(
        **{k: v for k, v in cloud.items() if k != "project_id"}))


@pytest.fixture
def bed(testbed, session, monkeypatch, tmp_path) -> Iterator[Bed]:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Bed(testbed, session)
    yield made
    made.clean()


def facade(bed: Bed, folder: Path, **main: object) -> GlanceSync:
    """A facade limited to the test's images, fast retries unless told otherwise."""
    options = {"retries": 3, "retry_wait": 0.2, **main}
    condition = f"image.name.startswith('{bed.prefix}')"
    path = write_config(bed.info, folder / "glancesync.conf", main=options,
                        master={"metadata_condition": condition},
                        other={"metadata_condition": condition})
    with open(path) as stream:
        return GlanceSync(stream, progress=False)


def sync_through(gs: GlanceSync, adapter: RegionAdapter) -> RegionResult:
    """What ``gs`` does for one region, but through ``adapter`` (a proxied one)."""
    retry = RetryPolicy(retries=gs.config.main.retries,
                        initial_wait=gs.config.main.retry_wait)
    adapter = RetryingAdapter(adapter, retry)
    master = gs.adapter("Master")
    selection = select_master(master.list_images(), master.project_id)
    regional = adapter.list_images()
    plan = make_plan(adapter.name, selection, regional, adapter.project_id,
                     gs.config.target("master"), stalled_upload_age=3600)
    return Executor(adapter, gs.source(), retry=retry, progress=False).execute(plan)


def assert_synchronised(bed: Bed, gs: GlanceSync, masters: list[Image]) -> None:
    """Every region ok; one active copy of each master image; no leftovers."""
    report = gs.status(list(REGIONS))
    assert report.failures == {}
    statuses = report.statuses
    assert len(statuses) == len(masters) * len(REGIONS)
    assert {s.status for s in statuses} == {Status.OK}
    for master in masters:
        assert bed.adapter("Master").get_image(master.id).status == "active"
    for region in REGIONS:
        images = bed.mine(region)
        assert [i for i in images if i.status in ("queued", "saving")] == []
        assert sorted(i.name for i in images) == sorted(m.name for m in masters)
        by_name = {i.name: i for i in images}
        for master in masters:
            assert by_name[master.name].status == "active"
            assert master.same_content(by_name[master.name])


def wait_for_status(bed: Bed, region: str, status: str, timeout: float) -> Image:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for image in bed.mine(region):
            if image.status == status:
                return image
        time.sleep(0.02)
    raise AssertionError(f"no image of the test became {status} in {region}")


# --- (a) a Glance worker killed mid-upload ------------------------------------

def _kill_mid_upload(bed: Bed, gs: GlanceSync, restart: bool):
    """Run a parallel sync in a thread; SIGKILL RegionB once its upload is saving."""
    outcome: dict[str, object] = {}
    runner = threading.Thread(target=lambda: outcome.update(
        result=gs.sync(list(REGIONS), parallel=True)), daemon=True)
    stuck = None
    try:
        runner.start()
        stuck = wait_for_status(bed, "RegionB", "saving", timeout=60)
        bed.testbed.stop_region("RegionB")
        if restart:
            bed.testbed.start_region("RegionB")
        runner.join(timeout=180)
    finally:
        if not bed.testbed.glance_pids("RegionB"):
            runner.join(timeout=180)
            bed.testbed.start_region("RegionB")
    assert not runner.is_alive()
    return outcome["result"], stuck


def test_worker_killed_mid_upload_then_next_run_cleans_and_uploads(bed, tmp_path, caplog):
    master = bed.add_master("big", 256 * MIB)
    with facade(bed, tmp_path, retries=0) as gs:
        first, stuck = _kill_mid_upload(bed, gs, restart=False)
    # The failure is reported for RegionB only; RegionA got its copy.
    assert first.results["master:RegionA"].success
    assert first.results["master:RegionA"].uploaded == 1
    region_b = first.results.get("master:RegionB")
    assert "master:RegionB" in first.failures or not region_b.success
    assert region_b is not None and bed.prefix + "big" in region_b.failed
    assert first.exit_status != 0
    # Glance never reverts it: the image stays saving, and is not "ok".
    assert bed.adapter("RegionB").get_image(stuck.id).status == "saving"
    with facade(bed, tmp_path, retries=0) as gs:
        statuses = {s.region: s.status for s in gs.status(["RegionB"]).statuses}
        assert statuses == {"master:RegionB": Status.PENDING_UPLOAD}

    with facade(bed, tmp_path, stalled_upload_age=0) as gs:
        second = gs.sync(list(REGIONS), parallel=True)
        assert second.exit_status == 0 and second.failures == {}
        assert second.results["master:RegionB"].cleaned == 1
        assert second.results["master:RegionB"].uploaded == 1
        assert second.results["master:RegionA"].uploaded == 0
        assert second.bytes_downloaded == 0  # served by the verified cache
        assert_synchronised(bed, gs, [master])
    with pytest.raises(ImageNotFoundError):
        bed.adapter("RegionB").get_image(stuck.id)


def test_worker_killed_and_restarted_during_retries(bed, tmp_path, caplog):
    master = bed.add_master("big2", 256 * MIB)
    with caplog.at_level(logging.WARNING), \
            facade(bed, tmp_path, retries=6, retry_wait=1) as gs:
        result, stuck = _kill_mid_upload(bed, gs, restart=True)
        assert result.exit_status == 0, result.failures
        assert result.results["master:RegionB"].uploaded == 1
        assert "upload of " + bed.prefix + "big2 failed (attempt 1 of 7)" in caplog.text
        assert_synchronised(bed, gs, [master])
    # The stuck image was replaced by a new one, not left behind.
    with pytest.raises(ImageNotFoundError):
        bed.adapter("RegionB").get_image(stuck.id)


# --- a region down ----------------------------------------------------------------

def test_region_down_does_not_stop_the_others(bed, tmp_path):
    master = bed.add_master("small", 2 * MIB)
    try:
        bed.testbed.stop_region("RegionB")
        with facade(bed, tmp_path, retries=1, retry_wait=0.1) as gs:
            result = gs.sync(list(REGIONS), parallel=True)
        assert set(result.failures) == {"master:RegionB"}
        assert "master:RegionB" not in result.results
        assert result.results["master:RegionA"].success
        assert result.results["master:RegionA"].uploaded == 1
        assert result.exit_status == 1
    finally:
        if not bed.testbed.glance_pids("RegionB"):
            bed.testbed.start_region("RegionB")
    with facade(bed, tmp_path) as gs:
        assert gs.sync(list(REGIONS)).exit_status == 0
        assert_synchronised(bed, gs, [master])


# --- (b) a proxy that resets uploads or flips a byte --------------------------------

def _port(bed: Bed, region: str) -> int:
    return int(bed.info.glance_urls[region].rsplit(":", 1)[1].strip("/"))


def test_connection_resets_during_uploads_are_retried(bed, tmp_path, caplog):
    master = bed.add_master("reset", 4 * MIB)
    with FaultProxy(_port(bed, "RegionA"), reset_uploads=2, lifetime=120) as proxy, \
            facade(bed, tmp_path) as gs, caplog.at_level(logging.INFO):
        result = sync_through(gs, bed.adapter("RegionA", proxy.url))
        assert proxy.resets_done == 2 and proxy.uploads == 3
        assert result.success and result.uploaded == 1
        assert "(attempt 1 of 4)" in caplog.text and "(attempt 2 of 4)" in caplog.text
        # Glance put the image back to queued: the same image was filled again.
        assert caplog.text.count("is queued again: uploading into it") == 2
        assert gs.sync(["RegionB"]).exit_status == 0
        assert_synchronised(bed, gs, [master])


def test_a_flipped_byte_is_caught_and_the_copy_deleted(bed, tmp_path):
    master = bed.add_master("flip", 2 * MIB)
    with FaultProxy(_port(bed, "RegionA"), flip_uploads=1, lifetime=120) as proxy, \
            facade(bed, tmp_path) as gs:
        adapter = bed.adapter("RegionA", proxy.url)
        first = sync_through(gs, adapter)
        assert proxy.flips_done == 1
        assert not first.success and first.uploaded == 0
        assert "checksum" in first.failed[master.name]
        assert bed.mine("RegionA") == []  # the bad copy is gone
        second = sync_through(gs, adapter)
        assert second.success and second.uploaded == 1
        assert gs.sync(["RegionB"]).exit_status == 0
        assert_synchronised(bed, gs, [master])


# --- (c) a region answering 503 for a while --------------------------------------------

def test_a_region_answering_503_for_a_while(bed, tmp_path, caplog):
    master = bed.add_master("busy", 2 * MIB)
    with FaultProxy(_port(bed, "RegionA"), unavailable=3, lifetime=120) as proxy, \
            facade(bed, tmp_path) as gs, caplog.at_level(logging.WARNING):
        result = sync_through(gs, bed.adapter("RegionA", proxy.url))
        assert proxy.unavailable_done == 3
        assert result.success and result.uploaded == 1
        assert "503" in caplog.text and "(attempt 3 of 4)" in caplog.text
        assert gs.sync(["RegionB"]).exit_status == 0
        assert_synchronised(bed, gs, [master])


def test_a_region_answering_503_longer_than_the_retries(bed, tmp_path):
    master = bed.add_master("down503", 2 * MIB)
    with FaultProxy(_port(bed, "RegionA"), unavailable=1000, lifetime=120) as proxy, \
            facade(bed, tmp_path, retries=2, retry_wait=0.1) as gs:
        with pytest.raises(ServiceError) as info:
            sync_through(gs, bed.adapter("RegionA", proxy.url))
        assert "503" in str(info.value)
        assert proxy.unavailable_done == 3  # the first attempt and two retries
        assert gs.sync(list(REGIONS)).exit_status == 0
        assert_synchronised(bed, gs, [master])


# --- (d) a cache file corrupted on purpose ------------------------------------------------

def test_corrupted_cache_file_is_downloaded_again(bed, tmp_path, caplog):
    master = bed.add_master("cached", 3 * MIB)
    with facade(bed, tmp_path) as gs:
        assert gs.sync(list(REGIONS)).exit_status == 0
        cached = gs.source().cache.path_for(master)
    with open(cached, "r+b") as handle:
        handle.seek(MIB + 3)
        handle.write(b"\x00garbage\x00")
    (copy,) = bed.mine("RegionA")
    bed.adapter("RegionA").delete_image(copy.id)
    with facade(bed, tmp_path) as gs, caplog.at_level(logging.WARNING):
        result = gs.sync(list(REGIONS))
        assert "is corrupted" in caplog.text
        assert result.exit_status == 0
        assert result.bytes_downloaded == master.size  # downloaded again, once
        assert result.results["master:RegionA"].uploaded == 1
        assert_synchronised(bed, gs, [master])
