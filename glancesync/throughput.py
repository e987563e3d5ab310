"""Throughput measured by earlier syncs, and estimates of pending work.

A small state file (JSON, written atomically) keeps the last
:data:`KEEP` measurements (bytes per second of the uploads of a sync) of
each region; an estimate of a plan is the bytes its uploads move and, when
the region has measurements, the time they take at their median rate.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import statistics
from pathlib import Path
from typing import Any, Iterable, Mapping

from glancesync import readback
from glancesync.errors import UnsafeFileError
from glancesync.integrity import atomic_file
from glancesync.plan import RegionPlan

LOG = logging.getLogger(__name__)

#: Measurements kept per region.
KEEP = 10

#: The state file's name (in ``run_dir``).
FILE_NAME = "throughput.json"

#: The largest state file read back (bytes): ten numbers per region.
MAX_SIZE = 16 * 1024 * 1024

#: A sync whose uploads took less than this (seconds) is not measured: too noisy.
MIN_SECONDS = 0.01


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What a region's pending work moves: ``bytes``; ``seconds`` (None: no measurement)."""

    bytes: int
    seconds: float | None = None
    rate: float | None = None  #: bytes per second the estimate uses

    def describe(self) -> str:
        """``"1.5 MiB to upload, about 3 s (at 512.0 KiB/s)"``."""
        text = f"{human_bytes(self.bytes)} to upload"
        if self.bytes and self.seconds is not None and self.rate:
            text += f", about {human_seconds(self.seconds)} (at {human_bytes(self.rate)}/s)"
        elif self.bytes:
            text += ", no throughput measured yet"
        return text


def human_bytes(size: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_seconds(seconds: float) -> str:
    """``3725`` -> ``"1 h 2 min"``; ``42`` -> ``"42 s"``."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def pending_bytes(plan: RegionPlan) -> int:
    """Bytes the uploads of ``plan`` send to the region."""
    return sum(op.size for op in plan.operations if op.uploads)


class ThroughputLog:
    """The measurements of the state file ``path`` (read once, written by :meth:`save`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rates: dict[str, list[float]] = self._load()

    def _load(self) -> dict[str, list[float]]:
        try:
            data: Any = readback.read_json(self.path, max_size=MAX_SIZE,
                                           what="the throughput measurements")
        except FileNotFoundError:
            return {}
        except UnsafeFileError as error:
            LOG.warning("%s: starting afresh", error)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(region): [float(r) for r in rates if isinstance(r, (int, float)) and r > 0]
                for region, rates in data.items() if isinstance(rates, list)}

    def rate(self, region: str) -> float | None:
        """The region's median measured rate (bytes per second), or None."""
        rates = self.rates.get(region)
        return statistics.median(rates) if rates else None

    def estimate(self, plan: RegionPlan) -> Estimate:
        """Bytes ``plan`` moves and, with a measured rate, the time it takes."""
        size = pending_bytes(plan)
        rate = self.rate(plan.region)
        return Estimate(size, size / rate if rate else None, rate)

    def record(self, region: str, transfers: Iterable[tuple[int, float]]) -> bool:
        """Add one measurement of ``region``: the ``(bytes, seconds)`` of a sync's uploads.

        Their total bytes over their total time; nothing when that time is
        below :data:`MIN_SECONDS`. Returns True when a measurement was added.
        """
        measured = [(size, seconds) for size, seconds in transfers if size > 0 and seconds > 0]
        total = sum(size for size, _ in measured)
        seconds = sum(seconds for _, seconds in measured)
        if seconds < MIN_SECONDS:
            return False
        self.rates[region] = (self.rates.get(region, []) + [total / seconds])[-KEEP:]
        return True

    def save(self) -> None:
        """Write the state file atomically; a failure is a warning (never fails a run)."""
        try:
            readback.make_folder(self.path.parent, "the folder of the throughput measurements (run_dir)")  # 0700
            with atomic_file(self.path, prefix=".throughput-", suffix=".tmp") as out:
                out.write(json.dumps(self.rates, indent=1, sort_keys=True).encode())
        except UnsafeFileError as error:
            LOG.warning("%s", error)
        except OSError as error:
            LOG.warning("throughput measurements cannot be saved in %s: %s",
                        self.path, error.strerror or error)


def estimates(log: ThroughputLog, plans: Mapping[str, RegionPlan]) -> dict[str, Estimate]:
    """One :class:`Estimate` per region of ``plans``."""
    return {region: log.estimate(plan) for region, plan in plans.items()}
