"""glancesync.executor.validation piece by piece: what the mutants of issue 27 showed untested.

Most tests here need no process: the output reader reads a byte stream, the
environment and the cloud's variables are plain dictionaries. The few that
run a command run a short Python one.
"""
from __future__ import annotations

import io
import logging
import os
import shlex
import signal
import sys
import threading

import pytest

from glancesync.errors import ConfigError, ExitStatus
from glancesync.executor.validation import (MARK_LENGTH, MAX_LOGGED, OutputReader, Validation,
                                            ValidationError, cloud_environment, mark_output,
                                            split_command)

PY = shlex.quote(sys.executable)


def command(code: str, timeout: float = 60.0) -> Validation:
    return Validation.of(f"{PY} -c {shlex.quote(code)}", timeout, {})


def read(data: bytes, region: str = "r") -> OutputReader:
    reader = OutputReader(io.BytesIO(data), region)
    reader.run()  # in this thread: the test sees what it kept
    return reader


# -- split_command, ValidationError ----------------------------------------------------

def test_a_command_that_cannot_be_split_says_why():
    with pytest.raises(ConfigError) as raised:
        split_command("boot-test 'unclosed")
    assert str(raised.value) == ("validate_command cannot be split into words (No closing"
                                 " quotation): check its quotes")
    for empty in ("", "   "):
        with pytest.raises(ConfigError) as raised:
            split_command(empty)
        assert str(raised.value) == ("validate_command cannot be split into words (none):"
                                     " check its quotes")
    assert split_command("boot-test --flavor 'm1 small'") == ["boot-test", "--flavor",
                                                              "m1 small"]


def test_a_refusal_needs_an_operator_and_keeps_its_lines():
    error = ValidationError("refused", ["last line"], region="r", image="a")
    assert error.tail == ["last line"] and (error.region, error.image) == ("r", "a")
    assert error.exit_status is ExitStatus.NEEDS_OPERATOR and error.message == "refused"


# -- the environment --------------------------------------------------------------------

class Settings:
    def __init__(self, values, auth=None):
        self.values, self.auth = values, auth

    def option_values(self):
        return self.values


def test_the_cloud_of_no_settings_is_the_region_only():
    assert cloud_environment(None, "R") == {"OS_REGION_NAME": "R"}


def test_empty_false_and_list_settings_are_left_out_other_settings_are_named():
    values = {"cloud": "", "cacert": None, "insecure": False, "regions": ["A", "B"],
              "names": ("x",), "folder": "/srv/regions", "port": 8292, "zero": 0}
    assert cloud_environment(Settings(values), "R") == {
        "OS_REGION_NAME": "R", "GLANCESYNC_TARGET_FOLDER": "/srv/regions",
        "GLANCESYNC_TARGET_PORT": "8292"}


@pytest.mark.parametrize("key", ["application_credential_id", "application_credential_name"])
def test_an_application_credential_sets_its_auth_type(key):
    auth = {"auth_url": "https://k:5000/v3", key: "cred", "application_credential_secret": "s"}
    assert cloud_environment(Settings(dict(auth), auth), "R") == {
        "OS_REGION_NAME": "R", "OS_AUTH_URL": "https://k:5000/v3", f"OS_{key.upper()}": "cred",
        "OS_APPLICATION_CREDENTIAL_SECRET": "s", "OS_AUTH_TYPE": "v3applicationcredential"}
    password = {"auth_url": "https://k:5000/v3", "username": "u", "password": "p"}
    assert "OS_AUTH_TYPE" not in cloud_environment(Settings(dict(password), password), "R")


def test_the_environment_of_a_copy(monkeypatch):
    monkeypatch.setenv("OS_PASSWORD", "the-masters-secret")
    monkeypatch.setenv("GLANCESYNC_TEST_KEPT", "kept")
    cloud = {"OS_CLOUD": "region-cloud"}
    validation = Validation.of("boot-test", 30, cloud)
    cloud["OS_CLOUD"] = "changed later"  # the validation keeps its own copy
    env = validation.environment("RegionA", "id-1", "a\0b", "m-1")
    assert env["GLANCESYNC_TEST_KEPT"] == "kept" and "OS_PASSWORD" not in env
    assert {k: v for k, v in env.items() if k.startswith(("OS_", "GLANCESYNC_IMAGE",
                                                          "GLANCESYNC_REGION",
                                                          "GLANCESYNC_MASTER"))} == {
        "OS_CLOUD": "region-cloud", "GLANCESYNC_REGION": "RegionA",
        "GLANCESYNC_IMAGE_ID": "id-1", "GLANCESYNC_IMAGE_NAME": "a\\x00b",
        "GLANCESYNC_MASTER_IMAGE_ID": "m-1"}
    assert validation.words == ("boot-test",) and validation.timeout == 30
    assert Validation(("x",), 1).cloud == {}


# -- running the command ----------------------------------------------------------------

def test_the_command_reads_nothing_and_its_errors_are_kept():
    """Its input is closed, not this process's (a terminal it could steal or wait on)."""
    code = ("import sys; data = sys.stdin.read(); print('stdin', repr(data), flush=True);"
            " print('to stderr', file=sys.stderr)")
    saved = os.dup(0)
    read_end, write_end = os.pipe()
    os.write(write_end, b"this process's input\n")
    os.close(write_end)
    os.dup2(read_end, 0)
    try:
        ended = command(code).run({**os.environ}, "r")
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read_end)
    assert ended.returncode == 0 and ended.tail == ["stdin ''", "to stderr"]
    assert ended.output_bytes == len(b"stdin ''\nto stderr\n")


