"""glancesync.executor.upload: the failure paths of an upload, each on its own (issue 27).

The old copy that cannot be retired once the new one is verified (the
error says which step failed, keeping the region's status and kind); a
protected old copy that stops a replace before anything is made; a
half-made image left to a store still writing it; a mismatch that has the
source check its copy again (a streamed upload only). Real local regions.
"""
from __future__ import annotations

import dataclasses
import logging

import pytest

from glancesync.errors import (GlanceSyncError, ProtectedImageError, ServiceError, TransferError,
                               UsageError)
from glancesync.executor import Executor
from glancesync.executor.results import RegionResult
from glancesync.executor.upload import Upload, verify
from glancesync.plan.model import OperationKind
from glancesync.plan.validation import MARK_VALIDATION, PENDING
from glancesync.strategy import Strategy, Transfer

from tests.engine import DirectSource
from tests.scenarios import put
from tests.unit.executor.regions import Recording
from tests.unit.executor.test_upload import upload_op

REGION = "master:RegionA"
DATA = b"\x09" * 4096


@pytest.fixture
def master(tmp_path):
    return Recording("master:Master", tmp_path / "Master", "p-master")


class Undeletable(Recording):
    """A local region refusing to delete ``refused`` with ``error``."""

    refused: str = ""
    error: Exception | None = None

    def delete_image(self, image_id):
        if image_id == self.refused and self.error is not None:
            raise self.error
        return super().delete_image(image_id)


@pytest.fixture
def region(tmp_path):
    return Undeletable(REGION, tmp_path / "RegionA")


@pytest.mark.parametrize("error, kind", [
    (ServiceError("forbidden (HTTP 403)", status_code=403, region=REGION, image="a"),
     ServiceError),
    (ServiceError("unavailable (HTTP 503)", status_code=503, transient=False,
                  region=REGION, image="old"), ServiceError),
    (UsageError("refused by the schema", status_code=400), UsageError)])
def test_an_old_copy_not_deleted_after_the_new_one_is_said_so(master, region, error, kind):
    image = put(master, "a", DATA)
    old = put(region, "a", b"\x01" * 10)
    region.refused, region.error = old.id, error
    executor = Executor(region, DirectSource(master), progress=False)
    op = dataclasses.replace(upload_op(image), kind=OperationKind.REPLACE, regional=old)
    with pytest.raises(kind) as failed:
        Upload(executor, op).apply(RegionResult(REGION))
    new_id = executor.new_ids["a"]
    assert failed.value.message == (f"the new copy {new_id} is uploaded and verified, but"
                                    f" deleting the old image {old.id} failed: {error.message}")
    assert (failed.value.status_code, failed.value.transient) == (error.status_code,
                                                                  error.transient)
    assert failed.value.region == error.region and failed.value.image == error.image
    assert failed.value.__cause__ is error
    assert region.get_image(new_id).visibility == "public"  # in place, verified


def test_a_replace_stops_on_an_old_copy_protected_since_the_plan(master, region):
    image = put(master, "a", DATA)
    old = put(region, "a", b"\x01" * 10)
    region.update_image(old.id, {"protected": True})
    region.changes.clear()
    executor = Executor(region, DirectSource(master), progress=False)
    op = dataclasses.replace(upload_op(image), kind=OperationKind.REPLACE, regional=old)
    with pytest.raises(ProtectedImageError) as refused:
        Upload(executor, op).apply(RegionResult(REGION))
    assert refused.value.message == (
        f"regional image {old.id} is protected: GlanceSync never unprotects nor deletes it;"
        " nothing uploaded (unprotect or delete it, or list its checksum in rename or"
        " dontupdate)")
    assert (refused.value.region, refused.value.image) == (REGION, "a")
    assert region.changes == []


