"""Scenarios of the release features (issue 26), run on any backend.

They use the helpers of :mod:`tests.scenarios` and are added to its
``SCENARIOS`` (so that the local and the bed suites run them, and the
statuses they reach count in "every status reached"). Import this module
only through :mod:`tests.scenarios`.
"""
from __future__ import annotations

from typing import Callable

import datetime
import shlex
import sys

from glancesync.errors import GlanceSyncError
from glancesync.executor import Executor, RegionResult
from glancesync.executor.validation import Validation
from glancesync.plan import Waves, hold_waves
from glancesync.plan.validation import MARK_VALIDATION

from tests.engine import DirectSource
from tests.scenarios import (Bed, View, content, images, one, plan, put, statuses, sync,
                             target)


def validator(exit_status: int, message: str = "") -> Validation:
    """A validate_command printing ``message`` and the copy's name, ending with ``exit_status``."""
    code = (f"import os, sys; print({message!r}, os.environ['GLANCESYNC_IMAGE_NAME']);"
            f" sys.exit({exit_status})")
    return Validation.of(f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}", 60, {})


def validated_sync(bed: Bed, region: View, tgt, validation: Validation) -> RegionResult:
    """A sync of ``region`` whose new copies ``validation`` checks."""
    p = plan(bed, region, tgt)
    return Executor(region, DirectSource(bed.master), validation=validation).execute(p)


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


def scenario_validation_before_visibility(bed: Bed) -> None:
    """validate_command: a refused copy stays private and the previous one in service,
    the status says so with the command's last lines and no run makes it again; once
    the operator deletes it, an accepted copy replaces the previous one as configured."""
    region = bed.regions[0]
    old_master = put(bed.master, bed.n("a"), content("a1"))
    tgt = target(rename=["any"])
    assert validated_sync(bed, region, tgt, validator(0, "boot ok")).uploaded == 1
    previous = one(bed, region, "a")
    assert previous.visibility == "public" and previous.marks[MARK_VALIDATION] == "passed"
    bed.master.delete_image(old_master.id)
    put(bed.master, bed.n("a"), content("a2"))  # new bytes under the same name
    result = validated_sync(bed, region, tgt, validator(3, "guest did not boot"))
    assert result.needs_operator == 1 and result.errors == 0
    line = result.plan.status_of(bed.n("a"))
    assert line.status.value == "error_validation" and "guest did not boot" in line.reason
    kept = region.get_image(previous.id)
    assert (kept.name, kept.visibility) == (previous.name, "public")
    (refused,) = [i for i in images(bed, region)["a"] if i.id != previous.id]
    assert refused.visibility == "private" and refused.marks[MARK_VALIDATION] == "failed"
    # The next runs: the same status, nothing done, the refused copy never published.
    region.writes.clear()
    again = validated_sync(bed, region, tgt, validator(0))
    assert statuses(bed, again.plan) == {"a": "error_validation"}
    assert region.writes == [] and "guest did not boot" in again.plan.status_of(
        bed.n("a")).reason
    # The operator deletes the refused copy: a new one is made, validated, published.
    region.delete_image(refused.id)
    result = validated_sync(bed, region, tgt, validator(0, "boot ok"))
    assert (result.uploaded, result.renamed, result.needs_operator) == (1, 1, 0)
    assert one(bed, region, "a").visibility == "public"
    assert one(bed, region, "a.old").id == previous.id
    assert statuses(bed, plan(bed, region, tgt))["a"] == "ok"


def scenario_waves(bed: Bed) -> None:
    """rollout_waves: the second wave waits for an accepted copy in the first."""
    put(bed.master, bed.n("a"), content("a"))
    first, second = bed.regions
    waves = Waves(((first.name,), (second.name,)), 0.0)
    tgt = target()

    def run() -> dict[str, RegionResult]:
        plans = {view.name: plan(bed, view, tgt) for view in (first, second)}
        hold_waves(plans, waves, {first.name: first.list_images()},
                   datetime.datetime.now(datetime.timezone.utc))
        return {view.name: Executor(view, DirectSource(bed.master)).execute(plans[view.name])
                for view in (first, second)}

    done = run()
    assert statuses(bed, done[second.name].plan) == {"a": "info_wave_waiting"}
    assert done[first.name].uploaded == 1 and done[second.name].uploaded == 0
    assert "a" not in images(bed, second)
    done = run()
    assert done[second.name].uploaded == 1 and statuses(bed, plan(bed, second, tgt)) == {
        "a": "ok"}


def scenario_end_of_life(bed: Bed) -> None:
    """SCS end of life: images past provided_until or overdue are shown; with a
    removal_policy an expired image is no longer synchronised and its copies retired."""
    put(bed.master, bed.n("a"), content("a"), provided_until="2020-01-31",
        replace_frequency="monthly", image_build_date="2019-12-01", uuid_validity="none")
    put(bed.master, bed.n("b"), content("b"), provided_until="notice",
        replace_frequency="never", image_build_date="2019-12-01 08:30")
    region, fresh = bed.regions
    assert sync(bed, region, target()).uploaded == 2  # removal_policy = keep: copied
    shown = plan(bed, region, target())
    assert {s.status.value for s in shown.statuses if s.name == bed.n("a")} == {
        "ok", "info_end_of_life", "info_replacement_overdue"}
    statuses(bed, shown)
    assert {s.status.value for s in shown.statuses if s.name == bed.n("b")} == {"ok"}
    tgt = target(removal_policy="hide", removal_grace_hours=0)
    result = sync(bed, region, tgt)
    assert (result.retired, result.errors) == (1, 0)
    assert one(bed, region, "a").os_hidden and not one(bed, region, "b").os_hidden
    after = plan(bed, region, tgt)
    assert {s.status.value for s in after.statuses if s.name == bed.n("a")} == {
        "info_end_of_life", "ok_retired"}
    assert not after.operations
    # A region without a copy gets none.
    assert sync(bed, fresh, tgt).uploaded == 1 and "a" not in images(bed, fresh)


#: The release scenarios, in the order they run.
SCENARIOS: list[Callable[[Bed], None]] = [
    scenario_keep_image_id,
    scenario_validation_before_visibility,
    scenario_waves,
    scenario_end_of_life,
]
