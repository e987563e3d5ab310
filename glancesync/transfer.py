"""The master image data path: read once, hash while streaming, cache verified.

Image data is the expensive part of a synchronisation. This module makes sure
the master's bytes are read through the master adapter (any Glance store)
at most once per run, whatever the number of regions, and that nothing is
ever served that does not hash to the master's value:

* :class:`ImageCache` is a folder of verified master image files, written
  through a temporary file that is renamed into place only once its hash
  matches, with least-recently-used eviction under a size limit.
* :class:`MasterImageSource` is what the executor reads image data from:
  ``images_dir`` (the operator's read-only folder) first, then the cache,
  else one download from the master into the cache, shared by every thread
  that asks for the same image. A region that stores another disk format
  gets the master data converted once per format (:mod:`glancesync.convert`)
  into the cache, hashed once, kept with its hashes.

Hashing, verification and durable writes are those of
:mod:`glancesync.integrity`.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat as stat_mod
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import platformdirs

from glancesync import convert as convert_mod
from glancesync import progress as progress_mod
from glancesync import readback, safenames
from glancesync.backends.base import RegionAdapter
from glancesync.errors import (ChecksumMismatchError, ImageRefusedError, TransferError,
                               UnsafeFileError, UnsafeNameError)
from glancesync.image import Image, content_hash
from glancesync.integrity import (CHUNK_SIZE, FileData, HashingStream, atomic_file,
                                  expected_hash, fsync_directory, label, open_regular_file,
                                  unlink_quietly, verify)
from glancesync.stopping import StopRequest

__all__ = ["ImageCache", "MasterImageSource", "default_cache_dir"]

LOG = logging.getLogger(__name__)

MiB = 1024 * 1024

#: Temporary files of this cache start with this prefix; they are never
#: served and are removed when abandoned for longer than :data:`STALE_TEMP_AGE`.
TEMP_PREFIX = ".partial-"

#: Seconds after which an untouched temporary file is taken as abandoned by
#: a dead process (a live writer touches it at every chunk).
STALE_TEMP_AGE = 3600


def default_cache_dir() -> Path:
    """``<user cache dir>/glancesync/images``."""
    return Path(platformdirs.user_cache_dir("glancesync")) / "images"


class _VerifiedFiles:
    """Remember which files were hashed already, and with what result.

    Keyed by path, device, inode, size and mtime: a file rewritten or
    replaced gets a new key and is hashed again; reading does not change
    the key. Thread-safe.
    """

    def __init__(self) -> None:
        self._results: dict[tuple, bool] = {}
        self._lock = threading.Lock()
        self._path_locks: dict[str, threading.Lock] = {}

    @staticmethod
    def _key(path: Path, stat: os.stat_result, image: Image) -> tuple:
        return (str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns,
                expected_hash(image))

    def get(self, path: Path, stat: os.stat_result, image: Image) -> bool | None:
        with self._lock:
            return self._results.get(self._key(path, stat, image))

    def set(self, path: Path, stat: os.stat_result, image: Image, ok: bool) -> None:
        with self._lock:
            self._results[self._key(path, stat, image)] = ok

    def forget(self, path: Path) -> None:
        """Hash the file at ``path`` again next time (it may have been altered in place)."""
        with self._lock:
            for key in [k for k in self._results if k[0] == str(path)]:
                del self._results[key]

    def check(self, path: Path, image: Image,
              opener: Callable[[Path], BinaryIO]) -> bool | None:
        """True when the file at ``path`` holds ``image``'s bytes.

        The file is opened once with ``opener`` (which refuses what cannot
        be trusted: :mod:`glancesync.readback`, or a FIFO of ``images_dir``)
        and what is hashed is what that descriptor reads. Missing file:
        None. Size differs: False without hashing. Otherwise hashed once per
        (file version, expected hash) and remembered.

        :raises UnsafeFileError: ``opener`` refused the file.
        :raises OSError: ``opener`` could not open it.
        """
        try:
            handle = opener(path)
        except FileNotFoundError:
            return None
        with handle:
            stat = os.fstat(handle.fileno())
            if image.size is not None and stat.st_size != image.size:
                return False
            known = self.get(path, stat, image)
            if known is not None:
                return known
            with self._lock:
                path_lock = self._path_locks.setdefault(str(path), threading.Lock())
            with path_lock:  # threads asking together hash the file once
                known = self.get(path, stat, image)
                if known is not None:
                    return known
                stream = HashingStream.for_image(_chunks_of(handle), image,
                                                 preferred_only=True)
                for _ in stream:
                    pass
                try:
                    verify(image, stream.md5, stream.os_hash, size=stream.size)
                    ok = True
                except ChecksumMismatchError as exc:
                    LOG.debug("%s does not match: %s", path, exc)
                    ok = False
                self.set(path, stat, image, ok)
                return ok


def _chunks_of(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_SIZE):
        yield chunk


class ImageCache:
    """A folder of master image files whose hashes were verified.

    A file is named ``<master id>.<algorithm>-<hash>``: the name records the
    hash it was verified against, so a master image whose data changed never
    matches an old file. The same data converted to another disk format is
    ``<master id>.<algorithm>-<hash>.<format>``, its own hashes and size in
    the hidden record ``.<that name>.json`` written before it appears. Files appear only by an atomic rename of a fully
    written, fsynced, verified temporary file. ``max_size`` (bytes, None for
    no limit) bounds the folder; the least recently used files go first, and
    files in use are never evicted. Safe for threads of one process, and
    for several processes sharing the folder (renames are atomic; a file
    removed by another process is just a cache miss).
    """

    def __init__(self, directory: Path | None = None, max_size: int | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        if max_size is not None and max_size < 0:
            raise ValueError("max_size must be positive or None")
        self.max_size = max_size
        self._verified = _VerifiedFiles()
        self._pinned: Counter[Path] = Counter()
        self._lock = threading.RLock()
        self._ready = False

    def path_for(self, image: Image) -> Path:
        """Where the verified file of ``image`` lives (whether it exists or not)."""
        algorithm, value = expected_hash(image)
        # Ids and hashes come from the master: made safe, kept in the folder.
        name = f"{self._prefix(image)}{safenames.file_name(f'{algorithm}-{value}')}"
        try:
            return safenames.join(self.directory, name)
        except UnsafeNameError as exc:
            raise TransferError(str(exc), image=label(image)) from None

    @staticmethod
    def _prefix(image: Image) -> str:
        """How the names of ``image``'s cache files begin."""
        return f"{safenames.file_name(image.id)}."

    def check_file(self, path: Path, image: Image) -> bool:
        """True when the file at ``path`` (another folder's) holds ``image``'s bytes.

        Memoised. The file must be a regular file (never a FIFO or a device:
        opening never blocks); its folder's trust is its owner's business
        (``images_dir``: the operator's folder, read only).

        :raises OSError: it cannot be opened, or is not a regular file.
        """
        return bool(self._verified.check(path, image, open_regular_file))

    def _open(self, path: Path) -> BinaryIO:
        """A file of this cache, opened through :mod:`glancesync.readback`."""
        return readback.open_file(path, what="cache file", folder_checked=True)

    def ready(self) -> None:
        """Create the cache folder (mode 0700) if needed and check that it can be trusted.

        Checked once per object: owned by this user, not writable by group
        or others, folders above not replaceable by another user
        (:func:`glancesync.readback.folder_problem`).

        :raises UnsafeFileError: it cannot be created or trusted.
        """
        with self._lock:
            if not self._ready:
                readback.make_folder(self.directory, "cache folder (cache_dir)")
                self._ready = True

    def _verified_file(self, path: Path, image: Image) -> bool | None:
        """:meth:`_VerifiedFiles.check` of a cache file; one that cannot be trusted is removed."""
        try:
            return self._verified.check(path, image, self._open)
        except UnsafeFileError as exc:
            LOG.warning("%s; removing it", exc)
            self._discard(path)
            return None

    def forget(self, path: Path) -> None:
        """Verify ``path`` again before its next use, even if it looks unchanged."""
        self._verified.forget(path)

    def get(self, image: Image) -> Path | None:
        """The verified cached file of ``image``, or None.

        A file whose size or hash does not match is removed with a warning.
        A hit marks the file as recently used.
        """
        self.ready()
        path = self.path_for(image)
        ok = self._verified_file(path, image)
        if ok is None:
            return None
        if not ok:
            LOG.warning("cache file %s is corrupted (size or hash differs from "
                        "the master's); discarding it", path)
            self._discard(path)
            return None
        self._touch(path)
        return path

    def put(self, image: Image, chunks: Iterable[bytes]) -> Path:
        """Store ``chunks`` as the data of ``image`` and return the file.

        The bytes go to a temporary file of the same folder while being
        hashed; it is fsynced and renamed into place only when the hash
        matches the image; otherwise it is deleted and
        :class:`ChecksumMismatchError` raised. Other errors (from ``chunks``
        or the disk) also delete it.
        """
        final = self.path_for(image)
        self.ready()
        self.evict(reserve=image.size or 0)
        stream = HashingStream.for_image(chunks, image, preferred_only=True)
        try:
            with atomic_file(final, prefix=f"{TEMP_PREFIX}{self._prefix(image)}") as handle:
                for chunk in stream:
                    handle.write(chunk)
                verify(image, stream.md5, stream.os_hash, size=stream.size)
        except OSError as exc:
            raise TransferError(f"cannot store the image data in {final}: {exc}",
                                image=label(image)) from exc
        stat = final.stat()
        self._verified.set(final, stat, image, True)
        self._remove_other_versions(image, final)
        self._touch(final)
        LOG.debug("cached %s as %s", label(image), final)
        return final

    def cannot_hold(self, image: Image) -> str | None:
        """Why the cache cannot take ``image``'s data, or None (it can, or its size is
        unknown).

        Too large for ``max_size``, or for the cache's file system: its free
        space plus, under a ``max_size``, the cache files eviction could
        remove (files in use stay).
        """
        size = image.size
        if size is None:
            return None
        if self.max_size is not None and size > self.max_size:
            return (f"it is larger ({size / MiB:.1f} MiB) than cache_max_size"
                    f" ({self.max_size / MiB:.1f} MiB)")
        folder = self.directory
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            return None
        evictable = 0
        if self.max_size is not None:
            with self._lock:
                pinned = set(self._pinned)
            for entry in self.entries():
                if entry not in pinned:
                    with contextlib.suppress(FileNotFoundError):
                        evictable += entry.lstat().st_size
        if size > free + evictable:
            return (f"it is larger ({size / MiB:.1f} MiB) than the room of the cache's"
                    f" file system ({(free + evictable) / MiB:.1f} MiB in {folder})")
        return None

    @contextlib.contextmanager
    def pinned(self, path: Path) -> Iterator[Path]:
        """Protect ``path`` from eviction by this cache while in the block.

        When the last user of a file leaves, the limit is applied again: an
        image larger than ``max_size`` is kept only while it is in use.
        """
        with self._lock:
            self._pinned[path] += 1
        try:
            yield path
        finally:
            with self._lock:
                self._pinned[path] -= 1
                released = self._pinned[path] <= 0
                if released:
                    del self._pinned[path]
            if released and self.max_size is not None:
                self.evict()

    def entries(self) -> list[Path]:
        """The cache files (temporary files excluded)."""
        try:
            return [entry for entry in self.directory.iterdir()
                    if not entry.name.startswith(".") and not entry.is_symlink()
                    and entry.is_file()]
        except FileNotFoundError:
            return []

    def total_size(self) -> int:
        """Bytes held by the cache files."""
        total = 0
        for entry in self.entries():
            with contextlib.suppress(FileNotFoundError):
                total += entry.lstat().st_size
        return total

    def evict(self, reserve: int = 0) -> list[Path]:
        """Remove least recently used files until ``reserve`` more bytes fit.

        Pinned files are kept even if the limit cannot be met (an image
        larger than the limit is still cached while it is used). Also removes
        abandoned temporary files. Returns the files removed.
        """
        self._remove_stale_temporaries()
        if self.max_size is None:
            return []
        removed: list[Path] = []
        with self._lock:
            files = []
            for entry in self.entries():
                with contextlib.suppress(FileNotFoundError):
                    stat = entry.lstat()
                    files.append((stat.st_atime_ns, stat.st_size, entry))
            total = sum(size for _, size, _ in files)
            for _, size, entry in sorted(files, key=lambda item: item[0]):
                if total + reserve <= self.max_size:
                    break
                if self._pinned.get(entry):
                    continue
                self._discard(entry)
                total -= size
                removed.append(entry)
                LOG.info("evicted %s from the image cache (%d MiB)", entry.name,
                         size // MiB)
        return removed

    def _touch(self, path: Path) -> None:
        # Recency lives in atime, set explicitly (mounts may use noatime);
        # mtime is left alone so the verification memo stays valid.
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            os.utime(path, ns=(time.time_ns(), stat.st_mtime_ns))

    def _discard(self, path: Path) -> None:
        unlink_quietly(path)
        unlink_quietly(_record_path(path))

    def _remove_other_versions(self, image: Image, keep: Path) -> None:
        """Remove the files of other data of ``image``'s id (conversions of ``keep``'s stay)."""
        prefix = self._prefix(image)
        version = self.path_for(image).name
        for entry in self.entries():
            if (entry != keep and entry.name.startswith(prefix)
                    and not entry.name.startswith(version + ".")
                    and not self._pinned.get(entry)):
                LOG.debug("removing stale cache file %s", entry)
                self._discard(entry)

    # -- converted files ---------------------------------------------------

    def converted_path(self, image: Image, disk_format: str) -> Path:
        """Where ``image``'s data converted to ``disk_format`` lives."""
        return self.path_for(image).with_name(f"{self.path_for(image).name}.{disk_format}")

    def get_converted(self, image: Image, disk_format: str) -> tuple[Path, Image] | None:
        """The cached conversion and what its bytes hash to, or None.

        The file is checked against its record like a master file (hashed
        once per version and process); one that does not match is removed.
        """
        self.ready()
        path = self.converted_path(image, disk_format)
        try:
            expected = _read_record(path, image, disk_format)
        except UnsafeFileError as exc:
            LOG.warning("%s; removing it and its converted file", exc)
            self._discard(path)
            return None
        if expected is None:
            return None
        ok = self._verified_file(path, expected)
        if ok is None:
            return None
        if not ok:
            LOG.warning("converted cache file %s does not match its record; discarding it",
                        path)
            self._discard(path)
            return None
        self._touch(path)
        return path, expected

    def put_converted(self, image: Image, disk_format: str,
                      write: Callable[[Path], None]) -> tuple[Path, Image]:
        """Make the conversion of ``image`` to ``disk_format`` with ``write(temp path)``.

        ``write`` fills a temporary file of the cache folder; the result is
        fsynced, hashed once (the hash ``image`` declares: its multihash,
        else md5), its record written, and it is renamed into place. If
        anything fails the temporary file is removed and nothing appears.
        Returns the file and the image describing its bytes.
        """
        final = self.converted_path(image, disk_format)
        self.ready()
        self.evict(reserve=image.size or 0)
        fd, temp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{self._prefix(image)}",
                                         suffix=f".{disk_format}", dir=self.directory)
        os.close(fd)
        temp = Path(temp_name)
        try:
            write(temp)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            with self._open(temp) as handle:
                stream = HashingStream.for_image(_chunks_of(handle), image,
                                                 preferred_only=True)
                for _ in stream:
                    pass
            expected = _converted_image(image, disk_format, stream)
            _write_record(final, expected)
            os.replace(temp, final)
        except OSError as exc:
            unlink_quietly(temp)
            raise TransferError(f"cannot store the converted image in {final}: {exc}",
                                image=label(image)) from exc
        except BaseException:
            unlink_quietly(temp)
            raise
        fsync_directory(self.directory)
        self._verified.set(final, final.stat(), expected, True)
        self._touch(final)
        LOG.debug("cached %s converted to %s as %s", label(image), disk_format, final)
        return final, expected

    def forget_all(self, image: Image) -> None:
        """Verify every cached file of ``image``'s id again before its next use."""
        for entry in self.entries():
            if entry.name.startswith(self._prefix(image)):
                self.forget(entry)

    def _remove_stale_temporaries(self) -> None:
        limit = time.time() - STALE_TEMP_AGE
        try:
            candidates = list(self.directory.glob(f"{TEMP_PREFIX}*"))
        except OSError:
            return
        for entry in candidates:
            with contextlib.suppress(FileNotFoundError):
                info = entry.lstat()
                if info.st_mtime < limit:
                    LOG.info("removing abandoned temporary file %s", entry)
                    if stat_mod.S_ISDIR(info.st_mode):  # a conversion's private folder
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        unlink_quietly(entry)

    def __repr__(self) -> str:
        return f"<ImageCache {self.directory} max_size={self.max_size}>"


