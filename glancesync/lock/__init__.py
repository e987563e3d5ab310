"""Region locks: one run at a time per region, across processes, users and hosts.

What a run needs of a lock is :class:`~glancesync.lock.base.Lock` (take it,
now or within a time; who holds it; release; keep alive), held with
:func:`~glancesync.lock.base.hold`. Which lock the configuration asks for
is chosen in one place, :func:`make_lock`, which the facade calls: the
file lock of :mod:`glancesync.lock.files` (:class:`RegionLock`, one
``flock`` per region in ``lock_dir``) by default, the lock of a
coordination service shared by several hosts
(:mod:`glancesync.lock.coordination`, tooz)
with ``coordination_url``. :func:`make_leadership` gives the watchers of
several hosts one leader through the same service.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Protocol

from glancesync.lock.base import Lock, acquire, hold
from glancesync.lock.coordination import (DEFAULT_TTL, CoordinatedLock, Coordination,
                                          ToozLeadership, coordination, lock_key)
from glancesync.lock.files import (MACHINE_LOCK_DIR, WAIT_POLL, RegionLock, default_lock_dir,
                                   lock_file_name, user_lock_dir)

__all__ = ["MACHINE_LOCK_DIR", "WAIT_POLL", "CoordinatedLock", "Coordination", "Lock",
           "LockSettings", "RegionLock", "ToozLeadership", "acquire", "default_lock_dir", "hold",
           "lock_dir_of", "lock_file_name", "lock_key", "make_leadership", "make_lock",
           "user_lock_dir"]

#: The environment variable naming the lock folder (it wins over ``lock_dir``).
LOCK_DIR_VARIABLE = "GLANCESYNC_LOCK_DIR"


class LockSettings(Protocol):
    """What choosing a lock reads of the configuration (``[main]``,
    :class:`~glancesync.config.MainConfig` is one)."""

    #: The folder of the file locks; None: :func:`default_lock_dir`.
    lock_dir: Path | None
    #: A tooz URL shared by several hosts; None: the file locks.
    coordination_url: str | None
    #: Seconds a coordinated lock outlives its last heartbeat.
    lock_ttl: int


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

    With ``coordination_url``, a
    :class:`~glancesync.lock.coordination.CoordinatedLock` of that
    coordination service (tooz), living ``lock_ttl`` seconds past its last
    heartbeat; else a :class:`RegionLock` in ``$GLANCESYNC_LOCK_DIR`` if
    set, else ``lock_dir``, else the machine-wide folder
    (:func:`default_lock_dir`).
    """
    url = getattr(settings, "coordination_url", None)
    if url:
        return CoordinatedLock(coordination(url, getattr(settings, "lock_ttl", DEFAULT_TTL)),
                               name)
    return RegionLock(lock_dir_of(settings, environ), name)


def make_leadership(settings: LockSettings, group: str = "glancesync-watch"
                    ) -> ToozLeadership | None:
    """The leader election of the processes naming ``group`` (watchers of one
    federation) when ``coordination_url`` names a coordination service, else None
    (one process: it always leads). Its protocol: ``is_leader()``, ``close()``.

    ``group`` should name the federation (for instance the master region's
    lock name, ``GlanceSync.lock_name``): watchers of two federations that
    share one etcd and one ``group`` would elect one leader between them.
    """
    url = getattr(settings, "coordination_url", None)
    if not url:
        return None
    return ToozLeadership(Coordination(url, getattr(settings, "lock_ttl", DEFAULT_TTL)), group)
