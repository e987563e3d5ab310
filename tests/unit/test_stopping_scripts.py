"""SIGINT, SIGTERM and ``--wait-lock`` on real processes (issue 22, cases 1 and 8).

``glancesync-sync`` runs as under cron on the demo federation of local
regions (:mod:`glancesync.demo`) with one large image more; the test reads
its log (``-v``, stderr) and sends the signal once an upload has begun.
Then the regions are read: no ``queued`` or ``saving`` image left, every
lock free, the documented exit status, the summary of what was not done,
and outputs an alert reads as a failed run.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.demo import PROJECT
from glancesync.lock import RegionLock
from tests import scenarios
from tests.unit.test_scripts_local import BIN, Federation
from tests.unit.test_unattended import series

MIB = 1024 * 1024
REGIONS = ("RegionA", "RegionB", "RegionC")
#: Generous bound of any wait of these tests (a loaded machine); never a timing assertion.
BOUND = 240


class Running:
    """A script started in the background; its stderr read line by line as it comes."""

    def __init__(self, fed: Federation, *args: str) -> None:
        argv = [str(BIN / "glancesync-sync"), "--config-file", str(fed.config), *args]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True, env=fed.env,
                                        cwd=fed.folder)
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.err.append(line)
            self.lines.put(line)

    def wait_for(self, fragment: str) -> str:
        """The first stderr line holding ``fragment`` (bounded wait)."""
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, ("exited early", "".join(self.err))
                continue
            if fragment in line:
                return line
        raise AssertionError(f"never logged {fragment!r}: {''.join(self.err)}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self) -> tuple[int, str, str]:
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        code = self.process.wait(timeout=BOUND)
        self._reader.join(timeout=BOUND)
        return code, out, "".join(self.err)


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    federation = Federation(tmp_path)
    federation.prom = tmp_path / "glancesync.prom"
    text = federation.config.read_text()
    federation.config.write_text(text.replace(
        "[main]\n", f"[main]\nmetrics_file = {federation.prom}\n", 1))
    master = LocalRegionAdapter("master:Master", tmp_path / "federation" / "Master", PROJECT)
    scenarios.put(master, "big", scenarios.content("big", 96 * MIB + 1))
    return federation


def unfinished(fed: Federation) -> dict[str, list[str]]:
    found = {}
    for name in REGIONS:
        images = [f"{i.name} {i.status}" for i in fed.region(name).list_images()
                  if i.status != "active"]
        if images:
            found[name] = images
    return found


def assert_locks_free(fed: Federation) -> None:
    for name in REGIONS:
        lock = RegionLock(fed.locks, fed.lock_name(name))
        lock.acquire()
        lock.release()


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_upload_stops_cleans_up_and_reports(fed, tmp_path, signum, status):
    report = tmp_path / "run.json"
    before = {name: {i.id for i in fed.region(name).list_images()} for name in REGIONS}
    run = Running(fed, "-v", "--no-progress", "--report-json", str(report))
    run.wait_for("master:RegionA: uploading image ")
    run.signal(signum)
    code, out, err = run.finish()
    name = signal.Signals(signum).name
    assert code == status, (out, err)
    assert "Traceback" not in err
    assert f"glancesync-sync: {name} received: stopping" in err
    assert f"run stopped ({name} received)" in out
    assert "master:RegionA: sync STOPPED" in out
    for region in ("master:RegionB", "master:RegionC"):
        assert f"{region}: NOT DONE: not synchronised: stopped: {name} received" in out
    assert unfinished(fed) == {}
    assert_locks_free(fed)
    # Nothing changed in the regions not reached.
    for region in ("RegionB", "RegionC"):
        assert {i.id for i in fed.region(region).list_images()} == before[region]
    written = json.loads(report.read_text())
    assert written["exit_status"] == status and f"{name} received" in written["stopped"]
    results = {o["result"] for r in written["regions"] for o in r["operations"]}
    assert "not started" in results or "stopped" in results
    success = series(fed.prom)["glancesync_last_run_success"]
    assert all(value == 0 for value in success.values()), success  # the alert fires
    # The next run finishes the work.
    again = fed.run("sync", "--no-progress")
    assert again.returncode in (0, 4), (again.stdout, again.stderr)  # RegionC's conflict
    for region in REGIONS:
        assert "big" in {i.name for i in fed.region(region).list_images()}


def test_a_second_signal_says_it_is_already_stopping(fed):
    run = Running(fed, "-v", "--no-progress")
    run.wait_for("master:RegionA: uploading image ")
    run.signal(signal.SIGINT)
    run.wait_for("SIGINT received: stopping")
    run.signal(signal.SIGTERM)
    code, out, err = run.finish()
    assert code == 130, (out, err)  # the first signal decides
    assert "SIGTERM received: already stopping" in err
    assert unfinished(fed) == {}
    assert_locks_free(fed)


# --- --wait-lock (case 8) ----------------------------------------------------------------


def test_wait_lock_waits_for_the_holder_then_syncs(fed):
    holder = RegionLock(fed.locks, fed.lock_name("RegionA"))
    holder.acquire()
    try:
        run = Running(fed, "-v", "--no-progress", "--wait-lock", "600", "RegionA")
        line = run.wait_for("waiting for it up to 600 s")
        assert f"is held by pid {os.getpid()}" in line  # the holder is named
    finally:
        holder.release()
    code, out, err = run.finish()
    assert code == 0, (out, err)
    assert "master:RegionA: sync done" in out
    assert "big" in {i.name for i in fed.region("RegionA").list_images()}


def test_wait_lock_gives_up_after_its_time_with_status_5(fed):
    with RegionLock(fed.locks, fed.lock_name("RegionA")):
        done = fed.run("sync", "--no-progress", "--wait-lock", "0.5", "RegionA")
    assert done.returncode == 5, (done.stdout, done.stderr)
    assert "still, after waiting 0.5 s" in done.stdout
    assert "Traceback" not in done.stderr


def test_a_signal_ends_the_wait_for_a_lock(fed):
    with RegionLock(fed.locks, fed.lock_name("RegionA")):
        run = Running(fed, "-v", "--no-progress", "--wait-lock", "3600", "RegionA")
        run.wait_for("waiting for it up to 3600 s")
        run.signal(signal.SIGTERM)
        code, out, err = run.finish()
    assert code == 143, (out, err)
    assert "master:RegionA: NOT DONE: stopped: SIGTERM received" in out
    assert unfinished(fed) == {}


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_wait_lock_needs_seconds(fed, value):
    done = fed.run("sync", "--wait-lock", value)
    assert done.returncode == 2
    assert "--wait-lock" in done.stderr and "Traceback" not in done.stderr
