"""One run at a time per region, across processes and users.

Cron jobs overlap: a long synchronisation may still run when the next one
starts, and two operators (or cron and a person) may start runs with
different home folders. :class:`RegionLock` takes an exclusive,
non-blocking ``flock`` on a file per region; the second run fails at once
with :class:`LockedError` naming the holder. The kernel drops the lock when
the holder dies, so a crashed run never leaves a region locked.

Where the lock files live (:func:`default_lock_dir`): the machine-wide
folder :data:`MACHINE_LOCK_DIR`, shared by every user like ``/tmp`` (mode
1777, created on first use), so that runs of different users see each
other's locks; the per-user folder when the machine-wide one cannot be
used (with a warning).

Lock files sit in a folder other users may write to, so they are opened
with care: never through a symbolic link, never truncated on opening
(only after the lock is held, and only a file of our own with one link),
and only regular files (a FIFO or a device would hang or break). Files are
created mode 0644, so that a run of another user can still open and lock
them read-only. A lock file is removed on release while its lock is still
held; a run that opened it just before then finds, once it holds the lock,
that the file is no longer the one at that path, and starts again.

:class:`RegionLock` is the first implementation of
:class:`~glancesync.lock.base.Lock`: it waits for a lock held elsewhere
by trying again (``acquire(timeout)``), names the holder by the pid it
wrote, and needs no keep-alive (the kernel holds a ``flock`` as long as
its descriptor is open).
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import threading
import time
from pathlib import Path
from typing import Callable

import platformdirs

from glancesync import safenames
from glancesync.errors import GlanceSyncError, LockedError

__all__ = ["MACHINE_LOCK_DIR", "WAIT_POLL", "RegionLock", "default_lock_dir",
           "lock_file_name", "user_lock_dir"]

#: Every part of the locks logs under the package's name.
LOG = logging.getLogger("glancesync.lock")

#: The lock folder shared by every user of the machine (``/var/lock`` is
#: ``/run/lock`` on current systems: a tmpfs, mode 1777, emptied at boot).
MACHINE_LOCK_DIR = Path("/var/lock/glancesync")

#: Attempts at locking a file that its previous holder removed meanwhile.
_ATTEMPTS = 20

#: Seconds between two attempts while waiting for a lock held elsewhere.
WAIT_POLL = 0.5

_warned: set[Path] = set()
_warned_guard = threading.Lock()


def user_lock_dir() -> Path:
    """``<user state dir>/glancesync/locks``: seen by this user's runs only.

    The state dir lives in the home directory, so it exists for root and
    for any user, with or without a login session (cron).
    """
    return Path(platformdirs.user_state_dir("glancesync")) / "locks"


def default_lock_dir(machine: Path = MACHINE_LOCK_DIR) -> Path:
    """The machine-wide lock folder if it can be used, else the user's (warned once).

    ``machine`` is created (mode 1777, its parent must exist) when missing.
    It is used only if it is a real directory (not a link) owned by root or
    by this user, sticky when others may write to it (else another user
    could remove our lock files), and writable. Otherwise a warning says
    why and the per-user folder (:func:`~glancesync.lock.user_lock_dir`) is used: runs of
    other users then do not see this run's locks.
    """
    problem = _machine_dir_problem(machine)
    if problem is None:
        return machine
    fallback = user_lock_dir()
    with _warned_guard:
        first = machine not in _warned
        _warned.add(machine)
    if first:
        LOG.warning("the machine-wide lock folder %s cannot be used (%s): using %s,"
                    " which runs of other users do not see; set lock_dir in [main] to"
                    " a folder every operator shares", machine, problem, fallback)
    return fallback


def _machine_dir_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot serve as the shared lock folder, or None if it can."""
    try:
        os.mkdir(folder, 0o1777)
    except FileExistsError:
        pass
    except OSError as exc:
        return f"cannot create it: {exc.strerror}"
    else:
        try:
            os.chmod(folder, 0o1777)  # mkdir's mode is cut by the umask
        except OSError as exc:
            return f"cannot make it shared: {exc.strerror}"
    try:
        info = os.lstat(folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISDIR(info.st_mode):
        return "not a directory (a link, or a file)"
    if info.st_uid not in (0, os.geteuid()):
        return f"owned by user {info.st_uid}, who could remove other users' lock files"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        return "others may write to it and it is not sticky (mode 1777 expected)"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "not writable by this user"
    return None


def lock_file_name(region: str) -> str:
    """A file name for ``region``: readable, safe, and distinct per region.

    Made by :func:`glancesync.safenames.file_name`: ``a:b`` and ``a_b`` get
    different files, ``../x`` stays in the lock folder.
    """
    return safenames.file_name(region, ".lock")


class RegionLock:
    """Exclusive lock of one region, held for the duration of a ``with``.

    Entering never waits: if another process (or another lock object of this
    process) holds the region, :class:`~glancesync.LockedError` is raised
    (:meth:`acquire` can wait). The holder's pid is written into the lock
    file so the message can name it. ``lock_dir`` None means
    :func:`~glancesync.lock.default_lock_dir`. ``sleep`` and ``clock`` are
    how a wait passes and is measured (``time.sleep``, ``time.monotonic``).
    """

    #: A ``flock`` needs no keep-alive: it lasts as long as its descriptor.
    heartbeat_interval: float | None = None

    def __init__(self, lock_dir: Path | None, region: str, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
        self.region = region
        self.path = safenames.join(self.lock_dir, lock_file_name(region), resolve=False)
        self._fd: int | None = None
        self._owned = False
        self._sleep = sleep
        self._clock = clock

    @property
    def name(self) -> str:
        """What is locked: the region's lock name."""
        return self.region

    @property
    def locked(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def holder(self) -> str | None:
        """Who holds the lock as messages name it (``pid N``); None when it is free or
        the holder is unknown.

        Read from the lock file, which its holder removes on release; a
        holder that died leaves its file but not its lock, so a pid that no
        longer runs is no holder.
        """
        if self.locked:
            return f"pid {os.getpid()}"
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            pid = _read_pid(fd)
        finally:
            os.close(fd)
        return f"pid {pid}" if pid is not None and _running(pid) else None

    def heartbeat(self) -> None:
        """Keep the lock alive: nothing to do for a ``flock``."""

    def _error(self, what: str, exc: OSError | None = None) -> GlanceSyncError:
        reason = f": {exc.strerror}" if exc is not None and exc.strerror else ""
        return GlanceSyncError(f"lock file {self.path} {what}{reason}", region=self.region)

    def acquire(self, timeout: float | None = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds for another holder to
        release it (0, the default: not at all; None: as long as it takes).

        :raises LockedError: another run (or lock object) holds the region
            (still, after ``timeout``).
        :raises GlanceSyncError: the lock file cannot be used: a symbolic
            link, not a regular file, or an unwritable folder.
        """
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            try:
                self._acquire_now()
                return
            except LockedError:
                left = None if deadline is None else deadline - self._clock()
                if left is not None and left <= 0:
                    if timeout:  # a caller waiting in slices logs the wait itself
                        LOG.debug("region %s: still locked after waiting %g s", self.region,
                                  timeout)
                    raise
            self._sleep(WAIT_POLL if left is None else min(WAIT_POLL, left))

    def _acquire_now(self) -> None:
        """Take the lock or raise :class:`~glancesync.LockedError`, without waiting."""
        if self._fd is not None:
            raise GlanceSyncError(f"lock {self.path} is already held by this object",
                                  region=self.region)
        try:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error("cannot be created", exc) from exc
        for _ in range(_ATTEMPTS):
            fd, info = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_pid(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    pid = f"pid {holder}" if holder else "pid unknown"
                    raise LockedError(
                        f"another glancesync run is synchronising region {self.region} "
                        f"(lock file {self.path}, {pid})") from None
                raise self._error("cannot be locked", exc) from exc
            if self._still_there(info):
                break
            os.close(fd)  # its holder removed it meanwhile: lock the new one
        else:
            raise self._error(f"kept being replaced ({_ATTEMPTS} attempts)")
        # Ours, with one link: writing cannot touch another file (a hard link
        # made by someone else to a file of theirs, or to /etc/...).
        self._owned = info.st_uid == os.geteuid() and info.st_nlink == 1
        if self._owned:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError as exc:
                os.close(fd)
                raise self._error("cannot be written", exc) from exc
        self._fd = fd
        LOG.debug("locked region %s (%s)", self.region, self.path)

    def _open(self) -> tuple[int, os.stat_result]:
        """Open (or create) the lock file safely; its fd and fstat."""
        flags = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        for _ in range(_ATTEMPTS):
            try:
                fd = os.open(self.path, os.O_RDWR | flags)
            except FileNotFoundError:
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | flags, 0o644)
                except FileExistsError:
                    continue  # created by another run in between: open that one
                except OSError as exc:
                    raise self._error("cannot be created", exc) from exc
                os.fchmod(fd, 0o644)  # readable by every user, whatever the umask
            except PermissionError:
                # Another user's file (0644): a read-only descriptor locks as well.
                try:
                    fd = os.open(self.path, os.O_RDONLY | flags)
                except OSError as exc:
                    raise self._refused(exc) from exc
            except OSError as exc:
                raise self._refused(exc) from exc
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                os.close(fd)
                raise self._error("is not a regular file: refused (remove it)")
            return fd, info
        raise self._error(f"kept appearing and disappearing ({_ATTEMPTS} attempts)")

    def _refused(self, exc: OSError) -> GlanceSyncError:
        if exc.errno == errno.ELOOP:
            return self._error("is a symbolic link: refused (remove it)")
        return self._error("cannot be opened", exc)

    def _still_there(self, info: os.stat_result) -> bool:
        """True when the locked file is still the one at :attr:`path`."""
        try:
            current = os.lstat(self.path)
        except FileNotFoundError:
            return False
        return (current.st_dev, current.st_ino) == (info.st_dev, info.st_ino)

    def release(self) -> None:
        """Drop the lock, removing the lock file first if it is ours.

        The file is removed while the lock is still held, so whoever opens
        the path next creates a new file; a run that had opened this one
        sees, once it holds its lock, that it was removed, and starts again.
        """
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._owned:
            try:
                if self._still_there(os.fstat(fd)):
                    os.unlink(self.path)
            except OSError as exc:  # the lock still goes away with close()
                LOG.debug("could not remove %s: %s", self.path, exc)
        os.close(fd)
        LOG.debug("unlocked region %s", self.region)

    def __enter__(self) -> "RegionLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self.locked else "free"
        return f"<RegionLock {self.region} {self.path} {state}>"


def _running(pid: int) -> bool:
    """True when a process ``pid`` exists (whoever's it is)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(fd: int) -> int | None:
    """The pid the holder wrote, if readable."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
