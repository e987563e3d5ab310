"""transfer: tests that kill surviving mutants of glancesync/transfer.py (issue 27);
each names the functions whose mutants it kills (mutmut 3.8.1 names, first run)."""
from __future__ import annotations

import dataclasses
import hashlib
import linecache
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import ChecksumMismatchError, TransferError
from glancesync.image import Image
from glancesync.integrity import CHUNK_SIZE
from glancesync.transfer import ImageCache, MasterImageSource, _chunks_of, default_cache_dir

MiB = 1024 * 1024


def make_data(size: int, seed: int = 0) -> bytes:
    out = bytearray()
    block = seed.to_bytes(8, "big")
    while len(out) < size:
        block = hashlib.sha512(block).digest()
        out += block
    return bytes(out[:size])


def split(data: bytes, size: int = CHUNK_SIZE) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.fixture
def master(tmp_path):
    adapter = LocalRegionAdapter("master:Master", tmp_path / "master", "admin-project")
    yield adapter
    adapter.close()


def upload(adapter: LocalRegionAdapter, data: bytes, name: str = "cirros") -> Image:
    image = adapter.create_image(name, visibility="public", disk_format="raw",
                                 container_format="bare")
    return adapter.upload_data(image.id, split(data), size=len(data))


def without_hash(image: Image, **changes) -> Image:
    return dataclasses.replace(image, checksum=None, os_hash_algo=None, os_hash_value=None,
                               **changes)


def alter_in_place(path: Path) -> None:
    """Change the first byte of ``path``, keeping its size and times (the memo's key)."""
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


# -- an image without hash (sync_without_checksum): _unverified ------------------------

def test_an_image_without_hash_is_read_from_the_master_and_counted(tmp_path, master,
                                                                    caplog):
    data = make_data(MiB + 10)
    image = without_hash(upload(master, data))
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    with caplog.at_level(logging.INFO, logger="glancesync.transfer"):
        chunks = list(source.chunks(image))
    assert b"".join(chunks) == data and [len(c) for c in chunks] == [MiB, 10]
    assert caplog.messages == [f"{master.name}: reading image cirros ({image.id}), which"
                               " has no checksum, for one region"]
    assert (source.bytes_downloaded, source.downloads, source.cache_hits) == (len(data), 0, 0)
    assert source.cache.entries() == []
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="glancesync.transfer"):
        unnamed = dataclasses.replace(image, name=None)
        assert b"".join(source.chunks(unnamed)) == data
    assert caplog.messages == [f"{master.name}: reading image {image.id} ({image.id}),"
                               " which has no checksum, for one region"]
    assert source.bytes_downloaded == 2 * len(data)
    # its size unknown: nothing to check, the bytes pass
    assert b"".join(source.chunks(dataclasses.replace(image, size=None))) == data


def test_an_image_without_hash_shorter_than_declared_fails_after_the_last_chunk(
        tmp_path, master):
    data = make_data(1000)
    image = without_hash(upload(master, data), size=1001)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    received = []
    with pytest.raises(ChecksumMismatchError) as caught:
        for chunk in source.chunks(image):
            received.append(chunk)
    assert b"".join(received) == data
    assert str(caught.value) == (f"image cirros ({image.id}): size mismatch: expected 1001"
                                 " bytes, got 1000")
    assert caught.value.image == f"cirros ({image.id})"


# -- recheck, forget_all, forget ----------------------------------------------------

def test_recheck_hashes_again_the_cached_file_of_that_image_only(tmp_path, master):
    first, second = make_data(5000, 1), make_data(5000, 2)
    one, two = upload(master, first, "one"), upload(master, second, "two")
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    path_one, path_two = source.path(one), source.path(two)
    alter_in_place(path_one)
    alter_in_place(path_two)
    # same size and times: the memo still vouches for both
    assert b"".join(source.chunks(one)) != first
    source.recheck(one)
    assert b"".join(source.chunks(one)) == first  # discarded, downloaded again
    assert source.downloads == 3
    assert b"".join(source.chunks(two)) != second  # not rechecked: still served


def test_recheck_hashes_again_the_images_dir_file(tmp_path, master, caplog):
    data = make_data(5000)
    image = upload(master, data)
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    (images_dir / image.id).write_bytes(data)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None), images_dir)
    assert source.path(image) == images_dir / image.id
    alter_in_place(images_dir / image.id)
    assert source.path(image) == images_dir / image.id
    source.recheck(image)
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        assert source.path(image) == source.cache.path_for(image)
    assert caplog.messages == [f"ignoring {images_dir / image.id}: its size or hash differs"
                               f" from master image cirros ({image.id})"]
    assert source.images_dir_hits == 2 and source.downloads == 1


def test_recheck_without_images_dir_or_with_an_id_that_names_no_file(tmp_path, master):
    data = make_data(500)
    image = upload(master, data)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None), tmp_path)
    source.recheck(dataclasses.replace(image, id="../x"))
    MasterImageSource(master, ImageCache(tmp_path / "cache", None)).recheck(image)


# -- reprs ----------------------------------------------------------------------------

def test_reprs_name_the_folders(tmp_path, master):
    cache = ImageCache(tmp_path / "cache", 7)
    assert repr(cache) == f"<ImageCache {tmp_path / 'cache'} max_size=7>"
    source = MasterImageSource(master, cache, tmp_path / "images")
    assert repr(source) == (f"<MasterImageSource master={master.name} cache={tmp_path}/cache"
                            f" images_dir={tmp_path}/images>")
    nameless = MasterImageSource(object(), cache)
    assert repr(nameless) == f"<MasterImageSource master=? cache={tmp_path}/cache images_dir=None>"


# -- an image the cache cannot hold, streamed: _streamed ----------------------------------

