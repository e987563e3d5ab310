"""RegionLock: tests that kill the mutants of glancesync/lock/files.py that survived
the first mutation run (issue 27).

The tests run as root, who may open and write anything; the permission errors
are provoked for real in a forked child that has dropped to another user
(``nobody``), or with a resource limit (RLIMIT_FSIZE). Each such test also calls
the same function in the test's own process (as root, where it succeeds): mutmut
runs against a mutant only the tests it saw calling the mutated function, and it
does not see the calls made in a forked child. Each test names the
mutants it kills (``python -m tests.mutation --diffs lock``, mutmut 3.8.1 names).
"""
from __future__ import annotations

import logging
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import pytest

from glancesync.errors import GlanceSyncError
from glancesync.lock import RegionLock, default_lock_dir, user_lock_dir
from glancesync.lock import files as lock_files

NOBODY = 65534
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="switches to another user: needs root")


@pytest.fixture
def shared():
    """A folder every user can reach (pytest's own are root's, mode 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="locktest-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def in_child(function, uid: int | None = NOBODY, fsize: int | None = None) -> str:
    """``function()``'s result (a string) computed in a forked child running as ``uid``
    (None: as root) and with a file size limit of ``fsize`` bytes; a traceback if
    it raised. Fails after 60 s (a hang guard: a blocked open)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        # Ends itself if left blocked (its parent killed first, e.g. by mutmut's
        # timeout, it would stay blocked on a FIFO for good).
        signal.alarm(90)
        try:
            if fsize is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            text = str(function())
        except BaseException:  # noqa: BLE001 - reported to the parent
            text = "raised " + traceback.format_exc()
        os.write(write, text.encode())
        os._exit(0)
    os.close(write)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([read], [], [], 60)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                pytest.fail("the child did not finish in 60 s")
            chunk = os.read(read, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def attempt(lock: RegionLock) -> str:
    try:
        lock.acquire()
    except GlanceSyncError as exc:
        return f"{type(exc).__name__}: {exc}"
    lock.release()
    return "acquired"


# --- the machine-wide folder ---------------------------------------------------------

def test_the_fallback_warning_names_the_folder_the_problem_and_the_fallback(tmp_path, caplog):
    # kills default_lock_dir__mutmut_9, 11, 16, 18, 20, 21 (the warning's words and args)
    machine = tmp_path / "missing" / "glancesync"
    with caplog.at_level(logging.WARNING, logger="glancesync.lock"):
        assert default_lock_dir(machine) == user_lock_dir()
    assert caplog.messages == [
        f"the machine-wide lock folder {machine} cannot be used (cannot create it: No such"
        f" file or directory): using {user_lock_dir()}, which runs of other users do not"
        " see; set lock_dir in [main] to a folder every operator shares"]


def test_a_link_is_no_machine_folder(tmp_path):
    # kills _machine_dir_problem__mutmut_17 (its words)
    (tmp_path / "real").mkdir(mode=0o1777)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert (lock_files._machine_dir_problem(tmp_path / "link")
            == "not a directory (a link, or a file)")


@needs_root
def test_a_folder_of_another_user_is_no_machine_folder(tmp_path):
    # kills _machine_dir_problem__mutmut_20 (root's uid 0 written 1): a folder of
    # user 1 is refused
    folder = tmp_path / "theirs"
    folder.mkdir()
    os.chown(folder, 1, 1)
    assert lock_files._machine_dir_problem(folder) == (
        "owned by user 1, who could remove other users' lock files")


def test_only_a_folder_others_may_write_to_must_be_sticky(tmp_path):
    # kills _machine_dir_problem__mutmut_22 ("&" made "|": every folder would need the
    # sticky bit) and 26 (the words)
    folder = tmp_path / "mine"
    folder.mkdir()
    folder.chmod(0o755)
    assert lock_files._machine_dir_problem(folder) is None
    folder.chmod(0o777)
    assert lock_files._machine_dir_problem(folder) == (
        "others may write to it and it is not sticky (mode 1777 expected)")


@needs_root
def test_a_folder_this_user_cannot_write_is_no_machine_folder(shared):
    # kills _machine_dir_problem__mutmut_33 (W_OK & X_OK is F_OK), 34, 35 (the words):
    # root's folder, mode 0755, seen by nobody
    folder = shared / "roots"
    folder.mkdir(mode=0o755)
    assert in_child(lambda: lock_files._machine_dir_problem(folder)) == (
        "not writable by this user")
    assert lock_files._machine_dir_problem(folder) is None  # root may write


# --- the lock file -------------------------------------------------------------------

@needs_root
def test_a_lock_file_that_cannot_be_created_says_so(shared):
    # kills RegionLock._open__mutmut_24..29: creating in root's folder as nobody
    folder = shared / "locks"
    folder.mkdir(mode=0o755)
    lock = RegionLock(folder, "r1")
    assert in_child(lambda: attempt(lock)) == (
        f"GlanceSyncError: region r1: lock file {lock.path} cannot be created: Permission denied")
    assert attempt(lock) == "acquired"  # root may create it


@needs_root
def test_a_lock_file_that_cannot_be_opened_says_so(shared):
    # kills RegionLock._open__mutmut_41 (_refused(None)) and _refused__mutmut_5..10:
    # root's lock file, mode 0600, opened by nobody (read-write, then read-only)
    lock = RegionLock(shared, "r1")
    lock.path.write_text("1\n")
    lock.path.chmod(0o600)
    assert in_child(lambda: attempt(lock)) == (
        f"GlanceSyncError: region r1: lock file {lock.path} cannot be opened: Permission denied")
    assert attempt(lock) == "acquired"  # root may open it
    # A socket at the path: open() fails for root too (ENXIO), in this process.
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(lock.path))
        assert attempt(lock) == (f"GlanceSyncError: region r1: lock file {lock.path} cannot"
                                 " be opened: No such device or address")


