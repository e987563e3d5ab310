"""The executor's safety and partial-failure paths, each on its own (issue 27).

A kernel that fails blocks its AMI; a new image is created private and
unprotected, and published only once verified; a removal or a clean-up
re-reads the image right before acting; a dry run fetches nothing; and the
checks that back up others (a non-active new image, a region that gives no
hash, the size of the bytes sent) each refuse a copy on their own. Real
local regions; nothing of ours patched.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from glancesync.errors import ChecksumMismatchError, ProtectedImageError, TransferError
from glancesync.executor import Executor
from glancesync.executor import steps
from glancesync.executor.results import RegionResult
from glancesync.executor.upload import Upload, verify
from glancesync.image import Image, Provenance
from glancesync.integrity import HashingStream
from glancesync.plan.model import Operation, OperationKind
from glancesync.serverside import CopySources
from glancesync.strategy import Strategy, Transfer
from glancesync.transfer import ImageCache, MasterImageSource

from tests import scenarios
from tests.engine import DirectSource, plan_region
from tests.scenarios import put
from tests.unit.executor.regions import Recording
from tests.unit.test_executor_faults import FlippingSource

DATA = b"\x00" * 4096
KIB = 1024


class CreateRecording(Recording):
    """A local region that also keeps what each create call was given."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.created: list[dict[str, Any]] = []

    def create_image(self, name: str, **kwargs: Any) -> Image:
        self.created.append(dict(kwargs))
        return super().create_image(name, **kwargs)


@pytest.fixture
def master(tmp_path):
    return Recording("master:Master", tmp_path / "Master", "p-master")


@pytest.fixture
def region(tmp_path):
    return CreateRecording("master:RegionA", tmp_path / "RegionA")


def upload_op(master_image: Image, **changes: Any) -> Operation:
    fields = {"visibility": "public", "disk_format": "raw", "container_format": "bare",
              "min_ram": 0, "min_disk": 0, "protected": True, "os_hidden": True,
              "tags": ["t"], "properties": {"type": "x"}, "late_properties": {}}
    fields.update(changes)
    return Operation(OperationKind.UPLOAD, master_image.name, master=master_image,
                     size=master_image.size, changes=fields,
                     provenance=Provenance.of(master_image, "Master"),
                     transfer=Transfer(Strategy.STREAM, "raw"))


# --- a kernel or ramdisk that fails blocks its AMI ---------------------------------

def _ami(master) -> dict[str, Image]:
    kernel = put(master, "kernel", scenarios.content("kernel", 30 * KIB),
                 disk_format="aki", container_format="aki")
    ramdisk = put(master, "ramdisk", scenarios.content("ramdisk", 10 * KIB),
                  disk_format="ari", container_format="ari")
    ami = put(master, "ami", scenarios.content("ami", 8 * KIB), disk_format="ami",
              container_format="ami", kernel_id=kernel.id, ramdisk_id=ramdisk.id)
    return {"kernel": kernel, "ramdisk": ramdisk, "ami": ami}


@pytest.mark.parametrize("broken", ["kernel", "ramdisk"])
def test_a_kernel_or_ramdisk_that_fails_blocks_its_ami(master, region, broken):
    _ami(master)
    plan = plan_region(master, region, scenarios.target())
    result = Executor(region, FlippingSource(master, {broken}),
                      progress=False).execute(plan)
    names = {image.name for image in region.list_images()}
    assert "ami" not in names, "an AMI without its kernel or ramdisk cannot boot"
    assert broken not in names
    assert set(result.failed) == {broken, "ami"}
    assert f"{broken}_id image {broken} was not synchronised" in result.failed["ami"]
    # Nothing of the AMI was created, not even to be deleted again.
    assert [fields for fields in region.created
            if fields.get("disk_format") == "ami"] == []


