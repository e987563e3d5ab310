"""glancesync.executor.stream: a broken upload looked at again before a new attempt (issue 27).

After a broken upload Glance may take a few seconds to put the image back
to ``queued``: a ``saving`` image is given :data:`SETTLE_TIME` (polled every
:data:`SETTLE_POLL`) before it is taken as stuck, deleted and replaced; one
that went back to ``queued`` meanwhile is filled again under its id; one that
disappeared is replaced without a delete. Real local regions whose uploads
break as scripted (``Faulty``); the waits are recorded, nobody waits.
"""
from __future__ import annotations

import logging
from typing import Iterable

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import (ConflictError, ConnectionFailure, ServiceError, StoppedError,
                               TransferError, UploadRestartError)
from glancesync.executor import SETTLE_POLL, SETTLE_TIME, Executor
from glancesync.executor.stream import SAVING_POLL
from glancesync.stopping import StopRequest

from tests import scenarios
from tests.unit.test_executor_faults import MIB, PROJECT, Faulty, policy, sync

REGION = "RegionA"


def test_the_settle_time_and_polls():
    assert (SETTLE_TIME, SETTLE_POLL, SAVING_POLL) == (5.0, 0.25, 2.0)


class Reverting(Faulty):
    """A region whose broken upload leaves the image ``saving`` for ``reads`` more
    reads, then ``queued`` (Glance noticing the broken connection late); with
    ``vanish``, the image is gone instead (deleted by someone meanwhile); with
    ``arrived``, every byte was stored but the client never saw the end of its
    stream, and the image becomes ``active`` instead (the data arrived)."""

    def __init__(self, *args, reads: int = 0, vanish: bool = False,
                 arrived: bool = False) -> None:
        super().__init__(*args)
        self.reads, self.vanish, self.arrived = reads, vanish, arrived
        self.reverting: dict[str, int] = {}
        self.broken = False

    def upload_data(self, image_id: str, chunks: Iterable[bytes], size=None):
        if self.broken:
            return super().upload_data(image_id, chunks, size)
        self.broken = True
        self.calls.append(("upload", image_id))
        iterator = iter(chunks)
        if self.arrived:  # every byte read, the end of the stream never asked for
            data = b""
            while len(data) < size:
                data += next(iterator)
            LocalRegionAdapter.upload_data(self, image_id, [data], size)
            self.writable_store.image_update(self.context, image_id, {"status": "saving"},
                                             from_state="active")
            self.reverting[image_id] = self.reads
            raise ConnectionFailure("connection reset by peer", region=self.name)
        next(iterator)
        if self.vanish:
            self.writable_store.image_destroy(self.context, image_id)
        else:
            self.writable_store.image_update(self.context, image_id, {"status": "saving"},
                                             from_state="queued")
            self.reverting[image_id] = self.reads
        raise ConnectionFailure("connection reset by peer", region=self.name)

    def get_image(self, image_id: str):
        left = self.reverting.get(image_id)
        if left is not None:
            if left <= 0:
                del self.reverting[image_id]
                self.writable_store.image_update(
                    self.context, image_id, {"status": "active" if self.arrived else "queued"},
                    from_state="saving")
            else:
                self.reverting[image_id] = left - 1
        return super().get_image(image_id)


@pytest.fixture
def master(tmp_path):
    return LocalRegionAdapter("Master", tmp_path / "Master", "p-master")


def uploads(region) -> list[str]:
    return [image_id for call, image_id in region.calls if call == "upload"]


def test_a_saving_image_is_given_the_settle_time_then_replaced(master, tmp_path, caplog):
    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    scenarios.put(master, "img", scenarios.content("die", MIB))
    region.faults["upload"] = ["die"]
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        result, sleeps = sync(master, region)
    assert result.success and result.uploaded == 1
    polls = int(SETTLE_TIME / SETTLE_POLL)
    assert sleeps == [0.5] + [SETTLE_POLL] * polls  # the retry's wait, then the settling
    first, second = uploads(region)
    assert first != second and ("delete", first) in region.calls
    messages = [r.getMessage() for r in caplog.records]
    assert f"{REGION}: deleting stuck saving upload img ({first})" in messages
    assert f"{REGION}: uploading img into new image {second}" in messages


