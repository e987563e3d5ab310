"""Planning concern: the master image's id kept in the region (``keep_image_id``).

With ``keep_image_id`` a new regional copy is created with the master
image's id (Glance's image API v2 accepts a client-chosen ``id`` on
creation: https://docs.openstack.org/api-ref/image/v2/#create-image), so
that templates and scripts naming an image by id work in every region.

Decisions taken here:

* Only new copies get it; an existing copy keeps its id (ids never change
  in Glance). The status of a copy that holds the master's content says
  whether it shares the master's id.
* An id the region's listing already shows (an image of another project,
  the previous copy being replaced: Glance never reuses an id, even after
  a deletion) is not asked for: the copy gets a new id and its status
  says why. An id the region refuses anyway (taken by an image this
  project cannot see, or used before and deleted: HTTP 409) is found by
  the executor, which does the same (:mod:`glancesync.executor.upload`).
"""
from __future__ import annotations

import uuid

from glancesync.plan.context import PlanContext
from glancesync.plan.model import CONTENT_SAME

#: What a status says of a copy that has the master's id.
SAME_ID = "same id as the master image"


def is_uuid(value: str) -> bool:
    """True for an id Glance accepts on creation (a UUID)."""
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def keep_ids(ctx: PlanContext) -> None:
    """Give each new copy the master's id where the region may still accept it."""
    if not ctx.target.keep_image_id:
        return
    listed = {image.id: image for image in ctx.regional}
    for name, op in ctx.ops.items():
        status = ctx.statuses.get(name)
        if not op.uploads or op.master is None or status is None:
            continue
        if not is_uuid(op.master.id):
            status.reason += (f"; keep_image_id: master id {op.master.id!r} is not a UUID"
                              " (Glance takes no other): the copy gets a new id")
            continue
        taken = listed.get(op.master.id)
        if taken is None:
            op.image_id = op.master.id
            status.reason += f"; keep_image_id: to be created with id {op.master.id}"
            continue
        whose = "this project's" if ctx.own(taken) else f"project {taken.owner}'s"
        status.reason += (f"; keep_image_id: id {op.master.id} is taken in the region by"
                          f" {whose} image {taken.name!r} ({taken.status}): the copy gets"
                          " a new id (Glance never reuses one)")
    for status in ctx.statuses.values():
        if (status.status in CONTENT_SAME and status.regional_id
                and status.regional_id == status.master_id):
            status.reason = f"{status.reason}; {SAME_ID}" if status.reason else SAME_ID
