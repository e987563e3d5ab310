"""Propagation lag of glancesync-watch on the test bed (issue 24), beside cron.

Usage: GLANCESYNC_TESTBED_DIR=.testbed/run .venv/bin/python bench/watch_lag.py [--images 20]
       [--size-mib 4] [--cron-minutes 5]

Needs a running bed with its RabbitMQ (``python -m glancesync.testbed start``).
Creates IMAGES images of SIZE MiB one after another in the master, each
after the previous one reached every region, and measures for each the
time from the master image ``active`` (its upload call returned) to an
active copy with the master's checksum in every region, minus the time of
one transfer (the median of direct uploads of the same size to RegionA,
measured first). Prints the median and 95th percentile beside a cron
schedule: half the interval (mean) or 95 % of it, plus a measured full
run. Deletes its images at the end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from keystoneauth1 import session as ksa_session  # noqa: E402
from keystoneauth1.identity import v3  # noqa: E402

from glancesync import GlanceSync  # noqa: E402
from glancesync.backends.openstack.glance import GlanceRegionAdapter  # noqa: E402
from glancesync.testbed import TestBed  # noqa: E402
from tests.testbed_config import write_config  # noqa: E402

REGIONS = {"RegionA": "master", "RegionB": "master", "RegionC": "other"}


def adapter(info, region: str, sessions: dict) -> GlanceRegionAdapter:
    keystone = REGIONS.get(region, "master")
    cloud = f"{keystone}-admin"
    if cloud not in sessions:
        sessions[cloud] = ksa_session.Session(auth=v3.Password(**info.auth(cloud)))
    return GlanceRegionAdapter(f"{keystone}:{region}", sessions[cloud], region,
                               info.project_id(cloud))


def put(glance: GlanceRegionAdapter, name: str, data: bytes) -> tuple[str, float]:
    image = glance.create_image(name, visibility="public", disk_format="raw",
                                container_format="bare")
    glance.upload_data(image.id, [data], len(data))
    return image.id, time.time()


def verified_everywhere(info, sessions, name: str, checksum: str) -> bool:
    for region in REGIONS:
        if not any(i.name == name and i.status == "active" and i.checksum == checksum
                   for i in adapter(info, region, sessions).list_images()):
            return False
    return True


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--size-mib", type=int, default=4)
    parser.add_argument("--cron-minutes", type=float, default=5.0)
    args = parser.parse_args()
    bed = TestBed(os.environ.get("GLANCESYNC_TESTBED_DIR", str(ROOT / ".testbed" / "run")))
    info = bed.info
    if not bed.rabbitmq_running():
        print("the bed's RabbitMQ does not run: python -m glancesync.testbed start",
              file=sys.stderr)
        return 1
    prefix = f"gs-lag-{uuid.uuid4().hex[:8]}-"
    work = Path(tempfile.mkdtemp(prefix="glancesync-lag-"))
    condition = f"image.name.startswith('{prefix}')"
    config = write_config(info, work / "watch.conf",
                          main={"notifications_url": info.transport_url,
                                "watch_listen": "none", "lock_dir": work / "locks"},
                          master={"metadata_condition": condition},
                          other={"metadata_condition": condition})
    sessions: dict = {}
    data = os.urandom(args.size_mib * 1024 * 1024)
    import hashlib
    checksum = hashlib.md5(data).hexdigest()
    transfers = []
    scratch = adapter(info, "RegionA", sessions)
    for n in range(3):
        began = time.time()
        image_id, done = put(scratch, f"lagscratch-{prefix}{n}", data)
        transfers.append(done - began)
        scratch.delete_image(image_id)
    transfer = statistics.median(transfers)
    glancesync = GlanceSync(str(config), progress=False)
    watcher = glancesync.watcher(["master:", "other:"], pool=f"glancesync-bench-{prefix}")
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    lags = []
    master = adapter(info, "Master", sessions)
    try:
        while not watcher.health()["last_reconciliation_end"]:
            time.sleep(0.2)
        for n in range(args.images):
            name = f"{prefix}{n}"
            _, active = put(master, name, data)
            deadline = time.time() + 300
            while not verified_everywhere(info, sessions, name, checksum):
                if time.time() > deadline:
                    print(f"{name}: not everywhere after 300 s", file=sys.stderr)
                    return 1
                time.sleep(0.1)
            lags.append(time.time() - active)
            print(f"{name}: {lags[-1]:.2f} s", flush=True)
        began = time.time()
        glancesync.sync(["master:", "other:"])  # a cron run: everything listed, nothing to do
        full_run = time.time() - began
    finally:
        watcher.stop()
        thread.join(60)
        glancesync.close()
        for region in ("Master", *REGIONS):
            glance = adapter(info, region, sessions)
            for image in glance.list_images():
                if image.name and prefix in image.name:
                    glance.delete_image(image.id)
    net = [max(0.0, lag - transfer) for lag in lags]
    interval = args.cron_minutes * 60
    print(f"images: {len(lags)} x {args.size_mib} MiB; one transfer: {transfer:.2f} s"
          f" (median of {len(transfers)})")
    print(f"watch lag (activation -> every region verified), raw: median"
          f" {statistics.median(lags):.2f} s, p95 {percentile(lags, 0.95):.2f} s")
    print(f"watch lag minus one transfer: median {statistics.median(net):.2f} s,"
          f" p95 {percentile(net, 0.95):.2f} s (target: median <= 5 s, p95 <= 15 s)")
    print(f"cron every {args.cron_minutes:g} min (full run {full_run:.2f} s): median"
          f" {interval / 2 + full_run:.1f} s, p95 {0.95 * interval + full_run:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
