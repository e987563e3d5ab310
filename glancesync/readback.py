"""Reading back a file from a folder of ours: trusted only if only we could have written it.

GlanceSync reads back what its earlier runs left: the image cache (master
files, converted files and their records), the previous metrics file, the
throughput measurements, the run folders. Whoever can write there decides
what a run trusts: a converted image planted with its record is published
as the public copy; a FIFO planted as a record hangs the run. So every such
read goes through this module, which refuses (:class:`UnsafeFileError`):

* a folder that another user could write to, or replace: the folder must be
  owned by this user or root and not writable by group or others; each
  folder above it owned by this user or root, and sticky where group or
  others may write (``/tmp``: others cannot rename our entries);
* a file that is not a regular file (a FIFO, a device, a socket: opening
  never blocks, ``O_NONBLOCK``), a symbolic link (``O_NOFOLLOW``), a file
  owned by another user or writable by group or others, or larger than the
  reader allows.

The lock folder has its own rules (:mod:`glancesync.lock`): it is shared by
every operator on purpose.
"""
from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from glancesync.errors import UnsafeFileError

__all__ = ["check_folder", "folder_problem", "make_folder", "open_file", "read_bytes",
           "read_json"]

_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def _trusted(uid: int) -> bool:
    return uid in (0, os.geteuid())


def folder_problem(folder: Path) -> str | None:
    """Why files read back from ``folder`` could be another user's, or None.

    ``folder`` must exist. Its real path is checked, then each folder above
    it (a link on the way is followed: its target is what counts).
    """
    try:
        real = Path(os.path.realpath(folder))
        info = os.stat(real)
    except OSError as exc:
        return f"cannot be examined: {exc.strerror or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if not _trusted(info.st_uid):
        return f"is owned by user {info.st_uid}, not by this user ({os.geteuid()})"
    if info.st_mode & _WRITABLE_BY_OTHERS:
        return (f"may be written by {_who(info.st_mode)} (mode {stat.S_IMODE(info.st_mode):04o}):"
                f" chmod go-w {real}")
    for parent in real.parents:
        try:
            above = os.stat(parent)
        except OSError as exc:
            return f"its folder {parent} cannot be examined: {exc.strerror or exc}"
        if not _trusted(above.st_uid):
            return f"its folder {parent} is owned by user {above.st_uid}, who could replace it"
        if above.st_mode & _WRITABLE_BY_OTHERS and not above.st_mode & stat.S_ISVTX:
            return (f"its folder {parent} may be written by {_who(above.st_mode)} and is not"
                    " sticky: they could replace it")
    return None


def _who(mode: int) -> str:
    return "others" if mode & stat.S_IWOTH else "its group"


def check_folder(folder: Path, what: str) -> None:
    """Raise :class:`UnsafeFileError` when ``folder`` (``what``, for the message) is unsafe."""
    problem = folder_problem(folder)
    if problem is not None:
        raise UnsafeFileError(f"{what} {folder} cannot be trusted: it {problem}; make it this"
                              " user's, writable by this user only, or choose another folder",
                              path=str(folder))


def make_folder(folder: Path, what: str) -> None:
    """Create ``folder`` (mode 0700; its parents as usual) if missing, then check it.

    :raises UnsafeFileError: it cannot be created, or cannot be trusted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise UnsafeFileError(f"cannot create {what} {folder}: {exc.strerror or exc}",
                                  path=str(folder)) from exc
    check_folder(folder, what)


def open_file(path: Path, *, max_size: int | None = None, what: str = "file",
              folder_checked: bool = False) -> BinaryIO:
    """``path`` opened for reading, if only this user (or root) could have written it.

    Its folder is checked too, unless the caller did (``folder_checked``).

    :raises FileNotFoundError: there is no such file (or no such folder: a folder
        that does not exist yet is no reason for suspicion).
    :raises UnsafeFileError: the file or its folder cannot be trusted (see the
        module), or it is larger than ``max_size`` bytes.
    """
    path = Path(path)
    if not folder_checked:
        if not os.path.lexists(path.parent):  # nothing written there yet: no file
            raise FileNotFoundError(errno.ENOENT, f"no folder {path.parent}", str(path))
        check_folder(path.parent, f"the folder of {what}")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(f"{what} {path} is a symbolic link: refused",
                                  path=str(path)) from None
        raise UnsafeFileError(f"cannot open {what} {path}: {exc.strerror or exc}",
                              path=str(path)) from exc
    try:
        info = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = "is not a regular file (a FIFO, a device or a socket)"
        elif not _trusted(info.st_uid):
            problem = f"is owned by user {info.st_uid}, not by this user"
        elif info.st_mode & _WRITABLE_BY_OTHERS:
            problem = f"may be written by {_who(info.st_mode)}"
        elif max_size is not None and info.st_size > max_size:
            problem = f"holds {info.st_size} bytes, more than the {max_size} it can"
        if problem is not None:
            raise UnsafeFileError(f"{what} {path} {problem}: refused", path=str(path))
        os.set_blocking(fd, True)
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path, *, max_size: int, what: str = "file") -> bytes:
    """The whole content of ``path`` (see :func:`open_file`); at most ``max_size`` bytes.

    :raises FileNotFoundError: there is no such file.
    :raises UnsafeFileError: it cannot be trusted, or is too large.
    """
    with open_file(path, max_size=max_size, what=what) as handle:
        data = handle.read(max_size + 1)
    if len(data) > max_size:  # it grew while being read
        raise UnsafeFileError(f"{what} {path} holds more than {max_size} bytes: refused",
                              path=str(path))
    return data


def read_json(path: Path, *, max_size: int, what: str = "file") -> Any:
    """The JSON document of ``path`` (see :func:`read_bytes`).

    :raises FileNotFoundError: there is no such file.
    :raises UnsafeFileError: it cannot be trusted, is too large, or is not JSON.
    """
    data = read_bytes(path, max_size=max_size, what=what)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnsafeFileError(f"{what} {path} is not JSON: {exc}", path=str(path)) from None