def test_a_saving_image_back_to_queued_within_the_settle_time_is_filled_again(master,
                                                                             tmp_path, caplog):
    region = Reverting(REGION, tmp_path / REGION, PROJECT, reads=3)
    scenarios.put(master, "img", scenarios.content("late", MIB))
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        result, sleeps = sync(master, region)
    assert result.success and result.uploaded == 1
    assert sleeps == [0.5] + [SETTLE_POLL] * 3
    first, second = uploads(region)
    assert first == second and not any(call == "delete" for call, _ in region.calls)
    assert [c for c, _ in region.calls].count("create") == 1
    assert (f"{REGION}: image img ({first}) is queued again: uploading into it"
            in [r.getMessage() for r in caplog.records])


def test_an_image_gone_after_a_broken_upload_is_replaced_without_a_delete(master, tmp_path,
                                                                         caplog):
    region = Reverting(REGION, tmp_path / REGION, PROJECT, vanish=True)
    scenarios.put(master, "img", scenarios.content("gone", MIB))
    result, sleeps = sync(master, region)
    assert result.success and result.uploaded == 1
    assert sleeps == [0.5]
    first, second = uploads(region)
    assert first != second and not any(call == "delete" for call, _ in region.calls)
    (image,) = region.list_images()
    assert image.id == second and image.status == "active"


def test_a_stop_during_a_pause_names_the_region(master, tmp_path):
    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    stop = StopRequest()
    retry, sleeps = policy()
    executor = Executor(region, None, retry=retry, stop=stop, progress=False)
    executor.stream.pause(1.5)
    assert sleeps == [1.5]
    stop.set("SIGTERM received")
    with pytest.raises(StoppedError) as stopped:
        executor.stream.pause(2.5)
    assert sleeps == [1.5, 2.5]  # it waits first, then looks
    assert stopped.value.region == executor.region


def test_a_source_that_cannot_convert_is_refused_before_anything_is_made(master, tmp_path):
    from glancesync.strategy import Strategy, Transfer
    from tests.engine import DirectSource

    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("qcow", MIB))
    executor = Executor(region, DirectSource(master), progress=False)
    convert = Transfer(Strategy.STREAM, "raw", "qcow2")
    with pytest.raises(TransferError, match="the data source cannot convert to raw") as caught:
        executor.stream.prepare(image, convert)
    assert (caught.value.region, caught.value.image) == (executor.region, "img")
    assert executor.stream.prepare(image, Transfer(Strategy.STREAM, "raw")) is image
    dry = Executor(region, DirectSource(master), progress=False, dry_run=True)
    assert dry.stream.prepare(image, convert) is image  # a dry run converts nothing


def test_an_image_that_became_active_after_a_broken_upload_is_kept(master, tmp_path, caplog):
    """The data arrived, the answer did not: the image is verified, not sent again."""
    region = Reverting(REGION, tmp_path / REGION, PROJECT, reads=2, arrived=True)
    data = scenarios.content("arrived", MIB)
    scenarios.put(master, "img", data)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        result, sleeps = sync(master, region)
    assert result.success and result.uploaded == 1
    assert sleeps == [0.5] + [SETTLE_POLL] * 2
    (first,) = uploads(region)
    (image,) = region.list_images()
    assert image.id == first and image.checksum == scenarios.md5(data)
    assert not any(call == "delete" for call, _ in region.calls)
    assert (f"{REGION}: image img ({first}) became active: the data arrived"
            in [r.getMessage() for r in caplog.records])