class Nameless:
    """A master adapter without ``name`` (the source says "master" then)."""

    def __init__(self, inner: LocalRegionAdapter) -> None:
        self.download_data = inner.download_data


def test_a_streamed_image_is_logged_with_the_master_the_image_and_why(tmp_path, master,
                                                                      caplog):
    data = make_data(5000)
    image = upload(master, data)
    for adapter, shown in ((master, master.name), (Nameless(master), "master")):
        for img, named in ((image, "cirros"), (dataclasses.replace(image, name=None),
                                               image.id)):
            caplog.clear()
            source = MasterImageSource(adapter, ImageCache(tmp_path / "cache", 10))
            with caplog.at_level(logging.INFO, logger="glancesync.transfer"):
                assert b"".join(source.chunks(img)) == data
            assert caplog.messages == [
                f"{shown}: streaming image {named} ({image.id}) to one region without"
                " caching: it is larger (0.0 MiB) than cache_max_size (0.0 MiB)"]
            assert (source.downloads, source.bytes_downloaded) == (1, len(data))


def test_a_streamed_image_with_md5_alone_is_verified_by_it(tmp_path, master):
    data = make_data(5000)
    image = dataclasses.replace(upload(master, data), os_hash_algo=None, os_hash_value=None)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", 10))
    assert b"".join(source.chunks(image)) == data
    with pytest.raises(ChecksumMismatchError, match="md5 mismatch"):
        b"".join(source.chunks(dataclasses.replace(image, checksum="0" * 32)))


def test_a_streamed_image_is_verified_by_its_preferred_hash_and_its_size(tmp_path,
                                                                         master):
    data = make_data(5000)
    image = upload(master, data)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", 10))
    # Only the preferred hash is computed (as for the cache): the legacy md5 of an
    # image with a multihash is not (half the CPU); the multihash vouches for the bytes.
    assert b"".join(source.chunks(dataclasses.replace(image, checksum="0" * 32))) == data
    # fewer bytes than declared, though they hash right: refused after the last chunk
    with pytest.raises(ChecksumMismatchError) as caught:
        b"".join(source.chunks(dataclasses.replace(image, size=5001)))
    assert "size mismatch: expected 5001 bytes, got 5000" in str(caught.value)
    assert source.downloads == 1


# -- images_dir: the warning once ----------------------------------------------------

def test_a_wrong_images_dir_file_is_warned_about_at_its_first_use_only(tmp_path, master,
                                                                       caplog):
    data = make_data(5000)
    image = upload(master, data)
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    (images_dir / image.id).write_bytes(make_data(5000, seed=3))
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None), images_dir)
    warning = (f"ignoring {images_dir / image.id}: its size or hash differs from master"
               f" image cirros ({image.id})")
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        assert source.path(image) == source.cache.path_for(image)
        assert caplog.messages == [warning]
        for _ in range(2):
            source.path(image)
    assert caplog.messages == [warning]
    second = upload(master, make_data(5000, seed=4), "second")  # another file: its warning
    (images_dir / second.id).write_bytes(make_data(5000, seed=5))
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        source.path(second)
    assert len(caplog.messages) == 2 and f"ignoring {images_dir / second.id}" in \
        caplog.messages[1]


# -- the download into the cache: _download, path ----------------------------------------

def test_a_download_is_logged_with_the_master_the_image_and_its_size(tmp_path, master,
                                                                      caplog):
    data = make_data(3 * MiB // 2)
    image = upload(master, data)
    cases = ((master, image, master.name, "cirros", "1.5 MiB", f"cirros ({image.id})"),
             (Nameless(master), dataclasses.replace(image, name=None, size=None), "master",
              image.id, "size unknown", image.id))
    for index, (adapter, img, shown, named, size, labelled) in enumerate(cases):
        caplog.clear()
        source = MasterImageSource(adapter, ImageCache(tmp_path / f"cache{index}", None))
        with caplog.at_level(logging.DEBUG, logger="glancesync.transfer"):
            path = source.path(img)
        assert path.read_bytes() == data
        infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert infos == [f"{shown}: downloading image {named} ({size}, {image.id}) once"
                         " for every region"]
        debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
        assert f"cached {labelled} as {path}" in debug
        # the time taken: a duration, not a date (an hour is a bound no test reaches)
        assert any(re.fullmatch(rf"downloaded {re.escape(labelled)} in \d+\.\d s", m)
                   and float(m.split()[-2]) < 3600 for m in debug), debug
        assert (source.downloads, source.bytes_downloaded, source.cache_hits) == \
            (1, len(data), 0)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="glancesync.transfer"):
            assert source.path(img) == path
        assert f"cache hit for {labelled}: {path}" in caplog.messages
        assert (source.downloads, source.cache_hits) == (1, 1)


@pytest.mark.parametrize("enabled", [True, False, None])
def test_a_download_shows_its_progress_when_asked(tmp_path, master, capsys, enabled):
    data = make_data(3 * MiB // 2)
    image = upload(master, data)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None), progress=enabled)
    assert source.path(image).read_bytes() == data
    shown = capsys.readouterr().err
    if enabled:  # its description and total (1.5 MiB in KiB units: 1.50M)
        assert "download cirros" in shown and "1.50M" in shown
    else:  # None: only on a terminal, and stderr is not one here
        assert shown == ""


# -- prepare and the image of a conversion: prepare, _converted_image -----------------------

def qcow2_image(tmp_path: Path, master: LocalRegionAdapter, **changes) -> Image:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "m.qcow2"),
                    "1M"], check=True)
    data = (tmp_path / "m.qcow2").read_bytes()
    image = master.create_image("img", visibility="public", disk_format="qcow2",
                                container_format="bare")
    image = master.upload_data(image.id, [data], size=len(data))
    return dataclasses.replace(image, **changes)