def test_an_ami_whose_kernel_and_ramdisk_work_refers_to_their_copies(master, region):
    images = _ami(master)
    plan = plan_region(master, region, scenarios.target())
    result = Executor(region, DirectSource(master), progress=False).execute(plan)
    assert result.errors == 0
    copies = {image.name: image for image in region.list_images()}
    assert copies["ami"].properties["kernel_id"] == copies["kernel"].id != images["kernel"].id
    assert copies["ami"].properties["ramdisk_id"] == copies["ramdisk"].id


# --- created private and unprotected, published once verified ------------------------

def test_the_create_call_never_carries_the_final_visibility_or_protection(master, region):
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False)
    Upload(executor, upload_op(image)).apply(RegionResult("master:RegionA"))
    (created,) = region.created
    assert created["visibility"] == "private" and created["protected"] is False
    assert "os_hidden" not in created and "tags" not in created
    assert created["properties"]["type"] == "x"
    kinds = [kind for kind, _ in region.changes]
    assert kinds == ["create", "upload", "update"]
    assert region.changes[-1][1] == {"visibility": "public", "protected": True,
                                     "os_hidden": True, "tags": ["t"]}


def test_a_copy_that_fails_verification_is_never_published(master, region):
    image = put(master, "a", DATA)
    executor = Executor(region, FlippingSource(master, {"a"}), progress=False)
    with pytest.raises(TransferError):
        Upload(executor, upload_op(image)).apply(RegionResult("master:RegionA"))
    assert [kind for kind, _ in region.changes] == ["create", "upload", "delete"]
    assert region.list_images() == []


# --- removal steps and clean-ups re-read the image right before acting ----------------

CHANGES = {
    "name": {"name": "kept-by-hand"},
    "owner": {"owner": "another-project"},
    "protected": {"protected": True},
}


@pytest.mark.parametrize("kind", [OperationKind.DELETE, OperationKind.HIDE,
                                  OperationKind.DEACTIVATE])
@pytest.mark.parametrize("field", sorted(CHANGES))
def test_a_removal_step_leaves_an_image_changed_since_the_plan_alone(region, kind, field,
                                                                     caplog):
    image = put(region, "a", b"x")
    if field == "protected":  # an operator protects it after the listing
        region.update_image(image.id, {"protected": True})
        planned = image
    else:  # what the plan saw: the image before an operator changed the field
        planned = dataclasses.replace(image, **{field: "was"})
    region.changes.clear()
    changes = {"os_hidden": True} if kind is OperationKind.HIDE else {"m": "x"}
    op = Operation(kind, "a", regional=planned, changes=changes, reason="gone")
    result = RegionResult("master:RegionA")
    with caplog.at_level(logging.WARNING, logger="glancesync"):
        steps.remove(Executor(region, None, progress=False), op, result)
    assert region.changes == []
    assert (result.deleted, result.retired) == (0, 0)
    current = region.get_image(image.id)
    assert current.status == "active" and current.os_hidden is False
    assert f"changed since it was listed ({field})" in caplog.text


@pytest.mark.parametrize("kind, counter", [(OperationKind.DELETE, "deleted"),
                                           (OperationKind.HIDE, "retired"),
                                           (OperationKind.DEACTIVATE, "retired")])
def test_a_removal_step_acts_on_an_image_as_planned(region, kind, counter):
    image = put(region, "a", b"x")
    changes = {"os_hidden": True} if kind is OperationKind.HIDE else {"m": "x"}
    op = Operation(kind, "a", regional=image, changes=changes, reason="gone")
    result = RegionResult("master:RegionA")
    steps.remove(Executor(region, None, progress=False), op, result)
    assert getattr(result, counter) == 1
    assert region.changes


@pytest.mark.parametrize("listed_as", [{"name": "before"}, {"owner": "another"},
                                       {"protected": True}, {"size": 99},
                                       {"checksum": "0" * 32}, {"visibility": "public"}])
