"""glancesync.executor.validation: validate_command on new copies, and its abuse cases."""
from __future__ import annotations

import logging
import shlex
import sys
import time

import pytest

from glancesync.errors import ConfigError
from glancesync.executor import Executor, REFUSED
from glancesync.executor.results import RegionResult
from glancesync.executor.upload import Upload
from glancesync.executor.validation import (MAX_LOGGED, TAIL_LINES, Validation,
                                            cloud_environment, split_command)
from glancesync.plan import ImageStatus, RegionPlan, Status
from glancesync.plan.validation import (FAILED, MARK_VALIDATED, MARK_VALIDATION,
                                        MARK_VALIDATION_OUTPUT, PASSED)

from tests.engine import DirectSource
from tests.scenarios import put
from tests.unit.executor.regions import Recording
from tests.unit.executor.test_upload import upload_op

PY = shlex.quote(sys.executable)
DATA = b"\x07" * 2048


def command(code: str, timeout: float = 60.0, **cloud: str) -> Validation:
    return Validation.of(f"{PY} -c {shlex.quote(code)}", timeout, cloud)


def env(validation: Validation, name: str = "a") -> dict[str, str]:
    return validation.environment("RegionA", "id-1", name, "m-1")


def test_the_command_gets_the_region_the_copy_and_the_cloud(monkeypatch):
    monkeypatch.setenv("OS_PASSWORD", "the-masters-secret")
    check = command("import os, sys; keys = ('GLANCESYNC_REGION', 'GLANCESYNC_IMAGE_ID',"
                    " 'GLANCESYNC_IMAGE_NAME', 'GLANCESYNC_MASTER_IMAGE_ID', 'OS_CLOUD');"
                    " print(*(os.environ.get(k) for k in keys));"
                    " sys.exit('OS_PASSWORD' in os.environ)", OS_CLOUD="region-cloud")
    ended = check.run(env(check), "master:RegionA")
    assert ended.passed, ended.tail
    assert ended.tail == ["RegionA id-1 a m-1 region-cloud"]  # no OS_* of this process


def test_a_failure_keeps_the_last_lines():
    ended = command("import sys\nfor i in range(30): print('line', i)\nsys.exit(3)").run(
        env(command("")), "r")
    assert ended.returncode == 3 and not ended.passed
    assert len(ended.tail) == TAIL_LINES and ended.tail[-1] == "line 29"


def test_a_command_that_hangs_is_stopped_with_what_it_started(tmp_path):
    # The command starts a child that would outlive it and hold its output open.
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c',"
            " 'import time; time.sleep(600)']); print('started', flush=True); time.sleep(600)")
    started = time.monotonic()
    ended = command(code, timeout=1.0).run(env(command("")), "r")
    assert ended.returncode is None and not ended.passed
    assert ended.tail[0] == "started" and "validate_timeout" in ended.tail[-1]
    assert time.monotonic() - started < 120  # bounded generously: never 600 s


def test_a_command_that_prints_megabytes_is_logged_up_to_a_limit(caplog):
    code = "import sys\nfor i in range(40000): print('x' * 200)\nprint('the end')"
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        ended = command(code).run(env(command("")), "r")
    assert ended.passed and ended.output_bytes > 7 * 1024 * 1024
    logged = sum(len(r.getMessage()) for r in caplog.records)
    assert logged < 2 * MAX_LOGGED
    assert any("not logged" in r.getMessage() for r in caplog.records)
    assert ended.tail[-1] == "the end"


def test_hostile_image_names_never_reach_a_shell(tmp_path):
    marker = tmp_path / "owned"
    names = [f"$(touch {marker})", f"`touch {marker}`", f"a; touch {marker}",
             f"a\ntouch {marker}", "a\0b", "-rf /", "\x1b[31mred"]
    echo = command("import os; print(repr(os.environ['GLANCESYNC_IMAGE_NAME']))")
    for name in names:
        ended = echo.run(echo.environment("RegionA", "id", name, "m"), "r")
        assert ended.passed, ended.tail
    assert not marker.exists()
    # Control characters are escaped in what is kept and logged.
    assert all("\x1b" not in line for line in ended.tail)


def test_a_command_that_cannot_run_is_a_failure_not_a_crash():
    ended = Validation.of("/no/such/validator --boot", 5, {}).run({}, "r")
    assert ended.returncode == 127 and "cannot run /no/such/validator" in ended.tail[0]


def test_unbalanced_quotes_are_a_configuration_error():
    with pytest.raises(ConfigError, match="cannot be split"):
        split_command("boot-test 'unclosed")


