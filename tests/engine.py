"""Test glue: the synchronisation engine driven on two bare adapters.

:func:`plan_region` lists the master and the region once each and returns
the plan; :func:`sync_region` executes it (or only logs it in a dry run).
:class:`DirectSource` streams master data straight from the master adapter,
checking its hashes (the library's source is :mod:`glancesync.transfer`'s
cached one). The facade does all this with targets, locks and a cache; the
tests use it to reach the engine without a configuration.
"""
from __future__ import annotations

import datetime
import logging
from typing import Iterator

from glancesync import sharing
from glancesync.backends.base import RegionAdapter, Target
from glancesync.errors import ChecksumMismatchError, TransferError
from glancesync.executor import Executor, ImageSource, RegionResult
from glancesync.image import Image, content_hash
from glancesync.integrity import HashingStream
from glancesync.plan import RegionPlan, TargetPolicy, make_plan
from glancesync.selection import select_master

LOG = logging.getLogger(__name__)


def plan_region(master_adapter: RegionAdapter, region_adapter: RegionAdapter,
                target: TargetPolicy, *, stalled_upload_age: float = 3600,
                now: datetime.datetime | None = None,
                targets: tuple[Target, Target] | None = None) -> RegionPlan:
    """The plan of ``region_adapter``'s region for ``target``.

    ``targets`` (the master's and the region's) map members when ``target``
    has ``sync_members``.
    """
    selection = select_master(master_adapter.list_images(), master_adapter.project_id)
    regional = region_adapter.list_images()
    members = None
    if target.sync_members:
        if targets is None:
            raise ValueError("sync_members needs the master's and the region's targets")
        selection = sharing.with_master_members(master_adapter, selection)
        regional, members = sharing.region_inputs(
            selection, target, region_adapter, regional,
            sharing.ProjectMapper(targets[0]), targets[1])
    return make_plan(region_adapter.name, selection, regional, region_adapter.project_id,
                     target, now=now, stalled_upload_age=stalled_upload_age,
                     members=members)


def sync_region(master_adapter: RegionAdapter, region_adapter: RegionAdapter,
                target: TargetPolicy, source: ImageSource, *, dry_run: bool = False,
                stalled_upload_age: float = 3600, now: datetime.datetime | None = None,
                targets: tuple[Target, Target] | None = None) -> RegionResult:
    """Plan (at ``now``: default, the current time) and execute one region; the result
    holds the plan too."""
    plan = plan_region(master_adapter, region_adapter, target,
                       stalled_upload_age=stalled_upload_age, now=now, targets=targets)
    return Executor(region_adapter, source, dry_run=dry_run).execute(plan)


class DirectSource:
    """Master image data read from the master region, hashed while streaming."""

    def __init__(self, master_adapter: RegionAdapter) -> None:
        self.master_adapter = master_adapter

    def chunks(self, image: Image) -> Iterator[bytes]:
        """Yield the data; raise :class:`ChecksumMismatchError` after the end if it differs.

        An image without any hash is checked by size only (as the library's
        source does; its reader verifies what it received).
        """
        if content_hash(image) is None:
            data = b"".join(self.master_adapter.download_data(image.id))
            if image.size is not None and len(data) != image.size:
                raise ChecksumMismatchError(f"size {len(data)}, expected {image.size}",
                                            region=self.master_adapter.name)
            yield data
            return
        stream = HashingStream.for_image(self.master_adapter.download_data(image.id), image)
        yield from stream
        try:
            stream.verify(image)
        except TransferError as error:
            error.region = self.master_adapter.name
            raise