def test_a_rename_goes_ahead_over_a_protected_old_copy(master, region):
    """A rename never deletes the old copy: protected, it is renamed all the same."""
    image = put(master, "a", DATA)
    old = put(region, "a", b"\x01" * 10)
    region.update_image(old.id, {"protected": True})
    executor = Executor(region, DirectSource(master), progress=False)
    op = dataclasses.replace(upload_op(image), kind=OperationKind.RENAME, regional=old)
    result = RegionResult(REGION)
    Upload(executor, op).apply(result)
    assert result.renamed == 1 and region.get_image(old.id).name == "a.old"


def test_a_replace_of_an_old_copy_gone_since_the_plan_uploads(master, region):
    image = put(master, "a", DATA)
    old = put(region, "a", b"\x01" * 10)
    region.delete_image(old.id)
    executor = Executor(region, DirectSource(master), progress=False)
    op = dataclasses.replace(upload_op(image), kind=OperationKind.REPLACE, regional=old)
    try:
        Upload(executor, op).apply(RegionResult(REGION))
    except GlanceSyncError as error:  # the old copy's delete: not this test's business
        assert f"deleting the old image {old.id}" in error.message
    assert region.get_image(executor.new_ids["a"]).status == "active"


def test_a_new_copy_awaiting_validation_is_created_marked_pending(master, region):
    from tests.unit.executor.test_validation import command
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False,
                        validation=command("pass"))
    upload = Upload(executor, upload_op(image))
    assert upload.target.fields["properties"][MARK_VALIDATION] == PENDING
    assert upload.target.fields["visibility"] == "private"
    assert upload.target.fields["protected"] is False
    plain = Upload(Executor(region, DirectSource(master), progress=False), upload_op(image))
    assert MARK_VALIDATION not in plain.target.fields["properties"]


class Rechecking(DirectSource):
    def __init__(self, master):
        super().__init__(master)
        self.rechecked = []

    def recheck(self, image):
        self.rechecked.append(image.name)


@pytest.mark.parametrize("strategy, asked", [(Strategy.STREAM, ["a"]),
                                             (Strategy.GLANCE_DOWNLOAD, [])])
def test_a_mismatch_has_the_source_check_its_copy_when_it_sent_it(master, region, strategy,
                                                                  asked):
    image = put(master, "a", DATA)
    source = Rechecking(master)
    executor = Executor(region, source, progress=False)
    other = put(region, "b", b"\x02" * 10)
    with pytest.raises(TransferError):
        verify(executor.stream, other, image, "a", Transfer(strategy, "raw"))
    assert source.rechecked == asked


class SentSaving(Recording):
    """Every byte stored, then the answer fails (504) with the image still ``saving``."""

    def upload_data(self, image_id, chunks, size=None):
        super().upload_data(image_id, chunks, size)
        self.writable_store.image_update(self.context, image_id, {"status": "saving"},
                                         from_state="active")
        raise ServiceError("504 Gateway Timeout", status_code=504, region=self.name)


def test_a_half_made_image_the_store_may_still_write_is_left_to_it(master, tmp_path, caplog):
    """Every byte sent, the store still saving at saving_timeout: the upload fails,
    the image is neither deleted nor published."""
    image = put(master, "a", DATA)
    saving = SentSaving(REGION, tmp_path / "Saving")
    executor = Executor(saving, DirectSource(master), progress=False, saving_timeout=0.0)
    with caplog.at_level(logging.WARNING, logger="glancesync.executor"):
        with pytest.raises(Exception, match="saving_timeout"):
            Upload(executor, upload_op(image)).apply(RegionResult(REGION))
    (left,) = saving.list_images()
    assert left.status == "saving" and left.visibility == "private"
    assert not any(kind == "delete" for kind, _ in saving.changes)
    assert (f"{REGION}: image a ({left.id}) is left to the store, which may still be writing"
            " it: not deleted") in [r.getMessage() for r in caplog.records]


