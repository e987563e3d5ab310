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

from benchbed import Bed, counting
from measures import PREFIX, Bench
from rawglance import GiB, MiB

LOG = logging.getLogger("bench")
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PHASES = ("limit", "operator", "auto", "convert", "big", "noop")
#: The regions of the master's Keystone: where server-side copies are possible.
SAME_KEYSTONE = ("RegionA", "RegionB")


@dataclasses.dataclass
class Target:
    """One figure compared with its target."""

    name: str
    value: float | None
    goal: str
    met: bool | None
    note: str = ""

    def line(self) -> str:
        state = {True: "MET", False: "NOT MET",
                 None: "n/a" if self.value is None else "reported"}[self.met]
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
               check: Callable[[float], bool] | None, note: str = "") -> None:
        """A figure and its target; ``check`` None: a figure only reported."""
        met = None if value is None or check is None else bool(check(value))
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
                      "<= 1.05", lambda v: v <= 1.05,
                      f"{cold['seconds']:.2f} s / {limit_s:.2f} s, the mean of "
                      f"{' and '.join(f'{t:.2f}' for t in times)}; CLI "
                      f"{cli['seconds'] / limit_s:.2f}")
    moved = (cold["bytes_downloaded"] + cold["bytes_uploaded"]) / GiB
    raw_per_gib = [f"{limit['cpu_seconds'] / moved:.2f}" for limit in limits]
    raw_cpu = f"; the raw transfer (no hashing) {' and '.join(raw_per_gib)}" if limits else ""
    report.target("client CPU-seconds per GiB moved", cold["cpu_seconds"] / moved,
                  "<= 0.5", lambda v: v <= 0.5,
                  f"{cold['cpu_seconds']:.2f} s for {moved:.2f} GiB (1 download, "
                  f"{cold['uploads']} uploads); CLI {cli['cpu_seconds'] / moved:.2f}{raw_cpu}")
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
    if "auto" not in skip:
        phase_auto(bench, report, size)
    bench.clear_master()
    report.target(f"peak RSS, {size / GiB:g} GiB image (MB)", cli["peak_rss_bytes"] / 1e6,
                  "<= 150", lambda v: v <= 150)


def phase_auto(bench: Bench, report: Report, size: int) -> None:
    """The same sync to RegionA and RegionB streamed, then with ``transfer = auto``."""
    figures = report.figures.setdefault("transfer", {"size_bytes": size})
    bench.clear_targets()
    bench.clear_cache()
    stream = bench.sync_in_process(SAME_KEYSTONE)
    figures["stream"] = stream
    report.say(f"stream to {' and '.join(SAME_KEYSTONE)}: {stream['seconds']:.2f} s, "
               f"{stream['bytes_downloaded'] / MiB:.0f} MiB downloaded and "
               f"{stream['bytes_uploaded'] / MiB:.0f} MiB uploaded by this host, client CPU "
               f"{stream['cpu_seconds']:.1f} s")
    bench.clear_targets()
    bench.clear_cache()
    config = bench.write_config("auto.conf", {"master": {"transfer": "auto"}})
    with counting(bench.bed) as counted:
        auto = bench.sync_in_process(SAME_KEYSTONE, config)
        time.sleep(0.3)  # let the services write their last access lines
    data_requests = {f"{service} {key}": n for service, counts in counted.by_service.items()
                     for key, n in counts.items()
                     if key in ("PUT /v2/images/{id}/file", "GET /v2/images/{id}/file",
                                "POST /v2/images/{id}/import")}
    auto["data_requests"] = data_requests
    figures["auto"] = auto
    bench.clear_targets()
    through = auto["bytes_downloaded"] + auto["bytes_uploaded"]
    puts = sum(n for key, n in data_requests.items() if key.startswith(
        tuple(f"glance-{region} PUT" for region in SAME_KEYSTONE)))
    report.say(f"auto to {' and '.join(SAME_KEYSTONE)}: {auto['seconds']:.2f} s, "
               f"{auto['copied_server_side']} copied server-side, {through} image bytes "
               f"through this host (counters), {auto['file_write_bytes'] / MiB:.1f} MiB "
               f"written to files, data requests {data_requests}, client CPU "
               f"{auto['cpu_seconds']:.1f} s")
    if auto["copied_server_side"] != len(SAME_KEYSTONE):
        report.note(f"auto copied {auto['copied_server_side']} image(s) server-side, not "
                    f"{len(SAME_KEYSTONE)}: see the log (-v)")
    report.target("bytes through this host, auto, RegionA+B", through, "== 0",
                  lambda v: v == 0 and puts == 0
                  and auto["copied_server_side"] == len(SAME_KEYSTONE),
                  f"GlanceSync's counters; {puts} PUT of image data in the regions' "
                  f"access logs; {auto['file_write_bytes'] / MiB:.1f} MiB written to files")
    report.target("wall time auto / stream, RegionA+B", auto["seconds"] / stream["seconds"],
                  "reported", None,
                  f"{auto['seconds']:.2f} s / {stream['seconds']:.2f} s; client CPU "
                  f"{auto['cpu_seconds']:.1f} s / {stream['cpu_seconds']:.1f} s")


