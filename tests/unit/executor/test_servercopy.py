"""glancesync.executor.servercopy: what a failed server-side copy says and does (issue 27).

A copy that is not the master's content is reported (naming the relay
whose stored data may be corrupt, which serves no more copies) and
streamed instead; a copy whose task cannot be read is taken as still
running (deleted, not filled); a completed copy's metadata is set again
and said. In-memory regions that copy as Glance does (tests/memory_backend.py).
"""
from __future__ import annotations

import dataclasses
import logging

import pytest

from glancesync.errors import ServiceError

from tests import memory_backend, scenarios
from tests.unit.test_serverside import (SIZE, AnswerLost, Refusing, Run, clean_spaces,  # noqa: F401
                                        copies, region)

MASTER = "master:Master"


@pytest.fixture
def run(tmp_path) -> Run:
    return Run(tmp_path)


def messages(caplog, level):
    return [r.getMessage() for r in caplog.records
            if r.name == "glancesync.executor" and r.levelname == level]


class Corrupting(memory_backend.MemoryRegionAdapter):
    """A region whose copies end active with other bytes than the source's."""

    def import_image(self, image_id, **kw):
        super().import_image(image_id, **kw)
        with memory_backend._LOCK:
            stored = self._images[image_id]
            stored.data = b"other" + stored.data[5:]
            stored.image = dataclasses.replace(stored.image, checksum="0" * 32,
                                               os_hash_value="0" * 128)


def test_a_copy_of_other_bytes_is_reported_deleted_and_streamed(run, caplog):
    corrupting = region("RegionA", Corrupting)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        result = run.sync(corrupting)
    assert result.success and (result.copied_server_side, result.bytes_uploaded) == (0, SIZE)
    (copy,) = copies(corrupting)
    assert run.image.same_content(copy)
    bad = (f"has checksum {'0' * 32}, size {SIZE}; expected {run.image.checksum},"
           f" size {SIZE}")
    (error,) = messages(caplog, "ERROR")
    assert error.startswith(f"master:RegionA: the copy of img made from the master region"
                            f" Master does not hold the master's bytes (new image ")
    assert error.endswith(f"{bad})")
    (warning,) = messages(caplog, "WARNING")
    assert warning.startswith("master:RegionA: server-side copy of img from Master (the"
                              " master image) failed (new image ")
    assert warning.endswith(f"{bad}); streaming it instead")
    assert any(m.startswith("master:RegionA: deleting unfinished server-side copy img (")
               and m.endswith(", active)") for m in messages(caplog, "INFO"))


def test_a_relay_whose_copy_is_not_the_masters_is_named_and_offered_no_more(run, caplog):
    relay = region("RegionB")
    other = scenarios.put(relay, "img", scenarios.content("not the master's", SIZE))
    run.sources.add("master", "RegionB", run.image.id, other.id)
    target = region("RegionA")
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        result = run.sync(target)
    assert result.success and result.bytes_uploaded == SIZE
    assert "RegionB" not in run.sources.holders("master", run.image.id)
    (error,) = messages(caplog, "ERROR")
    assert error.startswith(f"master:RegionA: the copy of img made from RegionB's image"
                            f" {other.id} does not hold the master's bytes (new image ")
    assert error.endswith(": RegionB's stored data may be corrupt although its hashes are"
                          " the master's; it relays no more copies in this run: check it"
                          " (download it and compare) and delete it if it is corrupt")
    (warning,) = messages(caplog, "WARNING")
    assert warning.startswith(f"master:RegionA: server-side copy of img from RegionB (the"
                              f" copy {other.id} made there) failed (")


def test_a_refused_copy_says_who_refused_it(run, caplog):
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        assert run.sync(region("RegionA", Refusing)).success
    (warning,) = messages(caplog, "WARNING")
    assert warning == ("master:RegionA: server-side copy of img from Master (the master"
                       " image) failed (refused: region master:RegionA: import failed (HTTP"
                       " 400): Unknown import method name 'glance-download'.); streaming it"
                       " instead")


class Unreadable(AnswerLost):
    """The answer to the copy lost, and its task cannot be read either."""

    def import_task(self, image_id):
        raise ServiceError("task list unavailable", status_code=503, region=self.name)


def test_a_copy_whose_task_cannot_be_read_is_taken_as_running(run, caplog):
    unreadable = region("RegionA", Unreadable)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        result = run.sync(unreadable)
    assert result.success and result.bytes_uploaded == SIZE
    assert any(m.startswith("master:RegionA: deleting unfinished server-side copy img (")
               and m.endswith(", queued)") for m in messages(caplog, "INFO"))
    (copy,) = copies(unreadable)
    assert run.image.same_content(copy)


def test_a_completed_copy_says_what_was_set_again(run, caplog):
    """The region copied the source's hw_* over: removed again, and said so."""
    from glancesync.executor import Executor
    from glancesync.plan import make_plan
    from glancesync.retry import RetryPolicy
    from glancesync.selection import select_master
    from tests.unit.test_serverside import PROJECT

    master = region("Master")
    scenarios.put(master, "hw", b"hw" * 5000, gs_custom="kept", hw_firmware_type="bios")
    target = region("RegionA")
    plan = make_plan(target.name, select_master(master.list_images(), PROJECT),
                     target.list_images(), PROJECT,
                     scenarios.target(metadata_set={"gs_custom"}),
                     transfer=run.transfer("RegionA"))
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        result = Executor(target, run.source, progress=False, sources=run.sources,
                          retry=RetryPolicy(retries=2, sleep=run.sleeps.append)).execute(plan)
    assert result.copied_server_side == 2
    (line,) = [m for m in messages(caplog, "INFO") if "after its server-side copy" in m]
    assert line == ("master:RegionA: updating image hw after its server-side copy"
                    " (-hw_firmware_type)")


