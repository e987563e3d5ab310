"""Data-path primitives: hashing while streaming, verification, durable files.

One implementation of each, used by the master data source and its cache
(:mod:`glancesync.transfer`), the local region store and the test glue:

* :class:`HashingStream` hashes chunks as they pass (md5 and/or the image's
  ``os_hash_algo``); :func:`verify` (or :meth:`HashingStream.verify`)
  compares the result with an image's declared hashes and size, after the
  last chunk, as openstacksdk's download helper does.
* :func:`atomic_file` writes a file that appears whole or not at all:
  a temporary file in the same folder, fsynced, renamed into place, the
  folder fsynced (:func:`fsync_directory`).
* :class:`FileData` is a verified local file to upload: iterable in chunks
  like any data, and open, so that an adapter may send it without reading
  it (``sendfile``).

Image data moves in chunks of at most :data:`CHUNK_SIZE` bytes, so memory
never grows with image size.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from glancesync.errors import ChecksumMismatchError, TransferError, UnsafeNameError
from glancesync.image import Image

__all__ = [
    "CHUNK_SIZE", "FileData", "HashingStream", "atomic_file", "expected_hash",
    "fsync_directory", "label", "open_regular_file", "unlink_quietly", "verify",
]

LOG = logging.getLogger(__name__)

#: Size in bytes of the chunks in which image data moves.
CHUNK_SIZE = 1024 * 1024


def label(image: Image) -> str:
    """``name (id)`` of an image, or its id alone: how errors name it."""
    return f"{image.name} ({image.id})" if image.name else image.id


def expected_hash(image: Image) -> tuple[str, str]:
    """The preferred ``(algorithm, hex value)`` declared by ``image``.

    ``os_hash_value`` with ``os_hash_algo`` when both are set, else the md5
    ``checksum``.

    :raises TransferError: the image declares neither: its data cannot be
        verified.
    """
    if image.os_hash_algo and image.os_hash_value:
        return image.os_hash_algo.lower(), image.os_hash_value.lower()
    if image.checksum:
        return "md5", image.checksum.lower()
    raise TransferError("the image has neither os_hash_value nor checksum; "
                        "its data cannot be verified", image=label(image))


def _new_hash(algorithm: str) -> "hashlib._Hash":
    try:
        return hashlib.new(algorithm, usedforsecurity=False)
    except (ValueError, TypeError) as exc:
        raise TransferError(f"unsupported hash algorithm {algorithm!r}") from exc


class HashingStream:
    """Iterate over ``chunks`` while hashing them with md5 and ``os_hash_algo``.

    Iterate once, then read :attr:`md5`, :attr:`os_hash` and :attr:`size`
    (bytes), or call :meth:`verify`. ``md5=False`` or ``os_hash_algo=None``
    skip a hash the caller does not need (each costs CPU on large images).

    :raises TransferError: ``os_hash_algo`` is not a hash hashlib knows.
    """

    def __init__(self, chunks: Iterable[bytes], os_hash_algo: str | None = "sha512",
                 *, md5: bool = True) -> None:
        self._chunks = chunks
        self.os_hash_algo = os_hash_algo.lower() if os_hash_algo else None
        self._md5 = _new_hash("md5") if md5 else None
        self._os_hash = _new_hash(self.os_hash_algo) if self.os_hash_algo else None
        self.size = 0

    @classmethod
    def for_image(cls, chunks: Iterable[bytes], image: Image, *,
                  preferred_only: bool = False) -> "HashingStream":
        """A stream computing the hashes ``image`` declares.

        With ``preferred_only`` only the hash :func:`expected_hash` chooses is
        computed: enough to verify, half the CPU when both are declared.

        :raises TransferError: the image declares no hash, or an unknown one.
        """
        algorithm, _ = expected_hash(image)
        if preferred_only:
            if algorithm == "md5":
                return cls(chunks, None, md5=True)
            return cls(chunks, algorithm, md5=False)
        os_algo = image.os_hash_algo if image.os_hash_value else None
        return cls(chunks, os_algo, md5=bool(image.checksum) or os_algo is None)

    def update(self, chunk: bytes) -> None:
        """Account for ``chunk`` (for callers that do not iterate the stream)."""
        if self._md5 is not None:
            self._md5.update(chunk)
        if self._os_hash is not None:
            self._os_hash.update(chunk)
        self.size += len(chunk)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.update(chunk)
            yield chunk

    @property
    def md5(self) -> str | None:
        """Hex md5 of the bytes seen so far, or None if not computed."""
        return self._md5.hexdigest() if self._md5 is not None else None

    @property
    def os_hash(self) -> str | None:
        """Hex ``os_hash_algo`` digest of the bytes seen so far, or None."""
        return self._os_hash.hexdigest() if self._os_hash is not None else None

    def verify(self, image: Image) -> None:
        """Check the bytes seen against ``image`` (see :func:`verify`).

        :raises ChecksumMismatchError: a hash or the size differs.
        :raises TransferError: the preferred hash of ``image`` was not computed.
        """
        os_hash = self.os_hash
        if (os_hash is not None and image.os_hash_algo
                and image.os_hash_algo.lower() != self.os_hash_algo):
            os_hash = None  # computed with another algorithm: not comparable
        verify(image, self.md5, os_hash, size=self.size)


def verify(image: Image, md5: str | None, os_hash: str | None, *,
           size: int | None = None) -> None:
    """Check computed hashes (hex) and size (bytes) against ``image``'s.

    ``os_hash`` must have been computed with ``image.os_hash_algo``. Every
    hash both sides know is compared, and the preferred one
    (:func:`expected_hash`) must be among them. ``size``, when given, is
    compared with ``image.size``.

    :raises ChecksumMismatchError: naming the image, the expected and the
        actual values.
    :raises TransferError: the preferred hash was not computed.
    """
    algorithm, value = expected_hash(image)
    checks: list[tuple[str, str, str | None]] = []
    if image.os_hash_algo and image.os_hash_value:
        checks.append((algorithm, value, os_hash))
    if image.checksum:
        checks.append(("md5", image.checksum.lower(), md5))
    if not any(name == algorithm and actual for name, _, actual in checks):
        raise TransferError(f"no {algorithm} hash was computed; cannot verify",
                            image=label(image))
    if size is not None and image.size is not None and size != image.size:
        raise ChecksumMismatchError(
            f"size mismatch: expected {image.size} bytes, got {size}", image=label(image))
    for name, expected, actual in checks:
        if actual is not None and actual.lower() != expected:
            raise ChecksumMismatchError(
                f"{name} mismatch: expected {expected}, got {actual.lower()}",
                image=label(image))


def open_regular_file(path: str | os.PathLike[str], max_size: int | None = None) -> BinaryIO:
    """``path`` opened for reading bytes, if it is a regular file.

    Opening never blocks (a FIFO without writer would hang for ever); a FIFO,
    a device (``/dev/zero``), a socket or a folder is refused, and so is a
    file larger than ``max_size`` bytes. For files named by a user
    (configuration, backups), which must be read whole.

    :raises OSError: the file cannot be opened (a folder: ``Is a directory``)
        or is refused; ``strerror`` says why in words.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        handle = open(path, "rb", opener=lambda name, _: os.open(name, flags))
    except ValueError as exc:  # a NUL in the path
        raise OSError(errno.EINVAL, str(exc)) from None
    try:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device or a socket)")
        if max_size is not None and info.st_size > max_size:
            raise OSError(errno.EFBIG, f"{info.st_size} bytes, more than the {max_size}"
                                       " allowed")
        os.set_blocking(handle.fileno(), True)
        return handle
    except BaseException:
        handle.close()
        raise


