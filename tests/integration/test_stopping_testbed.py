"""SIGTERM and SIGINT stop a real sync on the real test bed (issue 22, case 1).

``glancesync-sync`` runs as a subprocess against the bed's Keystone and
Glance regions; its HTTP goes through a loopback forward proxy
(``http_proxy``, :class:`~tests.faultproxy.SlowUploadProxy`) that sends
image uploads at 1 MiB/s, so that an upload lasts. Once the region shows
the run's image in ``saving`` (data is moving), the signal is sent; then
the regions are read: no image of the run left in any state, the locks
free, the exit status and the summary as documented. No timing assertion:
every wait is on a condition, with a generous bound.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from glancesync import GlanceSync
from glancesync.lock import RegionLock
from tests.faultproxy import SlowUploadProxy
from tests.integration.test_scripts_testbed import BIN, Bed

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
BOUND = 300


@pytest.fixture
def bed(testbed, tmp_path):
    made = Bed(testbed, tmp_path)
    try:
        yield made
    finally:
        made.cleanup()


def put_large(bed: Bed, short: str, size: int) -> str:
    """A public raw image of ``size`` pseudo-random bytes in Master."""
    master = bed.adapter("Master")
    image = master.create_image(bed.prefix + short, visibility="public",
                                disk_format="raw", container_format="bare")
    block = os.urandom(MIB)
    master.upload_data(image.id, (block for _ in range(size // MIB)), size)
    return image.id


def wait_for_status(bed: Bed, region: str, name: str, status: str,
                    process: subprocess.Popen) -> None:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sync ended before its upload was seen"
        if any(i.name == name and i.status == status
               for i in bed.adapter(region).list_images()):
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} never became {status} in {region}")


def everything_of(bed: Bed, region: str) -> list[str]:
    return sorted(f"{i.name} {i.status}" for i in bed.adapter(region).list_images()
                  if i.name and i.name.startswith(bed.prefix))


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_upload_leaves_the_regions_clean(bed, tmp_path, signum, status):
    name = bed.prefix + "large"
    put_large(bed, "large", 24 * MIB)
    report = tmp_path / "run.json"
    env = {k: v for k, v in bed.env.items() if k.lower() not in ("no_proxy", "http_proxy")}
    with SlowUploadProxy(upload_rate=MIB) as proxy:
        env.update(http_proxy=proxy.url, HTTP_PROXY=proxy.url)
        argv = [str(BIN / "glancesync-sync"), "--config-file", str(bed.config),
                "--no-progress", "--report-json", str(report), "RegionA", "RegionB"]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True, env=env,
                                   cwd=bed.folder)
        try:
            wait_for_status(bed, "RegionA", name, "saving", process)
            assert proxy.uploads >= 1  # the data goes through the slow link
            process.send_signal(signum)
            out, err = process.communicate(timeout=BOUND)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    label = signal.Signals(signum).name
    assert process.returncode == status, (out, err)
    assert "Traceback" not in err
    assert f"{label} received: stopping" in err
    assert "master:RegionA: sync STOPPED" in out
    assert f"master:RegionB: NOT DONE: not synchronised: stopped: {label} received" in out
    assert f"run stopped ({label} received)" in out
    assert f"master:RegionA: not done: upload {name} (stopped)" in out
    # Nothing of the run is left, in any state, in either region.
    assert everything_of(bed, "RegionA") == []
    assert everything_of(bed, "RegionB") == []
    written = json.loads(report.read_text())
    assert written["exit_status"] == status
    assert f"{label} received" in written["stopped"]
    # The locks are free: a run of the same configuration takes them and syncs.
    with GlanceSync(str(bed.config)) as glancesync:
        for region in ("RegionA", "RegionB"):
            lock = RegionLock(bed.locks, glancesync.lock_name(region))
            lock.acquire()
            lock.release()
    done = bed.run("sync", "--no-progress", "RegionA", "RegionB")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert everything_of(bed, "RegionA") == [f"{name} active"]
