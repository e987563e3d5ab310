"""The watcher: events and reconciliations turned into syncs, until stopped.

One loop, in the thread that calls :meth:`Watcher.run`, does every sync
(never two at once: each takes the regions' locks as ``glancesync-sync``
does). Each turn, while the leadership says this watcher leads:

1. a whole reconciliation (``sync`` of every covered region) at start, on
   becoming the leader, after the bus came back, after a flood of events,
   and every ``reconcile_interval`` seconds;
2. else the images named by the events of a coalesced batch
   (``sync_images``: the master is read again, the payload was a hint);
3. then the retries that are due: a region that failed gets its images
   (or its whole reconciliation) again after 5 s, 10 s, ... up to 5 min,
   while the other regions went on.

:meth:`Watcher.stop` (from any thread, a signal handler's included), or
the ``stop`` event set, ends the loop and stops the sync in progress
through the syncer's ``stop`` (:meth:`GlanceSync.stop
<glancesync.GlanceSync.stop>`): its transfers are aborted and the images it
did not finish deleted, as a stopped ``glancesync-sync`` does.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import socket
import threading
import time
from typing import Any, Callable, Protocol, Sequence

from glancesync.errors import GlanceSyncError
from glancesync.watch.bus import Bus
from glancesync.watch.events import Hint, Ignored, event_label, read_notification
from glancesync.watch.http import HealthServer
from glancesync.watch.leadership import AlwaysLeader, Leadership
from glancesync.watch.metrics import WatchMetrics
from glancesync.watch.pending import Batch, Pending

LOG = logging.getLogger(__name__)

#: A retry key naming every covered region (the master could not be read).
EVERY_REGION = ""
#: The most images whose propagation lag is still being measured.
MAX_TRACKED = 10_000
#: The most images retried in one region; beyond, the region is reconciled.
MAX_RETRIED = 1000


class Syncer(Protocol):
    """What the watcher needs of :class:`~glancesync.GlanceSync`: both return a
    :class:`~glancesync.RunResult` (``plans``, ``failures``, ``failed_regions``,
    ``totals()``)."""

    def sync(self, regions: Sequence[str] = ()) -> Any:
        ...

    def sync_images(self, image_ids: Any, regions: Sequence[str] = ()) -> Any:
        ...

    # Optional: ``stop(reason)``, called from another thread when the watcher is
    # stopped, stops the sync under way (GlanceSync.stop).


@dataclasses.dataclass(frozen=True)
class WatchSettings:
    """``notifications_url`` (an oslo.messaging transport URL), ``topic``,
    ``reconcile_interval`` (seconds), ``listen`` (``HOST:PORT`` of the health and
    metrics endpoint; None: none), ``pool`` (the listener pool: its queue),
    ``retry_wait`` and ``max_retry_wait`` (seconds before a failed region is
    tried again, doubled up to the maximum)."""

    notifications_url: str
    topic: str = "notifications"
    reconcile_interval: float = 3600.0
    listen: str | None = "127.0.0.1:9465"
    pool: str = "glancesync-watch"
    retry_wait: float = 5.0
    max_retry_wait: float = 300.0


def pool_name(master: str, regions: Sequence[str]) -> str:
    """A listener pool name stable across restarts of one watcher: its host, and a
    digest of its master region's lock name and regions (another watcher of other
    regions, or on another host, gets its own queue and sees every event)."""
    digest = hashlib.sha256("\n".join([master, *sorted(regions)]).encode()).hexdigest()
    return f"glancesync-watch.{socket.gethostname()[:64]}.{digest[:12]}"


@dataclasses.dataclass
class _Retries:
    """Failed work waiting for its next attempt: region -> image ids (None: the
    region's whole reconciliation); :data:`EVERY_REGION` for every region."""

    work: dict[str, set[str] | None] = dataclasses.field(default_factory=dict)
    due: float = 0.0
    wait: float = 0.0

    def add(self, region: str, ids: set[str] | None) -> None:
        """Add work; beyond :data:`MAX_RETRIED` images, the region's whole
        reconciliation instead (ids forged while a region is down stay bounded)."""
        current = self.work.get(region, set())
        merged = None if ids is None or current is None else current | ids
        self.work[region] = None if merged is None or len(merged) > MAX_RETRIED else merged


class Watcher:
    """Keep ``regions`` in sync with the master from its notifications.

    ``syncer``: the :class:`~glancesync.GlanceSync` (or anything with its
    ``sync`` and ``sync_images``); ``regions``: region arguments as the
    scripts take them (none: every region of ``master:``); ``leadership``:
    see ``glancesync.watch.leadership`` (default: always the leader);
    ``stop``: an event that stops the watcher when set.
    """

    def __init__(self, syncer: Syncer, regions: Sequence[str], settings: WatchSettings, *,
                 leadership: Leadership | None = None, stop: threading.Event | None = None,
                 metrics: WatchMetrics | None = None) -> None:
        self.syncer = syncer
        self.regions = list(regions)
        self.settings = settings
        self.leadership = leadership or AlwaysLeader()
        self.stop_event = stop or threading.Event()
        self.metrics = metrics or WatchMetrics()
        self.pending = Pending()
        self.address: tuple[str, int] | None = None
        self._leading = False
        self._reconcile_wanted = threading.Event()
        self._retries = _Retries()
        self._lag: dict[str, tuple[float, set[str] | None]] = {}
        self._bus: Bus | None = None
        self._warned: set[str] = set()
        self._last_reconciliation: float | None = None
        self._bus_was_down = False
        self.ready = threading.Event()
        #: Called with the watcher once its endpoint is bound and its listener started.
        self.on_started: Callable[["Watcher"], None] | None = None

    # --- the outside world ------------------------------------------------------

    def stop(self) -> None:
        """Stop the watcher and the sync in progress (any thread)."""
        self.stop_event.set()
        self.pending.wake()

    def health(self) -> dict[str, Any]:
        """The ``/health`` object."""
        up = self._bus.up if self._bus is not None else None
        return {"status": "ok", "bus": {True: "up", False: "down"}.get(up, "unknown"),
                "leader": self._leading, "pending": len(self.pending),
                "last_reconciliation_end": self._last_reconciliation}

    def on_event(self, event_type: Any, payload: Any) -> None:
        """One notification (from the bus's threads); never raises."""
        self.metrics.received.labels(event_label(event_type)).inc()
        try:
            hint = read_notification(event_type, payload)
        except Ignored as ignored:
            self.metrics.ignored.labels(ignored.reason).inc()
            if ignored.reason != "quiet":
                self._warn_once(ignored.reason, "a notification ignored (%s); later ones"
                                " like it are counted in glancesync_watch_events_ignored"
                                " only", ignored.reason)
            return
        self.pending.add(hint)

    def on_bus_state(self, up: bool) -> None:
        """The bus went up or down (from the probe's thread)."""
        self.metrics.bus_up.set(1 if up else 0)
        if up:
            LOG.info("notification bus up")
            if self._bus_was_down:  # back after an outage: events were lost
                self._reconcile_wanted.set()
                self.pending.wake()
            self.ready.set()
        else:
            self._bus_was_down = True
            self.metrics.bus_outages.inc()
            self.metrics.bus_down_since.set(time.time())
            LOG.warning("notification bus down: reconnecting; the regions are reconciled"
                        " every %.0f s and when it is back", self.settings.reconcile_interval)

    # --- the loop ----------------------------------------------------------------

    def run(self) -> None:
        """Watch until :meth:`stop`.

        :raises UsageError: ``listen`` is not a free loopback ``HOST:PORT``.
        :raises ConfigError: ``notifications_url`` is not a transport URL.
        """
        server = None
        if self.settings.listen:
            server = HealthServer(self.settings.listen, self.metrics.registry, self.health)
            self.address = server.address
        try:
            self._bus = Bus(self.settings.notifications_url, self.settings.topic,
                            self.settings.pool, self.on_event, self.on_bus_state)
            self._bus.start()
            LOG.info("watching %s (pool %s) for %s", self.settings.topic,
                     self.settings.pool, ", ".join(self.regions) or "master:")
            if self.on_started is not None:
                self.on_started(self)
            finished = threading.Event()
            relay = threading.Thread(target=self._relay_stop, args=(finished,), daemon=True,
                                     name="watcher stop")
            relay.start()
            try:
                self._loop()
            finally:
                finished.set()
                relay.join()
                self._bus.stop()
        finally:
            if server is not None:
                server.close()
            close = getattr(self.leadership, "close", None)
            if callable(close):
                close()
        LOG.info("watcher stopped")

    def _relay_stop(self, finished: threading.Event) -> None:
        """Once the watcher is stopped, stop the sync under way too (the syncer's
        ``stop``, if it has one); nothing when the loop ended otherwise."""
        while not self.stop_event.wait(0.2):
            if finished.is_set():
                return
        stop = getattr(self.syncer, "stop", None)
        if callable(stop):
            LOG.info("stopping: the sync in progress is stopped (transfers aborted, the"
                     " images it did not finish deleted)")
            stop("the watcher is stopping")

    def _loop(self) -> None:
        next_reconcile = 0.0
        while not self.stop_event.is_set():
            if not self._lead():
                self.stop_event.wait(1.0)
                continue
            now = time.monotonic()
            if self._reconcile_wanted.is_set() or now >= next_reconcile:
                self._reconcile_wanted.clear()
                self.reconcile()
                next_reconcile = time.monotonic() + self.settings.reconcile_interval
                continue
            batch = self.pending.take(min(1.0, max(0.0, next_reconcile - now)))
            if batch.overflow:
                LOG.warning("a flood of events (more than %d images at once): reconciling"
                            " every image instead", self.pending.limit)
                self._reconcile_wanted.set()
            elif batch:
                self.sync_batch(batch)
            self._retry_due()
            self.metrics.pending.set(len(self.pending) + len(self._retries.work))

    def _lead(self) -> bool:
        """Ask the leadership; on becoming the leader, reconcile first."""
        leading = bool(self.leadership.is_leader())
        if leading and not self._leading:
            LOG.info("leading: reconciling every region first")
            self._reconcile_wanted.set()
        elif not leading:
            dropped = self.pending.clear()
            if self._leading:
                LOG.info("no longer leading: events are left to the leader")
            if dropped:
                self.metrics.ignored.labels("not_leader").inc(dropped)
            self._retries = _Retries()
            self._lag.clear()
        self._leading = leading
        self.metrics.leader.set(1 if leading else 0)
        return leading

    # --- syncs -------------------------------------------------------------------

    def reconcile(self, regions: Sequence[str] | None = None) -> bool:
        """A whole sync of ``regions`` (default: every covered region); True if every
        region succeeded. Failed regions are retried."""
        started = time.monotonic()
        try:
            result = self.syncer.sync(self.regions if regions is None else list(regions))
        except GlanceSyncError as error:
            if self.stop_event.is_set():
                LOG.info("reconciliation not done: %s", error)
                return False
            LOG.error("reconciliation failed: %s", error)
            self._reconciled("failed")
            self._schedule([EVERY_REGION] if regions is None else regions, None)
            return False
        self._count_uploads(result)
        if self._stopped(result, "reconciliation"):
            return False
        failed = result.failed_regions
        self._settled(set(result.plans) | set(result.failures), failed, None)
        self._reconciled("failed" if failed else "ok")
        LOG.info("reconciliation: %s; %.1f s", result.totals(), time.monotonic() - started)
        return not failed

    def _reconciled(self, outcome: str) -> None:
        """Count a reconciliation that ended, well (``ok``) or not (``failed``)."""
        self.metrics.reconciliations.labels(outcome).inc()
        self._last_reconciliation = time.time()
        self.metrics.last_reconciliation.set(self._last_reconciliation)

    def sync_batch(self, batch: Batch) -> bool:
        """Synchronise the images of ``batch``; True if every region succeeded."""
        ids = set(batch.events)
        for image_id, when in batch.activated.items():
            if image_id not in self._lag and len(self._lag) < MAX_TRACKED:
                self._lag[image_id] = (when, None)
        LOG.info("synchronising %d image(s) after %d event(s)", len(ids),
                 sum(batch.events.values()))
        self.metrics.acted.inc(sum(batch.events.values()))
        return self._sync_images(ids, self.regions)

    def _sync_images(self, ids: set[str], regions: Sequence[str],
                     key: Sequence[str] | None = None) -> bool:
        try:
            result = self.syncer.sync_images(sorted(ids), regions)
        except GlanceSyncError as error:
            if self.stop_event.is_set():
                LOG.info("sync of %d image(s) not done: %s", len(ids), error)
                return False
            LOG.error("sync of %d image(s) failed: %s", len(ids), error)
            self.metrics.syncs.labels("failed").inc()
            self._schedule(key or [EVERY_REGION], ids)
            return False
        self._count_uploads(result)
        if self._stopped(result, f"sync of {len(ids)} image(s)"):
            return False
        failed = result.failed_regions
        self.metrics.syncs.labels("failed" if failed else "ok").inc()
        self._settled(set(result.plans) | set(result.failures), failed, ids)
        return not failed

    def _stopped(self, result: Any, what: str) -> bool:
        """Whether ``result`` is of a sync the watcher's stop cut short (logged; its
        regions are neither retried nor counted as failed: the watcher ends)."""
        if getattr(result, "stopped", None) is None or not self.stop_event.is_set():
            return False
        LOG.info("%s stopped: %s", what, result.totals())
        return True

    def _count_uploads(self, result: Any) -> None:
        self.metrics.uploads.inc(sum(outcome.uploaded for outcome in result.results.values()))

    def _settled(self, covered: set[str], failed: Sequence[str], ids: set[str] | None) -> None:
        """Record what a sync settled: retries done, lags measured; failed regions retried."""
        done = covered - set(failed)
        for region in done:
            wanted = self._retries.work.get(region, set())
            if wanted is not None and ids is not None:
                wanted -= ids
            if wanted is None or ids is None or not wanted:
                self._retries.work.pop(region, None)
        if failed:
            self._schedule(failed, ids)
        elif not self._retries.work:
            self._retries.wait = 0.0
        now = time.monotonic()
        for image_id, (when, waiting) in list(self._lag.items()):
            if ids is not None and image_id not in ids:
                continue
            left = (covered if waiting is None else waiting) - done
            if left:
                self._lag[image_id] = (when, left)
            else:
                del self._lag[image_id]
                self.metrics.lag.observe(now - when)

    def _schedule(self, regions: Sequence[str], ids: set[str] | None) -> None:
        for region in regions:
            self._retries.add(region, None if ids is None else set(ids))
        wait = self._retries.wait
        self._retries.wait = min(self.settings.max_retry_wait,
                                 wait * 2 if wait else self.settings.retry_wait)
        self._retries.due = time.monotonic() + self._retries.wait
        LOG.info("retrying %s in %.0f s", ", ".join(r or "every region" for r in regions),
                 self._retries.wait)

    def _retry_due(self) -> None:
        retries = self._retries
        if not retries.work or time.monotonic() < retries.due or self.stop_event.is_set():
            return
        work, retries.work = dict(retries.work), {}
        regions = {key: self.regions if key == EVERY_REGION else [key] for key in work}
        whole = [key for key, ids in work.items() if ids is None]
        for key in whole:
            self.reconcile(None if key == EVERY_REGION else regions[key])
        named = {key: ids for key, ids in work.items() if ids is not None and key not in whole}
        for key, ids in named.items():
            if ids:
                self._sync_images(ids, regions[key], key=[key])

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            LOG.warning(message, *args)