def test_a_leftover_changed_within_the_same_second_is_left_alone(region, listed_as):
    """Glance stamps updated_at to the second: a leftover renamed, protected, given
    away or filled in the second it was listed keeps its status and its time, and
    must still be left alone."""
    leftover = region.create_image("a", disk_format="raw", container_format="bare")
    current = region.get_image(leftover.id)
    # What the listing saw, just before the change, in the same second.
    listed = dataclasses.replace(current, **listed_as)
    assert (listed.status, listed.updated_at) == (current.status, current.updated_at)
    region.changes.clear()
    op = Operation(OperationKind.CLEANUP, "a", regional=listed)
    result = RegionResult("master:RegionA")
    steps.cleanup(Executor(region, None, progress=False), op, result)
    assert region.changes == [] and result.cleaned == 0
    assert region.get_image(leftover.id).status == "queued"


def test_a_leftover_as_listed_is_deleted(region):
    leftover = region.create_image("a", disk_format="raw", container_format="bare")
    op = Operation(OperationKind.CLEANUP, "a", regional=region.get_image(leftover.id))
    result = RegionResult("master:RegionA")
    steps.cleanup(Executor(region, None, progress=False), op, result)
    assert result.cleaned == 1 and region.list_images() == []


# --- a dry run fetches nothing and names the right source ---------------------------

