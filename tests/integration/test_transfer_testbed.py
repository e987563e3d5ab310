"""Server-side copies (glance-download) between the test bed's real Glance regions.

``transfer = auto``: RegionA and RegionB (Keystone #1, the master's) copy
the images themselves, from Master or from each other; RegionC (Keystone
#2) is streamed. Faults are real: an import of an image that does not
exist, of an unknown region or with a method the region does not know (a
fault adapter asks for them: subclasses of the Glance adapter, nothing
patched), and a source that freezes mid-copy (Master's Glance stopped with
SIGSTOP). Each ends streamed, the copy verified, nothing left behind.
``convert_to``: a qcow2 master converted once for the raw regions, and a
conversion qemu-img refuses, which leaves nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.errors import ConnectionFailure, ImageNotFoundError
from glancesync.executor import Executor, RegionResult
from glancesync.facade import GlanceSync
from glancesync.image import Image
from glancesync.plan import Status
from glancesync.retry import RetryingAdapter, RetryPolicy
from glancesync.serverside import CopySources
from glancesync.strategy import Strategy
from tests.testbed_config import write_config

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
SIZE = 6 * MIB + 123
TARGETS = ["RegionA", "RegionB", "other:RegionC"]


class Bed:
    """Admin adapters of the bed's regions and this test's images (unique prefix)."""

    def __init__(self, testbed) -> None:
        self.testbed = testbed
        self.info = testbed.info
        self.prefix = f"gs-xfer-{uuid.uuid4().hex[:8]}-"
        self.sessions = {cloud: ksa_session.Session(auth=v3.Password(
            **{k: v for k, v in testbed.info.clouds[cloud].items() if k != "project_id"}))
            for cloud in ("master-admin", "other-admin")}

    def adapter(self, region: str, cls: type = GlanceRegionAdapter) -> GlanceRegionAdapter:
        cloud = "other-admin" if region == "RegionC" else "master-admin"
        target = "other" if region == "RegionC" else "master"
        return cls(f"{target}:{region}", self.sessions[cloud], region,
                   self.info.project_id(cloud))

    def add_master(self, name: str, size: int = SIZE, **props: str) -> tuple[Image, bytes]:
        data = os.urandom(size)
        adapter = self.adapter("Master")
        image = adapter.create_image(self.prefix + name, visibility="public",
                                     disk_format="raw", container_format="bare",
                                     properties=props)
        return adapter.upload_data(image.id, [data], size), data

    def mine(self, region: str) -> list[Image]:
        return [i for i in self.adapter(region).list_images()
                if (i.name or "").startswith(self.prefix)]

    def clean(self) -> None:
        for region in ("Master", "RegionA", "RegionB", "RegionC"):
            for image in self.mine(region):
                try:
                    self.adapter(region).delete_image(image.id)
                except ImageNotFoundError:
                    pass


@pytest.fixture
def bed(testbed, monkeypatch, tmp_path) -> Iterator[Bed]:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Bed(testbed)
    yield made
    made.clean()


def facade(bed: Bed, folder: Path, *, main: dict | None = None, **target: object
           ) -> GlanceSync:
    """``transfer = auto`` (unless told otherwise) on the test's images only."""
    condition = f"image.name.startswith('{bed.prefix}')"
    options = {"metadata_condition": condition, "transfer": "auto", **target}
    path = write_config(bed.info, folder / "glancesync.conf",
                        main={"retries": 2, "retry_wait": 0.2, **(main or {})},
                        master=options, other=options)
    with open(path) as stream:
        return GlanceSync(stream, progress=False)


def assert_in_sync(bed: Bed, gs: GlanceSync, master: Image, regions=("RegionA", "RegionB",
                                                                     "RegionC")) -> None:
    """Every region ok, one active verified copy, no leftover of any state."""
    names = [r if r != "RegionC" else "other:RegionC" for r in regions]
    report = gs.status(names)
    assert report.failures == {}
    assert {s.status for s in report.statuses} == {Status.OK}
    for region in regions:
        (copy,) = bed.mine(region)
        assert copy.status == "active" and master.same_content(copy)
        assert copy.provenance is not None and copy.provenance.is_copy_of(master)


