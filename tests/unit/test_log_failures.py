"""Logs that cannot be written never change a run's outcome (issue 15, case 11).

A full disk under the run logs turned a successful sync into exit 1 with
hundreds of logging tracebacks and no summary. The end-to-end test puts
``run_dir`` on a real full file system: a 64 KiB tmpfs filled up, mounted
in a private user and mount namespace (``unshare -rm``) around the
command; ``--log-file`` is ``/dev/full``, which fails every write.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from glancesync.demo import build_federation
from glancesync.runlog import RunLogs, SafeFileHandler, SafeStreamHandler, region_context

BIN = Path(sys.executable).parent
REGIONS = ["master:RegionA", "master:RegionB", "master:RegionC"]


def can_mount_tmpfs() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c",
                               "mount -t tmpfs -o size=64k tmpfs /mnt"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def glancesync_logger():
    logger = logging.getLogger("glancesync")
    records = Records()
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield logger, records
    logger.removeHandler(records)
    logger.setLevel(level)


def test_a_log_file_that_fails_is_reported_once_and_left_alone(glancesync_logger, capfd):
    logger, records = glancesync_logger
    handler = SafeFileHandler("/dev/full")
    logger.addHandler(handler)
    try:
        for number in range(200):
            logger.info("line %d", number)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert handler.failed
    errors = [r for r in records.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "cannot write the log file /dev/full (No space left on device)" in \
        errors[0].getMessage()
    assert capfd.readouterr().err == ""  # no traceback from logging itself


def test_a_console_that_fails_goes_silent(tmp_path, capfd):
    stream = open(tmp_path / "console", "w")
    handler = SafeStreamHandler(stream)
    stream.close()
    record = logging.LogRecord("glancesync", logging.ERROR, __file__, 1, "x", (), None)
    handler.handle(record)
    handler.handle(record)
    handler.flush()
    assert handler.failed and capfd.readouterr().err == ""


def test_run_logs_that_cannot_be_created_let_the_run_go_on(tmp_path, glancesync_logger):
    _, records = glancesync_logger
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with RunLogs(blocker, REGIONS) as logs:
        with region_context(REGIONS[0]):
            logging.getLogger("glancesync.x").info("goes nowhere")
    assert logs.paths == {}
    assert any("cannot create the run folder" in r.getMessage() for r in records.records)


@pytest.fixture
def federation(tmp_path) -> tuple[Path, dict[str, str]]:
    config = build_federation(tmp_path / "demo")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OS_", "GLANCESYNC_"))}
    env.update(GLANCESYNC_LOCK_DIR=str(tmp_path / "locks"), HOME=str(tmp_path),
               XDG_STATE_HOME=str(tmp_path / "state"))
    return config, env


@pytest.mark.timeout(300)
def test_a_full_disk_for_the_logs_changes_nothing_of_the_run(federation, tmp_path):
    config, env = federation
    runs = tmp_path / "runs"
    runs.mkdir()
    argv = [str(BIN / "glancesync-sync"), "--config-file", str(config), "--parallel",
            "--no-progress", "--log-file", "/dev/full", "--config", f"main.run_dir={runs}"]
    full_disk = can_mount_tmpfs()
    if full_disk:  # a real full file system under run_dir
        argv = ["unshare", "-rm", "sh", "-c",
                'mount -t tmpfs -o size=64k,mode=700 tmpfs "$1" &&'
                ' { head -c 1M /dev/zero > "$1/fill"; true; } 2>/dev/null; shift; exec "$@"',
                "sh", str(runs), *argv]
    else:  # no namespaces here: a run folder that cannot be made
        argv[-1] = f"main.run_dir={config}"
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in lines[:3]] == REGIONS
    assert lines[3].startswith("sync of 3 region(s): 3 done, 0 failed")
    failures = [line for line in done.stderr.splitlines() if "log file" in line
                or "run folder" in line]
    assert len(done.stderr.splitlines()) == len(failures), done.stderr  # nothing else
    assert sum("cannot write the log file /dev/full" in line for line in failures) == 1
    if full_disk:
        # each region's log failed once, each reported once
        assert sum("(No space left on device)" in line for line in failures) == 4
    else:
        assert sum("cannot create the run folder" in line for line in failures) == 1
    # The work was done all the same: a second run has nothing to do.
    again = subprocess.run([str(BIN / "glancesync-sync"), "--config-file", str(config),
                            "--show-status"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert again.returncode == 0, again.stdout
