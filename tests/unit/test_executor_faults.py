"""The executor under faults, on real local regions.

A :class:`Faulty` adapter wraps a real :class:`LocalRegionAdapter` and makes
chosen calls fail the way a network or a Glance worker does: a connection
breaking mid-upload (the local store puts the image back to ``queued``, as
Glance does), a worker dying mid-upload (the image stays ``saving``), a
lost answer after the work was done, a 503. Nothing of ours is patched.
"""
from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pytest

from glancesync import executor as executor_module
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import (ChecksumMismatchError, ConflictError, ConnectionFailure,
                               ServiceError, TransferError, UsageError)
from glancesync.executor import STOPPED, Executor, RegionResult, is_refusal
from glancesync.image import Image
from glancesync.plan import OperationKind
from glancesync.retry import RetryPolicy
from glancesync.stopping import StopRequest
from glancesync.transfer import ImageCache, MasterImageSource
from tests.engine import DirectSource, plan_region
from tests import scenarios

MIB = 1024 * 1024
PROJECT = "p-region"


class Faulty(LocalRegionAdapter):
    """A local region whose calls fail as scripted in ``faults``.

    ``faults[call]`` is a list of fault kinds consumed one per call of
    that method; an empty list means the call works. Kinds: ``"reset"``
    (upload: the connection breaks after one chunk), ``"die"`` (upload: the
    worker dies after one chunk; the image stays ``saving``), ``"lost"``
    (the call is done, then its answer is lost), ``"503"`` (refused first).
    """

    def __init__(self, name: str, path: Path, project_id: str) -> None:
        super().__init__(name, path, project_id)
        self.faults: dict[str, list[str]] = {}
        self.calls: list[tuple[str, str]] = []
        #: Image id -> reads left before a ``saving`` image (all bytes sent)
        #: becomes active; None: never.
        self.finalising: dict[str, int | None] = {}

    def _fault(self, call: str) -> str | None:
        pending = self.faults.get(call)
        return pending.pop(0) if pending else None

    def create_image(self, name: str, **kwargs: Any) -> Image:
        fault = self._fault("create")
        self.calls.append(("create", kwargs.get("image_id") or name))
        if fault == "503":
            raise ServiceError("unavailable", status_code=503, region=self.name)
        image = super().create_image(name, **kwargs)
        if fault == "lost":
            raise ConnectionFailure("answer lost", region=self.name)
        return image

    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        fault = self._fault("upload")
        self.calls.append(("upload", image_id))
        if fault is None:
            return super().upload_data(image_id, chunks, size)
        if fault.startswith("sent"):
            # Every byte goes out, then the answer fails (a gateway's time-out):
            # "sent-lost" the image is active, "sent-saving-N" the store needs
            # N more reads to finish, "sent-saving" it never does.
            super().upload_data(image_id, chunks, size)
            if fault != "sent-lost":
                self.writable_store.image_update(self.context, image_id,
                                                 {"status": "saving"}, from_state="active")
                left = fault.rsplit("-", 1)[1]
                self.finalising[image_id] = int(left) if left.isdigit() else None
            raise ServiceError("504 Gateway Timeout", status_code=504, region=self.name)

        iterator = iter(chunks)
        next(iterator)  # the first chunk goes out, then the link fails
        if fault == "die":
            # What a SIGKILLed Glance worker leaves: saving for good.
            self.writable_store.image_update(self.context, image_id, {"status": "saving"},
                                             from_state="queued")
            raise ConnectionFailure("connection reset by peer", region=self.name)

        def broken() -> Iterator[bytes]:
            yield b"x"
            raise ConnectionFailure("connection reset by peer", region=self.name)

        return super().upload_data(image_id, broken(), size)

    def get_image(self, image_id: str) -> Image:
        self.calls.append(("get", image_id))
        left = self.finalising.get(image_id)
        if left is not None:
            if left <= 1:
                del self.finalising[image_id]
                self.writable_store.image_update(self.context, image_id,
                                                 {"status": "active"}, from_state="saving")
            else:
                self.finalising[image_id] = left - 1
        return super().get_image(image_id)

    def update_image(self, image_id: str, changes: Mapping[str, Any],
                     remove: Iterable[str] = ()) -> Image:
        fault = self._fault("update")
        self.calls.append(("update", image_id))
        if fault == "503":
            raise ServiceError("unavailable", status_code=503, region=self.name)
        if fault == "400":
            raise ServiceError("name too long (HTTP 400)", status_code=400, region=self.name)
        return super().update_image(image_id, changes, remove)

    def delete_image(self, image_id: str) -> None:
        fault = self._fault("delete")
        self.calls.append(("delete", image_id))
        if fault == "403":
            raise ServiceError("deleting the image forbidden (HTTP 403)", status_code=403,
                               region=self.name, image=image_id)
        super().delete_image(image_id)
        if fault == "lost":
            raise ConnectionFailure("answer lost", region=self.name)


