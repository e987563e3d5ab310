"""transfer: tests that kill surviving mutants of glancesync/transfer.py (issue 27);
each names the functions whose mutants it kills (mutmut 3.8.1 names, first run)."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import ChecksumMismatchError
from glancesync.image import Image
from glancesync.integrity import CHUNK_SIZE
from glancesync.transfer import ImageCache, MasterImageSource

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
