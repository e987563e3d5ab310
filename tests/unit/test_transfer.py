"""The data path: hashing and durable files (integrity), the verified cache, the
master source, progress bars."""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import io
import logging
import os
import select
import shutil
import struct
import termios
import threading
import time
import uuid
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import ChecksumMismatchError, TransferError
from glancesync.image import Image
from glancesync.progress import NullProgress, progress_bar, wrap_chunks
from glancesync.integrity import (CHUNK_SIZE, HashingStream, atomic_file, expected_hash,
                                  verify)
from glancesync.transfer import ImageCache, MasterImageSource, default_cache_dir

MiB = 1024 * 1024


def make_data(size: int, seed: int = 0) -> bytes:
    """Incompressible, reproducible bytes."""
    out = bytearray()
    block = seed.to_bytes(8, "big")
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out += block
    return bytes(out[:size])


def image_for(data: bytes, *, os_hash: bool = True, name: str = "cirros",
              image_id: str | None = None) -> Image:
    return Image(id=image_id or str(uuid.uuid4()), name=name, status="active",
                 size=len(data), checksum=hashlib.md5(data).hexdigest(),
                 os_hash_algo="sha512" if os_hash else None,
                 os_hash_value=hashlib.sha512(data).hexdigest() if os_hash else None)


def split(data: bytes, size: int = CHUNK_SIZE) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


# --- hashing and verification ------------------------------------------------

def test_hashing_stream_matches_hashlib_and_passes_chunks_through():
    data = make_data(3 * MiB + 12345)
    stream = HashingStream(split(data, 65536))
    assert b"".join(stream) == data
    assert stream.md5 == hashlib.md5(data).hexdigest()
    assert stream.os_hash == hashlib.sha512(data).hexdigest()
    assert stream.size == len(data)


def test_hashing_stream_uses_the_masters_algorithm():
    data = make_data(100_000)
    image = image_for(data)
    image.os_hash_algo = "sha256"
    image.os_hash_value = hashlib.sha256(data).hexdigest()
    stream = HashingStream.for_image(split(data, 4096), image)
    list(stream)
    assert stream.os_hash == hashlib.sha256(data).hexdigest()
    assert stream.md5 == hashlib.md5(data).hexdigest()
    stream.verify(image)


@pytest.mark.parametrize("case", ["both", "preferred alone", "md5 only image", "upper case"])
def test_verify_accepts_matching_hashes_and_only_them(case):
    """Each accepted call is paired with the same call on other bytes, which must
    be refused: the acceptance is that of these hashes, not of any (issue 27)."""
    data = make_data(5000)
    other = data[:-1] + bytes([data[-1] ^ 1])
    image = image_for(data, os_hash=case != "md5 only image")

    def check(content: bytes) -> None:
        md5 = hashlib.md5(content).hexdigest()
        sha = hashlib.sha512(content).hexdigest()
        if case == "both":
            verify(image, md5, sha, size=len(content))
        elif case == "preferred alone":
            verify(image, None, sha)
        elif case == "md5 only image":
            verify(image, md5, None)
        else:
            verify(image, md5.upper(), sha.upper())

    assert check(data) is None
    with pytest.raises(ChecksumMismatchError, match="mismatch: expected"):
        check(other)


def test_verify_names_the_image_and_both_values():
    data = make_data(5000)
    image = image_for(data, name="ubuntu")
    wrong = hashlib.sha512(b"other").hexdigest()
    with pytest.raises(ChecksumMismatchError) as info:
        verify(image, None, wrong)
    message = str(info.value)
    assert "ubuntu" in message and image.id in message
    assert image.os_hash_value in message and wrong in message


def test_verify_checks_md5_too_when_both_are_known():
    data = make_data(5000)
    with pytest.raises(ChecksumMismatchError, match="md5"):
        verify(image_for(data), hashlib.md5(b"x").hexdigest(),
               hashlib.sha512(data).hexdigest())


def test_verify_checks_size():
    data = make_data(5000)
    with pytest.raises(ChecksumMismatchError, match="size"):
        verify(image_for(data), None, hashlib.sha512(data).hexdigest(), size=4999)


def test_verify_refuses_without_the_preferred_hash():
    data = make_data(5000)
    with pytest.raises(TransferError):
        verify(image_for(data), hashlib.md5(data).hexdigest(), None)
    with pytest.raises(TransferError):
        expected_hash(Image(id="x", name="n", status="active"))