def _record_path(path: Path) -> Path:
    """The hidden record of a converted file (its hashes and size)."""
    return path.with_name(f".{path.name}.json")


def _converted_image(image: Image, disk_format: str, stream: HashingStream) -> Image:
    """The image a conversion of ``image`` is, as far as its bytes go."""
    return Image(id=image.id, name=image.name, status="active", size=stream.size,
                 checksum=stream.md5, os_hash_algo=stream.os_hash_algo,
                 os_hash_value=stream.os_hash, disk_format=disk_format,
                 container_format=image.container_format)


def _write_record(final: Path, expected: Image) -> None:
    record = {"size": expected.size, "md5": expected.checksum,
              "os_hash_algo": expected.os_hash_algo, "os_hash_value": expected.os_hash_value}
    path = _record_path(final)
    with atomic_file(path, prefix=f"{TEMP_PREFIX}record-") as handle:
        handle.write(json.dumps(record).encode())


#: The largest record of a converted file (a few hashes): bytes.
RECORD_MAX_SIZE = 4096


def _read_record(final: Path, image: Image, disk_format: str) -> Image | None:
    """The recorded description of a converted file; None if missing or malformed.

    Read through :mod:`glancesync.readback`: a record another user could
    have written is never trusted.

    :raises UnsafeFileError: the record cannot be trusted (a FIFO, a link,
        another user's, too large, not JSON).
    """
    try:
        record = readback.read_json(_record_path(final), max_size=RECORD_MAX_SIZE,
                                    what="conversion record")
        size = int(record["size"])
        checksum = record.get("md5")
        algo = record.get("os_hash_algo")
        value = record.get("os_hash_value")
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if not (value or checksum):
        return None
    return Image(id=image.id, name=image.name, status="active", size=size,
                 checksum=checksum, os_hash_algo=algo, os_hash_value=value,
                 disk_format=disk_format, container_format=image.container_format)