def test_a_stop_while_a_broken_upload_settles_names_the_region_and_image(master, tmp_path):
    from glancesync.executor.stream import NewImage
    from glancesync.plan.model import Operation, OperationKind
    from glancesync.strategy import Strategy, Transfer
    from tests.engine import DirectSource

    region = Reverting(REGION, tmp_path / REGION, PROJECT, reads=10)
    image = scenarios.put(master, "img", scenarios.content("stop", MIB))
    stop = StopRequest()
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:  # the retry's wait, a settle poll, then a stop
            stop.set("SIGTERM received")

    retry, _ = policy()
    retry = type(retry)(retries=3, initial_wait=0.5, max_wait=4, sleep=sleep)
    executor = Executor(region, DirectSource(master), retry=retry, stop=stop, progress=False)
    target = NewImage("img", "", {"disk_format": "raw", "container_format": "bare"})
    target.create(executor.adapter)
    op = Operation(OperationKind.UPLOAD, "img", master=image, size=image.size)
    with pytest.raises(StoppedError) as stopped:
        executor.stream.stream(op, target, Transfer(Strategy.STREAM, "raw"), image.size)
    assert (stopped.value.region, stopped.value.image) == (executor.region, "img")
    assert sleeps == [0.5, SETTLE_POLL, SETTLE_POLL]


# --- every byte sent, then the answer failed: the image is the store's -----------------

class SentThen(Faulty):
    """Every byte of the first upload is stored, then the answer fails (504) with the
    image ``saving``; after ``reads`` reads it becomes ``then``: ``gone``,
    ``killed``, ``queued`` or ``active``."""

    def __init__(self, *args, then: str, reads: int = 1) -> None:
        super().__init__(*args)
        self.then, self.reads = then, reads
        self.left: dict[str, int] = {}

    def upload_data(self, image_id, chunks, size=None):
        if self.left or any(call == "upload" for call, _ in self.calls):
            return super().upload_data(image_id, chunks, size)
        self.calls.append(("upload", image_id))
        LocalRegionAdapter.upload_data(self, image_id, chunks, size)
        self.writable_store.image_update(self.context, image_id, {"status": "saving"},
                                         from_state="active")
        self.left[image_id] = self.reads
        raise ServiceError("504 Gateway Timeout", status_code=504, region=self.name)

    def get_image(self, image_id):
        left = self.left.get(image_id)
        if left is not None:
            if left <= 1:
                del self.left[image_id]
                if self.then == "gone":
                    self.writable_store.image_destroy(self.context, image_id)
                else:
                    self.writable_store.image_update(self.context, image_id,
                                                     {"status": self.then},
                                                     from_state="saving")
            else:
                self.left[image_id] = left - 1
        return super().get_image(image_id)


def executor_of(master, region, **kw):
    from tests.engine import DirectSource
    retry, sleeps = policy()
    return Executor(region, DirectSource(master), retry=retry, progress=False, **kw), sleeps


def stream_one(executor, image):
    from glancesync.executor.stream import NewImage
    from glancesync.plan.model import Operation, OperationKind
    from glancesync.strategy import Strategy, Transfer

    target = NewImage("img", "", {"disk_format": "raw", "container_format": "bare"})
    target.create(executor.adapter)
    op = Operation(OperationKind.UPLOAD, "img", master=image, size=image.size)
    return target, lambda: executor.stream.stream(op, target, Transfer(Strategy.STREAM, "raw"),
                                                  image.size)


@pytest.mark.parametrize("then, words", [
    ("gone", "was gone"), ("killed", "became killed")])
def test_an_image_lost_by_the_store_after_every_byte_is_not_sent_again(master, tmp_path,
                                                                       then, words):
    region = SentThen(REGION, tmp_path / REGION, PROJECT, then=then, reads=2)
    image = scenarios.put(master, "img", scenarios.content("lost", MIB))
    executor, sleeps = executor_of(master, region)
    target, send = stream_one(executor, image)
    with pytest.raises(TransferError) as lost:
        send()
    assert lost.value.message == (
        f"every byte was sent (504 Gateway Timeout), then image {target.image_id} {words};"
        " not uploaded again in this run")
    assert (lost.value.region, lost.value.image) == (executor.region, "img")
    assert executor.stream.saving == set()  # no longer the store's: may be cleaned
    assert [c for c, _ in region.calls].count("upload") == 1
    assert sleeps == [SAVING_POLL]