def test_expected_hash_prefers_os_hash():
    data = make_data(10)
    assert expected_hash(image_for(data)) == ("sha512", hashlib.sha512(data).hexdigest())
    assert expected_hash(image_for(data, os_hash=False)) == ("md5", hashlib.md5(data).hexdigest())


def test_atomic_file_appears_whole_or_not_at_all(tmp_path):
    final = tmp_path / "data"
    with atomic_file(final, prefix=".tmp-") as handle:
        handle.write(b"first")
        assert not final.exists()
    assert final.read_bytes() == b"first"
    with pytest.raises(ChecksumMismatchError):
        with atomic_file(final, prefix=".tmp-") as handle:
            handle.write(b"second, refused")
            raise ChecksumMismatchError("refused")
    assert final.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary left


def test_atomic_file_in_a_missing_folder_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        with atomic_file(tmp_path / "none" / "data", prefix=".tmp-"):
            pass


# --- the cache ---------------------------------------------------------------

def test_cache_put_then_get(tmp_path):
    cache = ImageCache(tmp_path / "cache", None)
    data = make_data(2 * MiB + 7)
    image = image_for(data)
    assert cache.get(image) is None
    path = cache.put(image, split(data))
    assert path.read_bytes() == data
    assert path.name.startswith(image.id)
    assert image.os_hash_value in path.name  # records the hash it was verified against
    assert cache.get(image) == path
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]


def test_cache_get_verifies_each_file_version_once(tmp_path, caplog):
    data = make_data(MiB)
    image = image_for(data)
    path = ImageCache(tmp_path, None).put(image, [data])
    fresh = ImageCache(tmp_path, None)  # another run: must hash again
    assert fresh.get(image) == path
    # Same file, same size and mtime: the remembered result is used. Prove it
    # by corrupting the bytes while keeping size and mtime: still served.
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.write(b"\0")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fresh.get(image) == path
    # A third cache (a new process) hashes and finds the corruption.
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        assert ImageCache(tmp_path, None).get(image) is None
    assert "corrupted" in caplog.text
    assert not path.exists()


def test_corrupted_cache_file_is_discarded(tmp_path, caplog):
    data = make_data(MiB + 3)
    image = image_for(data)
    path = ImageCache(tmp_path, None).put(image, split(data))
    corrupted = bytearray(data)
    corrupted[1000] ^= 0xFF
    path.write_bytes(bytes(corrupted))
    cache = ImageCache(tmp_path, None)
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        assert cache.get(image) is None
    assert not path.exists()
    assert str(path) in caplog.text


def test_truncated_cache_file_is_discarded_without_hashing(tmp_path):
    data = make_data(MiB)
    image = image_for(data)
    cache = ImageCache(tmp_path, None)
    path = cache.put(image, [data])
    path.write_bytes(data[:-1])
    assert cache.get(image) is None
    assert not path.exists()


def test_put_with_wrong_data_leaves_nothing(tmp_path):
    data = make_data(3 * MiB)
    image = image_for(data)
    cache = ImageCache(tmp_path, None)
    final = cache.path_for(image)
    seen_during_write: list[list[str]] = []

    def chunks():
        for index, chunk in enumerate(split(data)):
            if index == 2:
                chunk = b"\xff" + chunk[1:]
            seen_during_write.append(sorted(p.name for p in tmp_path.iterdir()))
            assert not final.exists()
            yield chunk

    with pytest.raises(ChecksumMismatchError):
        cache.put(image, chunks())
    # The data was written to a hidden temporary name, never the final one.
    assert all(len(names) == 1 and names[0].startswith(".") for names in seen_during_write[1:])
    assert list(tmp_path.iterdir()) == []
    assert cache.get(image) is None


def test_put_interrupted_by_the_source_leaves_nothing(tmp_path):
    data = make_data(2 * MiB)
    image = image_for(data)
    cache = ImageCache(tmp_path, None)

    class Cut(TransferError):
        pass

    def chunks():
        yield data[:MiB]
        raise Cut("connection reset")

    with pytest.raises(Cut):
        cache.put(image, chunks())
    assert list(tmp_path.iterdir()) == []


def test_put_of_a_new_version_removes_the_old_one(tmp_path):
    cache = ImageCache(tmp_path, None)
    old = make_data(1000, seed=1)
    new = make_data(1000, seed=2)
    image_id = str(uuid.uuid4())
    old_path = cache.put(image_for(old, image_id=image_id), [old])
    new_path = cache.put(image_for(new, image_id=image_id), [new])
    assert old_path != new_path
    assert not old_path.exists() and new_path.read_bytes() == new