class FlippingSource(DirectSource):
    """Master data with one byte flipped for the images named in ``broken``."""

    def __init__(self, master: LocalRegionAdapter, broken: set[str]) -> None:
        super().__init__(master)
        self.broken = broken

    def chunks(self, image: Image) -> Iterator[bytes]:
        if image.name not in self.broken:
            yield from super().chunks(image)
            return
        data = b"".join(self.master_adapter.download_data(image.id))
        yield bytes([data[0] ^ 1]) + data[1:]


@pytest.fixture
def master(tmp_path: Path) -> LocalRegionAdapter:
    return LocalRegionAdapter("Master", tmp_path / "Master", "p-master")


@pytest.fixture
def region(tmp_path: Path) -> Faulty:
    return Faulty("RegionA", tmp_path / "RegionA", PROJECT)


class Sleeps(list):
    """The waits asked of the retry policy (nobody really waits)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def policy(retries: int = 3) -> tuple[RetryPolicy, Sleeps]:
    sleeps = Sleeps()
    return RetryPolicy(retries=retries, initial_wait=0.5, max_wait=4, sleep=sleeps), sleeps


def sync(master: LocalRegionAdapter, region: Faulty, source: Any = None,
         retries: int = 3, stalled_upload_age: float = 3600,
         **executor: Any) -> tuple[RegionResult, Sleeps]:
    plan = plan_region(master, region, scenarios.target(),
                       stalled_upload_age=stalled_upload_age)
    retry, sleeps = policy(retries)
    result = Executor(region, source or DirectSource(master), retry=retry,
                      **executor).execute(plan)
    return result, sleeps


def leftovers(region: LocalRegionAdapter) -> list[Image]:
    return [i for i in region.list_images() if i.status in ("queued", "saving")]


def test_reset_upload_is_retried_into_the_same_queued_image(master, region, caplog):
    data = scenarios.content("reset", 3 * MIB + 7)
    scenarios.put(master, "img", data)
    region.faults["upload"] = ["reset", "reset"]
    with caplog.at_level(logging.WARNING, logger="glancesync.executor"):
        result, sleeps = sync(master, region)
    assert result.success and result.uploaded == 1
    uploads = [image_id for call, image_id in region.calls if call == "upload"]
    assert len(uploads) == 3 and len(set(uploads)) == 1  # same image every time
    assert [c for c, _ in region.calls].count("create") == 1
    assert sleeps == [0.5, 1.0]
    assert "attempt 1 of 4" in caplog.text and "attempt 2 of 4" in caplog.text
    (image,) = region.list_images()
    assert image.status == "active" and image.checksum == scenarios.md5(data)
    assert image.visibility == "public"


def test_upload_stuck_in_saving_is_deleted_and_replaced(master, region, caplog):
    data = scenarios.content("die", 2 * MIB)
    scenarios.put(master, "img", data)
    region.faults["upload"] = ["die"]
    with caplog.at_level(logging.WARNING, logger="glancesync.executor"):
        result, _ = sync(master, region)
    assert result.success and result.uploaded == 1
    first, second = [image_id for call, image_id in region.calls if call == "upload"]
    assert first != second
    assert ("delete", first) in region.calls
    (image,) = region.list_images()
    assert image.id == second and image.status == "active"
    assert image.checksum == scenarios.md5(data)


@pytest.mark.parametrize("fault", ["sent-lost", "sent-saving-30"])
def test_once_every_byte_is_sent_the_same_bytes_are_never_sent_again(master, region, fault):
    """Issue 23 case 6: the answer failed after the last byte; the image is the
    store's: waited for while ``saving``, never deleted, never uploaded again."""
    data = scenarios.content("sent", 2 * MIB)
    scenarios.put(master, "img", data)
    region.faults["upload"] = [fault]
    result, sleeps = sync(master, region)
    assert result.success and result.uploaded == 1, result.failed
    assert [c for c, _ in region.calls].count("upload") == 1
    assert not any(call == "delete" for call, _ in region.calls)
    (image,) = region.list_images()
    assert image.status == "active" and image.checksum == scenarios.md5(data)
    if fault == "sent-saving-30":  # longer than the 5 s a broken upload is given
        assert len(sleeps) == 29


def test_an_image_still_saving_after_saving_timeout_is_never_deleted(master, region):
    scenarios.put(master, "img", scenarios.content("slow", MIB))
    region.faults["upload"] = ["sent-saving"]
    result, _ = sync(master, region, saving_timeout=0.0)
    assert not result.success and "saving_timeout" in result.failed["img"]
    assert [c for c, _ in region.calls].count("upload") == 1
    assert not any(call == "delete" for call, _ in region.calls)
    (image,) = region.list_images()
    assert image.status == "saving"