def phase_convert(bench: Bench, report: Report, size: int) -> None:
    """A qcow2 master of ``size`` bytes of data, converted to raw for RegionA and RegionB."""
    need = 8 * size + GiB
    if bench.free_bytes() < need:
        report.note(f"only {bench.free_bytes() / GiB:.1f} GiB free, {need / GiB:.1f} needed: "
                    "the conversion measurement is skipped")
        return
    name = f"{PREFIX}{size // MiB}mib-qcow2"
    image_id, file_size, seconds = bench.upload_qcow2_master(name, size)
    report.say(f"master image {name} (qcow2, {file_size / MiB:.0f} MiB) made and uploaded in "
               f"{seconds:.1f} s")
    figures = report.figures.setdefault("convert", {"size_bytes": size,
                                                    "qcow2_bytes": file_size})
    config = bench.write_config("convert.conf", {f"master:{region}": {"convert_to": "raw"}
                                                 for region in SAME_KEYSTONE})
    bench.clear_cache()
    cli = bench.sync_cli(config=config, targets=SAME_KEYSTONE, verbose=True)
    conversions = cli.pop("log_text").count(": converting image ")  # one log line each
    copies = bench.target_images()
    raw = {region: [(i["disk_format"], i["size"]) for i in images]
           for region, images in copies.items() if region in SAME_KEYSTONE}
    figures.update(cli=cli, conversions=conversions, copies=raw)
    report.say(f"glancesync-sync converting to raw for {' and '.join(SAME_KEYSTONE)}: "
               f"{cli['seconds']:.2f} s, {conversions} conversion(s), peak RSS "
               f"{cli['peak_rss_bytes'] / MiB:.1f} MiB, CPU {cli['cpu_seconds']:.1f} s, "
               f"copies {raw}")
    if any(copy != [("raw", size)] for copy in raw.values()):
        report.note(f"the converted copies are not one raw image of {size} bytes each: {raw}")
    bench.clear_targets()
    bench.clear_cache()
    bench.clear_master()
    report.target("conversions, qcow2 to raw for RegionA+B", conversions, "== 1",
                  lambda v: v == 1)
    plain = report.figures.get("image", {}).get("glancesync_cli_cold", {}).get(
        "peak_rss_bytes")
    if plain:
        report.target("peak RSS converting / not converting", cli["peak_rss_bytes"] / plain,
                      "<= 1.10", lambda v: v <= 1.10,
                      f"{cli['peak_rss_bytes'] / 1e6:.1f} MB / {plain / 1e6:.1f} MB")


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
        if "convert" not in skip:
            phase_convert(bench, report, size)
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
