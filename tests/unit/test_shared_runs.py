"""Runs of different users on the same regions (issue 15, case 12).

Two operators, or cron and a person, run GlanceSync with different home
folders: they must use one lock folder (the machine-wide default, or
``lock_dir``), and copies that two runs made of one master image all the
same are reported.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from glancesync.demo import build_federation
from glancesync.executor import Executor
from glancesync.facade import GlanceSync
from glancesync.lock import RegionLock

BIN = Path(sys.executable).parent


@pytest.fixture
def config(tmp_path) -> Path:
    return build_federation(tmp_path / "demo")


def environment(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OS_", "GLANCESYNC_", "XDG_"))}
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"))
    return env


def test_lock_dir_makes_runs_of_different_homes_exclude_each_other(config, tmp_path):
    shared = tmp_path / "shared-locks"
    text = config.read_text().replace("[main]\n", f"[main]\nlock_dir = {shared}\n", 1)
    config.write_text(text)
    with open(config) as stream, GlanceSync(stream) as gs:
        name = gs.lock_name("RegionA")
    # Another user's run holds RegionA in the folder both configurations name.
    with RegionLock(shared, name):
        done = subprocess.run([str(BIN / "glancesync-sync"), "--config-file", str(config),
                               "RegionA", "--no-progress"], capture_output=True, text=True,
                              env=environment(tmp_path / "operator"), timeout=120)
    assert done.returncode == 5, done.stderr
    # Reported once, in the summary's FAILED line.
    assert f"lock file {shared}/" in done.stdout and "Traceback" not in done.stderr


def test_copies_made_twice_by_runs_that_did_not_share_locks_are_reported(config, tmp_path,
                                                                         caplog):
    # Two runs plan at the same time (different lock folders: nothing stops
    # them), then both upload the missing images of RegionA.
    runs = []
    for _user in ("cron", "operator"):
        with open(config) as stream:
            gs = GlanceSync(stream, progress=False)
        runs.append((gs, gs.plan_region("master:RegionA")))
    for gs, plan in runs:
        Executor(gs.adapter("master:RegionA"), gs.source(), progress=False).execute(plan)
    gs = runs[0][0]
    with caplog.at_level(logging.ERROR, logger="glancesync.plan"):
        plan = gs.plan_region("master:RegionA")
    copies = [i for i in gs.adapter("master:RegionA").list_images()
              if i.name == "debian-12"]
    assert len(copies) == 2
    duplicate = [w for w in plan.warnings if copies[0].provenance.master_image_id in w]
    assert len(duplicate) == 1
    assert "2 copies of master image" in duplicate[0] and "made by GlanceSync" in duplicate[0]
    assert copies[0].id in duplicate[0] and copies[1].id in duplicate[0]
    assert "lock_dir" in duplicate[0]
    assert any(r.levelno == logging.ERROR and copies[0].id in r.getMessage()
               for r in caplog.records)
    for gs, _ in runs:
        gs.close()


def test_one_run_makes_no_duplicate_to_report(config, tmp_path, monkeypatch):
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    with open(config) as stream, GlanceSync(stream, progress=False) as gs:
        gs.sync(["RegionA"])
        plan = gs.plan_region("master:RegionA")
        assert not [w for w in plan.warnings if "made by GlanceSync" in w]