def _age(path: Path, seconds_ago: float) -> None:
    stamp = time.time_ns() - int(seconds_ago * 1e9)
    os.utime(path, ns=(stamp, path.stat().st_mtime_ns))


def test_lru_eviction_keeps_the_total_under_max_size(tmp_path):
    cache = ImageCache(tmp_path, max_size=3 * MiB)
    images = [(image_for(make_data(MiB, seed=i)), make_data(MiB, seed=i)) for i in range(4)]
    paths = [cache.put(image, [data]) for image, data in images[:3]]
    assert cache.total_size() == 3 * MiB
    # Use order: 0 is the oldest, then 1, then 2; using 0 again makes 1 the LRU.
    for path, age in zip(paths, (300, 200, 100)):
        _age(path, age)
    assert cache.get(images[0][0]) == paths[0]
    cache.put(images[3][0], [images[3][1]])
    assert cache.total_size() <= 3 * MiB
    assert not paths[1].exists()
    assert paths[0].exists() and paths[2].exists()


def test_eviction_never_removes_a_file_in_use(tmp_path):
    cache = ImageCache(tmp_path, max_size=2 * MiB)
    a, b, c = (make_data(MiB, seed=i) for i in range(3))
    image_a, image_b, image_c = image_for(a), image_for(b), image_for(c)
    path_a = cache.put(image_a, [a])
    _age(path_a, 1000)
    path_b = cache.put(image_b, [b])
    with cache.pinned(path_a):
        cache.put(image_c, [c])
        assert path_a.exists()
        assert not path_b.exists()


def test_image_larger_than_the_limit_is_still_served(tmp_path):
    cache = ImageCache(tmp_path, max_size=MiB)
    data = make_data(2 * MiB)
    image = image_for(data)
    path = cache.put(image, split(data))
    assert cache.get(image) == path


def test_abandoned_temporary_files_are_cleaned(tmp_path):
    cache = ImageCache(tmp_path, max_size=10 * MiB)
    stale = tmp_path / ".partial-dead"
    stale.write_bytes(b"x" * 100)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    live = tmp_path / ".partial-live"
    live.write_bytes(b"y")
    data = make_data(1000)
    cache.put(image_for(data), [data])
    assert not stale.exists()
    assert live.exists()


def test_default_cache_dir():
    folder = default_cache_dir()
    assert folder.name == "images" and "glancesync" in folder.parts


# --- progress ----------------------------------------------------------------

def test_progress_is_disabled_when_not_a_terminal():
    stream = io.StringIO()
    bar = progress_bar("download x", 100, file=stream)
    assert isinstance(bar, NullProgress) and not bar.enabled
    chunks = [b"a" * 10, b"b" * 20]
    assert list(wrap_chunks(iter(chunks), "download x", 30, file=stream)) == chunks
    assert stream.getvalue() == ""


def test_progress_is_drawn_on_a_terminal():
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        with os.fdopen(slave, "w", closefd=False) as terminal:
            bar = progress_bar("upload cirros", 3 * MiB, file=terminal)
            assert bar.enabled
            bar.update(MiB)
            bar.close()
            terminal.flush()
        output = ""
        while select.select([master], [], [], 2)[0]:
            output += os.read(master, 65536).decode()
            if "upload cirros" in output:
                break
    finally:
        os.close(master)
        os.close(slave)
    assert "upload cirros" in output


def test_progress_can_be_forced_and_counts_bytes():
    stream = io.StringIO()
    chunks = [b"a" * 1024] * 3
    assert list(wrap_chunks(chunks, "copy", 3072, enabled=True, file=stream)) == chunks
    assert "copy" in stream.getvalue()
    assert "3.00k" in stream.getvalue()


# --- the master source, on a real local region --------------------------------