@needs_root
def test_another_users_fifo_is_refused_without_blocking(shared):
    # kills RegionLock._open__mutmut_2, 3 and 40 (O_NONBLOCK dropped): nobody cannot open
    # root's FIFO read-write, and opening it read-only without O_NONBLOCK would wait
    # for a writer for ever (the child's 60 s guard fails the test)
    lock = RegionLock(shared, "r1")
    os.mkfifo(lock.path, 0o644)
    assert in_child(lambda: attempt(lock)) == (
        f"GlanceSyncError: region r1: lock file {lock.path} is not a regular file: refused (remove it)")
    assert attempt(lock).endswith("is not a regular file: refused (remove it)")  # root too


def test_a_symbolic_link_is_refused_in_words(tmp_path):
    # kills RegionLock._refused__mutmut_3 (its words)
    lock = RegionLock(tmp_path, "r1")
    lock.path.symlink_to(tmp_path / "elsewhere")
    assert attempt(lock) == (
        f"GlanceSyncError: region r1: lock file {lock.path} is a symbolic link: refused (remove it)")


def test_a_lock_file_that_cannot_be_written_says_so(tmp_path):
    # kills RegionLock._acquire_now__mutmut_62..68: a file size limit of 0 bytes makes
    # the pid's write fail (EFBIG); the descriptor is closed, the error named
    lock = RegionLock(tmp_path, "r1")
    assert in_child(lambda: attempt(lock), uid=None, fsize=0) == (
        f"GlanceSyncError: region r1: lock file {lock.path} cannot be written: File too large")
    assert attempt(lock) == "acquired"  # without the limit