def test_auto_copies_server_side_in_the_master_keystone_and_streams_elsewhere(
        bed, tmp_path, caplog):
    master, _ = bed.add_master("auto", os_distro="debian", hw_disk_bus="scsi",
                               gs_custom="not copied by glance")
    with facade(bed, tmp_path) as gs:
        plans = gs.sync(TARGETS, dry_run=True).plans
        strategies = {region: plan.operations[0].transfer.strategy
                      for region, plan in plans.items()}
        assert strategies == {"master:RegionA": Strategy.GLANCE_DOWNLOAD,
                              "master:RegionB": Strategy.GLANCE_DOWNLOAD,
                              "other:RegionC": Strategy.STREAM}
        assert "not in the master's Keystone" in plans["other:RegionC"].statuses[0].reason
        with caplog.at_level(logging.INFO, logger="glancesync.executor"):
            result = gs.sync(TARGETS)  # one region after the other: RegionB may relay
        assert result.exit_status == 0
        region_a, region_b = (result.results[f"master:{r}"] for r in ("RegionA", "RegionB"))
        assert (region_a.copied_server_side, region_b.copied_server_side) == (1, 1)
        assert region_a.bytes_uploaded == region_b.bytes_uploaded == 0
        assert result.results["other:RegionC"].bytes_uploaded == master.size
        assert result.bytes_downloaded == master.size  # for RegionC only
        assert f"master:RegionB: importing image {master.name}" in caplog.text
        assert "from RegionA (glance-download)" in caplog.text  # the relay
        assert_in_sync(bed, gs, master)
    for region in ("RegionA", "RegionB"):
        (copy,) = bed.mine(region)
        # Glance copied os_distro and hw_disk_bus; GlanceSync set the rest again.
        assert copy.properties == master.properties
        assert copy.visibility == "public"


def test_glance_download_asked_for_another_keystone_is_streamed_with_a_warning(
        bed, tmp_path, caplog):
    master, _ = bed.add_master("explicit")
    with facade(bed, tmp_path, transfer="glance-download") as gs, \
            caplog.at_level(logging.WARNING):
        result = gs.sync(["other:RegionC"])
        assert result.exit_status == 0
        assert "transfer = glance-download is not possible, streamed instead: RegionC is " \
               "not in the master's Keystone" in caplog.text
        assert result.results["other:RegionC"].bytes_uploaded == master.size


class ImportsNothing(GlanceRegionAdapter):
    """Asks RegionA to copy an image that does not exist: 202, then the task fails."""

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        super().import_image(image_id, source_region=source_region,
                             source_image_id=str(uuid.uuid4()))


class ImportsFromNowhere(GlanceRegionAdapter):
    """Names a region that RegionA's catalog does not have: the task fails."""

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        super().import_image(image_id, source_region="Nowhere",
                             source_image_id=source_image_id)


class UnknownMethod(GlanceRegionAdapter):
    """Asks a method the region does not know: refused at once (HTTP 400)."""

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        with self._errors("starting the server-side copy", image_id):
            self.api.images.image_import(image_id, method="glance-downloadx",
                                         remote_region=source_region,
                                         remote_image_id=source_image_id)


def sync_region_through(gs: GlanceSync, adapter: GlanceRegionAdapter, *,
                        import_timeout: float = 120) -> RegionResult:
    """What ``gs`` does for one region, but through ``adapter`` (a fault adapter)."""
    retry = RetryPolicy(retries=2, initial_wait=0.2)
    plan = gs.plan_region(adapter.name)
    (op,) = plan.operations
    assert op.transfer.strategy is Strategy.GLANCE_DOWNLOAD
    return Executor(RetryingAdapter(adapter, retry), gs.source(), retry=retry,
                    progress=False, sources=CopySources(),
                    import_timeout=import_timeout).execute(plan)


@pytest.mark.parametrize("adapter_class, why", [
    (ImportsNothing, "Task failed due to Internal Error"),
    (ImportsFromNowhere, "Task failed due to Internal Error"),
    (UnknownMethod, "Unknown import method name 'glance-downloadx'"),
])
def test_a_failed_server_side_copy_is_streamed_into_the_same_image(
        bed, tmp_path, caplog, adapter_class, why):
    master, _ = bed.add_master("failed")
    with facade(bed, tmp_path) as gs, caplog.at_level(logging.INFO):
        result = sync_region_through(gs, bed.adapter("RegionA", adapter_class))
        assert result.success and result.uploaded == 1
        assert (result.copied_server_side, result.bytes_uploaded) == (0, master.size)
        assert "streaming it instead" in caplog.text and why in caplog.text
        assert "unfinished server-side copy" not in caplog.text  # the same image
        assert_in_sync(bed, gs, master, regions=("RegionA",))


class FreezesTheSource(GlanceRegionAdapter):
    """Stops Master's Glance (SIGSTOP) as the copy is asked: the copy hangs."""

    testbed: object
    frozen: list[int]

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        super().import_image(image_id, source_region=source_region,
                             source_image_id=source_image_id)
        for pid in self.testbed.glance_pids("Master"):
            os.kill(pid, signal.SIGSTOP)
            self.frozen.append(pid)