def test_the_command_gets_no_descriptor_of_this_process():
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        code = (f"import os, sys\ntry:\n    os.fstat({write_end})\nexcept OSError:\n"
                "    sys.exit(0)\nsys.exit(5)")
        ended = command(code).run({**os.environ}, "r")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert ended.returncode == 0, ended.tail


def test_a_command_that_cannot_run_says_why():
    ended = Validation.of("/no/such/validator --boot", 5, {}).run({}, "r")
    assert ended == type(ended)(127, ["cannot run /no/such/validator: No such file or"
                                      " directory"], 0)


def test_a_command_stopped_at_its_limit_says_which_limit():
    ended = command("import time; time.sleep(600)", timeout=0.5).run({**os.environ}, "r")
    assert ended.returncode is None
    assert ended.tail == ["stopped after 0.5 s (validate_timeout)"]


# -- the output reader ------------------------------------------------------------------

def test_the_reader_is_a_daemon_and_reads_no_stream_when_there_is_none():
    reader = OutputReader(None, "r")
    assert reader.daemon
    reader.run()
    assert (reader.total, list(reader.tail)) == (0, [])


def test_lines_are_kept_escaped_and_cut(caplog):
    data = (b"crlf\r\n" + b"spaces kept  \n" + b"MAX\n" + b"\xff\xfebad utf-8\n"
            + b"\x1b[31mred\n" + b"y" * 400 + b"\n"
            + b"no newline at the end")
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        reader = read(data, "master:RegionA")
    assert list(reader.tail) == ["crlf", "spaces kept  ", "MAX", "\ufffd\ufffdbad utf-8",
                                 "\\x1b[31mred", "y" * 300, "no newline at the end"]
    assert reader.total == len(data)
    assert [r.getMessage() for r in caplog.records][0] == "master:RegionA: validate_command: crlf"
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_a_long_line_is_read_in_pieces_of_64_kib():
    """A command printing without newlines cannot make the reader hold it all."""
    data = b"a" * (64 * 1024) + b"b" * 64 + b"c" * 1000 + b"\n"
    reader = read(data)
    assert list(reader.tail) == ["a" * 300, "b" * 64 + "c" * 236]


def test_the_tail_keeps_the_last_ten_lines():
    reader = read(b"".join(b"line %d\n" % i for i in range(25)))
    assert list(reader.tail) == [f"line {i}" for i in range(15, 25)]


def test_the_log_holds_exactly_max_logged_bytes_then_one_warning(caplog):
    line = b"z" * 1023 + b"\n"  # 1 KiB a line: 256 lines reach the limit exactly
    count = MAX_LOGGED // len(line)
    assert count * len(line) == MAX_LOGGED
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        reader = read(line * (count + 3), "r")
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages[:count] == [(logging.INFO, "r: validate_command: " + "z" * 300)] * count
    assert messages[count:] == [(logging.WARNING, "r: validate_command: output beyond"
                                 f" {MAX_LOGGED} bytes not logged")]
    assert reader.total == (count + 3) * len(line)


# -- the mark ---------------------------------------------------------------------------

def test_the_mark_keeps_the_end_of_the_last_lines():
    assert mark_output(["one", "two"]) == "one | two"
    long = mark_output(["x" * 300, "the reason"])
    assert len(long) == MARK_LENGTH == 255 and long.endswith("x | the reason")
    assert mark_output([]) == ""


# -- processes ----------------------------------------------------------------------------

def _gone(pid: int) -> bool:
    """No such process, or a zombie (ended, not yet reaped by its new parent)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_process_that_left_the_command_does_not_hold_the_run(tmp_path):
    """A command that leaves a process of its own session holding its output: the
    run ends DRAIN_TIME after the command, with what it printed (no hang)."""
    pidfile = tmp_path / "pid"
    code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c',"
            " 'import os, time; os.setsid(); time.sleep(600)']);"
            f" open({str(pidfile)!r}, 'w').write(str(p.pid)); print('left', flush=True)")
    result = []
    runner = threading.Thread(target=lambda: result.append(
        command(code).run({**os.environ}, "r")), daemon=True)
    runner.start()
    try:
        runner.join(120)  # generous: DRAIN_TIME is 5 s
        assert not runner.is_alive(), "the run waits for the process that left"
        (ended,) = result
        assert ended.returncode == 0 and ended.tail == ["left"]
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_a_stopped_command_is_ended_and_reaped():
    code = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(600)"
    ended = command(code, timeout=0.5).run({**os.environ}, "r")
    pid = int(ended.tail[0].split()[1])
    assert not os.path.exists(f"/proc/{pid}"), "the command still runs or was not reaped"


def test_output_after_the_run_took_its_lines_is_neither_kept_nor_logged(caplog):
    reader = OutputReader(io.BytesIO(b"printed later\n"), "r")
    assert reader.finish("stopped") == (["stopped"], 0)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        reader.run()
    assert (list(reader.tail), reader.total, caplog.records) == (["stopped"], 0, [])