class SlowMaster(LocalRegionAdapter):
    """A real local master region whose downloads pause after the first chunk.

    The pause makes concurrent requests overlap for sure; the count of calls
    is what the single-download guarantee is checked against.
    """

    def __init__(self, *args, pause: float = 0.3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pause = pause
        self.download_calls = 0

    def download_data(self, image_id: str):
        self.download_calls += 1
        chunks = super().download_data(image_id)

        def slow():
            for index, chunk in enumerate(chunks):
                yield chunk
                if index == 0:
                    time.sleep(self.pause)
        return slow()


@pytest.fixture
def master(tmp_path):
    adapter = SlowMaster("master:Master", tmp_path / "master", "admin-project")
    yield adapter
    adapter.close()


def upload(adapter: LocalRegionAdapter, data: bytes, name: str = "cirros") -> Image:
    image = adapter.create_image(name, visibility="public", disk_format="raw",
                                 container_format="bare")
    return adapter.upload_data(image.id, split(data), size=len(data))


def read_all(source: MasterImageSource, image: Image) -> bytes:
    chunks = list(source.chunks(image))
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
    return b"".join(chunks)


def test_first_read_downloads_once_then_reads_the_cache(tmp_path, master, caplog):
    data = make_data(3 * MiB + 5)
    image = upload(master, data)
    assert image.os_hash_algo == "sha512" and image.os_hash_value
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    with caplog.at_level(logging.INFO, logger="glancesync.transfer"):
        assert read_all(source, image) == data
    assert f"downloading image cirros (3.0 MiB, {image.id}) once for every region" in caplog.text
    assert (source.downloads, source.bytes_downloaded, source.cache_hits) == (1, len(data), 0)
    assert read_all(source, image) == data
    assert read_all(source, image) == data
    assert (source.downloads, source.bytes_downloaded, source.cache_hits) == (1, len(data), 2)
    assert master.download_calls == 1


class CountingCache(ImageCache):
    """A cache that counts its lookups, so a test can wait for readers to miss it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lookups = 0
        self.looked_up = threading.Condition()

    def get(self, image: Image) -> Path | None:
        found = super().get(image)
        with self.looked_up:
            self.lookups += 1
            self.looked_up.notify_all()
        return found


def test_concurrent_readers_share_one_download(tmp_path, master, caplog):
    """Two readers that missed the cache while a third downloads wait for it and read it.

    The download is held after its first chunk until the two others have looked
    the image up in the cache and missed it (4 lookups: the downloader looks
    twice, before and after taking the image's lock), so they overlap it
    whatever the machine's load.
    """
    data = make_data(4 * MiB)
    image = upload(master, data)
    cache = CountingCache(tmp_path / "cache", None)
    source = MasterImageSource(master, cache)
    original = master.download_data

    def held_download(image_id: str):
        chunks = original(image_id)
        yield next(chunks)
        with cache.looked_up:
            assert cache.looked_up.wait_for(lambda: cache.lookups >= 4, timeout=60)
        yield from chunks

    master.download_data = held_download
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def region(index: int) -> None:
        try:
            results[index] = b"".join(source.chunks(image))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=region, args=(i,)) for i in range(3)]
    with caplog.at_level(logging.DEBUG, logger="glancesync.transfer"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors
    assert [results[i] == data for i in range(3)] == [True, True, True]
    assert source.downloads == 1
    assert source.bytes_downloaded == len(data)
    assert source.cache_hits == 2
    assert master.download_calls == 1
    assert caplog.text.count("after waiting") == 2


def test_a_later_run_on_the_same_cache_downloads_nothing(tmp_path, master):
    data = make_data(2 * MiB)
    image = upload(master, data)
    first = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    assert read_all(first, image) == data
    second = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    assert read_all(second, image) == data
    assert (second.downloads, second.bytes_downloaded, second.cache_hits) == (0, 0, 1)
    assert master.download_calls == 1


def test_corrupted_cache_file_is_downloaded_again(tmp_path, master):
    data = make_data(MiB + 1)
    image = upload(master, data)
    cache_dir = tmp_path / "cache"
    path = MasterImageSource(master, ImageCache(cache_dir, None)).path(image)
    path.write_bytes(b"\0" + data[1:])
    source = MasterImageSource(master, ImageCache(cache_dir, None))
    assert read_all(source, image) == data
    assert (source.downloads, source.bytes_downloaded) == (1, len(data))
    assert path.read_bytes() == data


def test_master_data_that_does_not_match_is_refused_and_not_cached(tmp_path, master):
    data = make_data(2 * MiB)
    image = upload(master, data)
    stored = master.store.data_path / image.id
    stored.write_bytes(data[:-1] + b"\x00" if data[-1] else data[:-1] + b"\x01")
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    with pytest.raises(ChecksumMismatchError) as info:
        read_all(source, image)
    assert image.id in str(info.value)
    assert list((tmp_path / "cache").iterdir()) == []
    assert source.downloads == 0


def test_images_dir_file_is_used_when_its_hash_matches(tmp_path, master):
    data = make_data(2 * MiB)
    image = upload(master, data)
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    (images_dir / image.id).write_bytes(data)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None), images_dir)
    assert read_all(source, image) == data
    assert read_all(source, image) == data
    assert (source.downloads, source.bytes_downloaded, source.images_dir_hits) == (0, 0, 2)
    assert master.download_calls == 0


def test_wrong_images_dir_file_is_ignored_and_kept(tmp_path, master, caplog):
    data = make_data(2 * MiB)
    image = upload(master, data)
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    wrong = make_data(2 * MiB, seed=9)  # same size, other bytes
    (images_dir / image.id).write_bytes(wrong)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None), images_dir)
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        assert read_all(source, image) == data
        assert read_all(source, image) == data
    assert caplog.text.count("ignoring") == 1
    assert (source.downloads, source.bytes_downloaded, source.images_dir_hits) == (1, len(data), 0)
    assert (images_dir / image.id).read_bytes() == wrong  # the operator's file is untouched


def test_reading_memory_does_not_grow_with_image_size(tmp_path, master):
    import tracemalloc
    data = make_data(24 * MiB)
    image = upload(master, data)
    del data
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    tracemalloc.start()
    try:
        total = sum(len(chunk) for chunk in source.chunks(image))
        total += sum(len(chunk) for chunk in source.chunks(image))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 48 * MiB
    assert peak < 6 * MiB


def test_open_gives_the_cached_file_to_send_as_it_is(tmp_path, master):
    data = make_data(2 * MiB + 77)
    image = upload(master, data)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", 1))
    steps: list[int] = []
    with source.open(image) as sent:
        assert sent.size == len(data)
        sent.progress = steps.append
        # Iterable again and again (an upload may restart), from the first byte.
        assert b"".join(sent) == data and b"".join(sent) == data
        assert sum(steps) == 2 * len(data)
        assert os.pread(sent.handle.fileno(), 5, 0) == data[:5]
        # Pinned while open: the cache (limit 1 byte) keeps it.
        assert source.cache.evict() == []
        assert source.cache.path_for(image).is_file()
    # Released: over the limit, it leaves the cache at once (no later evict needed).
    assert not source.cache.path_for(image).exists()
    assert source.cache.evict() == []
    assert source.downloads == 1


# -- an image the cache cannot hold (issue 23, case 9) ---------------------------------

def test_an_image_larger_than_max_size_is_streamed_each_time_and_never_stored(
        tmp_path, master, caplog):
    data = make_data(2 * MiB + 1)
    image = upload(master, data)
    cache = ImageCache(tmp_path / "cache", max_size=MiB)
    source = MasterImageSource(master, cache)
    assert "than cache_max_size (1.0 MiB)" in source.uncached(image)
    assert source.prepare(image) is image  # nothing fetched ahead
    with caplog.at_level(logging.INFO, logger="glancesync.transfer"):
        assert read_all(source, image) == data
        assert read_all(source, image) == data
    assert "to one region without caching" in caplog.text
    assert (source.downloads, source.bytes_downloaded) == (2, 2 * len(data))
    assert cache.entries() == [] and master.download_calls == 2


def test_a_streamed_image_whose_bytes_do_not_match_fails_after_the_last_chunk(tmp_path,
                                                                              master):
    data = make_data(2 * MiB)
    image = upload(master, data)
    lying = dataclasses.replace(image, checksum="0" * 32, os_hash_value="0" * 128)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", max_size=MiB))
    with pytest.raises(ChecksumMismatchError):
        read_all(source, lying)
    assert source.cache.entries() == []


def test_the_room_of_the_cache_counts_what_eviction_frees(tmp_path):
    cache = ImageCache(tmp_path / "cache", max_size=10 * MiB)
    old = make_data(MiB)
    cache.put(image_for(old), split(old))
    free = shutil.disk_usage(tmp_path).free
    assert cache.cannot_hold(image_for(make_data(10))) is None
    huge = dataclasses.replace(image_for(b"x"), size=free + 2 * MiB)
    assert cache.cannot_hold(huge).startswith("it is larger")  # beyond max_size first
    unlimited = ImageCache(tmp_path / "cache2", None)
    assert "room of the cache's file system" in unlimited.cannot_hold(huge)
    assert cache.cannot_hold(dataclasses.replace(huge, size=None)) is None


def test_asking_whether_an_image_is_cached_changes_nothing(tmp_path, master):
    """A status or a dry run asks it: no folder made, nothing hashed or touched."""
    data = make_data(2 * MiB)
    image = upload(master, data)
    folder = tmp_path / "not-yet"
    source = MasterImageSource(master, ImageCache(folder, max_size=MiB))
    assert source.uncached(image) is not None
    assert not folder.exists() and master.download_calls == 0
    roomy = MasterImageSource(master, ImageCache(tmp_path / "roomy", None))
    assert roomy.uncached(image) is None and not (tmp_path / "roomy").exists()
