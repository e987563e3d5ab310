"""Processes of the test bed: spawn in their own group, find, stop by PID.

Every service runs in its own session (so its process group id is its PID)
and is identified by PID plus kernel start time, so a recycled PID is never
killed by mistake. Linux ``/proc`` is the source of truth: it works from the
process that started the bed and from any other one (``stop`` from a shell).

A process is gone only when every one of its threads is: the main thread of
a killed multi-threaded process (a uWSGI worker) can be a zombie while
another thread still tears the address space down and has not yet closed
the process's files, listening socket included.

Some services leave their process group: Erlang's helpers
(``erl_child_setup``, ``inet_gethost``, a daemonised ``epmd``) start
sessions of their own. Every process the bed spawns carries the variable
:data:`TAG_VARIABLE` in its environment, which its children inherit, so
:func:`tagged` finds them all by reading ``/proc/PID/environ``.
"""
from __future__ import annotations

import ctypes
import logging
import os
import pwd
import signal
import subprocess
import threading
import time
from pathlib import Path

LOG = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: Environment variable naming the bed and service a process belongs to.
TAG_VARIABLE = "GLANCESYNC_TESTBED_TAG"
#: Task states of /proc/PID/stat that mean "has exited": zombie, dead.
_EXITED = ("Z", "X")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces.
    return raw[raw.rindex(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """Kernel start time of PID (clock ticks since boot), None if gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _runs(pid: int, fields: list[str]) -> bool:
    """True unless PID (whose stat FIELDS were read) has finished exiting.

    A zombie main thread is not enough: the other threads may still run
    their exit and hold the process's files open.
    """
    if fields[0] not in _EXITED:
        return True
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            raw = Path(f"/proc/{pid}/task/{task}/stat").read_text()
        except OSError:
            continue  # the thread was released meanwhile: it has exited
        if raw[raw.rindex(")") + 2] not in _EXITED:
            return True
    return False


def group_members(pgid: int) -> list[int]:
    """Processes of the process group PGID that have not finished exiting."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        fields = _stat_fields(pid)
        if fields and int(fields[2]) == pgid and _runs(pid, fields):
            members.append(pid)
    return sorted(members)


def is_alive(pid: int, started: int | None) -> bool:
    """True if PID has not finished exiting and is the same process (start time)."""
    fields = _stat_fields(pid)
    if not fields or not _runs(pid, fields):
        return False
    return started is None or int(fields[19]) == started


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the spawning thread's process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(argv: list[str], *, log_path: Path, env: dict[str, str],
          cwd: Path, tie_to_parent: bool, user: str | None = None) -> subprocess.Popen:
    """Start ARGV in a new session, output appended to LOG_PATH.

    With ``tie_to_parent`` (and only from the main thread, since the kernel
    ties the signal to the spawning thread) the child gets SIGTERM if this
    process dies, even by SIGKILL: services never outlive a test run.
    USER (only when running as root) runs the child as that user and its
    primary group, without supplementary groups; the parent-death signal
    is set after the switch, which would clear it.
    """
    tie = tie_to_parent and threading.current_thread() is threading.main_thread()
    identity: dict = {}
    if user is not None:
        identity = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True,
            preexec_fn=_die_with_parent if tie else None, **identity)


def tagged(prefix: str) -> dict[int, tuple[int, str]]:
    """Processes whose :data:`TAG_VARIABLE` starts with PREFIX: pid -> (start time, tag).

    Processes whose environment cannot be read (another user's, when not
    root) are not ours anyway: the bed runs its services as this user or,
    as root, as a user whose processes root reads.
    """
    wanted = f"{TAG_VARIABLE}=".encode()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(wanted):
                tag = item[len(wanted):].decode(errors="replace")
                fields = _stat_fields(pid)
                if tag.startswith(prefix) and fields and _runs(pid, fields):
                    found[pid] = (int(fields[19]), tag)
                break
    return found


def stop_processes(pids: dict[int, int | None], *, grace: float = 10.0) -> list[int]:
    """Stop each process (pid -> start time) by its PID: SIGTERM, SIGKILL after GRACE s.

    For processes outside the groups :func:`stop_groups` reaches. Returns
    the PIDs still alive at the end (normally none).
    """
    def signal_each(sig: int) -> None:
        for pid, started in pids.items():
            if is_alive(pid, started):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    signal_each(signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed = False
    while True:
        alive = [pid for pid, started in pids.items() if is_alive(pid, started)]
        if not alive:
            return []
        if time.monotonic() > deadline:
            if killed:
                LOG.error("processes still alive after SIGKILL: %s", alive)
                return alive
            LOG.warning("processes %s ignored SIGTERM; sending SIGKILL", alive)
            signal_each(signal.SIGKILL)
            killed = True
            deadline = time.monotonic() + 5.0
        time.sleep(0.05)


def signal_group(pgid: int, started: int | None, sig: int) -> None:
    """Send SIG to the process group PGID if its leader is still the same."""
    if started is not None and start_time(pgid) not in (None, started):
        return  # PID recycled by an unrelated process: not ours.
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def reap(children: dict[int, subprocess.Popen]) -> None:
    """Collect exit statuses of our own children (no zombies left)."""
    for proc in children.values():
        proc.poll()


def stop_groups(groups: dict[int, int | None], *, grace: float = 10.0,
                children: dict[int, subprocess.Popen] | None = None,
                first_signal: int = signal.SIGTERM) -> list[int]:
    """Stop every process group (pgid -> leader start time); bounded.

    Sends FIRST_SIGNAL, waits up to GRACE seconds, then SIGKILL and waits a
    few more seconds. Returns the PIDs still alive at the end (normally none).
    """
    children = children or {}
    for pgid, started in groups.items():
        signal_group(pgid, started, first_signal)
    deadline = time.monotonic() + grace
    killed = first_signal == signal.SIGKILL
    while True:
        reap(children)
        alive = [pid for pgid in groups for pid in group_members(pgid)]
        if not alive:
            reap(children)  # the leaders may have become zombies just now
            return []
        if time.monotonic() > deadline:
            if killed:
                LOG.error("processes still alive after SIGKILL: %s", alive)
                return alive
            LOG.warning("processes %s ignored %s; sending SIGKILL", alive,
                        signal.Signals(first_signal).name)
            for pgid in groups:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed = True
            deadline = time.monotonic() + 5.0
        time.sleep(0.05)