def test_a_dry_run_copy_is_counted_as_copied_by_the_region(run):
    result = run.sync(region("RegionA"), dry_run=True)
    assert (result.uploaded, result.copied_server_side, result.bytes_uploaded) == (1, 1, 0)
    assert result.bytes_server_side == SIZE


def test_a_region_never_copies_from_itself(run, caplog):
    run.sources.add("master", "RegionA", run.image.id, "an-older-copy")
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        assert run.sync(region("RegionA")).copied_server_side == 1
    assert any(m.endswith("from Master (glance-download)") for m in messages(caplog, "INFO"))


class Vanishing(memory_backend.MemoryRegionAdapter):
    """A region where the image being copied is deleted (by someone) meanwhile."""

    def import_image(self, image_id, **kw):
        self.delete_image(image_id)


def test_an_image_gone_during_its_copy_is_created_again_and_streamed(run, caplog):
    vanishing = region("RegionA", Vanishing)
    with caplog.at_level(logging.DEBUG, logger="glancesync.executor"):
        result = run.sync(vanishing)
    assert result.success and result.bytes_uploaded == SIZE
    (copy,) = copies(vanishing)
    assert run.image.same_content(copy)
    assert "master:RegionA: creating image img again" in messages(caplog, "DEBUG")
    assert not any("deleting unfinished" in m for m in messages(caplog, "INFO"))


class FinishingLate(memory_backend.MemoryRegionAdapter):
    """A copy still importing when its watch ends, finished when looked at again."""

    def import_image(self, image_id, *, source_region, source_image_id):
        self.asked = (image_id, source_region, source_image_id)
        with memory_backend._LOCK:
            stored = self._images[image_id]
            stored.image = dataclasses.replace(stored.image, status="importing")

    def finish(self):
        image_id, source_region, source_image_id = self.asked
        with memory_backend._LOCK:
            stored = self._images[image_id]
            stored.image = dataclasses.replace(stored.image, status="queued")
        memory_backend.MemoryRegionAdapter.import_image(
            self, image_id, source_region=source_region, source_image_id=source_image_id)


class FinishOnWarning(logging.Handler):
    """Finishes the region's copy as the executor says it gave up on it."""

    def __init__(self, adapter):
        super().__init__(logging.WARNING)
        self.adapter = adapter

    def emit(self, record):
        if "server-side copy of" in record.getMessage():
            self.adapter.finish()


def test_a_copy_that_ended_after_all_is_kept_not_streamed(run, caplog):
    late = region("RegionA", FinishingLate)
    handler = FinishOnWarning(late)
    logging.getLogger("glancesync.executor").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="glancesync.executor"):
            result = run.sync(late, import_timeout=0)
    finally:
        logging.getLogger("glancesync.executor").removeHandler(handler)
    assert result.success and (result.copied_server_side, result.bytes_uploaded) == (1, 0)
    assert "master:RegionA: the server-side copy of img ended after all" in messages(caplog,
                                                                                   "INFO")
    (copy,) = copies(late)
    assert run.image.same_content(copy) and copy.visibility == "public"
    assert copy.properties == {"os_distro": "debian", "gs_custom": "kept", "min_note": "x"}


class Overwriting(memory_backend.MemoryRegionAdapter):
    """A region whose copy overwrites what the image was created with: its name,
    limits and GlanceSync's record (as a copy of another region's image could)."""

    def import_image(self, image_id, **kw):
        super().import_image(image_id, **kw)
        with memory_backend._LOCK:
            stored = self._images[image_id]
            properties = {k: v for k, v in stored.image.properties.items()
                          if not k.startswith("glancesync.")}
            stored.image = dataclasses.replace(stored.image, name="renamed", min_ram=0,
                                               min_disk=0, properties=properties)


def test_what_the_copy_overwrote_is_set_again(run, caplog):
    master = region("Master")
    image = scenarios.put(master, "big", b"b" * 5000)
    master.update_image(image.id, {"min_ram": 512, "min_disk": 3})
    overwriting = region("RegionA", Overwriting)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        result = run.sync(overwriting)
    assert result.copied_server_side == 2
    # each operation counts its own bytes copied by the region
    assert sorted(o.bytes_server_side for o in result.outcomes) == sorted([SIZE, 5000])
    (copy,) = [i for i in overwriting.list_images() if i.id != copies(overwriting)[0].id]
    assert (copy.name, copy.min_ram, copy.min_disk) == ("big", 512, 3)
    assert copy.provenance is not None and copy.provenance.is_copy_of(
        master.get_image(image.id))
    (line,) = [m for m in messages(caplog, "INFO") if "image big after its server-side" in m]
    assert "min_disk=3, min_ram=512, name=big" in line


class StillProcessing(memory_backend.MemoryRegionAdapter):
    """The copy's answer lost while its task is processing, the image still queued."""

    def import_image(self, image_id, **kw):
        with memory_backend._LOCK:
            self._images[image_id].tasks.append(memory_backend.ImportTask("t-1",
                                                                          "processing"))
        raise ServiceError("connection reset by peer", region=self.name, transient=True)


def test_a_copy_whose_task_is_processing_is_taken_as_running(run, caplog):
    processing = region("RegionA", StillProcessing)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        assert run.sync(processing).bytes_uploaded == SIZE
    assert any(m.startswith("master:RegionA: deleting unfinished server-side copy img (")
               for m in messages(caplog, "INFO"))
