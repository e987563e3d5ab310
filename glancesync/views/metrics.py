"""Prometheus metrics of a run (``metrics_file``), for node_exporter's textfile collector.

Built with ``prometheus_client`` in a registry of their own and written
atomically (:func:`prometheus_client.write_to_textfile`: a temporary file
renamed over the old one), at the end of every run: status, dry run and
sync; after a sync, images count as the sync left them
(:func:`~glancesync.views.matrix.after_run`). The last success time of a region is carried over from the previous
file, so a failed run (or a status run) never resets it.

Metrics (every one a gauge; names in :data:`NAMES`):

``glancesync_images{region,status}``
    images of the region per status (every status, 0 included)
``glancesync_image_in_sync{region,image}``
    1 when the image is ``ok`` in the region (an ``ok`` category), else 0
``glancesync_image_needs_operator{region,image}``
    1 when only an operator can resolve the image's status
``glancesync_last_run_start_timestamp_seconds{region,mode}``,
``glancesync_last_run_end_timestamp_seconds{region,mode}``
    the last run's start and end (``mode``: status, dry_run or sync)
``glancesync_last_run_success{region,mode}``
    1 when the last run of the region succeeded (no error), else 0
``glancesync_last_success_timestamp_seconds{region}``
    end of the last successful sync of the region
``glancesync_last_run_transferred_bytes{region}``
    image data the last run sent to the region
``glancesync_last_run_operations{region,kind,result}``
    operations of the last run per kind and result (done, failed, refused, postponed)
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Mapping

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from glancesync.facade import RunResult, StatusReport
from glancesync.plan import Status, StatusCategory
from glancesync.views.matrix import after_run
from glancesync.views.runreport import mode_of

LOG = logging.getLogger(__name__)

PREFIX = "glancesync_"

#: Every metric: name -> (labels, help).
NAMES: dict[str, tuple[tuple[str, ...], str]] = {
    "glancesync_images": (("region", "status"), "Images of the region per status"),
    "glancesync_image_in_sync": (("region", "image"),
                                 "1 when the image is ok in the region, else 0"),
    "glancesync_image_needs_operator": (("region", "image"),
                                        "1 when only an operator can resolve the image"),
    "glancesync_last_run_start_timestamp_seconds": (("region", "mode"),
                                                    "Start of the last run"),
    "glancesync_last_run_end_timestamp_seconds": (("region", "mode"), "End of the last run"),
    "glancesync_last_run_success": (("region", "mode"),
                                    "1 when the last run of the region succeeded"),
    "glancesync_last_success_timestamp_seconds": (("region",),
                                                  "End of the last successful sync"),
    "glancesync_last_run_transferred_bytes": (("region",),
                                              "Image data the last run sent to the region"),
    "glancesync_last_run_operations": (("region", "kind", "result"),
                                       "Operations of the last run per kind and result"),
}


def previous_successes(path: Path) -> dict[str, float]:
    """``glancesync_last_success_timestamp_seconds`` per region of the file at ``path``.

    A missing or unreadable file gives nothing (a warning for unreadable).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        LOG.warning("metrics file %s cannot be read: %s", path, error)
        return {}
    found: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if (sample.name == "glancesync_last_success_timestamp_seconds"
                        and "region" in sample.labels and math.isfinite(sample.value)):
                    found[sample.labels["region"]] = sample.value
    except ValueError as error:
        LOG.warning("metrics file %s cannot be parsed (%s): last success times restart",
                    path, error)
        return {}
    return found


def registry_for(result: RunResult | StatusReport,
                 previous: Mapping[str, float] = ()) -> CollectorRegistry:
    """A registry holding the metrics of ``result``.

    ``previous``: region -> last success time of the earlier file, kept for
    every region this run does not synchronise successfully (and for
    regions it did not touch).
    """
    registry = CollectorRegistry()
    gauges = {name: Gauge(name, text, labels, registry=registry)
              for name, (labels, text) in NAMES.items()}
    mode = mode_of(result)
    results = getattr(result, "results", {})
    plans = after_run(result.plans, results)
    successes = dict(previous or {})
    for region in sorted(set(result.plans) | set(result.failures)):
        plan = plans.get(region)
        outcome = results.get(region)
        failed = region in result.failures or (outcome is not None and not outcome.success)
        gauges["glancesync_last_run_start_timestamp_seconds"].labels(region, mode).set(
            result.started)
        gauges["glancesync_last_run_end_timestamp_seconds"].labels(region, mode).set(
            result.finished)
        gauges["glancesync_last_run_success"].labels(region, mode).set(0 if failed else 1)
        if mode == "sync" and not failed:
            successes[region] = result.finished
        if plan is not None:
            counts = plan.counts()
            for status in Status:
                gauges["glancesync_images"].labels(region, status.value).set(counts[status])
            in_sync: dict[str, bool] = {}
            operator: dict[str, bool] = {}
            for item in plan.statuses:
                if item.status is Status.PENDING_CLEANUP:
                    continue  # a leftover: not an image of the master
                # A name may have several lines (duplicates, copies): all must be ok.
                in_sync[item.name] = (in_sync.get(item.name, True)
                                      and item.status.category is StatusCategory.OK)
                operator[item.name] = operator.get(item.name, False) or item.status.is_error
            for name in sorted(in_sync):
                gauges["glancesync_image_in_sync"].labels(region, name).set(int(in_sync[name]))
                gauges["glancesync_image_needs_operator"].labels(region, name).set(
                    int(operator[name]))
        transferred = outcome.bytes_uploaded if outcome and mode == "sync" else 0
        gauges["glancesync_last_run_transferred_bytes"].labels(region).set(transferred)
        counted: dict[tuple[str, str], int] = {}
        for op in (outcome.outcomes if outcome and mode == "sync" else []):
            key = (op.kind.value, op.result)
            counted[key] = counted.get(key, 0) + 1
        for (kind, done), number in sorted(counted.items()):
            gauges["glancesync_last_run_operations"].labels(region, kind, done).set(number)
    for region, moment in sorted(successes.items()):
        gauges["glancesync_last_success_timestamp_seconds"].labels(region).set(moment)
    return registry


def write(path: Path, result: RunResult | StatusReport) -> None:
    """Write the metrics of ``result`` to ``path`` atomically.

    :raises OSError: the file cannot be written (the caller reports it).
    """
    registry = registry_for(result, previous_successes(path))
    write_to_textfile(str(path), registry)
