"""What the master offered on the last run, and the guard against a listing that shrank.

A master listing that is cut short (a 200 answer listing 1 of 6 images: a
broken proxy, a paging bug, a policy change, a wrong project) looks exactly
like images deleted in the master region; with ``removal_policy = delete``
their copies would be deleted everywhere. The empty listing is refused by
the planner; this module refuses one that shrank suspiciously, as mature
sync tools refuse mass deletions (unison's ``confirmbigdeletes``): a run
whose master listing shows fewer than ``100 - max_master_shrink`` percent
of the images it showed on the last run takes none of its removal steps
(their statuses become ``error_master_shrank``), and says how to confirm a
real mass removal (``--config max_master_shrink=100`` for that run).

The last count is a small state file in ``run_dir`` (one per federation,
keyed by the master region's lock name), read back through
:mod:`glancesync.readback`; it is updated by a sync that is not a dry run
and whose listing did not shrink too much (or was confirmed), so that a
listing that stays short keeps holding the removals run after run.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable

from glancesync import readback
from glancesync.errors import UnsafeFileError
from glancesync.image import utc_stamp
from glancesync.integrity import atomic_file
from glancesync.plan import RegionPlan, Status, hold_all_removals

LOG = logging.getLogger(__name__)

#: The state file's name (in ``run_dir``).
FILE_NAME = "master-listing.json"

#: The largest state file read back (bytes): a count and a time per master region.
MAX_SIZE = 1024 * 1024


class ListingLog:
    """The image counts of the master listings of earlier runs (the state file ``path``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.counts: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.parent.exists():  # no run yet: nothing to compare with
            return {}
        try:
            data: Any = readback.read_json(self.path, max_size=MAX_SIZE,
                                           what="the master listing counts")
        except FileNotFoundError:
            return {}
        except UnsafeFileError as error:
            LOG.warning("%s: the master listing is not compared with the last run's", error)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(key): value for key, value in data.items()
                if isinstance(value, dict) and isinstance(value.get("images"), int)
                and not isinstance(value.get("images"), bool) and value["images"] >= 0}

    def previous(self, master: str) -> int | None:
        """The number of images ``master``'s listing showed on the last run, or None."""
        record = self.counts.get(master)
        return record["images"] if record else None

    def record(self, master: str, images: int) -> None:
        """Record this run's count of ``master``'s listing (saved by :meth:`save`)."""
        self.counts[master] = {"images": images, "at": utc_stamp()}

    def save(self) -> None:
        """Write the state file atomically; a failure is a warning (never fails a run)."""
        try:
            readback.make_folder(self.path.parent, "the folder of the master listing counts (run_dir)")  # 0700
            with atomic_file(self.path, prefix=".master-listing-", suffix=".tmp") as out:
                out.write(json.dumps(self.counts, indent=1, sort_keys=True).encode())
        except UnsafeFileError as error:
            LOG.warning("%s", error)
        except OSError as error:
            LOG.warning("the master listing count cannot be saved in %s: %s",
                        self.path, error.strerror or error)


def shrank(previous: int | None, images: int, max_shrink: int) -> bool:
    """True when ``images`` is more than ``max_shrink`` percent below ``previous``.

    No previous count (a first run) never shrank; ``max_shrink`` 100 or more
    accepts any drop.
    """
    if previous is None or previous <= 0 or max_shrink >= 100:
        return False
    return images * 100 < previous * (100 - max_shrink)


def guard(log: ListingLog, master: str, images: int, max_shrink: int,
          plans: Iterable[RegionPlan], *, record: bool, removing: bool = True) -> int:
    """Hold every removal step of ``plans`` when ``master``'s listing shrank too much.

    ``images`` is the number of images this run's listing showed. Returns
    the number of removal steps held (0 when the listing did not shrink
    too much). With ``record`` (a sync, not a dry run nor a status), a
    listing that did not shrink too much becomes the new reference; one
    that did stays compared with the old one until confirmed. Without
    ``removing`` (no target removes copies: ``removal_policy = keep``) a
    shrunk listing threatens nothing: it is only recorded.
    """
    previous = log.previous(master)
    if removing and shrank(previous, images, max_shrink):
        note = (f"not taken: the master listing shows {images} images, {previous} on the"
                f" last run (more than max_master_shrink = {max_shrink}% fewer): a"
                " listing cut short would remove copies of images that still exist;"
                " check the master region, then allow it once with --config"
                " max_master_shrink=100")
        held = hold_all_removals(plans, Status.ERROR_MASTER_SHRANK, note)
        if held:
            LOG.error("this run takes none of its %d removal steps (statuses"
                      " error_master_shrank): the master listing shows %d images, %d on"
                      " the last run; check the master region, then allow it once with"
                      " --config max_master_shrink=100", held, images, previous)
        else:
            LOG.warning("the master listing shows %d images, %d on the last run (more than"
                        " max_master_shrink = %d%% fewer): no copy would be removed now,"
                        " and none is while it stays so", images, previous, max_shrink)
        return held
    if record:
        log.record(master, images)
        log.save()
    return 0