def test_prepare_fetches_a_cacheable_image_ahead_and_nothing_else(tmp_path, master):
    data = make_data(5000)
    image = upload(master, data)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    assert source.prepare(image) is image
    assert source.downloads == 1 and source.cache.path_for(image).read_bytes() == data
    # an image without hash is read from the master for each region: not fetched
    bare = without_hash(upload(master, data, "bare"))
    assert source.prepare(bare) is bare and source.downloads == 1
    # one too large for the cache is streamed later: not fetched either
    small = MasterImageSource(master, ImageCache(tmp_path / "small", 10))
    assert small.prepare(image) is image
    assert small.downloads == 0 and small.cache.entries() == []


def test_a_conversion_the_cache_cannot_hold_is_refused_in_words(tmp_path, master):
    image = qcow2_image(tmp_path, master)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", 10))
    with pytest.raises(TransferError) as caught:
        source.prepare(image, "raw")
    assert str(caught.value) == (
        f"image img ({image.id}): cannot convert it to raw: the conversion needs a local"
        f" copy, and it is larger ({image.size / MiB:.1f} MiB) than cache_max_size"
        " (0.0 MiB)")
    assert caught.value.image == f"img ({image.id})"
    assert source.downloads == 0 and source.conversions == 0


def test_the_image_of_a_conversion_describes_its_bytes(tmp_path, master):
    # an md5-only master: the conversion is hashed with md5 and says so
    image = qcow2_image(tmp_path, master, os_hash_algo=None, os_hash_value=None)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    converted = source.prepare(image, "raw")
    path = source.cache.converted_path(image, "raw")
    data = path.read_bytes()
    assert (converted.id, converted.name, converted.status, converted.disk_format,
            converted.container_format) == (image.id, "img", "active", "raw", "bare")
    assert (converted.size, converted.checksum) == (len(data), hashlib.md5(data).hexdigest())
    assert converted.os_hash_value is None and source.conversions == 1


def test_an_image_without_hash_from_a_nameless_master_is_logged_as_from_master(
        tmp_path, master, caplog):
    data = make_data(100)
    image = without_hash(upload(master, data))
    source = MasterImageSource(Nameless(master), ImageCache(tmp_path / "cache", None))
    with caplog.at_level(logging.INFO, logger="glancesync.transfer"):
        assert b"".join(source.chunks(image)) == data
    assert caplog.messages == [f"master: reading image cirros ({image.id}), which has no"
                               " checksum, for one region"]


def test_a_conversion_of_an_md5_only_master_is_found_again_by_its_record(tmp_path, master):
    # _write_record: the md5 kept under "md5", read back by a later run
    image = qcow2_image(tmp_path, master, os_hash_algo=None, os_hash_value=None)
    first = MasterImageSource(master, ImageCache(tmp_path / "cache", None)).prepare(image,
                                                                                    "raw")
    later = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    again = later.prepare(image, "raw")
    assert later.conversions == 0 and later.downloads == 0
    assert (again.checksum, again.size) == (first.checksum, first.size)
    assert (again.id, again.name, again.status, again.disk_format, again.container_format,
            again.os_hash_algo, again.os_hash_value) == (image.id, "img", "active", "raw",
                                                         "bare", None, None)


def test_a_converted_file_that_does_not_match_its_record_is_discarded(tmp_path, caplog):
    image = Image(id="img", name="img", status="active", size=60, checksum="0" * 32,
                  disk_format="qcow2")
    path, _ = ImageCache(tmp_path / "cache", None).put_converted(
        image, "raw", lambda temp: temp.write_bytes(b"converted"))
    alter_in_place(path)
    cache = ImageCache(tmp_path / "cache", None)  # another run: nothing remembered
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        assert cache.get_converted(image, "raw") is None
    assert caplog.messages == [f"converted cache file {path} does not match its record;"
                               " discarding it"]
    assert not path.exists() and not path.with_name(f".{path.name}.json").exists()


