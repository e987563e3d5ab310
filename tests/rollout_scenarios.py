"""Scenarios of the release features (issue 26), run on any backend.

They use the helpers of :mod:`tests.scenarios` and are added to its
``SCENARIOS`` (so that the local and the bed suites run them, and the
statuses they reach count in "every status reached"). Import this module
only through :mod:`tests.scenarios`.
"""
from __future__ import annotations

from typing import Callable

from glancesync.errors import GlanceSyncError

from tests.scenarios import Bed, content, images, one, plan, put, statuses, sync, target


def scenario_keep_image_id(bed: Bed) -> None:
    """keep_image_id: the master's id where the region accepts it; a new id and a
    status saying why where it is taken by another tenant or was used before."""
    a = put(bed.master, bed.n("a"), content("a"))
    b = put(bed.master, bed.n("b"), content("b"))
    region, other_region = bed.regions
    # A tenant of RegionA took b's id first (a private image nobody else sees).
    alice = bed.foreign(region)
    squatter = alice.create_image(bed.n("squat"), image_id=b.id, visibility="private",
                                  disk_format="raw", container_format="bare")
    try:
        tgt = target(keep_image_id=True)
        p = plan(bed, region, tgt)
        assert {op.image_id for op in p.operations} <= {a.id, b.id, None}
        result = sync(bed, region, tgt)
        assert (result.uploaded, result.errors) == (2, 0)
        assert one(bed, region, "a").id == a.id
        copy_b = one(bed, region, "b")
        assert copy_b.id not in (b.id, squatter.id)
        reason = result.plan.status_of(bed.n("b")).reason
        assert "keep_image_id" in reason and "the copy gets a new id" in reason, reason
        assert f"created with id {a.id}" in result.plan.status_of(bed.n("a")).reason
        after = plan(bed, region, tgt)
        assert statuses(bed, after) == {"a": "ok", "b": "ok"}
        assert after.status_of(bed.n("a")).reason.endswith("same id as the master image")
        assert "same id" not in after.status_of(bed.n("b")).reason
    finally:
        try:
            alice.delete_image(squatter.id)
        except GlanceSyncError:
            pass
    # RegionB once held an image of a's id, deleted since: Glance never reuses it.
    used = other_region.create_image(bed.n("used"), image_id=a.id, disk_format="raw",
                                     container_format="bare")
    other_region.delete_image(used.id)
    result = sync(bed, other_region, target(keep_image_id=True))
    assert (result.uploaded, result.errors) == (2, 0)
    assert one(bed, other_region, "a").id != a.id and one(bed, other_region, "b").id == b.id
    assert "refused id" in result.plan.status_of(bed.n("a")).reason
    # Off by default: new ids everywhere.
    result = sync(bed, bed.other, target("other"))
    assert result.uploaded == 2 and a.id not in {i.id for v in images(bed, bed.other).values()
                                                 for i in v}


#: The release scenarios, in the order they run.
SCENARIOS: list[Callable[[Bed], None]] = [
    scenario_keep_image_id,
]
