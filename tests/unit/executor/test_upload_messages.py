"""glancesync.executor.upload: what an upload tells the operator, and what it counts.

The log lines of an upload's stages (published, old copy deleted or
renamed, a failed upload discarded or not) and the counters the region's
summary adds up (bytes sent, copies replaced, bytes copied by the region)
are pinned here (issue 27: mutants that changed them passed every test).
Real local regions; nothing of ours patched.
"""
from __future__ import annotations

import dataclasses
import logging

import pytest

from glancesync.executor import Executor
from glancesync.executor.results import RegionResult
from glancesync.executor.upload import Upload, discard
from glancesync.image import PROVENANCE_COPY_HASH, PROVENANCE_HASH, Image, Provenance
from glancesync.plan.model import Operation, OperationKind
from glancesync.strategy import Strategy, Transfer

from tests.engine import DirectSource
from tests.scenarios import put
from tests.unit.executor.regions import Recording

REGION = "master:RegionA"
DATA = b"\x00" * 4096


@pytest.fixture
def master(tmp_path):
    return Recording("master:Master", tmp_path / "Master", "p-master")


@pytest.fixture
def region(tmp_path):
    return Recording(REGION, tmp_path / "RegionA")


@pytest.fixture
def caplog(caplog):
    caplog.set_level(logging.DEBUG, logger="glancesync.executor")
    return caplog


def lines(caplog) -> list[tuple[str, str]]:
    """(level, message) of the executor's records (a missing argument fails here)."""
    return [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "glancesync.executor"]


def upload_op(master_image: Image, kind=OperationKind.UPLOAD, regional=None,
              **changes) -> Operation:
    fields = {"visibility": "public", "disk_format": "raw", "container_format": "bare",
              "min_ram": 0, "min_disk": 0, "protected": False, "os_hidden": False,
              "tags": ["t"], "properties": {"type": "x"}, "late_properties": {}}
    fields.update(changes)
    return Operation(kind, master_image.name, master=master_image, regional=regional,
                     size=master_image.size, changes=fields,
                     provenance=Provenance.of(master_image, "Master"),
                     transfer=Transfer(Strategy.STREAM, "raw"))


def test_publishing_says_what_the_copy_is_given(master, region, caplog):
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False)
    Upload(executor, upload_op(image)).apply(RegionResult(REGION))
    new_id = executor.new_ids["a"]
    assert ("DEBUG", f"{REGION}: publishing image a (tags=['t'], visibility=public)") in (
        lines(caplog))
    assert ("INFO", f"{REGION}: uploading image a (0.0 MiB)") in lines(caplog)
    assert region.get_image(new_id).visibility == "public"


def test_publishing_records_the_hash_sent_and_the_copys_own(master, region):
    """A master without checksum: the copy's provenance keeps the hash of the bytes
    sent; a converted copy keeps the region's hash of it."""
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False)
    upload = Upload(executor, upload_op(image, tags=[], visibility="private"))
    upload.target.image_id = put(region, "a", DATA, visibility="private").id
    region.changes.clear()
    upload.publish("sha512:sent", "md5:copy")
    assert region.changes == [("update", {PROVENANCE_HASH: "sha512:sent",
                                          PROVENANCE_COPY_HASH: "md5:copy"})]


def _record(executor, op, result, size, streamed):
    upload = Upload(executor, op)
    upload.target.image_id = "new-id"
    upload.record(result, dataclasses.replace(op.master, size=size), streamed)


def test_the_bytes_counted_are_those_of_the_data_sent_or_the_masters(master, region):
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False)
    op = upload_op(image)
    result = RegionResult(REGION)
    _record(executor, op, result, 1000, True)  # a converted file of 1000 bytes
    assert result.bytes_uploaded == 1000
    _record(executor, op, result, None, True)  # no size known: the master's
    assert result.bytes_uploaded == 1000 + len(DATA)
    assert (result.uploaded, result.copied_server_side, result.bytes_server_side) == (2, 0, 0)


def test_the_bytes_copied_by_the_region_add_up(master, region):
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False)
    result = RegionResult(REGION)
    for _ in range(2):
        _record(executor, upload_op(image), result, len(DATA), False)
    assert (result.copied_server_side, result.bytes_server_side) == (2, 2 * len(DATA))
    assert (result.uploaded, result.bytes_uploaded) == (2, 0)


def test_replacing_says_which_old_copy_goes_and_counts_each(master, region, caplog):
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False)
    result = RegionResult(REGION)
    for _ in range(2):
        old = put(region, "a", b"\x01" * 10)
        op = upload_op(image, OperationKind.REPLACE, regional=old)
        Upload(executor, op).apply(result)
        new_id = executor.new_ids["a"]
        assert lines(caplog)[-1] == ("INFO", f"{REGION}: deleting old image a ({old.id}),"
                                             f" replaced by {new_id}")
    assert (result.replaced, result.uploaded) == (2, 2)


def test_renaming_says_which_old_copy_is_kept_aside(master, region, caplog):
    image = put(master, "a", DATA)
    old = put(region, "a", b"\x01" * 10)
    executor = Executor(region, DirectSource(master), progress=False)
    Upload(executor, upload_op(image, OperationKind.RENAME, regional=old)).apply(
        RegionResult(REGION))
    assert lines(caplog)[-1] == ("INFO", f"{REGION}: renaming a ({old.id}) to a.old,"
                                         " made private")