def test_cache_files_are_hashed_in_chunks(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(make_data(2 * CHUNK_SIZE + 5))
    with open(path, "rb") as handle:
        assert [len(chunk) for chunk in _chunks_of(handle)] == [CHUNK_SIZE, CHUNK_SIZE, 5]


def test_a_conversion_of_a_multihash_master_is_hashed_once_with_it(tmp_path, master):
    image = qcow2_image(tmp_path, master)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    converted = source.prepare(image, "raw")
    data = source.cache.converted_path(image, "raw").read_bytes()
    assert converted.os_hash_value == hashlib.sha512(data).hexdigest()
    assert converted.checksum is None  # md5 not computed: the multihash is enough


# -- put and put_converted: room made first, a hidden temporary file ------------------------

def entry_names(cache: ImageCache) -> list[str]:
    return sorted(path.name for path in cache.entries())


def test_put_converted_makes_room_first_and_writes_a_hidden_temporary(tmp_path):
    cache = ImageCache(tmp_path / "cache", max_size=100)
    old = make_data(50)
    kept = cache.put(Image(id="old", name="old", status="active", size=50,
                           checksum=hashlib.md5(old).hexdigest()), [old])
    image = Image(id="img", name="img", status="active", size=60, checksum="0" * 32,
                  disk_format="qcow2")
    seen: dict[str, object] = {}

    def write(temp: Path) -> None:
        seen.update(entries=entry_names(cache), temp=temp)
        temp.write_bytes(b"converted")

    path, converted = cache.put_converted(image, "raw", write)
    assert seen["entries"] == []  # 50 + 60 > 100: the old file went before writing
    temp = seen["temp"]
    assert temp.parent == cache.directory
    assert temp.name.startswith(".partial-img.") and temp.name.endswith(".raw")
    assert path.read_bytes() == b"converted" and not temp.exists()
    # size unknown: nothing reserved; a cache exactly full keeps its files
    kept = cache.put(Image(id="old", name="old", status="active", size=50,
                           checksum=hashlib.md5(old).hexdigest()), [old])
    cache.max_size = cache.total_size()
    before = entry_names(cache)
    assert kept.name in before and len(before) == 2
    seen.clear()
    cache.put_converted(dataclasses.replace(image, id="other", size=None), "raw", write)
    assert seen["entries"] == before


def test_put_makes_room_before_the_first_byte(tmp_path):
    cache = ImageCache(tmp_path / "cache", max_size=100)
    old, new = make_data(50, 1), make_data(60, 2)
    kept = cache.put(Image(id="old", name="old", status="active", size=50,
                           checksum=hashlib.md5(old).hexdigest()), [old])
    seen: list[list[str]] = []

    def chunks():
        seen.append(entry_names(cache))
        yield new

    cache.put(Image(id="new", name="new", status="active", size=60,
                    checksum=hashlib.md5(new).hexdigest()), chunks())
    assert seen == [[]]
    cache.put(Image(id="old", name="old", status="active", size=50,
                    checksum=hashlib.md5(old).hexdigest()), [old])
    cache.max_size = cache.total_size()
    seen.clear()
    cache.put(Image(id="x", name="x", status="active", size=None,
                    checksum=hashlib.md5(new).hexdigest()), chunks())
    assert kept.name in seen[0]


def test_put_converted_remembers_its_file_as_verified_and_says_so(tmp_path, caplog):
    cache = ImageCache(tmp_path / "cache", None)
    image = Image(id="img", name="img", status="active", size=60, checksum="0" * 32,
                  disk_format="qcow2")
    with caplog.at_level(logging.DEBUG, logger="glancesync.transfer"):
        path, converted = cache.put_converted(image, "raw",
                                              lambda temp: temp.write_bytes(b"converted"))
    assert f"cached img (img) converted to raw as {path}" in caplog.messages
    # hashed when written: not again in this process while the file looks unchanged
    alter_in_place(path)
    assert cache.get_converted(image, "raw") == (path, converted)
    cache.forget(path)
    assert cache.get_converted(image, "raw") is None and not path.exists()


def test_put_converted_failing_to_write_is_a_transfer_error_and_leaves_nothing(tmp_path):
    cache = ImageCache(tmp_path / "cache", None)
    image = Image(id="img", name="img", status="active", size=60, checksum="0" * 32,
                  disk_format="qcow2")

    def write(temp: Path) -> None:
        temp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(TransferError) as caught:
        cache.put_converted(image, "raw", write)
    final = cache.converted_path(image, "raw")
    assert str(caught.value) == (f"image img (img): cannot store the converted image in"
                                 f" {final}: [Errno 28] No space left on device")
    assert caught.value.image == "img (img)"
    assert list(cache.directory.iterdir()) == []


def test_a_record_that_cannot_be_trusted_is_named_as_the_conversion_record(tmp_path, caplog):
    cache = ImageCache(tmp_path / "cache", None)
    image = Image(id="img", name="img", status="active", size=60, checksum="0" * 32,
                  disk_format="qcow2")
    path, _ = cache.put_converted(image, "raw", lambda temp: temp.write_bytes(b"converted"))
    record = path.with_name(f".{path.name}.json")
    record.unlink()
    os.mkfifo(record)
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        assert cache.get_converted(image, "raw") is None
    assert caplog.messages == [f"conversion record {record} is not a regular file (a FIFO,"
                               " a device or a socket): refused; removing it and its"
                               " converted file"]
    assert not path.exists() and not record.exists()


# -- eviction, recency, abandoned temporary files -----------------------------------------

def aged(path: Path, seconds_ago: int) -> None:
    stamp = time.time_ns() - seconds_ago * 10**9
    os.utime(path, ns=(stamp, path.stat().st_mtime_ns))


def md5_image(name: str, data: bytes) -> Image:
    return Image(id=name, name=name, status="active", size=len(data),
                 checksum=hashlib.md5(data).hexdigest())


def test_eviction_removes_the_least_recently_used_first_down_to_the_limit(tmp_path, caplog):
    cache = ImageCache(tmp_path / "cache", max_size=7 * MiB // 2)
    files = {}
    for index, (name, size) in enumerate((("a", 2 * MiB), ("b", MiB), ("c", MiB // 2))):
        data = make_data(size, index)
        files[name] = cache.put(md5_image(name, data), [data])
        aged(files[name], 300 - 100 * index)  # a is the least recently used, c the most
    assert cache.total_size() == 7 * MiB // 2
    assert cache.evict() == []  # exactly at the limit: nothing to do
    with caplog.at_level(logging.INFO, logger="glancesync.transfer"):
        assert cache.evict(reserve=MiB) == [files["a"]]  # not the smallest ones
    assert caplog.messages == [f"evicted {files['a'].name} from the image cache (2 MiB)"]
    assert files["b"].exists() and files["c"].exists()
    # b next; then 0.5 + 3 MiB fit the 3.5 MiB exactly: c stays
    assert cache.evict(reserve=3 * MiB) == [files["b"]] and files["c"].exists()


def test_a_cache_hit_keeps_the_file_version_it_verified(tmp_path):
    # _touch sets the access time only: the memo's key (mtime) stays, the file is not
    # hashed again at every use
    cache = ImageCache(tmp_path / "cache", None)
    data = make_data(5000)
    path = cache.put(md5_image("img", data), [data])
    mtime = path.stat().st_mtime_ns
    aged(path, 100)
    atime = path.stat().st_atime_ns
    alter_in_place(path)
    assert cache.get(md5_image("img", data)) == path
    assert path.stat().st_mtime_ns == mtime and path.stat().st_atime_ns > atime
    assert cache.get(md5_image("img", data)) == path


def test_abandoned_temporary_files_and_folders_go_with_a_log_line(tmp_path, caplog):
    cache = ImageCache(tmp_path / "cache", None)  # no limit: the cleaning happens anyway
    cache.ready()
    stale_file = cache.directory / ".partial-dead"
    stale_file.write_bytes(b"x")
    stale_folder = cache.directory / ".partial-folder"
    (stale_folder / "inner").mkdir(parents=True)
    (stale_folder / "inner" / "file").write_bytes(b"x")
    old = time.time() - 2 * 3600
    for path in (stale_file, stale_folder / "inner" / "file", stale_folder / "inner",
                 stale_folder):
        os.utime(path, (old, old))
    fresh = cache.directory / ".partial-live"
    fresh.write_bytes(b"y")
    other = cache.directory / "not-a-temporary"
    other.write_bytes(b"z")
    os.utime(other, (old, old))
    data = make_data(100)
    with caplog.at_level(logging.INFO, logger="glancesync.transfer"):
        cache.put(md5_image("img", data), [data])
    assert not stale_file.exists() and not stale_folder.exists()
    assert fresh.exists() and other.exists()
    assert sorted(caplog.messages) == sorted(
        f"removing abandoned temporary file {path}" for path in (stale_file, stale_folder))


# -- the download's guards: _counted; images_dir oddities: _from_images_dir ------------------

class Talkative:
    """A master adapter sending ``data`` whatever the image declares, and noting whether
    the download was closed."""

    name = "talkative"

    def __init__(self, data: bytes, on_chunk=None) -> None:
        self.data = data
        self.closed = False
        self.on_chunk = on_chunk

    def download_data(self, image_id: str):
        outer = self

        class Download:
            def __iter__(self):
                for chunk in split(outer.data, 1000):
                    if outer.on_chunk:
                        outer.on_chunk()
                    yield chunk

            def close(self):
                outer.closed = True
        return Download()


def test_a_master_sending_more_than_declared_is_cut_off_and_closed(tmp_path):
    data = make_data(5000)
    image = md5_image("img", data[:2500])
    master = Talkative(data)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    with pytest.raises(ChecksumMismatchError) as caught:
        source.path(image)
    assert str(caught.value) == ("image img (img): the master sent more than the 2500 bytes"
                                 " the image declares: download stopped")
    assert master.closed and source.bytes_downloaded == 2000  # the third chunk is refused
    assert source.cache.entries() == []


def test_a_stop_during_a_download_ends_it_at_the_next_chunk(tmp_path):
    from glancesync.errors import StoppedError
    from glancesync.stopping import StopRequest
    data = make_data(5000)
    stop = StopRequest()
    chunks = []
    master = Talkative(data, on_chunk=lambda: chunks.append(1) if len(chunks) < 2
                       else stop.set("test"))
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None), stop=stop)
    with pytest.raises(StoppedError) as caught:
        source.path(md5_image("img", data))
    assert caught.value.image == "img (img)"
    assert master.closed and source.bytes_downloaded == 2000
    assert source.cache.entries() == []


def test_an_images_dir_entry_that_is_no_regular_file_is_ignored_with_a_warning(
        tmp_path, master, caplog):
    data = make_data(5000)
    image = upload(master, data)
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    os.mkfifo(images_dir / image.id)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None), images_dir)
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        assert source.path(image) == source.cache.path_for(image)
        source.path(image)
    assert caplog.messages == [f"ignoring {images_dir / image.id}: not a regular file (a"
                               " FIFO, a device or a socket)"]
    assert source.images_dir_hits == 0 and source.downloads == 1
    second = upload(master, make_data(5000, seed=6), "second")  # another one: warned too
    os.mkfifo(images_dir / second.id)
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        source.path(second)
    assert len(caplog.messages) == 2 and f"ignoring {images_dir / second.id}" in \
        caplog.messages[1]


def test_an_id_that_names_no_file_of_images_dir_is_not_looked_for_there(tmp_path, master,
                                                                        caplog):
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    (tmp_path / "x").write_bytes(b"12345")  # what "../x" would name
    image = Image(id="../x", name="x", status="active", size=5,
                  checksum=hashlib.md5(b"12345").hexdigest())
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", 1), images_dir)
    with caplog.at_level(logging.DEBUG, logger="glancesync.transfer"):
        assert source.uncached(image) is not None  # not "found" in images_dir's parent
    assert "master image id '../x' cannot name a file of images_dir" in caplog.messages


# -- the conversion's log lines: converted ------------------------------------------------

def test_a_conversion_is_logged_with_the_master_the_image_and_the_formats(tmp_path, master,
                                                                          caplog):
    image = qcow2_image(tmp_path, master)
    for index, (adapter, img, shown, named) in enumerate((
            (master, image, master.name, "img"),
            (Nameless(master), dataclasses.replace(image, name=None), "master", image.id))):
        source = MasterImageSource(adapter, ImageCache(tmp_path / f"cache{index}", None))
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="glancesync.transfer"):
            path, _ = source.converted(img, "raw")
        infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert infos[-1] == (f"{shown}: converting image {named} ({image.id}) from qcow2 to"
                             " raw once for every region storing raw")
        labelled = "img (" + image.id + ")" if named == "img" else image.id
        assert any(re.fullmatch(rf"converted {re.escape(labelled)} in \d+\.\d s", m)
                   and float(m.split()[-2]) < 3600 for m in caplog.messages), caplog.messages
        assert source.conversions == 1
        assert source.converted(img, "raw")[0] == path and source.conversions == 1


