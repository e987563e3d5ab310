"""The one place that changes a region: :class:`RegionActions`.

Every change a sync makes to a region (create, upload, import, update,
publish, rename, delete, reactivate, hide, deactivate, mark, share,
unshare; and running ``validate_command`` on a new copy) goes through
:meth:`RegionActions.act`, which logs it and, in a dry run, does not make
it: a dry run changes nothing, anywhere (rclone's ``SkipDestructive``,
Glance's ``ActionWrapper`` of its import flows). Reads (get, list, the
state of an import) go to the adapter directly.

Every module of the executor logs under ``glancesync.executor`` (:data:`LOG`),
whatever part of it acts: the one name of what happens to a region in log
files and filters.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from glancesync.backends.base import RegionAdapter

#: The executor's logger (one name for every part of it).
LOG = logging.getLogger("glancesync.executor")

#: Verbs of the changes: (progressive form, base form for dry runs, log level).
#: Creating and publishing are the two halves of an upload: logged at debug
#: level so that an upload reads as one line.
VERBS = {
    "create": ("creating", "create", logging.DEBUG),
    "upload": ("uploading", "upload", logging.INFO),
    "import": ("importing", "import", logging.INFO),
    "update": ("updating", "update", logging.INFO),
    "publish": ("publishing", "publish", logging.DEBUG),
    "rename": ("renaming", "rename", logging.INFO),
    "delete": ("deleting", "delete", logging.INFO),
    "reactivate": ("reactivating", "reactivate", logging.INFO),
    "hide": ("hiding", "hide", logging.INFO),
    "deactivate": ("deactivating", "deactivate", logging.INFO),
    "mark": ("marking", "mark", logging.DEBUG),
    "share": ("sharing", "share", logging.INFO),
    "unshare": ("unsharing", "unshare", logging.INFO),
    "validate": ("validating", "validate", logging.INFO),
}


class RegionActions:
    """The changes made to one region, through its ``adapter``; none with ``dry_run``.

    ``region`` is the adapter's name (``target:Region``), for logs and errors.
    """

    def __init__(self, adapter: RegionAdapter, dry_run: bool) -> None:
        self.adapter = adapter
        self.region = adapter.name
        self.dry_run = dry_run

    def act(self, verb: str, what: str, call: Callable[..., Any], *args: Any,
            **kwargs: Any) -> Any:
        """Log one change and make it (or only log it, in a dry run: returns None).

        ``verb`` is a key of :data:`VERBS`; ``what`` completes the sentence.
        """
        doing, do, level = VERBS[verb]
        if self.dry_run:
            LOG.log(level, "%s: would %s %s", self.region, do, what)
            return None
        LOG.log(level, "%s: %s %s", self.region, doing, what)
        return call(*args, **kwargs)


def describe(changes: dict[str, Any], remove: Iterable[str]) -> str:
    """``key=value, ..., -removed`` of a change, for logs."""
    parts = [f"{k}={v}" for k, v in sorted(changes.items())]
    parts += [f"-{k}" for k in remove]
    return ", ".join(parts)
