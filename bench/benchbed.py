"""The benchmark's test bed: boot or attach, GlanceSync config, request counting."""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from glancesync.testbed import TestBed, TestBedInfo

from rawglance import RawRegion, keystone_token


#: The three target regions of every measurement, as GlanceSync names them.
TARGETS = ("RegionA", "RegionB", "other:RegionC")
MASTER = "Master"
#: Test bed cloud used for each region (admin: images can be made public).
CLOUD_OF = {"Master": "master-admin", "RegionA": "master-admin",
            "RegionB": "master-admin", "RegionC": "other-admin"}

_ACCESS_LINE = re.compile(r"\] (GET|POST|PUT|PATCH|DELETE|HEAD) (\S+) => generated")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def region_name(target_region: str) -> str:
    """``other:RegionC`` -> ``RegionC``."""
    return target_region.split(":", 1)[-1]


@dataclasses.dataclass
class Bed:
    """A running test bed seen by the benchmark."""

    bed: TestBed
    info: TestBedInfo
    owned: bool  #: True when the benchmark booted it (and stops it)

    @classmethod
    def open(cls, home: Path, run_dir: Path, *, detach: bool = False) -> "Bed":
        """Attach to ``$GLANCESYNC_TESTBED_DIR`` if set, else boot in RUN_DIR.

        A booted bed dies with this process unless DETACH.
        """
        attach = os.environ.get("GLANCESYNC_TESTBED_DIR")
        if attach:
            bed = TestBed.load(attach)
            return cls(bed, bed.info, owned=False)
        if run_dir.exists():
            # A bed left by an earlier run: its processes must be gone (every
            # thread exited, see glancesync.testbed.procs) before its folder is.
            TestBed(run_dir, home=home).stop()
            shutil.rmtree(run_dir)
        bed = TestBed(run_dir, home=home)
        bed.install()
        # No retry: a boot that fails is a defect of the bed to fix, and
        # the error says which service failed and why.
        return cls(bed, bed.start(detach=detach), owned=True)

    def close(self) -> None:
        """Stop the bed if the benchmark booted it, and free its disk."""
        if self.owned:
            self.bed.stop()
            shutil.rmtree(self.bed.run_dir, ignore_errors=True)

    def raw(self, region: str) -> RawRegion:
        """A raw client of REGION (``RegionC`` or ``other:RegionC``)."""
        name = region_name(region)
        cloud = CLOUD_OF[name]
        return RawRegion(name, self.info.glance_urls[name], keystone_token(self.info.auth(cloud)),
                         self.info.project_id(cloud))

    def config_text(self, work: Path, max_children: int = 3,
                    extra: dict[str, dict[str, object]] | None = None) -> str:
        """A GlanceSync INI for the bed: master on Keystone #1, ``other`` on #2.

        ``extra`` adds options to sections (new sections too, e.g.
        ``master:RegionA``).
        """
        sections: dict[str, dict[str, object]] = {
            "main": {"master_region": MASTER, "max_children": max_children,
                     "cache_dir": work / "cache", "run_dir": work / "runs"},
            "master": dict(self.info.auth("master-admin")),
            "other": dict(self.info.auth("other-admin")),
        }
        for section, options in (extra or {}).items():
            sections.setdefault(section, {}).update(options)
        lines = []
        for section, options in sections.items():
            lines.append(f"[{section}]")
            lines.extend(f"{key} = {value}" for key, value in options.items())
            lines.append("")
        return "\n".join(lines)

    def service_logs(self) -> dict[str, Path]:
        """Service name (``glance-RegionA``, ``keystone-master``...) -> its uWSGI log."""
        return {path.stem: path for path in sorted((self.info.run_dir / "logs").glob("*.log"))
                if path.stem.startswith(("glance-", "keystone-"))
                and not path.stem.startswith("setup-")}


class RequestCounter:
    """Counts the requests each service logged between ``start`` and ``stop``.

    uWSGI writes one access line per request; the counter remembers the size
    of every log at the start and parses only what was appended.
    """

    def __init__(self, logs: dict[str, Path]) -> None:
        self.logs = logs
        self._offsets: dict[str, int] = {}
        self.by_service: dict[str, collections.Counter[str]] = {}

    def start(self) -> None:
        self._offsets = {name: path.stat().st_size for name, path in self.logs.items()}

    def stop(self) -> None:
        for name, path in self.logs.items():
            counts: collections.Counter[str] = collections.Counter()
            with open(path, "rb") as handle:
                handle.seek(self._offsets.get(name, 0))
                for raw in handle:
                    match = _ACCESS_LINE.search(raw.decode("utf-8", "replace"))
                    if match:
                        counts[f"{match.group(1)} {_template(match.group(2))}"] += 1
            self.by_service[name] = counts

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.by_service.values())

    def glance_total(self) -> int:
        return sum(sum(c.values()) for name, c in self.by_service.items()
                   if name.startswith("glance-"))

    def per_image_gets(self) -> int:
        """GETs of one image (``/v2/images/<id>``): a no-op run should make none."""
        return sum(n for c in self.by_service.values() for key, n in c.items()
                   if key.startswith("GET /v2/images/{id}"))


def _template(path: str) -> str:
    """A request path with ids and query values folded, for grouping."""
    path = _UUID.sub("{id}", path)
    base, _, query = path.partition("?")
    if query:
        keys = sorted({item.split("=", 1)[0] for item in query.split("&")})
        base += "?" + "&".join(keys)
    return base


@contextlib.contextmanager
def counting(bed: Bed) -> Iterator[RequestCounter]:
    """Count the requests the bed's services receive inside the block."""
    counter = RequestCounter(bed.service_logs())
    counter.start()
    try:
        yield counter
    finally:
        counter.stop()
