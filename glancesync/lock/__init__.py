"""Region locks: one run at a time per region, across processes, users and hosts.

What a run needs of a lock is :class:`~glancesync.lock.base.Lock` (take it,
now or within a time; who holds it; release; keep alive), held with
:func:`~glancesync.lock.base.hold`. Which lock the configuration asks for
is chosen in one place, :func:`make_lock`, which the facade calls: today
the file lock of :mod:`glancesync.lock.files` (:class:`RegionLock`, one
``flock`` per region in ``lock_dir``). A lock of a coordination service
for several hosts (tooz, ``coordination_url``) is a second implementation
and one more branch of :func:`make_lock`; no caller changes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Protocol

from glancesync.lock.base import Lock, acquire, hold
from glancesync.lock.files import (MACHINE_LOCK_DIR, WAIT_POLL, RegionLock, default_lock_dir,
                                   lock_file_name, user_lock_dir)

__all__ = ["MACHINE_LOCK_DIR", "WAIT_POLL", "Lock", "LockSettings", "RegionLock", "acquire",
           "default_lock_dir", "hold", "lock_dir_of", "lock_file_name", "make_lock",
           "user_lock_dir"]

#: The environment variable naming the lock folder (it wins over ``lock_dir``).
LOCK_DIR_VARIABLE = "GLANCESYNC_LOCK_DIR"


class LockSettings(Protocol):
    """What choosing a lock reads of the configuration (``[main]``,
    :class:`~glancesync.config.MainConfig` is one)."""

    #: The folder of the file locks; None: :func:`default_lock_dir`.
    lock_dir: Path | None


def lock_dir_of(settings: LockSettings, environ: Mapping[str, str] | None = None) -> Path | None:
    """``$GLANCESYNC_LOCK_DIR`` if set, else ``lock_dir``, else None (the default:
    :func:`default_lock_dir`, the machine-wide folder, so that runs of every
    user exclude each other)."""
    folder = (os.environ if environ is None else environ).get(LOCK_DIR_VARIABLE)
    return Path(folder) if folder else settings.lock_dir


def make_lock(name: str, settings: LockSettings,
              environ: Mapping[str, str] | None = None) -> Lock:
    """The lock of the region whose lock name is ``name``, of the kind ``settings``
    ask for: the one place that chooses.

    Today a :class:`RegionLock` in ``$GLANCESYNC_LOCK_DIR`` if set, else
    ``lock_dir``, else the machine-wide folder (:func:`default_lock_dir`).
    """
    return RegionLock(lock_dir_of(settings, environ), name)
