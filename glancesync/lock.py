"""One run at a time per region, across processes.

Cron jobs overlap: a long synchronisation may still run when the next one
starts. :class:`RegionLock` takes an exclusive, non-blocking ``flock`` on a
file per region; the second run fails at once with :class:`LockedError`
naming the holder. The kernel drops the lock when the holder dies, so a
crashed run never leaves a region locked.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path

import platformdirs

from glancesync import safenames
from glancesync.errors import GlanceSyncError, LockedError

__all__ = ["RegionLock", "default_lock_dir", "lock_file_name"]

LOG = logging.getLogger(__name__)

def default_lock_dir() -> Path:
    """``<user state dir>/glancesync/locks``.

    The state dir lives in the home directory, so it exists for root and for
    any user, with or without a login session (cron). The runtime dir
    (``$XDG_RUNTIME_DIR``) is not used: it exists only during a session, and
    two runs of the same user choosing different folders would not exclude
    each other.
    """
    return Path(platformdirs.user_state_dir("glancesync")) / "locks"


def lock_file_name(region: str) -> str:
    """A file name for ``region``: readable, safe, and distinct per region.

    Made by :func:`glancesync.safenames.file_name`: ``a:b`` and ``a_b`` get
    different files, ``../x`` stays in the lock folder.
    """
    return safenames.file_name(region, ".lock")


class RegionLock:
    """Exclusive lock of one region, held for the duration of a ``with``.

    Entering never waits: if another process (or another lock object of this
    process) holds the region, :class:`LockedError` is raised. The holder's
    pid is written into the lock file so the message can name it.
    """

    def __init__(self, lock_dir: Path | None, region: str) -> None:
        self.lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
        self.region = region
        self.path = self.lock_dir / lock_file_name(region)
        self._fd: int | None = None

    @property
    def locked(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockedError`."""
        if self._fd is not None:
            raise GlanceSyncError(f"lock {self.path} is already held by this object",
                                  region=self.region)
        try:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise GlanceSyncError(f"cannot create lock file {self.path}: {exc.strerror}",
                                  region=self.region) from exc
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
            raise GlanceSyncError(f"cannot lock {self.path}: {exc.strerror}",
                                  region=self.region) from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise GlanceSyncError(f"cannot write lock file {self.path}: {exc.strerror}",
                                  region=self.region) from exc
        self._fd = fd
        LOG.debug("locked region %s (%s)", self.region, self.path)

    def release(self) -> None:
        """Drop the lock; the file stays (removing it would race other runs)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError as exc:  # the lock still goes away with close()
            LOG.debug("could not clear %s: %s", self.path, exc)
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


def _read_pid(fd: int) -> int | None:
    """The pid the holder wrote, if readable."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