def fsync_directory(path: Path) -> None:
    """Make renames in the folder ``path`` durable (best effort: errors ignored)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def unlink_quietly(path: Path) -> None:
    """Remove a file; a missing one is fine, another failure is only logged."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        LOG.warning("could not remove %s: %s", path, exc)


@contextlib.contextmanager
def atomic_file(final: Path, *, prefix: str, suffix: str = "") -> Iterator[BinaryIO]:
    """A file that becomes ``final`` only if the block ends without error.

    The block writes into a temporary file (``prefix`` + random + ``suffix``)
    of ``final``'s folder; at the end it is fsynced, renamed over ``final``
    and the folder fsynced. If the block (or any of that) fails, the
    temporary file is removed and the error raised: ``final`` is never seen
    half written.

    :raises OSError: the temporary file cannot be created, written or renamed.
    :raises UnsafeNameError: ``prefix`` or ``suffix`` would leave the folder.
    """
    for part in (prefix, suffix):
        if "/" in part or "\0" in part or os.sep in part:
            raise UnsafeNameError(f"temporary file prefix or suffix {part!r} is not"
                                  " part of a plain file name")
    fd, temp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=final.parent)
    temp = Path(temp_name)
    try:
        with open(fd, "wb", buffering=0) as handle:
            yield handle
            os.fsync(handle.fileno())
        os.replace(temp, final)
    except BaseException:
        unlink_quietly(temp)
        raise
    fsync_directory(final.parent)


class FileData:
    """The bytes of an open local file, to upload as they are.

    Iterating yields them in chunks of :data:`CHUNK_SIZE` from the first
    byte, at every iteration (an upload may restart), without moving the
    file's position; an adapter that can send a file without reading it
    (``os.sendfile``) uses ``handle`` and ``size`` (bytes) instead,
    and reports what it sent with :meth:`advance`. ``progress`` (optional)
    is called with the number of bytes of each step.
    """

    def __init__(self, handle: BinaryIO, size: int,
                 progress: Callable[[int], None] | None = None) -> None:
        self.handle = handle
        self.size = size
        self.progress = progress

    def advance(self, sent: int) -> None:
        """Account for ``sent`` more bytes sent."""
        if self.progress is not None and sent:
            self.progress(sent)

    def __iter__(self) -> Iterator[bytes]:
        fd = self.handle.fileno()
        offset = 0
        while offset < self.size:
            chunk = os.pread(fd, min(CHUNK_SIZE, self.size - offset), offset)
            if not chunk:
                break
            offset += len(chunk)
            self.advance(len(chunk))
            yield chunk

    def __repr__(self) -> str:
        return f"<FileData {getattr(self.handle, 'name', '?')} {self.size} bytes>"