class CountingSource(MasterImageSource):
    """The library's cached source, counting what it fetches and converts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: list[str] = []

    def prepare(self, image: Image, *args: Any) -> Image | None:
        self.prepared.append(image.name)
        return super().prepare(image, *args)


@pytest.mark.parametrize("convert", [False, True])
def test_a_dry_run_downloads_and_converts_nothing(master, region, tmp_path, convert):
    image = put(master, "a", scenarios.content("dry", 64 * KIB), disk_format="raw")
    source = CountingSource(master, ImageCache(tmp_path / "cache"))
    transfer = (Transfer(Strategy.STREAM, "qcow2", "raw") if convert
                else Transfer(Strategy.STREAM, "raw"))
    op = dataclasses.replace(upload_op(image), transfer=transfer)
    executor = Executor(region, source, dry_run=True, progress=False)
    result = RegionResult("master:RegionA")
    Upload(executor, op).apply(result)
    assert result.uploaded == 1
    assert source.prepared == [] and source.downloads == 0
    cache = tmp_path / "cache"
    assert not cache.exists() or [p for p in cache.rglob("*") if p.is_file()] == []
    assert region.changes == [] and region.list_images() == []
    assert master.changes[-1][0] == "upload"  # the master's own put, nothing after


@pytest.mark.parametrize("holder", [None, "RegionB"])
def test_a_dry_run_server_side_copy_names_its_source(master, region, caplog, holder):
    image = put(master, "a", DATA)
    sources = CopySources()
    if holder is not None:  # a verified copy earlier in the run: a relay
        sources.add("master", holder, image.id, "copy-in-" + holder)
    transfer = Transfer(Strategy.GLANCE_DOWNLOAD, "raw", source_region="Master")
    op = dataclasses.replace(upload_op(image), transfer=transfer)
    executor = Executor(region, DirectSource(master), dry_run=True, progress=False,
                        sources=sources)
    with caplog.at_level(logging.INFO, logger="glancesync"):
        Upload(executor, op).apply(RegionResult("master:RegionA"))
    (line,) = [r.getMessage() for r in caplog.records if "import" in r.getMessage()]
    assert f"from {holder or 'Master'} (glance-download" in line, line
    assert region.changes == []


# --- the checks that back up other checks, each alone ---------------------------------

def _sent(data: bytes) -> HashingStream:
    sent = HashingStream(iter([data]), "sha512", md5=True)
    b"".join(sent)
    return sent


def test_a_new_image_not_active_is_refused_even_with_the_right_hashes(master, region):
    image = put(master, "a", DATA)
    copy = dataclasses.replace(put(region, "a", DATA), status="saving")
    executor = Executor(region, DirectSource(master), progress=False)
    assert image.same_content(copy)
    with pytest.raises(TransferError, match="is saving, not active"):
        verify(executor.stream, copy, image, "a", Transfer(Strategy.STREAM, "raw"))


def test_a_region_that_gives_no_hash_is_refused(master, region):
    image = dataclasses.replace(put(master, "a", DATA), checksum=None, os_hash_algo=None,
                                os_hash_value=None)
    copy = dataclasses.replace(put(region, "a", DATA), checksum=None, os_hash_algo=None,
                               os_hash_value=None)
    executor = Executor(region, DirectSource(master), progress=False)
    executor.stream.sent[image.id] = _sent(DATA)
    with pytest.raises(ChecksumMismatchError, match="has none hash None"):
        verify(executor.stream, copy, image, "a", Transfer(Strategy.STREAM, "raw"))


def test_a_region_hashing_with_md5_only_is_checked_with_md5(master, region):
    image = dataclasses.replace(put(master, "a", DATA), checksum=None, os_hash_algo=None,
                                os_hash_value=None)
    copy = dataclasses.replace(put(region, "a", DATA), os_hash_algo=None, os_hash_value=None)
    executor = Executor(region, DirectSource(master), progress=False)
    sent = _sent(DATA)
    executor.stream.sent[image.id] = sent
    stream_transfer = Transfer(Strategy.STREAM, "raw")
    assert verify(executor.stream, copy, image, "a", stream_transfer) == f"md5:{sent.md5}"
    executor.stream.sent[image.id] = _sent(DATA)
    wrong = dataclasses.replace(copy, checksum="0" * 32)
    with pytest.raises(ChecksumMismatchError, match="has md5 hash 0000"):
        verify(executor.stream, wrong, image, "a", stream_transfer)


def test_the_size_sent_of_a_master_without_hash_must_be_the_masters(master, region):
    """The region's hash agrees with the bytes sent, but fewer were sent than the
    master has: a truncated download is refused by the size alone."""
    image = dataclasses.replace(put(master, "a", DATA), checksum=None, os_hash_algo=None,
                                os_hash_value=None)
    short = DATA[:-1]
    copy = put(region, "a", short)
    executor = Executor(region, DirectSource(master), progress=False)
    executor.stream.sent[image.id] = _sent(short)
    with pytest.raises(ChecksumMismatchError, match=f"sent {len(short)} bytes, the master"
                                                    f" image has {len(DATA)}"):
        verify(executor.stream, copy, image, "a", Transfer(Strategy.STREAM, "raw"))


# --- what an upload records, and what it retires --------------------------------------

def test_a_verified_copy_is_offered_as_a_source_and_counted(master, region):
    image = put(master, "a", DATA)
    sources = CopySources()
    executor = Executor(region, DirectSource(master), progress=False, sources=sources)
    result = RegionResult("master:RegionA")
    Upload(executor, upload_op(image)).apply(result)
    new_id = executor.new_ids["a"]
    assert sources.holders("master", image.id) == {"RegionA": new_id}
    assert (result.uploaded, result.bytes_uploaded, result.copied_server_side) == (
        1, len(DATA), 0)


def test_a_dry_run_offers_no_source(master, region):
    image = put(master, "a", DATA)
    sources = CopySources()
    executor = Executor(region, DirectSource(master), dry_run=True, progress=False,
                        sources=sources)
    Upload(executor, upload_op(image)).apply(RegionResult("master:RegionA"))
    assert sources.holders("master", image.id) == {}


def test_a_replacement_deletes_the_old_copy_after_the_new_one(master, region):
    image = put(master, "a", DATA)
    old = put(region, "a", b"\x01" * 10)
    region.changes.clear()
    executor = Executor(region, DirectSource(master), progress=False)
    result = RegionResult("master:RegionA")
    op = dataclasses.replace(upload_op(image), kind=OperationKind.REPLACE, regional=old)
    Upload(executor, op).apply(result)
    kinds = [kind for kind, _ in region.changes]
    assert kinds == ["create", "upload", "update", "delete"]
    assert region.changes[-1] == ("delete", old.id)
    assert result.replaced == 1 and [i.id for i in region.list_images()] == [
        executor.new_ids["a"]]


def test_a_replacement_never_unprotects_an_old_copy_protected_since_the_plan(master, region):
    """Issue 23, case 2: protected after the listing, the old copy stops the replace
    before anything is made; it is neither unprotected nor deleted."""
    image = put(master, "a", DATA)
    old = put(region, "a", b"\x01" * 10)
    region.update_image(old.id, {"protected": True})
    region.changes.clear()
    executor = Executor(region, DirectSource(master), progress=False)
    op = dataclasses.replace(upload_op(image), kind=OperationKind.REPLACE, regional=old)
    with pytest.raises(ProtectedImageError, match="never unprotects"):
        Upload(executor, op).apply(RegionResult("master:RegionA"))
    assert region.changes == []
    assert [(i.id, i.protected) for i in region.list_images()] == [(old.id, True)]


def test_the_create_call_carries_the_limits_and_defaults_them(master, region):
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False)
    Upload(executor, upload_op(image, min_ram=512, min_disk=3)).apply(
        RegionResult("master:RegionA"))
    op = upload_op(image)
    del op.changes["min_ram"], op.changes["min_disk"], op.changes["visibility"]
    region.update_image(executor.new_ids["a"], {"protected": False})
    region.delete_image(executor.new_ids["a"])
    op.changes["protected"] = False
    Upload(executor, op).apply(RegionResult("master:RegionA"))
    first, second = region.created
    assert (first["min_ram"], first["min_disk"]) == (512, 3)
    assert (second["min_ram"], second["min_disk"]) == (0, 0)
    # No visibility asked: the copy stays private, no visibility is published.
    published = [change for kind, change in region.changes if kind == "update"]
    assert "visibility" not in published[-1]
    assert region.get_image(executor.new_ids["a"]).visibility == "private"


def test_verification_errors_name_the_region_and_the_image(master, region):
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False)
    transfer = Transfer(Strategy.STREAM, "raw")
    saving = dataclasses.replace(put(region, "x", DATA), status="saving")
    other = put(region, "y", DATA[:-1] + b"\x01")
    for copy, words in ((saving, "is saving, not active"),
                        (other, f"expected {image.checksum}, size {len(DATA)}")):
        with pytest.raises(TransferError, match=words) as caught:
            verify(executor.stream, copy, image, "a", transfer)
        assert (caught.value.region, caught.value.image) == ("master:RegionA", "a")
    bare = dataclasses.replace(image, checksum=None, os_hash_algo=None, os_hash_value=None)
    for sent, copy in ((_sent(DATA[:-1]), put(region, "z", DATA[:-1])),
                       (_sent(DATA), other)):
        executor.stream.sent[bare.id] = sent
        with pytest.raises(ChecksumMismatchError) as caught:
            verify(executor.stream, copy, bare, "a", transfer)
        assert (caught.value.region, caught.value.image) == ("master:RegionA", "a")


def test_a_region_with_an_algorithm_but_no_value_is_checked_with_md5(master, region):
    bare = dataclasses.replace(put(master, "a", DATA), checksum=None, os_hash_algo=None,
                               os_hash_value=None)
    copy = dataclasses.replace(put(region, "a", DATA), os_hash_value=None)
    assert copy.os_hash_algo == "sha512"
    executor = Executor(region, DirectSource(master), progress=False)
    sent = _sent(DATA)
    executor.stream.sent[bare.id] = sent
    transfer = Transfer(Strategy.STREAM, "raw")
    assert verify(executor.stream, copy, bare, "a", transfer) == f"md5:{sent.md5}"