def test_an_image_the_store_put_back_to_queued_is_sent_again(master, tmp_path):
    region = SentThen(REGION, tmp_path / REGION, PROJECT, then="queued")
    image = scenarios.put(master, "img", scenarios.content("again", MIB))
    executor, sleeps = executor_of(master, region)
    target, send = stream_one(executor, image)
    sent = send()
    assert sent.status == "active" and sent.id == target.image_id
    assert [c for c, _ in region.calls].count("upload") == 2
    assert executor.stream.saving == set()
    assert sleeps == [0.5]  # a failure like another: the retry's wait


def test_waiting_for_the_store_is_said_and_its_end_too(master, tmp_path, caplog):
    region = SentThen(REGION, tmp_path / REGION, PROJECT, then="active", reads=2)
    image = scenarios.put(master, "img", scenarios.content("said", MIB))
    executor, sleeps = executor_of(master, region, saving_timeout=600.0)
    target, send = stream_one(executor, image)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        assert send().status == "active"
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("WARNING", f"{REGION}: every byte of img was sent, then: region {REGION}:"
                       " 504 Gateway Timeout; waiting up to 600 s for the region to finish"
                       " saving it (saving_timeout)") in messages
    assert ("INFO", f"{REGION}: image img ({target.image_id}) is active: the store"
                    " finished saving it") in messages
    assert executor.stream.saving == set() and sleeps == [SAVING_POLL]


def test_still_saving_at_the_deadline_is_said_with_the_timeout(master, tmp_path):
    from glancesync.errors import StillSavingError
    region = SentThen(REGION, tmp_path / REGION, PROJECT, then="active", reads=10 ** 6)
    image = scenarios.put(master, "img", scenarios.content("slow", MIB))
    executor, _ = executor_of(master, region, saving_timeout=0.0)
    target, send = stream_one(executor, image)
    with pytest.raises(StillSavingError) as late:
        send()
    assert late.value.message == (
        f"every byte was sent, but image {target.image_id} is still saving after 0 s"
        " (saving_timeout): left to the store, which may still be writing it (a later run"
        " finds it active, or cleans it after stalled_upload_age)")
    assert (late.value.region, late.value.image) == (executor.region, "img")
    assert executor.stream.saving == {target.image_id}


class Switching(Faulty):
    """The first ``switches`` uploads are refused for a new way of sending
    (a direct upload forbidden: the adapter goes to glance-direct)."""

    def __init__(self, *args, switches: int) -> None:
        super().__init__(*args)
        self.switches = switches

    def upload_data(self, image_id, chunks, size=None):
        if self.switches:
            self.switches -= 1
            self.calls.append(("upload", image_id))
            raise UploadRestartError("direct upload forbidden by the region's policy",
                                     region=self.name)
        return super().upload_data(image_id, chunks, size)


def test_a_new_way_of_sending_restarts_once_and_is_not_a_failure(master, tmp_path, caplog):
    region = Switching(REGION, tmp_path / REGION, PROJECT, switches=1)
    image = scenarios.put(master, "img", scenarios.content("switch", MIB))
    executor, sleeps = executor_of(master, region)
    target, send = stream_one(executor, image)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        assert send().status == "active"
    assert sleeps == [] and [c for c, _ in region.calls].count("create") == 1
    assert (f"{REGION}: direct upload forbidden by the region's policy; sending img again"
            " from the start") in [r.getMessage() for r in caplog.records]


def test_a_second_switch_is_an_error(master, tmp_path):
    region = Switching(REGION, tmp_path / REGION, PROJECT, switches=2)
    image = scenarios.put(master, "img", scenarios.content("switch", MIB))
    executor, sleeps = executor_of(master, region)
    _, send = stream_one(executor, image)
    with pytest.raises(UploadRestartError):
        send()
    assert [c for c, _ in region.calls].count("upload") == 2


# --- the chunks of a source: hashed when the master has none, its errors first ------

