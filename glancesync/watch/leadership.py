"""The seam between the watcher and leader election (issue 25).

Several watchers may run for the same federation (on several hosts, for
availability); only the leader acts. The watcher asks its ``leadership``
object ``is_leader()`` before every step: while it answers False, events
are counted and dropped (the leader handles them); when it turns True,
the watcher reconciles everything first, since it may have missed events.
Leader election itself (tooz, :mod:`glancesync.lock`) lives elsewhere: any
object with this small protocol plugs in.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Leadership(Protocol):
    """Whether this watcher leads. ``close()`` (optional) is called once, when the
    watcher stops; ``is_leader()`` must return quickly (it is asked about once a
    second) and must not raise."""

    def is_leader(self) -> bool:
        ...


class AlwaysLeader:
    """The leadership of a watcher that runs alone: always the leader."""

    def is_leader(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release."""