# -- the cache's settings and versions: ImageCache.__init__, _remove_other_versions --------

def test_a_cache_takes_a_folder_name_a_limit_of_0_and_refuses_a_negative_one(tmp_path):
    cache = ImageCache(str(tmp_path / "cache"), 0)
    assert cache.directory == tmp_path / "cache" and cache.max_size == 0
    assert ImageCache().directory == default_cache_dir()
    assert ImageCache(tmp_path).max_size is None
    with pytest.raises(ValueError, match=r"^max_size must be positive or None$"):
        ImageCache(tmp_path, -1)


def test_a_cache_file_that_cannot_be_trusted_is_named_and_removed(tmp_path, caplog):
    cache = ImageCache(tmp_path / "cache", None)
    cache.ready()
    image = md5_image("img", b"data")
    os.mkfifo(cache.path_for(image))
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        assert cache.get(image) is None
    assert caplog.messages == [f"cache file {cache.path_for(image)} is not a regular file"
                               " (a FIFO, a device or a socket): refused; removing it"]
    assert not cache.path_for(image).exists()


def test_a_new_version_removes_the_old_ones_and_their_conversions_only(tmp_path, caplog):
    cache = ImageCache(tmp_path / "cache", None)
    first, second = make_data(100, 1), make_data(100, 2)
    old = cache.put(md5_image("img", first), [first])
    old_raw, _ = cache.put_converted(md5_image("img", first), "raw",
                                     lambda temp: temp.write_bytes(b"old"))
    neighbour = cache.put(md5_image("img2", first), [first])  # "img2." is not "img."
    with cache.pinned(old):
        new = cache.put(md5_image("img", second), [second])
        assert old.exists()  # in use: kept
    assert not old_raw.exists()
    new_raw, _ = cache.put_converted(md5_image("img", second), "raw",
                                     lambda temp: temp.write_bytes(b"new"))
    again = cache.put(md5_image("img", second), [second])  # the same version again
    assert again == new and new_raw.exists() and neighbour.exists()
    with caplog.at_level(logging.DEBUG, logger="glancesync.transfer"):
        cache.put(md5_image("img", first), [first])
    assert not new.exists() and not new_raw.exists() and not old_raw.exists()
    assert {f"removing stale cache file {new}", f"removing stale cache file {new_raw}"} <= \
        set(caplog.messages)