class Sizes(Faulty):
    """A local region that keeps the size each upload was announced with."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.sizes: list[int | None] = []

    def upload_data(self, image_id, chunks, size=None):
        self.sizes.append(size)
        return super().upload_data(image_id, chunks, size)


def test_the_upload_is_announced_with_the_masters_size(master, tmp_path):
    region = Sizes(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("sized", MIB + 3))
    executor, _ = executor_of(master, region)
    _, send = stream_one(executor, image)
    send()
    assert region.sizes == [MIB + 3]


def test_the_bytes_sent_of_a_master_without_hash_are_hashed_both_ways(master, tmp_path):
    import dataclasses
    import hashlib

    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    data = scenarios.content("bare", MIB)
    image = dataclasses.replace(scenarios.put(master, "img", data), checksum=None,
                                os_hash_algo=None, os_hash_value=None)
    executor, _ = executor_of(master, region)
    _, send = stream_one(executor, image)
    send()
    sent = executor.stream.sent[image.id]
    assert sent.md5 == hashlib.md5(data).hexdigest()
    assert sent.os_hash == hashlib.sha512(data).hexdigest()


def test_the_progress_bar_counts_up_to_the_masters_size(master, tmp_path, capsys):
    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("bar", 2 * MIB))
    from tests.engine import DirectSource
    executor = Executor(region, DirectSource(master), progress=True)
    _, send = stream_one(executor, image)
    send()
    err = capsys.readouterr().err
    assert f"{REGION} img" in err and "/2.00M" in err  # out of the master's 2 MiB


class BrokenSource:
    """A source whose data fails its check after ``good`` chunks."""

    def __init__(self, master, good: int = 1) -> None:
        from tests.engine import DirectSource
        self.inner, self.good = DirectSource(master), good

    def chunks(self, image):
        for index, chunk in enumerate(self.inner.chunks(image)):
            if index == self.good:
                raise TransferError("master data does not match its checksum",
                                    image=image.name)
            yield chunk


class Swallowing(Faulty):
    """A region whose upload call ends normally although its data broke off."""

    def upload_data(self, image_id, chunks, size=None):
        self.calls.append(("upload", image_id))
        try:
            for _ in chunks:
                pass
        except TransferError:
            pass
        return self.get_image(image_id)


@pytest.mark.parametrize("adapter", [Faulty, Swallowing])
def test_an_error_of_the_source_wins_over_the_regions(master, tmp_path, adapter):
    region = adapter(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("broken", 3 * MIB))
    retry, _ = policy(retries=0)
    executor = Executor(region, BrokenSource(master), retry=retry, progress=False)
    _, send = stream_one(executor, image)
    with pytest.raises(TransferError, match="master data does not match its checksum"):
        send()


def test_a_stop_during_the_chunks_names_the_region_and_image(master, tmp_path):
    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("stop", 3 * MIB))
    stop = StopRequest()

    class Stopping(BrokenSource):
        def chunks(self, image):
            for chunk in self.inner.chunks(image):
                yield chunk
                stop.set("SIGTERM received")

    retry, _ = policy()
    executor = Executor(region, Stopping(master), retry=retry, stop=stop, progress=False)
    _, send = stream_one(executor, image)
    with pytest.raises(StoppedError) as stopped:
        send()
    assert (stopped.value.region, stopped.value.image) == (executor.region, "img")


class StopOnFailure(Faulty):
    """A region whose upload fails as scripted, a stop being requested meanwhile."""

    def __init__(self, *args, stop: StopRequest) -> None:
        super().__init__(*args)
        self.stop = stop

    def upload_data(self, image_id, chunks, size=None):
        try:
            return super().upload_data(image_id, chunks, size)
        finally:
            self.stop.set("SIGTERM received")


def test_a_stop_during_a_failed_upload_ends_it_at_once(master, tmp_path):
    stop = StopRequest()
    region = StopOnFailure(REGION, tmp_path / REGION, PROJECT, stop=stop)
    region.faults["upload"] = ["reset"]
    image = scenarios.put(master, "img", scenarios.content("stopped", MIB))
    executor, sleeps = executor_of(master, region, stop=stop)
    _, send = stream_one(executor, image)
    with pytest.raises(StoppedError) as stopped:
        send()
    assert (stopped.value.region, stopped.value.image) == (executor.region, "img")
    assert sleeps == []  # no retry's wait, no wait for the store


def test_a_stop_as_every_byte_was_sent_leaves_the_saving_image_to_the_store(master, tmp_path):
    """The answer to the last byte fails (a gateway's time-out) as a stop is requested:
    the store may still be writing the image; it is not deleted (it was, before)."""
    from tests.unit.test_executor_faults import sync as sync_region

    stop = StopRequest()
    region = StopOnFailure(REGION, tmp_path / REGION, PROJECT, stop=stop)
    region.faults["upload"] = ["sent-saving"]
    scenarios.put(master, "img", scenarios.content("stopped", MIB))
    result, sleeps = sync_region(master, region, stop=stop)
    assert [o.result for o in result.outcomes] == ["stopped"]
    assert not any(call == "delete" for call, _ in region.calls)
    (image,) = region.list_images()
    assert image.status == "saving"
    assert sleeps == [SAVING_POLL]  # looked at once, then the stop


class Busy(Faulty):
    """The upload after a broken one is refused with 409 (Glance's worker still
    finishing the broken request): the image is taken as stuck."""

    def upload_data(self, image_id, chunks, size=None):
        count = [c for c, _ in self.calls].count("upload")
        if count == 1:
            self.calls.append(("upload", image_id))
            raise ConflictError("image is busy (HTTP 409)", status_code=409, region=self.name)
        return super().upload_data(image_id, chunks, size)


def test_a_conflict_on_a_new_attempt_uploads_into_a_new_image(master, tmp_path):
    from glancesync.errors import ConflictError as Conflict
    region = Busy(REGION, tmp_path / REGION, PROJECT)
    region.faults["upload"] = ["reset"]
    image = scenarios.put(master, "img", scenarios.content("busy", MIB))
    executor, sleeps = executor_of(master, region)
    target, send = stream_one(executor, image)
    first = target.image_id
    assert send().status == "active"
    ids = [image_id for call, image_id in region.calls if call == "upload"]
    assert ids[:2] == [first, first] and ids[2] != first == ids[1]
    assert ("delete", first) in region.calls and target.image_id == ids[2]
    assert sleeps == [0.5, 1.0]  # two failures, no settling (a conflict is stuck at once)
    assert not executor.retry.retriable(Conflict("busy", status_code=409))


class Refusing503(Faulty):
    """The first upload is refused with 503 and a Retry-After of 3 s."""

    def upload_data(self, image_id, chunks, size=None):
        if not any(call == "upload" for call, _ in self.calls):
            self.calls.append(("upload", image_id))
            raise ServiceError("unavailable (HTTP 503)", status_code=503, retry_after=3.0,
                               region=self.name)
        return super().upload_data(image_id, chunks, size)


def test_a_failed_attempt_waits_as_long_as_the_region_asks_and_says_so(master, tmp_path,
                                                                      caplog):
    region = Refusing503(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("later", MIB))
    executor, sleeps = executor_of(master, region)
    _, send = stream_one(executor, image)
    with caplog.at_level(logging.WARNING, logger="glancesync.executor"):
        assert send().status == "active"
    assert sleeps == [3.0]  # the region's Retry-After, longer than the 0.5 s backoff
    assert (f"{REGION}: upload of img failed (attempt 1 of 4): region {REGION}: unavailable"
            " (HTTP 503); retrying from the start in 3.0 s") in [
        r.getMessage() for r in caplog.records]


class BusyAtOnce(Faulty):
    def upload_data(self, image_id, chunks, size=None):
        self.calls.append(("upload", image_id))
        raise ConflictError("image is busy (HTTP 409)", status_code=409, region=self.name)


def test_a_conflict_on_the_first_attempt_is_not_retried(master, tmp_path):
    region = BusyAtOnce(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("busy", MIB))
    executor, sleeps = executor_of(master, region)
    _, send = stream_one(executor, image)
    with pytest.raises(ConflictError):
        send()
    assert sleeps == [] and [c for c, _ in region.calls].count("upload") == 1


def test_a_stop_during_the_retrys_wait_names_the_region_and_image(master, tmp_path):
    from glancesync.retry import RetryPolicy
    from tests.engine import DirectSource

    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    region.faults["upload"] = ["reset"]
    image = scenarios.put(master, "img", scenarios.content("wait", MIB))
    stop = StopRequest()
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        stop.set("SIGTERM received")

    retry = RetryPolicy(retries=3, initial_wait=0.5, max_wait=4, sleep=sleep)
    executor = Executor(region, DirectSource(master), retry=retry, stop=stop, progress=False)
    _, send = stream_one(executor, image)
    with pytest.raises(StoppedError) as stopped:
        send()
    assert (stopped.value.region, stopped.value.image) == (executor.region, "img")
    assert sleeps == [0.5] and [c for c, _ in region.calls].count("upload") == 1


def test_a_stream_starts_with_no_time_no_stop_and_the_default_saving_timeout(master,
                                                                            tmp_path):
    from glancesync.executor.actions import RegionActions
    from glancesync.executor.stream import Stream
    from glancesync.retry import RetryPolicy

    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    stream = Stream(RegionActions(region, False), None, RetryPolicy(), False)
    assert (stream.seconds, stream.saving_timeout, stream.saving, stream.sent) == (
        0.0, 900.0, set(), {})
    assert isinstance(stream.stop, StopRequest) and not stream.stop.is_set()


def test_the_time_spent_sending_adds_up(master, tmp_path):
    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("time", MIB))
    executor, _ = executor_of(master, region)
    executor.stream.seconds = 1000.0  # time of an earlier attempt of the same operation
    _, send = stream_one(executor, image)
    send()
    assert 1000.0 <= executor.stream.seconds < 1000.0 + 3600


class Preparing:
    """A source that fetches data ahead (``prepare``) and says nothing new of it."""

    def __init__(self, master):
        from tests.engine import DirectSource
        self.inner = DirectSource(master)
        self.prepared = []

    def chunks(self, image):
        return self.inner.chunks(image)

    def prepare(self, image, *disk_format):
        self.prepared.append((image.name, *disk_format))
        return None  # None: the bytes are the master's


def test_the_data_is_made_ready_by_the_source_and_none_means_the_masters(master, tmp_path):
    from glancesync.strategy import Strategy, Transfer

    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("ready", MIB))
    source = Preparing(master)
    executor = Executor(region, source, progress=False)
    assert executor.stream.prepare(image, Transfer(Strategy.STREAM, "raw")) is image
    assert executor.stream.prepare(image, Transfer(Strategy.STREAM, "raw", "qcow2")) is image
    assert source.prepared == [("img",), ("img", "raw")]


def test_an_upload_of_unknown_size_is_said_with_the_operations(master, tmp_path, caplog):
    region = Faulty(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("size", 2 * MIB))
    executor, _ = executor_of(master, region)
    from glancesync.executor.stream import NewImage
    from glancesync.plan.model import Operation, OperationKind
    from glancesync.strategy import Strategy, Transfer
    target = NewImage("img", "", {"disk_format": "raw", "container_format": "bare"})
    target.create(executor.adapter)
    op = Operation(OperationKind.UPLOAD, "img", master=image, size=image.size)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        executor.stream.stream(op, target, Transfer(Strategy.STREAM, "raw"), None)
    assert f"{REGION}: uploading image img (2.0 MiB)" in [r.getMessage()
                                                           for r in caplog.records]


class ReadsItself(Faulty):
    """A region that reads the chunks before storing them: an error raised while
    they are read keeps the names the executor gave it (the local store's
    wrapper would name the region itself)."""

    def upload_data(self, image_id, chunks, size=None):
        data = b"".join(chunks)
        return super().upload_data(image_id, [data], size)


def test_a_stop_between_chunks_is_named_by_the_executor(master, tmp_path):
    region = ReadsItself(REGION, tmp_path / REGION, PROJECT)
    image = scenarios.put(master, "img", scenarios.content("named", 3 * MIB))
    stop = StopRequest()

    class Stopping(BrokenSource):
        def chunks(self, image):
            for chunk in self.inner.chunks(image):
                yield chunk
                stop.set("SIGTERM received")

    retry, _ = policy()
    executor = Executor(region, Stopping(master), retry=retry, stop=stop, progress=False)
    _, send = stream_one(executor, image)
    with pytest.raises(StoppedError) as stopped:
        send()
    assert (stopped.value.region, stopped.value.image) == (executor.region, "img")