@needs_root
def test_a_lock_file_that_cannot_be_removed_is_logged(shared):
    # kills RegionLock.release__mutmut_6..13 (the debug line's words and arguments):
    # nobody's lock folder made read-only while nobody holds the lock
    folder = shared / "locks"
    folder.mkdir()
    os.chown(folder, NOBODY, NOBODY)
    lock = RegionLock(folder, "r1")

    def hold_then_release() -> str:
        records: list[str] = []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = lambda record: records.append(record.getMessage())
        logger = logging.getLogger("glancesync.lock")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        lock.acquire()
        folder.chmod(0o555)
        lock.release()
        return "\n".join(records)

    lines = in_child(hold_then_release).splitlines()
    assert (f"could not remove {lock.path}: [Errno 13] Permission denied: '{lock.path}'"
            in lines), lines
    assert lock.path.exists()
    folder.chmod(0o755)
    lock.acquire()  # root: nobody's file is not root's to remove
    lock.release()
    assert lock.path.exists()


def test_a_lock_file_removed_by_someone_else_is_not_removed_again(tmp_path, caplog):
    # kills RegionLock._still_there__mutmut_3 (a missing file taken for ours: release
    # would try to remove it and log that it could not)
    lock = RegionLock(tmp_path, "r1")
    with caplog.at_level(logging.DEBUG, logger="glancesync.lock"):
        lock.acquire()
        lock.path.unlink()
        lock.release()
    assert caplog.messages == [f"locked region r1 ({lock.path})", "unlocked region r1"]
    # kills _acquire_now__mutmut_76 and release__mutmut_19 too (the words above)


def test_a_wait_that_ends_locked_is_logged(tmp_path, caplog):
    # kills RegionLock.acquire__mutmut_23 (the words of the debug line)
    first, second = RegionLock(tmp_path, "r1"), RegionLock(tmp_path, "r1")
    with first, caplog.at_level(logging.DEBUG, logger="glancesync.lock"):
        with pytest.raises(GlanceSyncError):
            second.acquire(timeout=0.01)
    assert "region r1: still locked after waiting 0.01 s" in caplog.messages


def test_a_held_lock_shows_as_held(tmp_path):
    # kills RegionLock.__repr__ mutants 2, 4, 5
    lock = RegionLock(tmp_path, "r1")
    with lock:
        assert repr(lock) == f"<RegionLock r1 {lock.path} held>"
    assert repr(lock) == f"<RegionLock r1 {lock.path} free>"


# --- the holder ----------------------------------------------------------------------

def test_the_pid_is_read_from_the_first_32_bytes(tmp_path):
    # kills _read_pid__mutmut_12 (33 bytes read: the "9" after the padding would make
    # the text no number)
    lock = RegionLock(tmp_path, "r1")
    lock.path.write_text(str(os.getpid()).ljust(32) + "9\n")
    assert lock.holder() == f"pid {os.getpid()}"


HUP_REPORTER = (
    "import signal, sys\n"
    "signal.signal(signal.SIGHUP, lambda *args: print('HUP', flush=True))\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "print('end', flush=True)\n")


def test_asking_for_the_holder_sends_it_no_signal(tmp_path):
    # kills _running__mutmut_5 (os.kill(pid, 1): a SIGHUP to the holder). The holder
    # reports a SIGHUP; it reads a line only after holder() has returned, and a
    # signal sent before is handled before it prints "end".
    child = subprocess.Popen([sys.executable, "-c", HUP_REPORTER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        lock = RegionLock(tmp_path, "r1")
        lock.path.write_text(f"{child.pid}\n")
        assert lock.holder() == f"pid {child.pid}"
        output, _ = child.communicate("go\n", timeout=120)
        assert output == "end\n"
    finally:
        child.kill()
        child.wait()


@needs_root
def test_a_holder_of_another_user_is_running(shared):
    # kills _running__mutmut_7 (PermissionError taken for "not running"): nobody asks
    # about pid 1, root's
    lock = RegionLock(shared, "r1")
    lock.path.write_text("1\n")
    lock.path.chmod(0o644)
    assert in_child(lock.holder) == "pid 1"
    assert lock.holder() == "pid 1"  # root may signal it