@contextlib.contextmanager
def frozen_source_copy(bed: Bed, folder: Path, adapter_class: type, master: Image,
                       data: bytes) -> Iterator[tuple[GlanceSync, FreezesTheSource]]:
    """A facade streaming from ``images_dir`` and RegionA's ``adapter_class``.

    Master's Glance is resumed (SIGCONT) after, and RegionA checked in sync.
    """
    images_dir = folder / "images"
    images_dir.mkdir()
    (images_dir / master.id).write_bytes(data)  # the stream needs no Master
    adapter = bed.adapter("RegionA", adapter_class)
    adapter.testbed, adapter.frozen = bed.testbed, []
    try:
        with facade(bed, folder, main={"images_dir": images_dir}) as gs:
            gs.status(["RegionA"])  # lists Master while it runs
            yield gs, adapter
    finally:
        for pid in adapter.frozen:
            os.kill(pid, signal.SIGCONT)
    with facade(bed, folder) as gs:
        assert_in_sync(bed, gs, master, regions=("RegionA",))


def test_a_stalled_server_side_copy_is_cancelled_and_streamed(bed, tmp_path, caplog):
    master, data = bed.add_master("stalled", 24 * MIB)
    with frozen_source_copy(bed, tmp_path, FreezesTheSource, master, data) as (gs, adapter), \
            caplog.at_level(logging.INFO):
        result = sync_region_through(gs, adapter, import_timeout=5)
        assert adapter.frozen
        assert result.success and result.uploaded == 1
        assert result.bytes_uploaded == master.size
        assert "still " in caplog.text and "after 5 s" in caplog.text
        assert "deleting unfinished server-side copy" in caplog.text
        (copy,) = bed.mine("RegionA")
        assert copy.status == "active" and master.same_content(copy)


class LosesTheAnswer(FreezesTheSource):
    """The copy is accepted (a real 202), then its answer is "lost".

    Master's Glance is stopped right after, so the copy cannot end before the
    executor looks; the state Glance shows then is recorded in :attr:`seen`:
    the unit tests' ``AnswerLost`` assumes a task under way and a ``queued``
    image.
    """

    seen: list[tuple[str, str | None]] = []

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        super().import_image(image_id, source_region=source_region,
                             source_image_id=source_image_id)
        task = self.import_task(image_id)
        self.seen.append((self.get_image(image_id).status, task and task.status))
        raise ConnectionFailure("connection reset by peer (the answer lost on purpose)",
                                region=self.name)


def test_a_copy_accepted_whose_answer_is_lost_is_cancelled_and_streamed(
        bed, tmp_path, caplog):
    """The fake ``AnswerLost`` of tests/unit/test_serverside.py, on a real Glance."""
    master, data = bed.add_master("answer-lost")
    LosesTheAnswer.seen = []
    with frozen_source_copy(bed, tmp_path, LosesTheAnswer, master, data) as (gs, adapter), \
            caplog.at_level(logging.INFO):
        result = sync_region_through(gs, adapter)
        assert adapter.frozen
        ((status, task),) = LosesTheAnswer.seen
        assert status in ("queued", "importing") and task in ("pending", "processing")
        assert result.success and result.uploaded == 1
        assert (result.copied_server_side, result.bytes_uploaded) == (0, master.size)
        assert "(refused: region master:RegionA: connection reset by peer" in caplog.text
        assert "deleting unfinished server-side copy" in caplog.text
        (copy,) = bed.mine("RegionA")
        assert copy.status == "active" and master.same_content(copy)


class KillsTheSourceMidCopy(GlanceRegionAdapter):
    """SIGKILLs Master's Glance while RegionA is copying the data (then restarts it).

    Glance fails the copy in its data step and leaves the image ``queued``
    under the failed task's lock ("Image has active task" to a new copy).
    """

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        super().import_image(image_id, source_region=source_region,
                             source_image_id=source_image_id)
        deadline = time.monotonic() + 60
        while self.get_image(image_id).status != "importing":
            assert time.monotonic() < deadline, "the copy never started"
            time.sleep(0.05)
        time.sleep(0.5)  # into the data step: 512 MiB take seconds
        self.testbed.stop_region("Master")