def test_a_stop_ends_the_wait_for_a_saving_image_and_leaves_it_to_the_store(master, region):
    """Issue 23 case 6 with issue 22: the wait for a store slow to finalise is cut
    by a stop request, and the image it may still be writing is not deleted."""
    scenarios.put(master, "img", scenarios.content("stopped", MIB))
    region.faults["upload"] = ["sent-saving"]
    stop, waits = StopRequest(), []

    def wait(seconds: float) -> None:  # the third wait is where a SIGTERM comes
        waits.append(seconds)
        if len(waits) == 3:
            stop.set("SIGTERM received", signal.SIGTERM)

    plan = plan_region(master, region, scenarios.target())
    retry = RetryPolicy(retries=3, initial_wait=0.5, max_wait=4, sleep=wait)
    result = Executor(region, DirectSource(master), retry=retry, stop=stop,
                      saving_timeout=30.0).execute(plan)
    assert [o.result for o in result.outcomes] == [STOPPED], result.outcomes
    assert len(waits) == 3  # no wait after the stop
    assert [c for c, _ in region.calls].count("upload") == 1
    assert not any(call == "delete" for call, _ in region.calls)
    (image,) = region.list_images()
    assert image.status == "saving"


def test_a_rename_refused_after_a_verified_upload_says_so(master, region):
    """Issue 23 case 3: the message blamed the upload; the copy was in place."""
    scenarios.put(master, "img", scenarios.content("new"))
    scenarios.put(region, "img", scenarios.content("old"))
    plan = plan_region(master, region, scenarios.target(rename={"any"}))
    region.faults["update"] = ["ok", "400"]  # the copy is published, the rename refused
    retry, _ = policy()
    result = Executor(region, DirectSource(master), retry=retry).execute(plan)
    line = plan.status_of("img")
    assert line.status.value == "error_refused" and result.errors == 0
    assert "uploaded and verified, but renaming the old image" in line.reason
    assert sorted(i.name for i in region.list_images()) == ["img", "img"]


def test_giving_up_leaves_no_half_made_image_and_reports_the_failure(master, region):
    scenarios.put(master, "img", scenarios.content("down", MIB + 1))
    region.faults["upload"] = ["reset"] * 3 + ["die"]
    result, sleeps = sync(master, region, retries=3)
    assert not result.success and result.uploaded == 0
    assert "img" in result.failed and "reset" in result.failed["img"]
    assert sleeps == [0.5, 1.0, 2.0]
    assert region.list_images() == []


def test_no_retry_when_disabled(master, region):
    scenarios.put(master, "img", scenarios.content("once", 1000))
    region.faults["upload"] = ["reset"]
    result, sleeps = sync(master, region, retries=0)
    assert result.errors == 1 and sleeps == []
    assert region.list_images() == []
    result, _ = sync(master, region, retries=0)  # the next run does it
    assert result.success and result.uploaded == 1


def test_create_whose_answer_was_lost_makes_one_image(master, region):
    scenarios.put(master, "img", scenarios.content("lost", 1000))
    region.faults["create"] = ["lost"]
    result, _ = sync(master, region)
    assert result.success and result.uploaded == 1
    creates = [image_id for call, image_id in region.calls if call == "create"]
    assert len(creates) == 2 and creates[0] == creates[1]
    assert len(region.list_images()) == 1


def test_metadata_calls_are_retried(master, region):
    scenarios.put(master, "img", scenarios.content("meta", 1000), color="red")
    assert sync(master, region)[0].uploaded == 1
    master_image = master.list_images()[0]
    master.update_image(master_image.id, {"color": "blue"})
    region.faults["update"] = ["503", "503"]
    result, sleeps = sync(master, region)
    assert result.success and result.updated == 1 and sleeps == [0.5, 1.0]
    assert region.list_images()[0].properties["color"] == "blue"


def test_delete_whose_answer_was_lost_counts_as_done(master, region):
    image = scenarios.put(master, "img", scenarios.content("q", 1000))
    scenarios.leftover(region, "img", image)  # queued, of an interrupted upload
    region.faults["delete"] = ["lost"]
    result, _ = sync(master, region, stalled_upload_age=0)
    assert result.success and result.cleaned == 1 and result.uploaded == 1
    assert leftovers(region) == []


def test_a_leftover_that_cannot_be_deleted_is_a_warning_not_a_failure(master, region,
                                                                      caplog):
    """Issue 10, case 4: a refused clean-up never fails the region."""
    image = scenarios.put(master, "img", scenarios.content("q403", 1000))
    stuck = scenarios.leftover(region, "img", image)
    region.faults["delete"] = ["403"]
    with caplog.at_level(logging.WARNING, logger="glancesync.executor"):
        result, sleeps = sync(master, region, stalled_upload_age=0)
    assert result.success and result.errors == 0 and result.failed == {}
    assert result.uploaded == 1 and result.cleaned == 0 and result.uncleaned == 1
    assert "(1 could not be)" in result.summary()
    assert f"could not delete leftover queued image img ({stuck.id})" in caplog.text
    assert sleeps == []  # a 403 is not retried
    assert region.get_image(stuck.id).status == "queued"


