"""glancesync.executor.stream: data sent from a local file (a source that can ``open``).

A cached master image is handed to the region as a
:class:`~glancesync.integrity.FileData` (sent without being read here where
the adapter can), paced chunk by chunk when a bandwidth cap applies; a
source that does not cache an image (``uncached``) streams its chunks, but
a conversion is always read from its file. Its progress decides when every
byte was sent (then a failed answer leaves the image to the store) and
where a stop request cuts the upload (issue 27). Real local regions; the
waits are recorded, nobody waits.
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest

from glancesync.bandwidth import Bandwidth
from glancesync.errors import StoppedError
from glancesync.executor import Executor
from glancesync.executor.stream import NewImage
from glancesync.integrity import FileData
from glancesync.plan.model import Operation, OperationKind
from glancesync.stopping import StopRequest
from glancesync.strategy import Strategy, Transfer

from tests import scenarios
from tests.engine import DirectSource
from tests.unit.test_executor_faults import MIB, PROJECT, Faulty, policy

REGION = "RegionA"
STREAM = Transfer(Strategy.STREAM, "raw")


class FileSource(DirectSource):
    """Master data kept in local files (as the cache keeps it), opened on demand;
    ``why`` is what :meth:`uncached` says of every image (None: cached)."""

    def __init__(self, master, folder: Path, why: str | None = None) -> None:
        super().__init__(master)
        self.folder, self.why = folder, why
        self.opened: list[tuple] = []
        self.streamed: list[str] = []
        folder.mkdir(parents=True, exist_ok=True)

    def chunks(self, image):
        self.streamed.append(image.name)
        return super().chunks(image)

    def uncached(self, image):
        return self.why

    @contextlib.contextmanager
    def open(self, image, *disk_format):
        self.opened.append((image.name, *disk_format))
        path = self.folder / image.id
        if not path.exists():
            path.write_bytes(b"".join(self.master_adapter.download_data(image.id)))
        with open(path, "rb") as handle:
            yield FileData(handle, path.stat().st_size)


class Receiving(Faulty):
    """A local region that keeps what each upload was handed, and can stop the run
    once ``stop_after`` chunks of it were read."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.bodies: list[tuple[type, int | None]] = []
        self.stop: StopRequest | None = None
        self.stop_after = 0

    def upload_data(self, image_id, chunks, size=None):
        self.bodies.append((type(chunks), size))
        if self.stop is not None:  # read here: errors keep the names the executor gave
            data = b"".join(self._stopping(chunks))
            return super().upload_data(image_id, [data], size)
        return super().upload_data(image_id, chunks, size)

    def _stopping(self, chunks):
        for index, chunk in enumerate(chunks):
            self.read = index + 1
            if index == self.stop_after:
                self.stop.set("SIGTERM received")
            yield chunk


@pytest.fixture
def master(tmp_path):
    from glancesync.backends.local.adapter import LocalRegionAdapter
    return LocalRegionAdapter("Master", tmp_path / "Master", "p-master")


@pytest.fixture
def region(tmp_path):
    return Receiving(REGION, tmp_path / REGION, PROJECT)


def send(executor, image, transfer=STREAM):
    target = NewImage(image.name, "", {"disk_format": "raw", "container_format": "bare"})
    target.create(executor.adapter)
    op = Operation(OperationKind.UPLOAD, image.name, master=image, size=image.size)
    return target, executor.stream.stream(op, target, transfer, image.size)


def test_a_cached_image_is_handed_over_as_its_file(master, region, tmp_path):
    image = scenarios.put(master, "img", scenarios.content("file", 2 * MIB + 5))
    source = FileSource(master, tmp_path / "files")
    retry, _ = policy()
    executor = Executor(region, source, retry=retry, progress=False)
    target, sent = send(executor, image)
    assert sent.status == "active" and image.same_content(sent)
    assert region.bodies == [(FileData, 2 * MIB + 5)]
    assert source.opened == [("img",)] and source.streamed == []


def test_a_capped_upload_goes_chunk_by_chunk(master, region, tmp_path):
    image = scenarios.put(master, "img", scenarios.content("capped", MIB))
    retry, _ = policy()
    executor = Executor(region, FileSource(master, tmp_path / "files"), retry=retry,
                        progress=False, caps=[Bandwidth(10 ** 12)])
    _, sent = send(executor, image)
    assert image.same_content(sent)
    ((body, size),) = region.bodies
    assert body is not FileData and size == MIB


