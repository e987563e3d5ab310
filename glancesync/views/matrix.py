"""The image x region grid of a status report or a run.

Rows are master image names, columns the regions; a cell holds the
statuses of the image in the region (usually one; a leftover to clean up
adds a ``pending_cleanup`` line under the same name). The table and the
HTML page both draw it.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from glancesync.executor import DONE, RegionResult
from glancesync.plan import ImageStatus, OperationKind, RegionPlan, Status, StatusCategory


@dataclasses.dataclass
class Matrix:
    """``regions`` (columns, sorted), ``images`` (rows, sorted), the cells and failures."""

    regions: list[str]
    images: list[str]
    cells: dict[tuple[str, str], list[ImageStatus]]
    failures: dict[str, str]

    def cell(self, image: str, region: str) -> list[ImageStatus]:
        """The statuses of ``image`` in ``region`` (empty: not synchronised there)."""
        return self.cells.get((image, region), [])

    def used_statuses(self) -> list[Status]:
        """The statuses present, in the order of :class:`Status` (for the legend)."""
        present = {s.status for statuses in self.cells.values() for s in statuses}
        return [status for status in Status if status in present]


def build(plans: Mapping[str, RegionPlan], failures: Mapping[str, object] = ()) -> Matrix:
    """The grid of ``plans`` (region -> plan); ``failures``: region -> error."""
    failures = dict(failures or {})
    regions = sorted(set(plans) | set(failures))
    cells: dict[tuple[str, str], list[ImageStatus]] = {}
    for region, plan in plans.items():
        for item in plan.statuses:
            cells.setdefault((item.name, region), []).append(item)
    images = sorted({name for name, _ in cells})
    return Matrix(regions, images, cells, {r: str(e) for r, e in failures.items()})


def worst(statuses: list[ImageStatus]) -> StatusCategory | None:
    """The category a cell is coloured by: needs_operator > pending > info > ok."""
    order = [StatusCategory.NEEDS_OPERATOR, StatusCategory.PENDING, StatusCategory.INFO,
             StatusCategory.OK]
    present = {s.status.category for s in statuses}
    return next((category for category in order if category in present), None)


def symbols(statuses: list[ImageStatus]) -> str:
    """The cell's text: the statuses' symbols (``" "``-less), ``-`` when empty."""
    return "".join(s.status.symbol for s in statuses) or NOT_SYNCHRONISED


#: The symbol of an image that is not synchronised to a region.
NOT_SYNCHRONISED = "-"


def after_run(plans: Mapping[str, RegionPlan],
              results: Mapping[str, RegionResult]) -> dict[str, RegionPlan]:
    """The plans as the regions stand after a sync: what it did is ``ok``.

    A pending status whose every operation succeeded becomes ``ok``; a
    leftover it deleted (``pending_cleanup``) and a copy a removal step
    deleted disappear; a copy it hid or deactivated is ``ok_retired``; a
    failed or postponed operation leaves its status as it was (still
    pending). A region without a result (failed, or a dry run) keeps its plan.
    """
    final = {}
    for region, plan in plans.items():
        outcome = results.get(region)
        if outcome is None or outcome.dry_run:
            final[region] = plan
            continue
        done: dict[str, bool] = {}
        for op in outcome.outcomes:
            done[op.name] = done.get(op.name, True) and op.result == DONE
        # The outcomes follow the plan's operations one for one: a removal
        # step is known by the copy it removes (names may repeat).
        removed = {op.regional.id: op.kind for op, o in zip(plan.operations, outcome.outcomes)
                   if op.kind.removes and op.regional is not None and o.result == DONE}
        statuses = []
        for item in plan.statuses:
            if item.status is Status.PENDING_REMOVAL:
                kind = removed.get(item.regional_id or "")
                if kind is OperationKind.DELETE:
                    continue
                if kind is not None:
                    item = dataclasses.replace(item, status=Status.OK_RETIRED,
                                               reason=f"{kind.value} done by this run")
            elif item.status.is_pending and done.get(item.name):
                if item.status is Status.PENDING_CLEANUP:
                    continue
                item = dataclasses.replace(item, status=Status.OK,
                                           reason="synchronised by this run")
            statuses.append(item)
        final[region] = dataclasses.replace(plan, statuses=statuses)
    return final
