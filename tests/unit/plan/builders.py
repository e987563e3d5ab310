"""Images, policies and plan contexts for the tests of the planner's concerns (no I/O)."""
from __future__ import annotations

import datetime
from typing import Any, Iterable

from glancesync.config import TargetConfig
from glancesync.image import Image, Provenance
from glancesync.plan.context import PlanContext
from glancesync.selection import select_master
from glancesync.strategy import RegionTransfer

MASTER_PROJECT = "p-master"
PROJECT = "p-region"
MASTER_REGION = "Master"
NOW = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
#: r(): the provenance of a copy of the master image of the same name.
COPY = object()


def m(name: str, checksum: str | None = "c1", *, id_: str | None = None,
      visibility: str = "public", size: int = 10, status: str = "active",
      owner: str = MASTER_PROJECT, **props: str) -> Image:
    """A master image (``m-NAME``)."""
    return Image(id=id_ or f"m-{name}", name=name, status=status, owner=owner,
                 visibility=visibility, size=size, checksum=checksum,
                 disk_format="qcow2", container_format="bare", properties=dict(props))


def r(name: str, checksum: str | None = "c1", *, id_: str | None = None,
      visibility: str = "public", owner: str = PROJECT, status: str = "active",
      provenance: Any = COPY, **fields: Any) -> Image:
    """A regional image; by default of the project and a copy GlanceSync made of the
    master image of its name. ``fields`` sets other attributes of the image."""
    if provenance is COPY:
        provenance = Provenance(f"m-{name}", MASTER_REGION, f"md5:{checksum}",
                                "2029-12-31T00:00:00Z") if checksum else None
    image = Image(id=id_ or f"r-{name}-{checksum}", name=name, status=status, owner=owner,
                  visibility=visibility, size=10, checksum=checksum, provenance=provenance)
    for key, value in fields.items():
        setattr(image, key, value)
    return image


def context(masters: Iterable[Image] = (), regional: Iterable[Image] = (), *,
            transfer: RegionTransfer | None = None, members: dict | None = None,
            stalled_upload_age: float = 3600, **policy: Any) -> PlanContext:
    """A plan context of ``RegionA`` for a target with ``policy``."""
    return PlanContext("RegionA", select_master(list(masters), MASTER_PROJECT, MASTER_REGION),
                       list(regional), PROJECT, TargetConfig(name="t", **policy), NOW,
                       stalled_upload_age, members, transfer or RegionTransfer())


def matched(ctx: PlanContext) -> PlanContext:
    """``ctx`` with its regional images matched (the step before classification)."""
    from glancesync.plan import matching
    matching.match_regional(ctx)
    return ctx