class MasterImageSource:
    """Master image data for the executor: ``chunks(image)``, read once per run.

    Order of sources: ``images_dir/<master id>`` when its hash matches (the
    operator's folder, read only: a wrong file is ignored, never removed);
    the cache; else one download through ``master_adapter.download_data``
    into the cache. Threads asking for the same image at once share that
    one download: one thread downloads, the others wait, then all read the
    cached file. ``progress`` enables the download bar (None: only when
    stderr is a terminal). A conversion to another disk format is made
    once per image and format in the same way, from the verified master
    file (:meth:`converted`). A download stops at its next chunk once
    ``stop`` is set (:class:`~glancesync.errors.StoppedError`; nothing is
    cached).

    Counters: :attr:`bytes_downloaded` (read from the master),
    :attr:`downloads`, :attr:`cache_hits`, :attr:`images_dir_hits`,
    :attr:`conversions`.
    """

    def __init__(self, master_adapter: RegionAdapter, cache: ImageCache,
                 images_dir: Path | None = None, *, progress: bool | None = None,
                 limits: convert_mod.Limits = convert_mod.Limits(),
                 stop: StopRequest | None = None) -> None:
        self.master = master_adapter
        self.stop = stop if stop is not None else StopRequest()
        self.cache = cache
        self.images_dir = Path(images_dir) if images_dir is not None else None
        self.progress = progress
        self.limits = limits
        # (master id, hash, format) -> why its conversion was refused in this run
        self._refusals: dict[tuple[str, str, str], ImageRefusedError] = {}
        self.bytes_downloaded = 0
        self.downloads = 0
        self.cache_hits = 0
        self.images_dir_hits = 0
        self.conversions = 0
        self._counter_lock = threading.Lock()
        self._image_locks: dict[str, threading.Lock] = {}
        self._image_locks_guard = threading.Lock()
        self._warned: set[Path] = set()

    def chunks(self, image: Image) -> Iterator[bytes]:
        """The verified bytes of master ``image`` in chunks of CHUNK_SIZE.

        Work starts at the first ``next()``. Raises TransferError (or its
        ChecksumMismatchError) when the master's data cannot be had intact.
        An image without any hash (``sync_without_checksum``) is streamed
        from the master each time, checked by size only: nothing could
        check a cached or ``images_dir`` copy of it. Its reader verifies
        the copy by the hash of what it received.
        """
        if content_hash(image) is None:
            yield from self._unverified(image)
            return
        why = self.uncached(image)
        if why is not None:
            yield from self._streamed(image, why)
            return
        with self.open(image) as data:
            yield from data

    def uncached(self, image: Image) -> str | None:
        """Why ``image``'s data is streamed from the master for each region instead of
        cached (the cache cannot hold it: :meth:`ImageCache.cannot_hold`), or None.

        Not for an image already cached or in ``images_dir`` (their files are
        verified when read), nor one without hash. Changes nothing (a status
        and a dry run ask it too): no folder made, no file hashed or touched.
        """
        if content_hash(image) is None:
            return None
        why = self.cache.cannot_hold(image)
        if why is None or self.cache.path_for(image).exists():
            return None
        candidate = self._images_dir_file(image)
        if candidate is not None and candidate.exists():
            return None
        return why

    def _streamed(self, image: Image, why: str) -> Iterator[bytes]:
        """The master's bytes of ``image``, verified while they pass, never stored.

        :raises ChecksumMismatchError: after the last chunk, when they do not hash
            to the image's value.
        """
        LOG.info("%s: streaming image %s (%s) to one region without caching: %s",
                 getattr(self.master, "name", "master"), image.name or image.id, image.id,
                 why)
        data = self._counted(self.master.download_data(image.id), image)
        stream = HashingStream.for_image(data, image, preferred_only=True)
        yield from stream
        verify(image, stream.md5, stream.os_hash, size=stream.size)
        self._count(downloads=1)

    @contextlib.contextmanager
    def open(self, image: Image, disk_format: str | None = None) -> Iterator[FileData]:
        """The verified bytes of master ``image`` as an open local file.

        The file is read from where :meth:`path` finds it (downloaded first
        if needed), or converted to ``disk_format`` (:meth:`converted`), and
        protected from eviction until the block ends; it was hashed when it
        entered the cache, and is not hashed again here.

        :raises TransferError: the data cannot be had intact, or not converted, or
            the image has no hash (it is never cached: read it with :meth:`chunks`).
        """
        if content_hash(image) is None:
            raise TransferError("an image without checksum is never cached: nothing"
                                " could verify the file", image=label(image))
        for attempt in range(3):
            if self._converts(image, disk_format):
                path, _ = self.converted(image, disk_format)
            else:
                path = self.path(image)
            try:
                handle = (self.cache._open(path) if path.parent == self.cache.directory
                          else open_regular_file(path))
            except FileNotFoundError:
                # Evicted or replaced by another process in between: look again.
                LOG.debug("%s vanished before reading (attempt %d)", path, attempt + 1)
                continue
            except OSError as exc:
                raise TransferError(f"cannot read {path}: {exc.strerror}",
                                    image=label(image)) from exc
            except UnsafeFileError as exc:
                raise TransferError(str(exc), image=label(image)) from exc
            with handle, self.cache.pinned(path):
                yield FileData(handle, os.fstat(handle.fileno()).st_size)
            return
        raise TransferError("the cached file kept disappearing while being opened",
                            image=label(image))

    def recheck(self, image: Image) -> None:
        """Hash ``image``'s local copies again before serving them next.

        Called when a region received bytes that do not match the master
        (or the conversion sent): a file altered in place after its
        verification (same size and mtime) would otherwise keep being
        served. A corrupted cache file is then discarded and made again.
        """
        self.cache.forget_all(image)
        candidate = self._images_dir_file(image)
        if candidate is not None:
            self.cache.forget(candidate)

    def prepare(self, image: Image, disk_format: str | None = None) -> Image:
        """Fetch ``image`` (converted to ``disk_format``) now; the image of the bytes to send.

        That is ``image`` itself, or the description of its conversion
        (size and hashes of the converted file). Not an image without hash:
        it is read from the master for each region, never converted.
        """
        why = self.uncached(image)
        if self._converts(image, disk_format):
            if why is not None:
                raise TransferError(f"cannot convert it to {disk_format}: the conversion"
                                    f" needs a local copy, and {why}", image=label(image))
            return self.converted(image, disk_format)[1]
        if content_hash(image) is not None and why is None:
            self.path(image)
        return image

    @staticmethod
    def _converts(image: Image, disk_format: str | None) -> bool:
        return disk_format is not None and disk_format != image.disk_format

    def converted(self, image: Image, disk_format: str) -> tuple[Path, Image]:
        """``image``'s data converted to ``disk_format``: the file and what it hashes to.

        Made once per image and format (threads asking together share the
        conversion; a later run finds it in the cache): the master data is
        had and verified first (:meth:`path`), then converted with qemu-img
        into the cache. A failed conversion leaves nothing.

        :raises TransferError: the data cannot be had, or is refused or
            damaged, or qemu-img failed.
        """
        key = (image.id, *expected_hash(image), disk_format)
        found = self.cache.get_converted(image, disk_format)
        if found is not None:
            return found
        with self._lock_for(f"{image.id} {disk_format}"):
            if key in self._refusals:  # refused once: the same bytes, the same answer
                raise self._refusals[key]
            found = self.cache.get_converted(image, disk_format)
            if found is not None:
                return found
            source = self.path(image)
            LOG.info("%s: converting image %s (%s) from %s to %s once for every region "
                     "storing %s", getattr(self.master, "name", "master"),
                     image.name or image.id, image.id, image.disk_format, disk_format,
                     disk_format)
            started = time.monotonic()
            try:
                with self.cache.pinned(source):
                    found = self.cache.put_converted(
                        image, disk_format, lambda output: convert_mod.convert(
                            source, image.disk_format or "", output, disk_format,
                            image=label(image), limits=self.limits))
            except ImageRefusedError as refused:
                self._refusals[key] = refused
                raise
            self._count(conversions=1)
            LOG.debug("converted %s in %.1f s", label(image), time.monotonic() - started)
            return found

    def _unverified(self, image: Image) -> Iterator[bytes]:
        """The master's bytes of an image without hash, checked by size at the end."""
        LOG.info("%s: reading image %s (%s), which has no checksum, for one region",
                 getattr(self.master, "name", "master"), image.name or image.id, image.id)
        size = 0
        for chunk in self._counted(self.master.download_data(image.id), image):
            size += len(chunk)
            yield chunk
        if image.size is not None and size != image.size:
            raise ChecksumMismatchError(f"size mismatch: expected {image.size} bytes,"
                                        f" got {size}", image=label(image))

    def path(self, image: Image) -> Path:
        """A local file holding the verified bytes of ``image``.

        Downloads it into the cache if needed (once, whatever the number of
        threads asking). The file may be evicted later; read it soon.
        """
        local = self._from_images_dir(image)
        if local is not None:
            return local
        cached = self.cache.get(image)
        if cached is not None:
            self._count(cache_hits=1)
            LOG.debug("cache hit for %s: %s", label(image), cached)
            return cached
        with self._lock_for(image.id):
            cached = self.cache.get(image)
            if cached is not None:
                self._count(cache_hits=1)
                LOG.debug("cache hit for %s after waiting: %s", label(image), cached)
                return cached
            return self._download(image)

    def _images_dir_file(self, image: Image) -> Path | None:
        """``images_dir/<id>``; None without images_dir or for an id that is no file name."""
        if self.images_dir is None:
            return None
        try:
            # The operator's folder: its links are theirs, the id is not.
            return safenames.join(self.images_dir, image.id, resolve=False)
        except UnsafeNameError:
            LOG.debug("master image id %r cannot name a file of images_dir", image.id)
            return None

    def _from_images_dir(self, image: Image) -> Path | None:
        candidate = self._images_dir_file(image)
        if candidate is None:
            return None
        try:
            matches = self.cache.check_file(candidate, image)
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):
                self._warn_once(candidate, f"ignoring {candidate}: {exc.strerror or exc}")
            return None
        if matches:
            self._count(images_dir_hits=1)
            LOG.debug("using %s for %s", candidate, label(image))
            return candidate
        self._warn_once(candidate, f"ignoring {candidate}: its size or hash differs from"
                                   f" master image {label(image)}")
        return None

    def _warn_once(self, path: Path, message: str) -> None:
        with self._counter_lock:
            first = path not in self._warned
            self._warned.add(path)
        if first:
            LOG.warning("%s", message)

    def _download(self, image: Image) -> Path:
        size = f"{image.size / MiB:.1f} MiB" if image.size is not None else "size unknown"
        LOG.info("%s: downloading image %s (%s, %s) once for every region",
                 getattr(self.master, "name", "master"), image.name or image.id, size,
                 image.id)
        started = time.monotonic()
        data = self._counted(self.master.download_data(image.id), image)
        data = progress_mod.wrap_chunks(data, f"download {image.name or image.id}",
                                        image.size, self.progress)
        path = self.cache.put(image, data)
        self._count(downloads=1)
        elapsed = time.monotonic() - started
        LOG.debug("downloaded %s in %.1f s", label(image), elapsed)
        return path

    def _counted(self, chunks: Iterable[bytes], image: Image) -> Iterator[bytes]:
        """``chunks``, counted; the download stops at once past ``image``'s declared size.

        :raises ChecksumMismatchError: the master sent more bytes than the
            image declares (the download is closed at that chunk; nothing
            beyond is written).
        """
        received = 0
        try:
            for chunk in chunks:
                self.stop.check(image=label(image))  # a stop aborts the download
                received += len(chunk)
                if image.size is not None and received > image.size:
                    raise ChecksumMismatchError(
                        f"the master sent more than the {image.size} bytes the image"
                        " declares: download stopped", image=label(image))
                self._count(bytes_downloaded=len(chunk))
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # the connection goes now, not when collected

    def _count(self, *, bytes_downloaded: int = 0, downloads: int = 0,
               cache_hits: int = 0, images_dir_hits: int = 0, conversions: int = 0) -> None:
        with self._counter_lock:
            self.bytes_downloaded += bytes_downloaded
            self.downloads += downloads
            self.cache_hits += cache_hits
            self.images_dir_hits += images_dir_hits
            self.conversions += conversions

    def _lock_for(self, image_id: str) -> threading.Lock:
        with self._image_locks_guard:
            return self._image_locks.setdefault(image_id, threading.Lock())

    def __repr__(self) -> str:
        return (f"<MasterImageSource master={getattr(self.master, 'name', '?')} "
                f"cache={self.cache.directory} images_dir={self.images_dir}>")