def test_the_cloud_of_a_target():
    class Keystone:
        auth = {"auth_url": "https://k:5000/v3", "username": "u", "password": "p"}
        cloud = None

        def option_values(self):
            return {**self.auth, "cloud": None, "cacert": "/ca.pem", "insecure": False,
                    "interface": None}

    class Cloud(Keystone):
        auth = None

        def option_values(self):
            return {"cloud": "federation", "cacert": None, "insecure": True,
                    "interface": "internal"}

    assert cloud_environment(Keystone(), "R") == {
        "OS_REGION_NAME": "R", "OS_AUTH_URL": "https://k:5000/v3", "OS_USERNAME": "u",
        "OS_PASSWORD": "p", "OS_CACERT": "/ca.pem"}
    assert cloud_environment(Cloud(), "R") == {
        "OS_REGION_NAME": "R", "OS_CLOUD": "federation", "OS_INSECURE": "true",
        "OS_INTERFACE": "internal"}


# -- on a real local region --------------------------------------------------------

@pytest.fixture
def master(tmp_path):
    return Recording("master:Master", tmp_path / "Master", "p-master")


@pytest.fixture
def region(tmp_path):
    return Recording("master:RegionA", tmp_path / "RegionA")


def run_upload(master, region, master_image, validation, kind="upload", regional=None):
    executor = Executor(region, DirectSource(master), progress=False, validation=validation)
    op = upload_op(master_image, kind, regional=regional)
    plan = RegionPlan("master:RegionA", statuses=[ImageStatus(
        Status.PENDING_RENAME, "master:RegionA", op.name, master_image.id, None)],
        operations=[op])
    return executor, executor.execute(plan)


def test_an_accepted_copy_is_published_and_marked(master, region):
    image = put(master, "a", DATA)
    probe = command("import os, sys; sys.exit(os.environ['GLANCESYNC_IMAGE_NAME'] != 'a')")
    executor, result = run_upload(master, region, image, probe)
    assert result.errors == 0 and result.uploaded == 1
    copy = region.get_image(executor.new_ids["a"])
    assert copy.visibility == "public" and copy.marks[MARK_VALIDATION] == PASSED
    assert MARK_VALIDATED in copy.marks


def test_a_refused_copy_stays_private_and_the_previous_one_in_service(master, region):
    old = put(region, "a", b"\x01" * 10)
    image = put(master, "a", DATA)
    refuse = command("print('no network in the guest'); raise SystemExit(2)")
    _, result = run_upload(master, region, image, refuse, kind="rename", regional=old)
    (outcome,) = result.outcomes
    assert outcome.result == REFUSED and result.needs_operator == 1
    line = result.plan.status_of("a")
    assert line.status is Status.ERROR_VALIDATION
    assert "exit status 2" in line.reason and "no network in the guest" in line.reason
    kept = region.get_image(old.id)
    assert (kept.name, kept.visibility) == ("a", "public")  # not renamed, still in service
    (new,) = [i for i in region.list_images() if i.id != old.id]
    assert new.visibility == "private" and new.status == "active"
    assert new.marks[MARK_VALIDATION] == FAILED
    assert "no network in the guest" in new.marks[MARK_VALIDATION_OUTPUT]


def test_a_dry_run_runs_no_command(master, region, tmp_path):
    image = put(master, "a", DATA)
    marker = tmp_path / "ran"
    touch = command(f"open({str(marker)!r}, 'w').close()")
    executor = Executor(region, DirectSource(master), progress=False, dry_run=True,
                        validation=touch)
    Upload(executor, upload_op(image)).apply(RegionResult("master:RegionA"))
    assert not marker.exists() and region.changes == []


def test_the_output_goes_to_the_regions_own_log_file(tmp_path):
    """The reader thread keeps the region's context: a parallel run's log of the
    region gets the command's lines, the other region's log does not."""
    from glancesync.runlog import RunLogs, region_context
    logger = logging.getLogger("glancesync")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with RunLogs(tmp_path, ["master:RegionA", "master:RegionB"]) as logs:
            with region_context("master:RegionA"):
                echo = command("print('seen by the boot test')")
                assert echo.run(env(echo), "master:RegionA").passed
        texts = {name: path.read_text() for name, path in logs.paths.items()}
    finally:
        logger.setLevel(level)
    assert "seen by the boot test" in texts["master:RegionA"]
    assert "seen by the boot test" not in texts["master:RegionB"]