def test_a_leftover_that_changed_since_the_listing_is_left_alone(master, region):
    image = scenarios.put(master, "img", scenarios.content("moved", 1000))
    stuck = scenarios.leftover(region, "img", image)
    plan = plan_region(master, region, scenarios.target(), stalled_upload_age=0)
    assert [op.kind for op in plan.operations] == ["upload", "cleanup"]
    # Someone resumes that upload between the listing and the clean-up.
    region.upload_data(stuck.id, [scenarios.content("moved", 1000)], 1000)
    retry, _ = policy()
    result = Executor(region, DirectSource(master), retry=retry).execute(plan)
    assert result.success and result.cleaned == 0 and result.uncleaned == 0
    assert region.get_image(stuck.id).status == "active"
    assert ("delete", stuck.id) not in region.calls


def test_permanent_errors_are_not_retried(master, region):
    scenarios.put(master, "img", scenarios.content("perm", 1000))
    scenarios.put(master, "other", scenarios.content("perm2", 1000))
    result, sleeps = sync(master, region,
                          source=FlippingSource(master, {"img"}))
    assert sleeps == []
    assert set(result.failed) == {"img"} and result.uploaded == 1
    assert "checksum" in result.failed["img"]
    assert [i.name for i in region.list_images()] == ["other"]


def test_corrupted_cache_file_is_rechecked_after_a_mismatch(master, region, tmp_path):
    data = scenarios.content("cache", 2 * MIB)
    image = scenarios.put(master, "img", data)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache"))
    assert sync(master, region, source=source)[0].uploaded == 1
    cached = source.cache.path_for(image)
    # Alter one byte in place, keeping size and times: the memo still trusts it.
    stat = cached.stat()
    with open(cached, "r+b") as handle:
        handle.seek(MIB)
        byte = handle.read(1)
        handle.seek(MIB)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(cached, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    region.delete_image(region.list_images()[0].id)

    result, _ = sync(master, region, source=source)
    assert result.errors == 1 and "checksum" in result.failed["img"]
    assert region.list_images() == []
    result, _ = sync(master, region, source=source)
    assert result.success and result.uploaded == 1
    assert source.downloads == 2
    assert region.list_images()[0].checksum == scenarios.md5(data)


def test_progress_bar_only_when_asked(master, region, capsys):
    scenarios.put(master, "img", scenarios.content("bar", 2 * MIB))
    sync(master, region, progress=None)  # stderr is not a terminal here
    assert "RegionA img" not in capsys.readouterr().err
    region.delete_image(region.list_images()[0].id)
    sync(master, region, progress=True)
    assert "RegionA img" in capsys.readouterr().err


def test_an_upload_is_verified_on_the_image_the_upload_returned(master, region):
    scenarios.put(master, "img", scenarios.content("one get", 1000))
    result, _ = sync(master, region)
    assert result.success and result.uploaded == 1
    (image,) = region.list_images()
    assert region.calls == [("create", image.id), ("upload", image.id),
                            ("update", image.id)]  # publish; no get to verify


def test_every_operation_kind_has_a_handler():
    assert set(executor_module._HANDLERS) == set(OperationKind)


def test_dry_run_makes_no_call(master, region):
    scenarios.put(master, "img", scenarios.content("dry", 1000))
    result, _ = sync(master, region, dry_run=True)
    assert result.uploaded == 1 and region.calls == [] and region.list_images() == []


def test_retry_policy_waits():
    retry, _ = policy()
    assert [retry.wait(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4, 4]
    assert retry.attempts == 4
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)


@pytest.mark.parametrize("error, refused", [
    (ServiceError("bad request", status_code=400), True),
    (ServiceError("forbidden", status_code=403), True),
    (ServiceError("over quota", status_code=413), True),
    (ServiceError("not that format", status_code=415), True),
    (UsageError("a value the schema refuses"), True),
    (ServiceError("busy", status_code=503), False),
    (ServiceError("too many requests", status_code=429), False),
    (ConflictError("not queued", status_code=409), False),
    (ServiceError("forbidden, retry later", status_code=403, transient=True), False),
    (TransferError("stream broke"), False),
    (ChecksumMismatchError("corrupt", status_code=400), False),
    (ConnectionFailure("reset"), False),
])
def test_refusals_that_repeat_at_every_run(error, refused):
    """What makes an upload error_refused rather than a failed region (issue 9)."""
    assert is_refusal(error) is refused
