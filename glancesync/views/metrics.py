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
import re
from pathlib import Path
from typing import Mapping

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from glancesync import readback
from glancesync.errors import UnsafeFileError
from glancesync.facade import RunResult, StatusReport
from glancesync.plan import Status, StatusCategory
from glancesync.redaction import REDACTOR
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


#: The largest previous metrics file read back (bytes).
MAX_SIZE = 256 * 1024 * 1024

#: Characters escaped in label values besides those of the text format
#: (``\\``, ``"``, newline): every control character and the Unicode line
#: breaks, which a reader splitting lines (universal newlines) cuts at.
_UNSAFE_IN_LABELS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _labels(*values: object) -> list[str]:
    """Label values, redacted, every control character written ``\\xHH`` (or ``\\uHHHH``)."""
    return [_UNSAFE_IN_LABELS.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                  else f"\\u{ord(m.group()):04x}", REDACTOR.redact(str(value)))
            for value in values]


def previous_successes(path: Path) -> dict[str, float]:
    """``glancesync_last_success_timestamp_seconds`` per region of the file at ``path``.

    A missing file gives nothing. A file that cannot be read back (it is
    not this user's, a FIFO, too large, not UTF-8, not the text format) is
    an error an operator sees (logged as such): its last success times are
    lost, and the staleness alerts of its regions count from this run.
    """
    try:
        data = readback.read_bytes(Path(path), max_size=MAX_SIZE,
                                   what="the previous metrics file")
        text = data.decode("utf-8")  # bytes: no newline translation
    except FileNotFoundError:
        return {}
    except (UnsafeFileError, UnicodeDecodeError) as error:
        LOG.error("metrics file %s cannot be read back (%s): the last success times it"
                  " held are lost", path, error)
        return {}
    found: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if (sample.name == "glancesync_last_success_timestamp_seconds"
                        and "region" in sample.labels and math.isfinite(sample.value)):
                    found[sample.labels["region"]] = sample.value
    except ValueError as error:
        LOG.error("metrics file %s cannot be read back (not the Prometheus text format:"
                  " %s): the last success times it held are lost", path, error)
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
    # Keyed as written: a name read back from the file is already escaped.
    successes = {_labels(region)[0]: moment for region, moment in dict(previous or {}).items()}
    for region in sorted(set(result.plans) | set(result.failures)):
        plan = plans.get(region)
        outcome = results.get(region)
        failed = region in result.failures or (outcome is not None and not outcome.success)
        labels = _labels(region, mode)
        gauges["glancesync_last_run_start_timestamp_seconds"].labels(*labels).set(
            result.started)
        gauges["glancesync_last_run_end_timestamp_seconds"].labels(*labels).set(
            result.finished)
        gauges["glancesync_last_run_success"].labels(*labels).set(0 if failed else 1)
        if mode == "sync" and not failed:
            successes[_labels(region)[0]] = result.finished
        if plan is not None:
            counts = plan.counts()
            for status in Status:
                gauges["glancesync_images"].labels(*_labels(region, status.value)).set(
                    counts[status])
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
                gauges["glancesync_image_in_sync"].labels(*_labels(region, name)).set(
                    int(in_sync[name]))
                gauges["glancesync_image_needs_operator"].labels(*_labels(region, name)).set(
                    int(operator[name]))
        transferred = outcome.bytes_uploaded if outcome and mode == "sync" else 0
        gauges["glancesync_last_run_transferred_bytes"].labels(*_labels(region)).set(transferred)
        counted: dict[tuple[str, str], int] = {}
        for op in (outcome.outcomes if outcome and mode == "sync" else []):
            key = (op.kind.value, op.result)
            counted[key] = counted.get(key, 0) + 1
        for (kind, done), number in sorted(counted.items()):
            gauges["glancesync_last_run_operations"].labels(*_labels(region, kind, done)).set(
                number)
    for region, moment in sorted(successes.items()):
        gauges["glancesync_last_success_timestamp_seconds"].labels(region).set(moment)
    return registry


def write(path: Path, result: RunResult | StatusReport) -> None:
    """Write the metrics of ``result`` to ``path`` atomically.

    :raises OSError: the file cannot be written (the caller reports it).
    """
    registry = registry_for(result, previous_successes(path))
    write_to_textfile(str(path), registry)