def test_a_copy_whose_source_dies_is_streamed_into_the_same_locked_image(
        bed, tmp_path, caplog):
    master, data = bed.add_master("killed", 512 * MIB)
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    (images_dir / master.id).write_bytes(data)  # the stream needs no Master
    del data
    adapter = bed.adapter("RegionA", KillsTheSourceMidCopy)
    adapter.testbed = bed.testbed
    try:
        with facade(bed, tmp_path, main={"images_dir": images_dir}) as gs, \
                caplog.at_level(logging.INFO):
            result = sync_region_through(gs, adapter)
            assert result.success and result.uploaded == 1
            assert (result.copied_server_side, result.bytes_uploaded) == (0, master.size)
            assert "failed (import task" in caplog.text
            assert "unfinished server-side copy" not in caplog.text  # the same image
            (copy,) = bed.mine("RegionA")
            assert copy.status == "active" and master.same_content(copy)
            # It failed in its data step: Glance left its lock on the image.
            raw = dict(bed.adapter("RegionA").api.images.get(copy.id))
            assert raw["os_glance_failed_import"] == "fs" and raw["os_glance_import_task"]
    finally:
        if not bed.testbed.glance_pids("Master"):
            bed.testbed.start_region("Master")
    with facade(bed, tmp_path) as gs:
        assert_in_sync(bed, gs, master, regions=("RegionA",))


# --- convert_to: one conversion per format, streamed, compared on provenance -------------

def _qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def _add_qcow2(bed: Bed, folder: Path, name: str, raw: bytes) -> tuple[Image, bytes]:
    (folder / "in.raw").write_bytes(raw)
    _qemu_img("convert", "-f", "raw", "-O", "qcow2", str(folder / "in.raw"),
              str(folder / "in.qcow2"))
    data = (folder / "in.qcow2").read_bytes()
    adapter = bed.adapter("Master")
    image = adapter.create_image(bed.prefix + name, visibility="public",
                                 disk_format="qcow2", container_format="bare")
    return adapter.upload_data(image.id, [data], len(data)), raw


def test_regions_storing_raw_get_one_conversion_of_a_qcow2_master(bed, tmp_path):
    raw = os.urandom(5 * MIB) + bytes(3 * MIB)
    master, raw = _add_qcow2(bed, tmp_path, "qcow2", raw)
    path = write_config(bed.info, tmp_path / "glancesync.conf",
                        main={"retries": 2, "retry_wait": 0.2},
                        master={"metadata_condition": f"image.name.startswith('{bed.prefix}')",
                                "transfer": "auto"},
                        other={"metadata_condition": f"image.name.startswith('{bed.prefix}')"},
                        extra_sections={"master:RegionA": {"convert_to": "raw"},
                                        "other:RegionC": {"convert_to": "raw"}})
    with open(path) as stream, GlanceSync(stream, progress=False) as gs:
        plans = gs.sync(TARGETS, dry_run=True).plans
        reasons = {region: plan.statuses[0].reason for region, plan in plans.items()}
        assert reasons == {
            "master:RegionA": "missing in the region; stream, qcow2 to raw (a server-side "
                              "copy keeps the source's disk format)",
            "master:RegionB": "missing in the region; glance-download from Master",
            "other:RegionC": "missing in the region; stream, qcow2 to raw"}
        result = gs.sync(TARGETS, parallel=True)
        assert result.exit_status == 0
        assert gs.source().conversions == 1 and gs.source().downloads == 1
        copies = {region: bed.mine(region)[0] for region in ("RegionA", "RegionB", "RegionC")}
        for region in ("RegionA", "RegionC"):
            copy = copies[region]
            assert (copy.disk_format, copy.size) == ("raw", len(raw))
            assert copy.os_hash_value == hashlib.sha512(raw).hexdigest()
            assert copy.provenance.is_copy_of(master) and copy.visibility == "public"
        assert copies["RegionB"].disk_format == "qcow2"
        assert master.same_content(copies["RegionB"])
        report = gs.status(TARGETS)
        assert {s.status for s in report.statuses} == {Status.OK}
        again = gs.sync(TARGETS)
        assert sum(r.uploaded for r in again.results.values()) == 0


def test_a_conversion_that_fails_leaves_nothing_behind(bed, tmp_path):
    _qemu_img("create", "-f", "qcow2", str(tmp_path / "huge.qcow2"), "3T")
    data = (tmp_path / "huge.qcow2").read_bytes()  # 3 TiB virtual, a few hundred KiB
    adapter = bed.adapter("Master")
    image = adapter.create_image(bed.prefix + "huge", visibility="public",
                                 disk_format="qcow2", container_format="bare")
    adapter.upload_data(image.id, [data], len(data))
    with facade(bed, tmp_path, transfer="stream", convert_to="vhd") as gs:
        result = gs.sync(["RegionA"])
        # Refused before qemu-img runs (issue 21): 3 TiB > convert_max_virtual_size.
        assert result.exit_status == 4
        status = result.plans["master:RegionA"].status_of(bed.prefix + "huge")
        assert status.status.value == "error_refused"
        assert "larger than convert_max_virtual_size" in status.reason
        assert bed.mine("RegionA") == []
        cache = tmp_path / "cache"
        assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []
        assert len(list(cache.iterdir())) == 1  # the verified master file