def test_a_stop_while_the_data_is_made_ready_creates_nothing(master, region):
    from glancesync.errors import StoppedError
    from glancesync.stopping import StopRequest

    stop = StopRequest()

    class Slow(DirectSource):
        def prepare(self, image, *args):  # the download took long: a stop came meanwhile
            stop.set("SIGTERM received")
            return None

    image = put(master, "a", DATA)
    region.changes.clear()
    executor = Executor(region, Slow(master), progress=False, stop=stop)
    with pytest.raises(StoppedError) as stopped:
        Upload(executor, upload_op(image)).apply(RegionResult(REGION))
    assert (stopped.value.region, stopped.value.image) == (REGION, "a")
    assert region.changes == [] and region.list_images() == []


EXTRA = b"c" * (200 * 1024)  #: what the conversion adds: 1.0 MiB become 1.2 MiB


class Converting(DirectSource):
    """A source that converts (here: reverses the bytes of) the master's data to
    ``raw``, then serves the converted file."""

    def __init__(self, master, folder):
        super().__init__(master)
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _converted(self, image):
        return b"".join(self.master_adapter.download_data(image.id))[::-1] + EXTRA

    def prepare(self, image, disk_format=None):
        import hashlib
        data = self._converted(image)
        (self.folder / image.id).write_bytes(data)
        return dataclasses.replace(image, size=len(data), disk_format=disk_format,
                                   checksum=hashlib.md5(data).hexdigest(), os_hash_algo="sha512",
                                   os_hash_value=hashlib.sha512(data).hexdigest())

    def open(self, image, disk_format=None):
        import contextlib
        from glancesync.integrity import FileData

        @contextlib.contextmanager
        def opened():
            path = self.folder / image.id
            with open(path, "rb") as handle:
                yield FileData(handle, path.stat().st_size)
        return opened()


def test_a_converted_copy_is_sent_verified_and_recorded_as_converted(master, region, tmp_path,
                                                                     caplog):
    image = put(master, "a", b"\x0a" * 1024 * 1024, disk_format="qcow2")
    op = dataclasses.replace(upload_op(image), transfer=Transfer(Strategy.STREAM, "raw",
                                                                 "qcow2"))
    executor = Executor(region, Converting(master, tmp_path / "converted"), progress=False)
    result = RegionResult(REGION)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        Upload(executor, op).apply(result)
    copy = region.get_image(executor.new_ids["a"])
    size = 1024 * 1024 + len(EXTRA)
    assert copy.size == size and result.bytes_uploaded == size
    assert f"{REGION}: uploading image a (1.2 MiB, stream, qcow2 to raw)" in [
        r.getMessage() for r in caplog.records]
    assert copy.provenance.copy_hash == f"sha512:{copy.os_hash_value}"
    published = [change for kind, change in region.changes if kind == "update"][-1]
    assert published["glancesync.copy_hash"] == f"sha512:{copy.os_hash_value}"


def test_a_copy_refused_by_its_verification_names_the_image(master, region, caplog):
    from tests.unit.test_executor_faults import FlippingSource
    image = put(master, "a", DATA)
    executor = Executor(region, FlippingSource(master, {"a"}), progress=False)
    upload = Upload(executor, upload_op(image))
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        with pytest.raises(TransferError) as refused:
            upload.apply(RegionResult(REGION))
    assert (refused.value.region, refused.value.image) == (REGION, "a")
    assert f"{REGION}: deleting failed upload a ({upload.target.image_id})" in [
        r.getMessage() for r in caplog.records]


def test_a_dry_run_names_the_copy_it_would_make(master, region, caplog):
    from tests.unit.executor.test_validation import command
    image = put(master, "a", DATA)
    old = put(region, "a", b"\x01" * 10)
    region.changes.clear()
    executor = Executor(region, DirectSource(master), progress=False, dry_run=True,
                        validation=command("raise SystemExit(1)"))
    op = dataclasses.replace(upload_op(image), kind=OperationKind.REPLACE, regional=old)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        Upload(executor, op).apply(RegionResult(REGION))
    said = [r.getMessage() for r in caplog.records]
    assert f"{REGION}: would validate image a (<new a>) with validate_command" in said
    assert f"{REGION}: would delete old image a ({old.id}), replaced by <new a>" in said
    assert executor.new_ids["a"] == "<new a>" and region.changes == []
