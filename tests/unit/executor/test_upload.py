"""glancesync.executor.upload: a new copy, stage by stage, on a real local region."""
from __future__ import annotations

import logging

import pytest

from glancesync.errors import ChecksumMismatchError, TransferError
from glancesync.executor import Executor
from glancesync.executor.results import RegionResult
from glancesync.executor.upload import Upload, discard, verify
from glancesync.image import Image, Provenance
from glancesync.integrity import HashingStream
from glancesync.plan.model import Operation, OperationKind
from glancesync.strategy import Strategy, Transfer

from tests.engine import DirectSource
from tests.scenarios import put
from tests.unit.executor.regions import Recording

DATA = b"\x00" * 4096


@pytest.fixture
def master(tmp_path):
    return Recording("master:Master", tmp_path / "Master", "p-master")


@pytest.fixture
def region(tmp_path):
    return Recording("master:RegionA", tmp_path / "RegionA")


def upload_op(master_image: Image, kind=OperationKind.UPLOAD, regional=None, **changes):
    fields = {"visibility": "public", "disk_format": "raw", "container_format": "bare",
              "min_ram": 0, "min_disk": 0, "protected": False, "os_hidden": False,
              "tags": ["t"], "properties": {"type": "x"}, "late_properties": {}}
    fields.update(changes)
    return Operation(kind, master_image.name, master=master_image, regional=regional,
                     size=master_image.size, changes=fields,
                     provenance=Provenance.of(master_image, "Master"),
                     transfer=Transfer(Strategy.STREAM, "raw"))


def test_the_stages_run_in_order_and_the_copy_is_published_last(master, region):
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False)
    result = RegionResult("master:RegionA")
    Upload(executor, upload_op(image)).apply(result)
    kinds = [kind for kind, _ in region.changes]
    assert kinds == ["create", "upload", "update"]
    (published,) = [change for kind, change in region.changes if kind == "update"]
    assert published == {"visibility": "public", "tags": ["t"]}
    new_id = executor.new_ids["a"]
    copy = region.get_image(new_id)
    assert copy.visibility == "public" and copy.provenance.master_image_id == image.id
    assert (result.uploaded, result.bytes_uploaded) == (1, len(DATA))


def test_a_rename_retires_the_old_copy_after_the_new_one(master, region):
    image = put(master, "a", DATA)
    old = put(region, "a", b"\x01" * 10)
    executor = Executor(region, DirectSource(master), progress=False)
    result = RegionResult("master:RegionA")
    Upload(executor, upload_op(image, OperationKind.RENAME, regional=old)).apply(result)
    assert region.changes[-1][0] == "update" and region.changes[-1][1]["name"] == "a.old"
    assert result.renamed == 1 and region.get_image(old.id).visibility == "private"


def test_a_copy_not_as_sent_is_refused_and_a_failed_upload_discarded(master, region, caplog):
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False)
    other = put(region, "b", b"\x02" * 10)
    with pytest.raises(TransferError):
        verify(executor.stream, other, image, "a", Transfer(Strategy.STREAM, "raw"))
    with caplog.at_level(logging.ERROR, logger="glancesync.executor"):
        discard(executor.actions, "no-such-image", "a")  # logged, never raised
    assert "could not delete failed upload a (no-such-image)" in caplog.text


def test_a_master_without_checksum_is_checked_against_the_bytes_sent(master, region):
    image = put(master, "a", DATA)
    image.checksum = image.os_hash_value = image.os_hash_algo = None
    executor = Executor(region, DirectSource(master), progress=False)
    transfer = Transfer(Strategy.STREAM, "raw")
    sent = HashingStream(iter([DATA]), "sha512", md5=True)
    b"".join(sent)
    executor.stream.sent[image.id] = sent
    same = put(region, "same", DATA)
    assert verify(executor.stream, same, image, "a", transfer) == f"sha512:{sent.os_hash}"
    executor.stream.sent[image.id] = sent
    with pytest.raises(ChecksumMismatchError, match="the bytes sent have"):
        verify(executor.stream, put(region, "other", DATA[:-1] + b"\x01"), image, "a", transfer)