def test_an_image_the_source_does_not_cache_is_streamed_unless_converted(master, region,
                                                                        tmp_path):
    image = scenarios.put(master, "img", scenarios.content("big", MIB))
    source = FileSource(master, tmp_path / "files", why="larger than the cache")
    retry, _ = policy()
    executor = Executor(region, source, retry=retry, progress=False)
    send(executor, image)
    assert source.opened == [] and source.streamed == ["img"]
    converted = Transfer(Strategy.STREAM, "raw", "qcow2")
    send(executor, image, converted)
    assert source.opened == [("img", "raw")] and source.streamed == ["img"]


def test_an_image_without_hash_is_streamed_even_from_a_source_with_files(master, region,
                                                                        tmp_path):
    image = dataclasses.replace(scenarios.put(master, "img", scenarios.content("bare", MIB)),
                                checksum=None, os_hash_algo=None, os_hash_value=None)
    source = FileSource(master, tmp_path / "files")
    retry, _ = policy()
    send(Executor(region, source, retry=retry, progress=False), image)
    assert source.opened == [] and source.streamed == ["img"]


def test_every_byte_of_the_file_sent_then_the_answer_lost_is_not_sent_again(master, region,
                                                                           tmp_path):
    image = scenarios.put(master, "img", scenarios.content("sent", 2 * MIB))
    region.faults["upload"] = ["sent-saving-3"]
    retry, sleeps = policy()
    executor = Executor(region, FileSource(master, tmp_path / "files"), retry=retry,
                        progress=False)
    _, sent = send(executor, image)
    assert sent.status == "active" and image.same_content(sent)
    assert len(region.bodies) == 1 and not any(c == "delete" for c, _ in region.calls)
    assert len(sleeps) == 2  # the store's polls, no retry


def test_a_file_broken_off_is_sent_again_from_its_first_byte(master, region, tmp_path):
    image = scenarios.put(master, "img", scenarios.content("reset", 2 * MIB))
    region.faults["upload"] = ["reset"]
    retry, sleeps = policy()
    executor = Executor(region, FileSource(master, tmp_path / "files"), retry=retry,
                        progress=False)
    target, sent = send(executor, image)
    assert image.same_content(sent) and sent.id == target.image_id
    assert len(region.bodies) == 2 and sleeps == [0.5]


@pytest.mark.parametrize("after", [0, 1])
def test_a_stop_cuts_the_file_under_way_and_names_the_region_and_image(master, region,
                                                                      tmp_path, after):
    image = scenarios.put(master, "img", scenarios.content("stop", 4 * MIB))
    stop = StopRequest()
    region.stop, region.stop_after = stop, after
    retry, sleeps = policy()
    executor = Executor(region, FileSource(master, tmp_path / "files"), retry=retry,
                        progress=False, stop=stop)
    with pytest.raises(StoppedError) as stopped:
        send(executor, image)
    assert (stopped.value.region, stopped.value.image) == (REGION, "img")
    assert len(region.bodies) == 1 and sleeps == []
    assert region.read == after + 1  # cut at the next chunk, not at the last


def test_a_stop_before_the_file_is_sent_sends_nothing(master, region, tmp_path):
    image = scenarios.put(master, "img", scenarios.content("early", MIB))
    stop = StopRequest()
    stop.set("SIGTERM received")
    retry, _ = policy()
    executor = Executor(region, FileSource(master, tmp_path / "files"), retry=retry,
                        progress=False, stop=stop)
    with pytest.raises(StoppedError) as stopped:
        send(executor, image)
    assert (stopped.value.region, stopped.value.image) == (REGION, "img")
    assert region.bodies == []


def test_the_bar_of_a_file_counts_up_to_its_size(master, region, tmp_path, capsys):
    image = scenarios.put(master, "img", scenarios.content("bar", 2 * MIB))
    retry, _ = policy()
    executor = Executor(region, FileSource(master, tmp_path / "files"), retry=retry,
                        progress=True)
    send(executor, image)
    err = capsys.readouterr().err
    assert f"{REGION} img" in err and "/2.00M" in err
