"""The run report (``--report-json FILE``): what a run did, as versioned JSON.

:func:`run_report` turns a :class:`~glancesync.facade.RunResult` (sync, dry
run) or a :class:`~glancesync.facade.StatusReport` into a plain dict whose
shape is the JSON Schema shipped beside this module
(``run-report.schema.json``, :func:`schema`); :data:`VERSION` is its
``version``, raised when a field changes meaning or disappears (new fields
may be added within a version). Names and reasons are the regions' own
values: JSON escapes every control character, so the file is safe to
print; readers that draw them must escape them for their medium.
"""
from __future__ import annotations

import datetime
import functools
import json
from importlib import resources
from typing import Any

from glancesync.executor import RegionResult
from glancesync.facade import RunResult, StatusReport
from glancesync.plan import RegionPlan
from glancesync.throughput import Estimate

#: The report's ``format`` and ``version``.
FORMAT = "glancesync-run-report"
VERSION = 1

SCHEMA_FILE = "run-report.schema.json"


@functools.cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the run report (draft 2020-12)."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def timestamp(seconds: float) -> str | None:
    """ISO 8601 UTC time of ``seconds`` since the epoch (None for 0: unknown)."""
    if not seconds:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def mode_of(result: RunResult | StatusReport) -> str:
    """``status``, ``dry_run`` or ``sync``."""
    if isinstance(result, StatusReport):
        return "status"
    return "dry_run" if result.dry_run else "sync"


def run_report(result: RunResult | StatusReport) -> dict[str, Any]:
    """The report of ``result`` (a dict of :func:`schema`'s shape)."""
    mode = mode_of(result)
    results = getattr(result, "results", {})
    regions = []
    for region in sorted(set(result.plans) | set(result.failures)):
        regions.append(_region(region, result.plans.get(region), results.get(region),
                               result.failures.get(region), result.estimates.get(region)))
    report: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "mode": mode,
        "started": timestamp(result.started),
        "finished": timestamp(result.finished),
        "seconds": round(max(0.0, result.finished - result.started), 3),
        "images": list(result.images),
        "exit_status": int(result.exit_status),
        "summary": result.totals() if isinstance(result, RunResult) else status_totals(result),
        "bytes_downloaded": getattr(result, "bytes_downloaded", 0),
        "stopped": result.stopped.message if result.stopped is not None else None,
        "regions": regions,
    }
    done_here, held = getattr(result, "done_here", []), getattr(result, "held_elsewhere", {})
    if done_here or held:
        report["coordination"] = {"done_here": sorted(done_here), "held_elsewhere": dict(held)}
    return report


def status_totals(report: StatusReport) -> str:
    """``"status of 3 region(s): 1 in sync, 1 pending, 1 failed, 2 image(s) need an operator"``."""
    in_sync = sum(1 for p in report.plans.values() if p.in_sync)
    operator = sum(len(p.needs_operator) for p in report.plans.values())
    return (f"status of {len(report.plans) + len(report.failures)} region(s): {in_sync} in"
            f" sync, {len(report.plans) - in_sync} pending, {len(report.failures)} failed,"
            f" {operator} image(s) need an operator")


def _region(region: str, plan: RegionPlan | None, outcome: RegionResult | None,
            error: object, estimate: Estimate | None) -> dict[str, Any]:
    if error is not None:
        state = "failed"
    elif outcome is None:
        state = "planned"
    else:
        state = "done" if outcome.success else "failed"
    statuses = plan.statuses if plan else []
    return {
        "region": region,
        "result": state,
        "error": None if error is None else str(error),
        "in_sync": bool(plan and plan.in_sync),
        "counts": {str(s): n for s, n in (plan.counts() if plan else {}).items() if n},
        "statuses": [{"name": s.name, "status": s.status.value,
                      "category": s.status.category.value, "master_id": s.master_id,
                      "regional_id": s.regional_id, "reason": s.reason} for s in statuses],
        "plan": [{"kind": op.kind.value, "name": op.name, "bytes": op.size if op.uploads else 0,
                  "description": op.describe()} for op in (plan.operations if plan else [])],
        "operations": [{"kind": o.kind.value, "name": o.name, "result": o.result,
                        "bytes": o.bytes, "bytes_server_side": o.bytes_server_side,
                        "seconds": round(o.seconds, 3),
                        "transfer_seconds": round(o.transfer_seconds, 3),
                        "error": o.error or None}
                       for o in (outcome.outcomes if outcome else [])],
        "bytes_uploaded": outcome.bytes_uploaded if outcome else 0,
        "bytes_server_side": outcome.bytes_server_side if outcome else 0,
        "warnings": list(plan.warnings) if plan else [],
        "estimate": None if estimate is None else {
            "bytes": estimate.bytes,
            "seconds": None if estimate.seconds is None else round(estimate.seconds, 1),
            "bytes_per_second": None if estimate.rate is None else round(estimate.rate, 1)},
    }


def dumps(result: RunResult | StatusReport) -> str:
    """The report as JSON text (ASCII: every control character escaped)."""
    return json.dumps(run_report(result), indent=2, sort_keys=False) + "\n"
