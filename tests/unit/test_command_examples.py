"""The console examples of the manual's commands page and FAQ are real output.

The command pages (docs/manual/commands/), the FAQ and the test bed's page show
sessions: ``$ COMMAND`` lines, each followed
by what it prints (standard output, then standard error). This test runs
every session on a new demo federation as ``glancesync.demo`` builds it
before its sync (in ``.demo``, the folder the page names) and compares
each line. Image ids and the time in backup folder names vary: any UUID
matches any other, any time any other; the session's folder is shown as
/srv/demo; a line ``...`` stands for any number of lines.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from glancesync.demo import build_federation

ROOT = Path(__file__).resolve().parents[2]
MANUAL = ROOT / "docs" / "manual"
#: The pages whose console sessions are checked.
PAGES = [MANUAL / "commands.rst", *sorted((MANUAL / "commands").glob("*.rst")),
         MANUAL / "faq.rst", MANUAL / "testbed.rst"]
#: The modules a session may run as ``python -m MODULE``.
MODULES = ("glancesync.demo", "glancesync.testbed")
BIN = Path(sys.executable).parent
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: The time in the names of backup folders.
STAMP = re.compile(r"_\d{8}_\d{6}\b")
#: The current folder of the sessions, as the page names it.
FOLDER = "/srv/demo"


def _normal(line: str) -> str:
    return STAMP.sub("_<time>", UUID.sub("<id>", line))


def sessions() -> list[tuple[str, list[str]]]:
    """(page:line, lines without their indentation) of each session of the pages."""
    return [session for page in PAGES for session in _sessions(page)]


def _sessions(page: Path) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = re.match(r"^(\s+)\$ ", lines[index])
        if not match:
            index += 1
            continue
        indent, start, block = match.group(1), index, []
        while index < len(lines) and (lines[index].startswith(indent) or (
                not lines[index].strip() and index + 1 < len(lines)
                and lines[index + 1].startswith(indent))):
            block.append(lines[index][len(indent):])
            index += 1
        found.append((f"{page.relative_to(MANUAL)}:{start + 1}", block))
    return found


def steps(block: list[str]) -> list[tuple[str, list[str]]]:
    """The (command, expected output lines) of a session."""
    result: list[tuple[str, list[str]]] = []
    for line in block:
        if line.startswith("$ "):
            result.append((line[2:], []))
        else:
            result[-1][1].append(line)
    return [(command, _trim(expected)) for command, expected in result]


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` is ``expected``, ``...`` standing for any lines."""
    if not expected:
        return not actual
    if expected[0].strip() == "...":
        return any(matches(expected[1:], actual[skip:]) for skip in range(len(actual) + 1))
    return bool(actual) and _normal(expected[0]) == _normal(actual[0]) \
        and matches(expected[1:], actual[1:])


def test_the_page_has_sessions_of_every_command():
    commands = {" ".join(shlex.split(command)[:3]) if command.startswith("python ")
                else shlex.split(command)[0]
                for _, block in sessions() for command, _ in steps(block)}
    assert {"glancesync-sync", "glancesync-printimages", "glancesync-backup",
            *(f"python -m {module}" for module in MODULES)} <= commands


@pytest.mark.parametrize("line,block", sessions(), ids=lambda value: value
                         if isinstance(value, str) else "")
def test_session_prints_what_the_page_shows(line, block, tmp_path):
    build_federation(tmp_path / ".demo")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OS_", "GLANCESYNC_"))}
    env.update(GLANCESYNC_LOCK_DIR=str(tmp_path / "locks"), HOME=str(tmp_path), COLUMNS="80",
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    status = 0
    for command, expected in steps(block):
        argv = shlex.split(command)
        if argv[0] == "export":
            key, _, value = argv[1].partition("=")
            env[key] = value
            actual: list[str] = []
        elif argv == ["echo", "$?"]:
            actual = [str(status)]
        else:
            if argv[:2] == ["python", "-m"]:
                assert argv[2] in MODULES, command
                argv = [sys.executable, *argv[1:]]
            else:
                assert argv[0].startswith("glancesync-"), command
                argv = [str(BIN / argv[0]), *argv[1:]]
            done = subprocess.run(argv, capture_output=True,
                                  text=True, env=env, cwd=tmp_path, timeout=120,
                                  stdin=subprocess.DEVNULL)
            status = done.returncode
            actual = _trim((done.stdout + done.stderr).replace(str(tmp_path), FOLDER)
                           .splitlines())
        assert matches(expected, actual), (
            f"{line}: $ {command}\n--- the page shows:\n"
            + "\n".join(expected) + "\n--- the command prints:\n" + "\n".join(actual))
