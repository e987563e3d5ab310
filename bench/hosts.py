"""Benchmark of several hosts (issue 25): one host, then two sharing the work.

A simulation on one machine, documented as such: eight local regions (folders)
and a local master, an etcd of its own on loopback (``coordination_url``),
and ``glancesync-sync --parallel`` processes standing for hosts, each with
its own cache, state and run folders. A host's link is simulated by
``bandwidth_limit`` (the cap of one run: every host may send that many
bytes per second, all its regions together). The same work is done twice
on fresh regions: by one host alone, then by two hosts started together.
Reported: the wall-time ratio (two hosts / one; target <= 0.6) and the
uploads per image and region (target: exactly one).

Run: ``.venv/bin/python bench/hosts.py [--images 4] [--size-mib 8]
[--regions 8] [--rate-mib 8]``. Prints a table and writes
``bench/results/hosts-<time>.json``. Needs ``etcd`` (Debian's
``etcd-server``); exit 1 when something could not be measured.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from glancesync.backends.local.adapter import LocalRegionAdapter  # noqa: E402
from glancesync.testbed import etcd  # noqa: E402

RESULTS = REPO / "bench" / "results"
BIN = Path(sys.executable).parent
PROJECT = "bench-project"
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_etcd(folder: Path) -> tuple[subprocess.Popen, str]:
    """An etcd member of its own on loopback; its tooz URL once it answers."""
    client, peer = free_port(), free_port()
    log = open(folder / "etcd.log", "w")
    process = subprocess.Popen(etcd.argv(folder / "etcd-data", client, peer), stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if etcd.probe(client) is None:
                return process, etcd.coordination_url(client)
        except Exception:  # not listening yet
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"etcd did not start: see {folder / 'etcd.log'}")


def build(folder: Path, images: int, size: int, regions: int) -> list[str]:
    """The master with ``images`` public images of ``size`` bytes, ``regions`` empty
    regions; the region names."""
    federation = folder / "federation"
    master = LocalRegionAdapter("master:Master", federation / "Master", PROJECT)
    for index in range(images):
        image = master.create_image(f"bench-hosts-{index}", visibility="public",
                                    disk_format="raw", container_format="bare")
        block = os.urandom(MIB)
        master.upload_data(image.id, (block for _ in range(size // MIB)), size)
    names = [f"Region{index:02d}" for index in range(1, regions + 1)]
    for name in names:
        LocalRegionAdapter(f"master:{name}", federation / name, PROJECT).close()
    master.close()
    return names


def config(folder: Path, host: str, url: str, rate: int, children: int,
           regions: list[str]) -> Path:
    home = folder / host
    home.mkdir(parents=True, exist_ok=True)
    path = home / "glancesync.conf"
    path.write_text(f"""[main]
master_region = Master
max_children = {children}
cache_dir = {home / 'cache'}
run_dir = {home / 'runs'}
coordination_url = {url}
lock_ttl = 10
bandwidth_limit = {rate}

[master]
type = local
path = {folder / 'federation'}
project = {PROJECT}
regions = Master, {', '.join(regions)}
""")
    return path


def start(folder: Path, host: str, config_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
    env.update(XDG_STATE_HOME=str(folder / host / "state"),
               GLANCESYNC_LOCK_DIR=str(folder / host / "locks"))
    return subprocess.Popen([str(BIN / "glancesync-sync"), "--config-file", str(config_path),
                             "--parallel", "--no-progress", "--report-json",
                             str(folder / host / "report.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def run(folder: Path, hosts: list[str], url: str, rate: int, children: int,
        regions: list[str]) -> float:
    """Wall seconds of ``hosts`` started together, until the last one ends."""
    configs = [config(folder, h, url, rate, children, regions) for h in hosts]
    began = time.monotonic()
    processes = [start(folder, h, path) for h, path in zip(hosts, configs)]
    for host, process in zip(hosts, processes):
        out, err = process.communicate(timeout=3600)
        if process.returncode != 0:
            raise SystemExit(f"{host} failed (exit {process.returncode}):\n{out}\n{err}")
    return time.monotonic() - began


def copies(folder: Path, regions: list[str]) -> dict[str, int]:
    """Per region, the number of images; and checks one per name."""
    counted = {}
    for name in regions:
        adapter = LocalRegionAdapter(f"master:{name}", folder / "federation" / name, PROJECT)
        found = [i.name for i in adapter.list_images()]
        adapter.close()
        counted[name] = len(found) - len(set(found))  # duplicates
    return counted


def measure(work: Path, args: argparse.Namespace, url: str, hosts: list[str]) -> dict:
    folder = work / f"{len(hosts)}-host"
    regions = build(folder, args.images, args.size_mib * MIB, args.regions)
    seconds = run(folder, hosts, url, args.rate_mib * MIB, args.children, regions)
    duplicates = copies(folder, regions)
    reports = [json.loads((folder / h / "report.json").read_text()) for h in hosts]
    uploads = sum(1 for r in reports for region in r["regions"]
                  for op in region["operations"] if op["kind"] == "upload"
                  and op["result"] == "done")
    did = {h: sorted(reg["region"] for reg in r["regions"] if reg["bytes_uploaded"])
           for h, r in zip(hosts, reports)}
    return {"hosts": len(hosts), "seconds": round(seconds, 2), "uploads": uploads,
            "expected_uploads": args.images * args.regions,
            "duplicates": sum(duplicates.values()), "regions_by_host": did}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=8)
    parser.add_argument("--regions", type=int, default=8)
    parser.add_argument("--rate-mib", type=int, default=8,
                        help="bandwidth_limit of each host, MiB/s (its simulated link)")
    parser.add_argument("--children", type=int, default=4, help="max_children of each host")
    args = parser.parse_args()
    if etcd.missing():
        print(etcd.missing(), file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="glancesync-bench-hosts-"))
    process, url = start_etcd(work)
    try:
        one = measure(work, args, url, ["host-1"])
        two = measure(work, args, url, ["host-1", "host-2"])
    finally:
        process.terminate()
        process.wait(30)
    ratio = two["seconds"] / one["seconds"]
    exact = all(m["uploads"] == m["expected_uploads"] and not m["duplicates"]
                for m in (one, two))
    lines = [
        f"work: {args.images} image(s) x {args.size_mib} MiB to {args.regions} local regions;"
        f" each host capped at {args.rate_mib} MiB/s (bandwidth_limit), max_children "
        f"{args.children}; coordination: etcd on loopback",
        f"one host:  {one['seconds']:8.2f} s, {one['uploads']} uploads",
        f"two hosts: {two['seconds']:8.2f} s, {two['uploads']} uploads; regions per host: "
        + "; ".join(f"{h}: {len(r)}" for h, r in two["regions_by_host"].items()),
        f"wall-time ratio two/one: {ratio:.2f} (target <= 0.6: "
        f"{'MET' if ratio <= 0.6 else 'NOT MET'})",
        f"uploads exactly one per image and region: {'MET' if exact else 'NOT MET'}",
    ]
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"hosts-{stamp}.json").write_text(json.dumps(
        {"args": vars(args), "one": one, "two": two, "ratio": round(ratio, 3),
         "exact_uploads": exact}, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
