"""The HTML report (``--format html``, ``--report-html FILE``): one page.

Self-contained: inline CSS, no script, no external asset, so it works
offline and from a mail attachment. Rendered by Jinja2 with autoescaping:
every value (image names, reasons, errors, region names come from the
regions) is escaped for HTML, after :func:`~glancesync.safenames.printable`
has shown its control characters escaped. After a sync the page shows the
regions as the sync left them (:func:`~glancesync.views.matrix.after_run`).
Each cell carries its status in
``data-status`` and its reasons in ``title`` (shown on hover), and the
details table lists every image that is not ``ok`` with its reason.
"""
from __future__ import annotations

import datetime
from typing import Any, Mapping, Sequence

import jinja2

from glancesync.facade import RunResult, StatusReport
from glancesync.plan import StatusCategory
from glancesync.safenames import printable
from glancesync.throughput import Estimate
from glancesync.views import matrix as matrix_mod
from glancesync.views.runreport import mode_of, status_totals

#: Colours of the categories (background, text).
COLOURS = {
    StatusCategory.OK: ("#d9f2d9", "#1b5e20"),
    StatusCategory.PENDING: ("#fff3c4", "#7a5c00"),
    StatusCategory.NEEDS_OPERATOR: ("#f8d0d0", "#8b0000"),
    StatusCategory.INFO: ("#d6eaf8", "#154360"),
}

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GlanceSync: {{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: .2em; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: .25em .6em; }
th { background: #eee; }
table.matrix td.cell { text-align: center; font-family: monospace; font-weight: bold; }
td.name { font-family: monospace; max-width: 40em; overflow-wrap: anywhere; }
td.empty { color: #999; }
td.failed { background: #8b0000; color: #fff; }
table.details td.name { overflow-wrap: normal; }
{% for category, (bg, fg) in colours %}.{{ category }} { background: {{ bg }}; color: {{ fg }}; }
{% endfor %}ul.legend { list-style: none; padding: 0; columns: 2; }
ul.legend span { display: inline-block; width: 1.6em; text-align: center; font-family: monospace; font-weight: bold; }
</style>
</head>
<body>
<h1>GlanceSync: {{ title }}</h1>
<p class="meta">started <time>{{ started }}</time>, finished <time>{{ finished }}</time>{% if images %}; images matching {{ images }}{% endif %}</p>
<p class="summary">{{ summary }}</p>
<table class="matrix">
<thead><tr><th scope="col">image</th>{% for region in regions %}<th scope="col" data-region="{{ region.raw }}">{{ region.shown }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}<tr><td class="name" data-image="{{ row.raw }}">{{ row.shown }}</td>{% for cell in row.cells %}<td class="cell {{ cell.category }}" data-region="{{ cell.region }}" data-status="{{ cell.statuses }}" title="{{ cell.title }}">{{ cell.symbols }}</td>{% endfor %}</tr>
{% endfor %}{% if failures %}<tr><td class="name">(region failed)</td>{% for region in regions %}{% if region.raw in failures %}<td class="cell failed" data-region="{{ region.raw }}" data-status="failed" title="{{ failures[region.raw] }}">FAILED</td>{% else %}<td></td>{% endif %}{% endfor %}</tr>
{% endif %}</tbody>
</table>
<h2>Legend</h2>
<ul class="legend">
{% for item in legend %}<li><span class="{{ item.category }}">{{ item.symbol }}</span> {{ item.name }}: {{ item.description }}</li>
{% endfor %}<li><span class="empty">{{ not_synchronised }}</span> not synchronised to the region</li>
</ul>
{% if details %}<h2>Details</h2>
<table class="details">
<thead><tr><th>region</th><th>image</th><th>status</th><th>reason</th></tr></thead>
<tbody>
{% for item in details %}<tr><td>{{ item.region }}</td><td class="name">{{ item.name }}</td><td class="{{ item.category }}">{{ item.status }}</td><td>{{ item.reason }}</td></tr>
{% endfor %}</tbody>
</table>
{% endif %}<h2>Regions</h2>
<table class="regions">
<thead><tr><th>region</th><th>result</th><th>pending work</th></tr></thead>
<tbody>
{% for region in regions %}<tr><td>{{ region.shown }}</td><td>{{ region.result }}</td><td>{{ region.estimate }}</td></tr>
{% endfor %}</tbody>
</table>
{% if configured %}<p>Configured targets: {{ configured }}</p>{% endif %}
</body>
</html>
"""

_ENVIRONMENT = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def _shown(value: object) -> str:
    return printable("" if value is None else str(value))


def _time(seconds: float) -> str:
    if not seconds:
        return "?"
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def render(result: RunResult | StatusReport, *, targets: Sequence[str] = ()) -> str:
    """The page of ``result``; ``targets``: the configuration's targets (listed)."""
    results = getattr(result, "results", {})
    plans = matrix_mod.after_run(result.plans, results)
    grid = matrix_mod.build(plans, result.failures)
    mode = mode_of(result)
    title = {"status": "status", "dry_run": "dry run", "sync": "sync"}[mode]
    summary = (result.totals() if isinstance(result, RunResult) else status_totals(result))
    regions = []
    for region in grid.regions:
        if region in grid.failures:
            outcome = "failed"
        elif region in results:
            outcome = "done" if results[region].success else "failed"
        else:
            outcome = "in sync" if plans[region].in_sync else "pending"
        estimate: Estimate | None = result.estimates.get(region)
        regions.append({"raw": _shown(region), "shown": _shown(region), "result": outcome,
                        "estimate": estimate.describe() if estimate and estimate.bytes else ""})
    rows = []
    for image in grid.images:
        cells = []
        for region in grid.regions:
            statuses = grid.cell(image, region)
            category = matrix_mod.worst(statuses)
            cells.append({
                "region": _shown(region),
                "category": category.value if category else "empty",
                "statuses": " ".join(s.status.value for s in statuses) or "none",
                "symbols": matrix_mod.symbols(statuses),
                "title": "; ".join(_shown(f"{s.status.value}: {s.reason}" if s.reason
                                          else s.status.value) for s in statuses)
                         or "not synchronised to the region"})
        rows.append({"raw": _shown(image), "shown": _shown(image), "cells": cells})
    details = [{"region": _shown(s.region), "name": _shown(s.name), "status": s.status.value,
                "category": s.status.category.value, "reason": _shown(s.reason)}
               for plan in plans.values() for s in plan.statuses
               if s.status.category is not StatusCategory.OK]
    legend = [{"symbol": s.symbol, "name": s.value, "description": s.description,
               "category": s.category.value} for s in grid.used_statuses()]
    context: Mapping[str, Any] = {
        "title": title, "started": _time(result.started), "finished": _time(result.finished),
        "images": ", ".join(_shown(p) for p in result.images), "summary": _shown(summary),
        "regions": regions, "rows": rows, "legend": legend, "details": details,
        "failures": {_shown(r): _shown(e) for r, e in grid.failures.items()},
        "not_synchronised": matrix_mod.NOT_SYNCHRONISED,
        "colours": [(c.value, colours) for c, colours in COLOURS.items()],
        "configured": ", ".join(_shown(t) for t in targets),
    }
    return _ENVIRONMENT.from_string(TEMPLATE).render(context)