def test_discarding_a_failed_upload_is_logged_and_its_failure_too(region, caplog):
    gone = put(region, "a", DATA)
    discard(RegionActions_of(region), gone.id, "a")
    assert lines(caplog) == [("INFO", f"{REGION}: deleting failed upload a ({gone.id})")]
    caplog.clear()
    discard(RegionActions_of(region), "no-such-image", "a")
    ((level, message),) = [line for line in lines(caplog) if line[0] == "ERROR"]
    assert message.startswith(f"{REGION}: could not delete failed upload a (no-such-image): ")
    assert message != f"{REGION}: could not delete failed upload a (no-such-image): None"
    assert "no-such-image" in message.split(": ", 2)[2]


def RegionActions_of(region):  # noqa: N802 - reads as the class it returns
    return Executor(region, None, progress=False).actions


def test_validate_command_is_told_which_copy_of_which_master_where(master, region, caplog):
    from glancesync.executor.validation import ValidationError
    from tests.unit.executor.test_validation import command

    image = put(master, "a", DATA)
    keys = ("GLANCESYNC_TARGET", "GLANCESYNC_REGION", "GLANCESYNC_IMAGE_ID",
            "GLANCESYNC_IMAGE_NAME", "GLANCESYNC_MASTER_IMAGE_ID")
    probe = command(f"import os; print(*(os.environ.get(k) for k in {keys!r})); exit(1)")
    executor = Executor(region, DirectSource(master), progress=False, validation=probe)
    upload = Upload(executor, upload_op(image))
    with pytest.raises(ValidationError) as refused:
        upload.apply(RegionResult(REGION))
    new_id = upload.target.image_id
    assert refused.value.tail == [f"master RegionA {new_id} a {image.id}"]
    assert (refused.value.region, refused.value.image) == (REGION, "a")
    assert ("INFO", f"{REGION}: validating image a ({new_id}) with validate_command") in (
        lines(caplog))
    # its output goes to the region's log, under the region's name
    assert ("INFO", f"{REGION}: validate_command: master RegionA {new_id} a {image.id}") in (
        lines(caplog))


def test_a_command_stopped_at_its_time_limit_is_said_so(master, region):
    from glancesync.executor.validation import ValidationError
    from tests.unit.executor.test_validation import command

    image = put(master, "a", DATA)
    slow = command("import time; time.sleep(60)", timeout=0.5)  # always stopped
    executor = Executor(region, DirectSource(master), progress=False, validation=slow)
    upload = Upload(executor, upload_op(image))
    with pytest.raises(ValidationError) as refused:
        upload.apply(RegionResult(REGION))
    assert refused.value.message.startswith(
        f"validate_command refused new copy {upload.target.image_id} (stopped at"
        " validate_timeout); it stays private, any previous copy in service; last lines:")
    assert refused.value.message.endswith("stopped after 0.5 s (validate_timeout)")


class Unmarkable(Recording):
    """A local region refusing the mark of a failed validation."""

    def update_image(self, image_id, changes, remove=()):
        if "glancesync.validation" in changes and changes["glancesync.validation"] == "failed":
            from glancesync.errors import ServiceError
            raise ServiceError("unavailable (HTTP 503)", status_code=503, region=self.name)
        return super().update_image(image_id, changes, remove)


def test_a_refused_copy_that_cannot_be_marked_is_reported_all_the_same(master, tmp_path,
                                                                       caplog):
    from glancesync.executor.validation import ValidationError
    from tests.unit.executor.test_validation import command

    region = Unmarkable(REGION, tmp_path / "Unmarkable")
    image = put(master, "a", DATA)
    executor = Executor(region, DirectSource(master), progress=False,
                        validation=command("raise SystemExit(4)"))
    upload = Upload(executor, upload_op(image))
    with pytest.raises(ValidationError, match="exit status 4"):
        upload.apply(RegionResult(REGION))
    new_id = upload.target.image_id
    assert ("DEBUG", f"{REGION}: marking image a ({new_id}): validation failed") in lines(caplog)
    assert ("ERROR", f"{REGION}: could not mark a ({new_id}) as failed: region {REGION}:"
                     " unavailable (HTTP 503)") in lines(caplog)
    assert region.get_image(new_id).visibility == "private"


def test_a_new_copy_is_shared_once_published_and_it_is_said(master, region, caplog):
    image = put(master, "a", DATA)
    op = dataclasses.replace(upload_op(image, visibility="shared"), add_members=("p-2",))
    executor = Executor(region, DirectSource(master), progress=False)
    Upload(executor, op).apply(RegionResult(REGION))
    new_id = executor.new_ids["a"]
    assert region.list_members(new_id) == ["p-2"]
    assert lines(caplog)[-1] == ("INFO", f"{REGION}: sharing image a with project p-2")


def test_a_refusal_quotes_the_commands_last_lines(master, region):
    from glancesync.executor.validation import ValidationError
    from tests.unit.executor.test_validation import command

    image = put(master, "a", DATA)
    noisy = command("for i in range(1, 8): print('line', i)\nraise SystemExit(1)")
    executor = Executor(region, DirectSource(master), progress=False, validation=noisy)
    with pytest.raises(ValidationError) as refused:
        Upload(executor, upload_op(image)).apply(RegionResult(REGION))
    assert refused.value.message.endswith("(exit status 1); it stays private, any previous"
                                          " copy in service; last lines: line 3 | line 4 |"
                                          " line 5 | line 6 | line 7")  # the last five
