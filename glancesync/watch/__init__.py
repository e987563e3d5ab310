"""Continuous propagation (issue 24): the master Glance's notifications turned into syncs.

A :class:`Watcher` listens to the master Glance's notifications through
oslo.messaging (``glancesync.watch.bus``), reads each one as a hint
naming a master image (``glancesync.watch.events``; the payload is never
trusted), coalesces bursts (``glancesync.watch.pending``) and has the
facade synchronise the images named (``sync_images``), with a whole
reconciliation (``sync``) at start, every ``reconcile_interval`` seconds,
after the bus comes back and when it becomes the leader. Its health and
Prometheus metrics are served on a loopback address
(``glancesync.watch.http``, ``glancesync.watch.metrics``).

Leadership is a seam (``glancesync.watch.leadership``): any object with
``is_leader() -> bool`` (and optionally ``close()``); the default is always
the leader.
"""
from glancesync.watch.events import ACTED_EVENTS, Hint, read_notification
from glancesync.watch.leadership import AlwaysLeader, Leadership
from glancesync.watch.metrics import WatchMetrics
from glancesync.watch.watcher import Syncer, WatchSettings, Watcher, pool_name

__all__ = ["ACTED_EVENTS", "AlwaysLeader", "Hint", "Leadership", "Syncer", "WatchSettings",
           "WatchMetrics", "Watcher", "pool_name", "read_notification"]
