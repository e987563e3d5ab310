"""The watcher's Prometheus metrics, in a registry of its own.

Every label takes a bounded set of values (event types known to Glance or
``other``, fixed reasons and outcomes): a hostile publisher cannot grow
the series without bound.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Buckets of the propagation lag, in seconds (the target: median <= 5 s,
#: 95th percentile <= 15 s).
LAG_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300, 600, 1800, 3600)


class WatchMetrics:
    """The series of one watcher (``registry``: where they are registered)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter("glancesync_watch_events_received",
                                "Notifications received, by event type", ["event_type"],
                                registry=r)
        self.ignored = Counter("glancesync_watch_events_ignored",
                               "Notifications not acted on, by reason", ["reason"],
                               registry=r)
        self.acted = Counter("glancesync_watch_events_acted",
                             "Notifications whose image was synchronised (a burst"
                             " coalesced into one sync counts every event)", registry=r)
        self.syncs = Counter("glancesync_watch_image_syncs",
                             "Syncs of named images, by outcome (ok, failed)", ["outcome"],
                             registry=r)
        self.uploads = Counter("glancesync_watch_copies_uploaded",
                               "Copies uploaded to the regions (one image to one region),"
                               " by events and reconciliations", registry=r)
        self.lag = Histogram("glancesync_watch_propagation_lag_seconds",
                             "Seconds from image.activate received to every region"
                             " verified", buckets=LAG_BUCKETS, registry=r)
        self.reconciliations = Counter("glancesync_watch_reconciliations",
                                       "Whole reconciliations, by outcome (ok, failed)",
                                       ["outcome"], registry=r)
        self.last_reconciliation = Gauge(
            "glancesync_watch_last_reconciliation_end_timestamp_seconds",
            "When the last reconciliation ended (seconds since the epoch; 0: none yet)",
            registry=r)
        self.bus_up = Gauge("glancesync_watch_bus_up",
                            "1 when the notification bus answers, else 0", registry=r)
        self.bus_down_since = Gauge(
            "glancesync_watch_bus_down_since_timestamp_seconds",
            "When the bus was last found down (seconds since the epoch; 0: never)",
            registry=r)
        self.bus_outages = Counter("glancesync_watch_bus_outages",
                                   "Times the bus was found down", registry=r)
        self.leader = Gauge("glancesync_watch_leader", "1 while this watcher leads",
                            registry=r)
        self.pending = Gauge("glancesync_watch_pending_images",
                             "Images waiting for a sync or a retry", registry=r)
        for outcome in ("ok", "failed"):
            self.syncs.labels(outcome)
            self.reconciliations.labels(outcome)
