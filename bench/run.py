"""GlanceSync benchmark: ratios measured side by side on the loopback test bed.

Run ``make bench`` (or ``.venv/bin/python bench/run.py --help``). It boots
its own test bed under the test bed home (or attaches to the one named by
``GLANCESYNC_TESTBED_DIR``), generates its images, measures, prints a table
of figures and targets, and writes ``bench/results/bench-<time>.json`` and
``.txt``. It reports; it never fails because a target is missed (exit 0),
only when something could not be measured (exit 1).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

from glancesync.errors import GlanceSyncError
from glancesync.testbed.client import install_openstackclient, openstack_command

from benchbed import Bed
from measures import PREFIX, Bench
from rawglance import GiB, MiB

LOG = logging.getLogger("bench")
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PHASES = ("limit", "operator", "big", "noop")


@dataclasses.dataclass
class Target:
    """One figure compared with its target."""

    name: str
    value: float | None
    goal: str
    met: bool | None
    note: str = ""

    def line(self) -> str:
        state = {True: "MET", False: "NOT MET", None: "n/a"}[self.met]
        value = "-" if self.value is None else f"{self.value:.3f}"
        text = f"  {self.name:<52} {value:>9}  target {self.goal:<12} {state}"
        return text + (f"  ({self.note})" if self.note else "")


class Report:
    """Figures and targets of one run, printed as they come and saved at the end."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.began = time.monotonic()
        self.when = datetime.datetime.now().astimezone()
        self.figures: dict[str, Any] = {"arguments": vars(args).copy()}
        self.targets: list[Target] = []
        self.notes: list[str] = []
        self.lines: list[str] = []

    def say(self, text: str) -> None:
        load = os.getloadavg()[0]
        line = f"[{time.monotonic() - self.began:6.1f} s, load {load:4.1f}] {text}"
        self.lines.append(line)
        print(line, flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.say(f"NOTE: {text}")

    def target(self, name: str, value: float | None, goal: str,
               check: Callable[[float], bool], note: str = "") -> None:
        met = None if value is None else bool(check(value))
        self.targets.append(Target(name, value, goal, met, note))

    def summary(self) -> list[str]:
        lines = [f"GlanceSync benchmark, {self.when:%Y-%m-%d %H:%M %Z}, "
                 f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
                 f"total {time.monotonic() - self.began:.0f} s", "", "Targets:"]
        lines += [t.line() for t in self.targets]
        if self.notes:
            lines += ["", "Notes:"] + [f"  - {n}" for n in self.notes]
        return lines

    def save(self) -> tuple[Path, Path]:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = RESULTS / f"bench-{self.when:%Y%m%d-%H%M%S}"
        data = {"date": self.when.isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "total_seconds": round(time.monotonic() - self.began, 1),
                "targets": [dataclasses.asdict(t) for t in self.targets],
                "notes": self.notes, "figures": self.figures}
        json_path = stem.with_suffix(".json")
        json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        text_path = stem.with_suffix(".txt")
        text_path.write_text("\n".join(self.lines + [""] + self.summary()) + "\n")
        return json_path, text_path


def _mib_s(size: int, seconds: float) -> str:
    return f"{size / MiB / seconds:.0f} MiB/s"


def _limit(bench: Bench, report: Report, image_id: str, size: int) -> dict[str, Any]:
    limit = bench.physical_limit(image_id, size)
    report.say(f"physical limit: {limit['seconds']:.2f} s (GET {limit['get_seconds']:.2f}"
               f" s, parallel PUTs {limit['put_seconds']:.2f} s, "
               f"{_mib_s(3 * size, limit['put_seconds'])} uploaded, client CPU "
               f"{limit['cpu_seconds']:.1f} s)")
    return limit


def _master_image(bench: Bench, report: Report, size: int, copies: int,
                  what: str) -> tuple[str, str] | None:
    """Upload a generated master image of ``size``; None if the disk is too small.

    ``copies`` is how many copies of the image the phase keeps on disk at once.
    """
    need = copies * size + GiB
    if bench.free_bytes() < need:
        report.note(f"only {bench.free_bytes() / GiB:.1f} GiB free, {need / GiB:.1f} needed: "
                    f"the {size / GiB:g} GiB {what} skipped")
        return None
    name = f"{PREFIX}{size // MiB}mib"
    image_id, seconds = bench.upload_master(name, size)
    report.say(f"master image {name} uploaded in {seconds:.1f} s ({_mib_s(size, seconds)})")
    return image_id, name


def phase_one(bench: Bench, report: Report, size: int, skip: set[str]) -> None:
    """The image of ``--size-gib``: limit, GlanceSync cold and warm, CLI, operator."""
    uploaded = _master_image(bench, report, size, 9, "measurements are")
    if uploaded is None:
        return
    image_id, name = uploaded
    figures = report.figures.setdefault("image", {"size_bytes": size})

    limits = []
    if "limit" not in skip:
        limits.append(_limit(bench, report, image_id, size))
    bench.clear_cache()
    cold = bench.sync_in_process()
    figures["glancesync_cold"] = cold
    report.say(f"GlanceSync (in process, cold cache): {cold['seconds']:.2f} s, "
               f"{cold['uploads']} uploads, {cold['bytes_downloaded']} bytes read from master, "
               f"client CPU {cold['cpu_seconds']:.1f} s")
    if "limit" not in skip:
        # Measured before and after: the mean follows a load that drifts.
        limits.append(_limit(bench, report, image_id, size))
        figures["physical_limit"] = limits
    warm = bench.sync_in_process()
    figures["glancesync_second_run"] = warm
    report.say(f"GlanceSync second run: {warm['seconds']:.2f} s, {warm['uploads']} uploads, "
               f"{warm['bytes_downloaded']} bytes read from master")

    bench.clear_targets()
    bench.clear_cache()
    cli = bench.sync_cli()
    figures["glancesync_cli_cold"] = cli
    report.say(f"glancesync-sync (CLI, cold cache): {cli['seconds']:.2f} s, peak RSS "
               f"{cli['peak_rss_bytes'] / MiB:.1f} MiB, CPU {cli['cpu_seconds']:.1f} s")
    bench.clear_targets()
    bench.clear_cache()

    if limits:
        times = [limit["seconds"] for limit in limits]
        limit_s = sum(times) / len(times)
        report.target("GlanceSync sync time / physical limit", cold["seconds"] / limit_s,
                      "<= 1.15", lambda v: v <= 1.15,
                      f"{cold['seconds']:.2f} s / {limit_s:.2f} s, the mean of "
                      f"{' and '.join(f'{t:.2f}' for t in times)}; CLI "
                      f"{cli['seconds'] / limit_s:.2f}")
    report.target("bytes read from master / image size", cold["bytes_downloaded"] / size,
                  "== 1.0", lambda v: v == 1.0)
    report.target("second run: bytes read + uploads",
                  warm["bytes_downloaded"] + warm["uploads"], "== 0", lambda v: v == 0)

    if "operator" not in skip:
        operator = bench.operator_loop(image_id, name)
        figures["operator_loop"] = operator
        report.say(f"operator loop (openstack CLI): {operator['seconds']:.2f} s "
                   f"{operator['steps']}")
        bench.clear_targets()
        report.target("GlanceSync CLI / operator's loop", cli["seconds"] / operator["seconds"],
                      "<= 0.5", lambda v: v <= 0.5,
                      f"{cli['seconds']:.2f} s / {operator['seconds']:.2f} s")
    bench.clear_master()
    report.target(f"peak RSS, {size / GiB:g} GiB image (MB)", cli["peak_rss_bytes"] / 1e6,
                  "<= 150", lambda v: v <= 150)


def phase_big(bench: Bench, report: Report, size: int, big: int) -> None:
    """Peak RSS of ``glancesync-sync`` for the big image, compared with the first."""
    if _master_image(bench, report, big, 5, "RSS measurement is") is None:
        return
    figures = report.figures.setdefault("big_image", {"size_bytes": big})
    bench.clear_cache()
    cli = bench.sync_cli()
    figures["glancesync_cli_cold"] = cli
    report.say(f"glancesync-sync {big / GiB:g} GiB: {cli['seconds']:.2f} s, peak RSS "
               f"{cli['peak_rss_bytes'] / MiB:.1f} MiB, CPU {cli['cpu_seconds']:.1f} s")
    bench.clear_targets()
    bench.clear_cache()
    bench.clear_master()
    small_rss = report.figures.get("image", {}).get("glancesync_cli_cold", {}).get(
        "peak_rss_bytes")
    report.target(f"peak RSS, {big / GiB:g} GiB image (MB)", cli["peak_rss_bytes"] / 1e6,
                  "<= 150", lambda v: v <= 150)
    if small_rss:
        report.target(f"peak RSS {big / GiB:g} GiB / {size / GiB:g} GiB image",
                      cli["peak_rss_bytes"] / small_rss, "<= 1.10",
                      lambda v: abs(v - 1) <= 0.10)


def phase_noop(bench: Bench, report: Report, count: int) -> None:
    """A run over COUNT small images already in sync in the three regions."""
    setup = bench.create_small_images(count)
    report.figures["noop_setup"] = setup
    report.say(f"set-up: {setup['images']} small images created in {setup['seconds']:.1f} s "
               f"({setup['images'] / setup['seconds']:.0f} images/s)")
    runs = bench.noop_runs(count)
    report.figures["noop"] = runs
    for label, run in (("in process", runs["in_process"]), ("CLI", runs["cli"])):
        report.say(f"no-op run ({label}): {run['seconds']:.2f} s, {run['http_requests']} "
                   f"HTTP requests ({run['glance_requests']} to Glance, "
                   f"{run['per_image_gets']} per-image GETs), "
                   f"{run.get('uploads', 0)} uploads")
    cli = runs["cli"]
    inproc = runs["in_process"]
    if inproc["ok"] != 3 * count or inproc["uploads"] or inproc["updated"]:
        report.note(f"the no-op run found {inproc['ok']} images ok of {3 * count}, "
                    f"uploaded {inproc['uploads']}, updated {inproc['updated']}: the set-up "
                    f"differs from what GlanceSync expects")
    report.target(f"no-op run over {count} images x 3 regions, CLI (s)", cli["seconds"],
                  "<= 3", lambda v: v <= 3, f"in process {inproc['seconds']:.2f} s")
    report.target("no-op run: HTTP requests", cli["http_requests"], "paginated",
                  lambda v: cli["per_image_gets"] == 0,
                  f"{cli['per_image_gets']} per-image GETs")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark GlanceSync on the loopback test bed and report ratios.")
    parser.add_argument("--size-gib", type=float, default=1.0,
                        help="image size of the sync, limit and operator runs (default 1)")
    parser.add_argument("--big-size-gib", type=float, default=4.0,
                        help="image size of the second peak RSS measurement (default 4)")
    parser.add_argument("--small-images", type=int, default=1000,
                        help="images per region of the no-op run (default 1000)")
    parser.add_argument("--skip", nargs="+", choices=PHASES, default=[], metavar="PHASE",
                        help=f"leave out measurements: {', '.join(PHASES)}")
    parser.add_argument("--keep-bed", action="store_true",
                        help="leave the booted test bed running (attach to it later with "
                             "GLANCESYNC_TESTBED_DIR)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log GlanceSync's work")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    skip = set(args.skip)
    size = int(args.size_gib * GiB) // MiB * MiB
    big = int(args.big_size_gib * GiB) // MiB * MiB
    home = Path(os.environ.get("GLANCESYNC_TESTBED_HOME") or REPO / ".testbed").resolve()
    report = Report(args)
    osc = None
    if "operator" not in skip:
        if install_openstackclient(home):
            report.say(f"openstack CLI installed in {home / 'osc-venv'}")
        osc = openstack_command(home)
    bed = Bed.open(home, home / "bench-run", detach=args.keep_bed)
    report.say(f"test bed {'booted' if bed.owned else 'attached'}: {bed.info.run_dir}")
    status = 0
    bench = None
    try:
        bench = Bench(bed, home / "bench-work", Path(sys.executable).parent, osc)
        bench.clear_targets()
        bench.clear_master()
        phase_one(bench, report, size, skip)
        if "big" not in skip:
            phase_big(bench, report, size, big)
        if "noop" not in skip:
            phase_noop(bench, report, args.small_images)
    except (RuntimeError, OSError, GlanceSyncError) as error:
        report.note(f"measurement aborted: {type(error).__name__}: {error}")
        status = 1
    finally:
        if bench is not None and not bed.owned:
            bench.clear_targets()
            bench.clear_master()
        if args.keep_bed and bed.owned:
            report.say(f"test bed left running: GLANCESYNC_TESTBED_DIR={bed.info.run_dir}")
        else:
            bed.close()
    json_path, text_path = report.save()
    print()
    print("\n".join(report.summary()))
    print(f"\nresults: {json_path}\n         {text_path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
