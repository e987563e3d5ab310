"""Prometheus metrics of a run (``metrics_file``), for node_exporter's textfile collector.

Built with ``prometheus_client`` in a registry of their own and written
atomically (:func:`~glancesync.integrity.atomic_file`: a temporary file
renamed over the old one, with the mode of :mod:`glancesync.filemodes`), at the end of every run: status, dry run and
sync; after a sync, images count as the sync left them
(:func:`~glancesync.views.matrix.after_run`). A run replaces the series of
what it covered and keeps the earlier file's others as they were (other
regions, other modes, the images outside ``--image``, the images of a
region it could not read), with their time stamps: staleness stays
visible, and an alert clears only when a run saw the image fixed. The last
success time of a region is carried over, so a failed run (or a status
run) never resets it.

Metrics (every one a gauge; names in :data:`NAMES`):

``glancesync_images{region,status}``
    images of the region per status (every status, 0 included)
``glancesync_image_in_sync{region,image}``
    1 when the image is ``ok`` in the region (an ``ok`` category), else 0
``glancesync_image_needs_operator{region,image}``
    1 when only an operator can resolve the image's status
``glancesync_image_checked_timestamp_seconds{region,image}``
    end of the last run that read the image's status in the region
``glancesync_image_status{region,image,status}``
    the image's status lines in the region per status (usually one); under
    ``--image``, ``glancesync_images`` adds those of the images left out
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
from typing import Iterable, Mapping

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from glancesync import readback, scope
from glancesync.errors import UnsafeFileError
from glancesync.executor import RegionResult
from glancesync.facade import RunResult, StatusReport
from glancesync.filemodes import OutputModes
from glancesync.integrity import atomic_file
from glancesync.plan import RegionPlan, Status, StatusCategory
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
    "glancesync_image_checked_timestamp_seconds": (("region", "image"),
                                                   "When the image's status was last read"),
    "glancesync_image_status": (("region", "image", "status"),
                                "Status lines of the image in the region per status"),
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


#: The per-image metrics: a run that covers only some images (``--image``)
#: replaces the series of those and keeps the others.
IMAGE_METRICS = ("glancesync_image_in_sync", "glancesync_image_needs_operator",
                 "glancesync_image_checked_timestamp_seconds", "glancesync_image_status")

#: The metrics of a run that carry its ``mode``: a run replaces those of its own mode.
MODE_METRICS = ("glancesync_last_run_start_timestamp_seconds",
                "glancesync_last_run_end_timestamp_seconds", "glancesync_last_run_success")


#: The largest previous metrics file read back (bytes).
MAX_SIZE = 256 * 1024 * 1024

#: Characters escaped in label values besides those of the text format
#: (``\\``, ``"``, newline): every control character and the Unicode line
#: breaks, which a reader splitting lines (universal newlines) cuts at.
_UNSAFE_IN_LABELS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _label(value: object) -> str:
    """A label value, redacted, every control character written ``\\xHH`` (or ``\\uHHHH``).

    Idempotent: a value read back from an earlier file (already escaped)
    is written as it was.
    """
    return _UNSAFE_IN_LABELS.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
        else f"\\u{ord(m.group()):04x}", REDACTOR.redact(str(value)))


def _labels(*values: object) -> list[str]:
    """:func:`_label` of each value."""
    return [_label(value) for value in values]


def previous_samples(path: Path) -> list[Sample]:
    """The samples of GlanceSync's metrics in the earlier file at ``path``.

    Read back through :mod:`glancesync.readback` and parsed with
    ``prometheus_client``'s own parser. A missing file gives nothing. A
    file that cannot be read back (not this user's, a FIFO, too large, not
    UTF-8, not the text format) is an error an operator sees (logged as
    such): the run writes its own series only, and the staleness alerts of
    the series it held count from this run. Samples of other metrics, with
    other labels or a value that is not finite are left out.
    """
    try:
        data = readback.read_bytes(Path(path), max_size=MAX_SIZE,
                                   what="the previous metrics file")
        text = data.decode("utf-8")  # bytes: no newline translation
    except FileNotFoundError:
        return []
    except (UnsafeFileError, UnicodeDecodeError) as error:
        LOG.error("metrics file %s cannot be read back (%s): the series it held are lost",
                  path, error)
        return []
    found: list[Sample] = []
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                expected = NAMES.get(sample.name)
                if (expected is not None and set(sample.labels) == set(expected[0])
                        and math.isfinite(sample.value)):
                    found.append(sample)
    except ValueError as error:
        LOG.error("metrics file %s cannot be read back (not the Prometheus text format:"
                  " %s): the series it held are lost", path, error)
        return []
    return found


def previous_successes(path: Path) -> dict[str, float]:
    """``glancesync_last_success_timestamp_seconds`` per region of the file at ``path``."""
    return {sample.labels["region"]: sample.value for sample in previous_samples(path)
            if sample.name == "glancesync_last_success_timestamp_seconds"}


def known_regions(samples: Iterable[Sample]) -> list[str]:
    """The regions the samples of an earlier file name, sorted."""
    return sorted({sample.labels["region"] for sample in samples})


def _kept(sample: Sample, result: RunResult | StatusReport, mode: str) -> bool:
    """Whether an earlier file's ``sample`` stays: this run did not cover what it says.

    Covered: every series of a region this run read (its plan), but the
    images outside ``--image`` of a run limited to some images; the run's
    own mode of the regions it failed on. A
    ``target:`` series (a run that failed before it could list the target's
    regions) is covered by any run that reached a region of the target.
    """
    region = sample.labels["region"]  # as written: escaped
    planned = {_label(name) for name in result.plans}
    reached = planned | {_label(name) for name in result.failures}
    if region.endswith(":") and any(r.startswith(region) for r in reached):
        return False
    if region not in reached:
        return True
    if sample.name == "glancesync_last_success_timestamp_seconds":
        return False  # carried over by registry_for's ``previous``
    if sample.name in MODE_METRICS:
        return sample.labels["mode"] != mode
    if region not in planned:  # failed before it was read: what it held stays
        return sample.name in IMAGE_METRICS or sample.name == "glancesync_images"
    if result.images and sample.name in IMAGE_METRICS:
        return not scope.matches(sample.labels["image"], result.images)
    return False


def registry_for(result: RunResult | StatusReport,
                 previous: Mapping[str, float] | Iterable[Sample] = ()) -> CollectorRegistry:
    """A registry holding the metrics of ``result``, merged with an earlier file's.

    ``previous``: the samples of the earlier file (:func:`previous_samples`;
    or, as before, region -> last success time). Every series this run did
    not cover is kept as it was, with its time stamps, so that staleness
    stays visible and an alert on a region or an image this run did not
    look at neither fires nor clears. The last success time of a region is
    set only by a successful sync of all its images (not ``--image``).
    Label values are redacted and their control characters escaped
    (:func:`_label`).
    """
    registry = CollectorRegistry()
    gauges = {name: Gauge(name, text, labels, registry=registry)
              for name, (labels, text) in NAMES.items()}
    mode = mode_of(result)
    results = getattr(result, "results", {})
    plans = after_run(result.plans, results)
    if isinstance(previous, Mapping):
        samples: list[Sample] = []
        successes = {_label(region): moment for region, moment in previous.items()}
    else:
        samples = list(previous)
        successes = {s.labels["region"]: s.value for s in samples
                     if s.name == "glancesync_last_success_timestamp_seconds"}
    kept_statuses = _keep_samples(gauges, samples, result, mode)
    for region in sorted(set(result.plans) | set(result.failures)):
        plan = plans.get(region)
        outcome = results.get(region)
        region_failed = (region in result.failures
                         or (outcome is not None and not outcome.success))
        label = _label(region)
        gauges["glancesync_last_run_start_timestamp_seconds"].labels(label, mode).set(
            result.started)
        gauges["glancesync_last_run_end_timestamp_seconds"].labels(label, mode).set(
            result.finished)
        gauges["glancesync_last_run_success"].labels(label, mode).set(
            0 if region_failed else 1)
        if mode == "sync" and not region_failed and not result.images:
            successes[label] = result.finished
        if plan is not None:
            earlier = kept_statuses.get(label, {}) if result.images else {}
            _image_series(gauges, label, plan, earlier, result.finished)
        _operation_series(gauges, label, outcome if mode == "sync" else None)
    for label, moment in sorted(successes.items()):
        gauges["glancesync_last_success_timestamp_seconds"].labels(label).set(moment)
    return registry


def _keep_samples(gauges: Mapping[str, Gauge], samples: Iterable[Sample],
                  result: RunResult | StatusReport, mode: str) -> dict[str, dict[str, float]]:
    """Set the earlier file's samples this run did not cover (:func:`_kept`).

    :returns: region label -> status -> the kept ``glancesync_image_status``
        lines (the images outside ``--image``).
    """
    kept_statuses: dict[str, dict[str, float]] = {}
    for sample in samples:
        if sample.name != "glancesync_last_success_timestamp_seconds" and _kept(
                sample, result, mode):
            gauges[sample.name].labels(**sample.labels).set(sample.value)
            if sample.name == "glancesync_image_status":
                counts_of = kept_statuses.setdefault(sample.labels["region"], {})
                status = sample.labels["status"]
                counts_of[status] = counts_of.get(status, 0) + sample.value
    return kept_statuses


def _image_series(gauges: Mapping[str, Gauge], label: str, plan: RegionPlan,
                  earlier: Mapping[str, float], finished: float) -> None:
    """The per-status and per-image series of one region's plan.

    ``earlier``: status -> lines of the images a ``--image`` run left out,
    counted as the earlier run saw them.
    """
    counts = plan.counts()
    for status in Status:
        gauges["glancesync_images"].labels(label, status.value).set(
            counts[status] + earlier.get(status.value, 0))
    lines: dict[tuple[str, str], int] = {}
    for item in plan.statuses:
        key = (item.name, item.status.value)
        lines[key] = lines.get(key, 0) + 1
    for (name, status_value), number in sorted(lines.items()):
        gauges["glancesync_image_status"].labels(label, _label(name), status_value).set(
            number)
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
        image = _label(name)
        gauges["glancesync_image_in_sync"].labels(label, image).set(int(in_sync[name]))
        gauges["glancesync_image_needs_operator"].labels(label, image).set(
            int(operator[name]))
        gauges["glancesync_image_checked_timestamp_seconds"].labels(label, image).set(
            finished)


def _operation_series(gauges: Mapping[str, Gauge], label: str,
                      outcome: RegionResult | None) -> None:
    """The bytes sent to a region and its operations per kind and result (a sync only)."""
    transferred = outcome.bytes_uploaded if outcome else 0
    gauges["glancesync_last_run_transferred_bytes"].labels(label).set(transferred)
    counted: dict[tuple[str, str], int] = {}
    for op in (outcome.outcomes if outcome else []):
        key = (op.kind.value, op.result)
        counted[key] = counted.get(key, 0) + 1
    for (kind, done), number in sorted(counted.items()):
        gauges["glancesync_last_run_operations"].labels(label, kind, done).set(number)


def write(path: Path, result: RunResult | StatusReport,
          modes: OutputModes | None = None) -> None:
    """Write the metrics of ``result``, merged with the file's earlier ones, atomically.

    ``modes``: who may read the file (:mod:`glancesync.filemodes`; default:
    its owner only).

    :raises OSError: the file cannot be written (the caller reports it).
    """
    registry = registry_for(result, previous_samples(path))
    path = Path(path)
    with atomic_file(path, prefix=f".{path.name}.", suffix=".tmp") as out:
        (modes or OutputModes()).apply_fd(out.fileno())
        out.write(generate_latest(registry))