def test_an_images_dir_entry_may_be_the_operators_link(tmp_path, master, caplog):
    data = make_data(5000)
    image = upload(master, data)
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    (tmp_path / "elsewhere").write_bytes(data)
    (images_dir / image.id).symlink_to(tmp_path / "elsewhere")
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None), str(images_dir))
    with caplog.at_level(logging.DEBUG, logger="glancesync.transfer"):
        assert source.path(image) == images_dir / image.id
    assert f"using {images_dir / image.id} for cirros ({image.id})" in caplog.messages
    assert source.images_dir_hits == 1 and source.downloads == 0


def test_the_room_of_the_cache_is_measured_on_its_nearest_existing_folder(tmp_path):
    cache = ImageCache(tmp_path / "not" / "yet", None)
    huge = Image(id="huge", name="huge", status="active", size=2**62, checksum="0" * 32)
    why = cache.cannot_hold(huge)
    assert re.fullmatch(r"it is larger \(4398046511104\.0 MiB\) than the room of the"
                        rf" cache's file system \(\d+\.\d MiB in {re.escape(str(tmp_path))}\)",
                        why), why
    limited = ImageCache(tmp_path / "cache", 3 * MiB // 2)
    assert limited.cannot_hold(dataclasses.replace(huge, size=2 * MiB)) == (
        "it is larger (2.0 MiB) than cache_max_size (1.5 MiB)")
    assert limited.cannot_hold(dataclasses.replace(huge, size=3 * MiB // 2)) is None


class Holding(LocalRegionAdapter):
    """A real local master whose download of one image waits for ``release``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.held: str | None = None
        self.release = threading.Event()
        self.started = threading.Event()

    def download_data(self, image_id: str):
        chunks = super().download_data(image_id)
        if image_id != self.held:
            return chunks

        def held():
            self.started.set()
            assert self.release.wait(300)
            yield from chunks
        return held()


def blocked_in_converted(thread: threading.Thread) -> bool:
    """Whether ``thread`` runs no Python code below ``MasterImageSource.converted`` (it
    waits there for a lock; mutmut's copy renames the function ``...ǁconverted__...``)."""
    frame = sys._current_frames().get(thread.ident)
    return frame is not None and re.search(r"(^|ǁ)converted($|__mutmut)",
                                           frame.f_code.co_name) is not None


def test_conversions_of_one_image_are_made_once_others_go_on_meanwhile(tmp_path):
    # converted: the lock is per image and format, and the conversion is looked for
    # again once it is held (a thread that waited finds the file the other one made)
    master = Holding("master:Master", tmp_path / "master", "admin-project")
    try:
        first = qcow2_image(tmp_path, master)
        other = qcow2_image(tmp_path, master)
        master.held = first.id
        source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
        results: dict[str, object] = {}

        def convert(key: str, image: Image) -> None:
            try:
                results[key] = source.converted(image, "raw")
            except BaseException as exc:  # reported by the main thread
                results[key] = exc

        threads = {key: threading.Thread(target=convert, args=(key, image))
                   for key, image in (("one", first), ("two", first), ("other", other))}
        threads["one"].start()
        assert master.started.wait(120)  # "one" holds the lock of (first, raw)
        threads["two"].start()
        for _ in range(1200):  # "two" waits for that lock (its frame is in converted)
            if not threads["two"].is_alive() or blocked_in_converted(threads["two"]):
                break
            threads["two"].join(0.1)
        threads["other"].start()
        threads["other"].join(120)  # another image converts meanwhile
        assert "other" in results and not isinstance(results["other"], BaseException)
        assert "one" not in results and "two" not in results
        master.release.set()
        for key in ("one", "two"):
            threads[key].join(120)
        assert results["one"] == results["two"]
        assert source.conversions == 2 and source.downloads == 2
    finally:
        master.release.set()
        master.close()


def test_the_master_file_stays_while_it_is_converted_even_over_the_limit(tmp_path, master):
    # converted pins the master file: the room made for the conversion never takes it
    image = qcow2_image(tmp_path, master)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", max_size=1))
    path, converted = source.converted(image, "raw")
    assert converted.size == MiB and source.conversions == 1


def test_a_refused_conversion_names_the_image_and_keeps_the_sources_limits(tmp_path, master):
    from glancesync.convert import Limits
    from glancesync.errors import ImageRefusedError
    image = qcow2_image(tmp_path, master)  # 1 MiB of virtual size
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None),
                               limits=Limits(max_virtual_size=MiB // 2))
    with pytest.raises(ImageRefusedError) as caught:
        source.converted(image, "raw")
    assert caught.value.image == f"img ({image.id})"
    assert str(caught.value).startswith(f"image img ({image.id}): refused before conversion")
    assert "virtual size" in str(caught.value) and source.conversions == 0


# -- the cache's room: cannot_hold, uncached --------------------------------------------------

def sparse(path: Path, size: int) -> None:
    """A file of ``size`` bytes that takes no disk space (its size is what counts)."""
    with open(path, "wb") as handle:
        handle.truncate(size)


def test_the_room_counts_every_file_eviction_could_remove(tmp_path):
    TiB = 2**40
    cache = ImageCache(tmp_path / "cache", max_size=8 * TiB)
    cache.ready()
    for name in ("a", "b"):
        sparse(cache.directory / name, TiB)
    free = shutil.disk_usage(tmp_path).free
    total = shutil.disk_usage(tmp_path).total
    image = Image(id="img", name="img", status="active", size=free + 3 * TiB // 2,
                  checksum="0" * 32)
    assert cache.cannot_hold(image) is None  # fits once a and b are evicted
    with cache.pinned(cache.directory / "a"):  # in use: not evictable
        assert cache.cannot_hold(image) is not None
    larger = dataclasses.replace(image, size=free + 3 * TiB)
    why = cache.cannot_hold(larger)
    match = re.fullmatch(r"it is larger \((\d+\.\d) MiB\) than the room of the cache's file"
                         rf" system \((\d+\.\d) MiB in {re.escape(str(cache.directory))}\)",
                         why)
    assert match, why
    assert float(match[1]) == round(larger.size / MiB, 1)
    assert 2 * TiB / MiB <= float(match[2]) <= (2 * TiB + total) / MiB


def test_an_image_already_cached_or_in_images_dir_is_not_streamed(tmp_path, master):
    data = make_data(5000)
    image = upload(master, data)
    cache = ImageCache(tmp_path / "cache", None)
    source = MasterImageSource(master, cache)
    source.path(image)
    cache.max_size = 10  # lowered since: the file cached before is still served
    assert source.uncached(image) is None
    assert b"".join(source.chunks(image)) == data and source.downloads == 1
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    (images_dir / image.id).write_bytes(data)
    other = MasterImageSource(master, ImageCache(tmp_path / "small", 10), images_dir)
    assert other.uncached(image) is None
    assert b"".join(other.chunks(image)) == data
    assert other.images_dir_hits == 1 and other.downloads == 0


def waiting_for_a_lock(thread: threading.Thread) -> bool:
    """Whether ``thread`` stands at a ``with self._lock_for(...)`` line (waiting there)."""
    frame = sys._current_frames().get(thread.ident)
    return frame is not None and "_lock_for(" in linecache.getline(
        frame.f_code.co_filename, frame.f_lineno)


def test_downloads_of_other_images_go_on_while_one_is_slow(tmp_path, caplog):
    # path: the download lock is per image; who waited for it finds the file downloaded
    master = Holding("master:Master", tmp_path / "master", "admin-project")
    try:
        slow, other = (upload(master, make_data(5000, seed), f"i{seed}") for seed in (1, 2))
        master.held = slow.id
        source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
        results: dict[str, object] = {}
        threads = {key: threading.Thread(target=lambda k=key, i=image: results.update(
            {k: source.path(i)})) for key, image in (("slow", slow), ("same", slow),
                                                    ("other", other))}
        threads["slow"].start()
        assert master.started.wait(120)
        threads["other"].start()
        threads["other"].join(120)
        assert "other" in results and "slow" not in results
        caplog.set_level(logging.DEBUG, logger="glancesync.transfer")
        threads["same"].start()
        for _ in range(1200):
            if waiting_for_a_lock(threads["same"]):
                break
            threads["same"].join(0.1)
        assert waiting_for_a_lock(threads["same"])
        master.release.set()
        for key in ("slow", "same"):
            threads[key].join(120)
        path = source.cache.path_for(slow)
        assert results["slow"] == results["same"] == path
        assert f"cache hit for i1 ({slow.id}) after waiting: {path}" in caplog.messages
        assert (source.downloads, source.cache_hits) == (2, 1)
    finally:
        master.release.set()
        master.close()


def test_a_corrupted_cache_file_is_discarded_with_a_warning_in_words(tmp_path, caplog):
    data = make_data(500)
    path = ImageCache(tmp_path / "cache", None).put(md5_image("img", data), [data])
    alter_in_place(path)
    cache = ImageCache(tmp_path / "cache", None)  # another run: nothing remembered
    with caplog.at_level(logging.WARNING, logger="glancesync.transfer"):
        assert cache.get(md5_image("img", data)) is None
    assert caplog.messages == [f"cache file {path} is corrupted (size or hash differs from"
                               " the master's); discarding it"]
    assert not path.exists()


def test_cache_and_images_dir_files_are_checked_by_the_preferred_hash_and_size(tmp_path,
                                                                              master):
    data = make_data(5000)
    image = dataclasses.replace(upload(master, data), checksum="0" * 32)  # md5 not used
    cache = ImageCache(tmp_path / "cache", None)
    assert cache.put(image, [data]).read_bytes() == data
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    (images_dir / image.id).write_bytes(data)
    assert cache.check_file(images_dir / image.id, image)
    md5_only = md5_image(image.id, data)
    assert cache.check_file(images_dir / image.id, md5_only)
    with pytest.raises(ChecksumMismatchError, match="size mismatch: expected 5001 bytes"):
        cache.put(dataclasses.replace(md5_only, id="other", size=5001), [data])


def test_a_file_that_does_not_match_is_logged_as_such(tmp_path, caplog):
    data = make_data(500)
    path = tmp_path / "file"
    path.write_bytes(data[::-1])
    with caplog.at_level(logging.DEBUG, logger="glancesync.transfer"):
        assert not ImageCache(tmp_path / "cache", None).check_file(path,
                                                                   md5_image("img", data))
    assert any(m.startswith(f"{path} does not match: image img (img): md5 mismatch")
               for m in caplog.messages), caplog.messages


def test_put_failing_to_write_is_a_transfer_error_naming_the_file(tmp_path):
    cache = ImageCache(tmp_path / "cache", None)
    image = md5_image("img", b"data")

    def chunks():
        yield b"da"
        raise OSError(28, "No space left on device")

    with pytest.raises(TransferError) as caught:
        cache.put(image, chunks())
    assert str(caught.value) == (f"image img (img): cannot store the image data in"
                                 f" {cache.path_for(image)}: [Errno 28] No space left on"
                                 " device")
    assert caught.value.image == "img (img)" and cache.entries() == []


# -- second run (branch mut-xfer2): path_for's refusal, _counted over a plain list ------

def test_a_cache_file_name_that_is_a_link_out_of_the_folder_is_refused_in_words(tmp_path,
                                                                               master):
    # path_for: another local user's link at the cache file's name
    image = upload(master, make_data(100))
    cache = ImageCache(tmp_path / "cache", None)
    cache.ready()
    name = cache.path_for(image).name
    (tmp_path / "elsewhere").write_bytes(b"x")
    (tmp_path / "cache" / name).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(TransferError) as caught:
        cache.path_for(image)
    assert caught.value.message == (f"{tmp_path / 'cache' / name} resolves outside"
                                    f" {tmp_path / 'cache'}: refused")
    assert caught.value.image == f"cirros ({image.id})"


class _ListMaster(LocalRegionAdapter):
    """A master whose ``download_data`` gives a plain list (no ``close``)."""

    def download_data(self, image_id):
        return list(super().download_data(image_id))


def test_a_download_given_as_a_plain_list_is_read_without_closing_it(tmp_path):
    # _counted: only what has a close() is closed
    adapter = _ListMaster("master:Master", tmp_path / "master", "admin-project")
    try:
        data = make_data(MiB + 3)
        image = upload(adapter, data)
        source = MasterImageSource(adapter, ImageCache(tmp_path / "cache", None))
        assert b"".join(source.chunks(image)) == data
        assert (source.downloads, source.bytes_downloaded) == (1, len(data))
    finally:
        adapter.close()


def test_a_master_image_without_disk_format_is_not_converted(tmp_path, master):
    # converted: no source format is made up for qemu-img
    image = dataclasses.replace(upload(master, make_data(5000)), disk_format=None)
    source = MasterImageSource(master, ImageCache(tmp_path / "cache", None))
    with pytest.raises(TransferError) as caught:
        source.converted(image, "qcow2")
    assert caught.value.message == "cannot convert  to qcow2"
    assert caught.value.image == f"cirros ({image.id})"
    assert source.conversions == 0 and source.cache.get_converted(image, "qcow2") is None


class _HeldHandle:
    """A real file whose first read waits for ``release`` (a hash in progress)."""

    def __init__(self, path: Path, started: threading.Event, release: threading.Event):
        self._file = open(path, "rb")
        self._started, self._release = started, release

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._file.close()

    def fileno(self) -> int:
        return self._file.fileno()

    def read(self, size: int = -1) -> bytes:
        self._started.set()
        assert self._release.wait(120), "never released"
        return self._file.read(size)


def test_a_file_being_hashed_does_not_hold_up_the_hash_of_another_file(tmp_path):
    # _VerifiedFiles.check: one lock per path, not one for every file
    from glancesync.transfer import _VerifiedFiles
    memo = _VerifiedFiles()
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_bytes(b"first")
    two.write_bytes(b"second")
    started, release = threading.Event(), threading.Event()
    results = {}
    slow = threading.Thread(target=lambda: results.setdefault(
        "one", memo.check(one, md5_image("one", b"first"),
                          lambda path: _HeldHandle(path, started, release))))
    fast = threading.Thread(target=lambda: results.setdefault(
        "two", memo.check(two, md5_image("two", b"second"), lambda path: open(path, "rb"))))
    slow.start()
    try:
        assert started.wait(60)
        fast.start()
        fast.join(60)  # returns at once unless it waits for the other file's hash
        assert results.get("two") is True
    finally:
        release.set()
        slow.join(60)
        fast.join(60)
    assert results["one"] is True
