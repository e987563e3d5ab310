"""RegionLock: one run per region, across processes."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import glancesync
from glancesync.errors import ExitStatus, GlanceSyncError, LockedError
from glancesync.lock import (MACHINE_LOCK_DIR, RegionLock, default_lock_dir, lock_file_name,
                             user_lock_dir)

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from glancesync.lock import RegionLock
    with RegionLock(Path(sys.argv[1]), sys.argv[2]):
        print("locked", flush=True)
        sys.stdin.readline()
""")


@pytest.fixture
def holder(tmp_path: Path):
    """Start a process holding the lock of ``master:RegionOne``; yield it."""
    processes = []

    def start(region: str = "master:RegionOne") -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), region],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        processes.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in processes:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=10)


def test_lock_held_by_another_process_is_refused_with_its_pid(tmp_path, holder):
    proc = holder()
    lock = RegionLock(tmp_path, "master:RegionOne")
    with pytest.raises(LockedError) as info:
        lock.acquire()
    message = str(info.value)
    assert "another glancesync run is synchronising region master:RegionOne" in message
    assert f"pid {proc.pid}" in message
    assert str(lock.path) in message
    assert info.value.exit_status == ExitStatus.LOCKED
    assert not lock.locked


def test_lock_is_free_again_when_the_holder_exits(tmp_path, holder):
    proc = holder()
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    with RegionLock(tmp_path, "master:RegionOne") as lock:
        assert lock.locked
        assert lock.path.read_text().strip() == str(os.getpid())
    assert not lock.locked


def test_lock_is_released_when_the_holder_is_killed(tmp_path, holder):
    proc = holder()
    proc.kill()
    proc.wait(timeout=10)
    with RegionLock(tmp_path, "master:RegionOne"):
        pass


def test_other_regions_are_not_blocked(tmp_path, holder):
    holder("master:RegionOne")
    with RegionLock(tmp_path, "master:RegionTwo"), RegionLock(tmp_path, "other:RegionOne"):
        pass


def test_same_region_twice_in_one_process_is_refused(tmp_path):
    with RegionLock(tmp_path, "t:R"):
        with pytest.raises(LockedError):
            RegionLock(tmp_path, "t:R").acquire()
    with RegionLock(tmp_path, "t:R"):
        pass


def test_lock_directory_is_created(tmp_path):
    folder = tmp_path / "a" / "b"
    with RegionLock(folder, "r") as lock:
        assert lock.path.parent == folder
        assert lock.path.exists()


def test_file_names_are_safe_and_distinct():
    names = {lock_file_name(region) for region in
             ("master:RegionOne", "master_RegionOne", "../etc/passwd", "a/b", "a:b", "a_b")}
    assert len(names) == 6
    for name in names:
        assert "/" not in name and ":" not in name and not name.startswith(".")
    assert lock_file_name("plain-Region.1") == "plain-Region.1.lock"


def test_the_user_lock_dir_is_under_the_user_state_dir():
    folder = user_lock_dir()
    assert folder.name == "locks"
    assert "glancesync" in folder.parts


# --- issue 15, case 3: a lock folder others may write to ------------------------------

def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_text("precious\n")
    path.chmod(0o600)
    return path


def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    target = victim(tmp_path)
    lock = RegionLock(tmp_path / "locks", "t:R")
    lock.lock_dir.mkdir()
    lock.path.symlink_to(target)
    with pytest.raises(GlanceSyncError, match="is a symbolic link: refused"):
        lock.acquire()
    assert target.read_text() == "precious\n" and not lock.locked
    assert lock.path.is_symlink()  # left for the operator to look at


def test_a_dangling_symlink_creates_nothing_where_it_points(tmp_path):
    lock = RegionLock(tmp_path / "locks", "t:R")
    lock.lock_dir.mkdir()
    lock.path.symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(GlanceSyncError, match="symbolic link"):
        lock.acquire()
    assert not (tmp_path / "created-through-the-link").exists()


@pytest.mark.timeout(30)  # a FIFO opened without care blocks for ever
@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_lock_path_that_is_not_a_regular_file_is_refused_without_hanging(tmp_path, kind):
    lock = RegionLock(tmp_path, "t:R")
    if kind == "fifo":
        os.mkfifo(lock.path)
    else:
        os.mkfifo(lock.path)
    with pytest.raises(GlanceSyncError, match=str(lock.path)):
        lock.acquire()
    assert not lock.locked


def test_a_hard_link_to_another_file_is_never_written(tmp_path):
    target = victim(tmp_path)
    lock = RegionLock(tmp_path / "locks", "t:R")
    lock.lock_dir.mkdir()
    os.link(target, lock.path)
    with lock:
        assert lock.locked
    assert target.read_text() == "precious\n"
    assert lock.path.exists()  # not ours alone: not removed either


def test_opening_does_not_truncate_the_file_of_a_holder(tmp_path, holder):
    holder("t:R")
    before = (tmp_path / lock_file_name("t:R")).read_text()
    with pytest.raises(LockedError):
        RegionLock(tmp_path, "t:R").acquire()
    assert (tmp_path / lock_file_name("t:R")).read_text() == before != ""


def test_lock_files_are_readable_by_every_user_whatever_the_umask(tmp_path):
    previous = os.umask(0o077)
    try:
        with RegionLock(tmp_path, "t:R") as lock:
            assert lock.path.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(previous)


# --- issue 17, case 10: lock files do not pile up ---------------------------------------

def test_the_lock_file_is_removed_on_release(tmp_path):
    with RegionLock(tmp_path, "t:R") as lock:
        assert lock.path.exists()
    assert not lock.path.exists()
    assert list(tmp_path.iterdir()) == []


STRESS = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from glancesync.errors import LockedError
    from glancesync.lock import RegionLock
    folder, journal, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    taken = 0
    while taken < rounds:
        try:
            with RegionLock(folder, "t:R"):
                fd = os.open(journal, os.O_WRONLY | os.O_APPEND)
                os.write(fd, b"in %d\\n" % os.getpid())
                time.sleep(0.001)
                os.write(fd, b"out %d\\n" % os.getpid())
                os.close(fd)
                taken += 1
        except LockedError:
            pass
    print(taken)
""")


@pytest.mark.timeout(600)  # a hang guard only: each run takes its turns, however slowly
def test_removing_lock_files_keeps_runs_exclusive(tmp_path):
    """Runs racing on one region: never two holders, even as files come and go.

    A run that opened the file just before its holder removed it must notice,
    once it holds the lock, that the file is gone, and start again. Each of the
    four runs takes the lock a fixed number of times, with no deadline: a
    loaded machine makes the test slower, never wrong (issue 27).
    """
    journal = tmp_path / "journal"
    journal.write_text("")
    procs = [subprocess.Popen([sys.executable, "-c", STRESS, str(tmp_path / "locks"),
                               str(journal), "40"], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    taken = [int(proc.communicate(timeout=590)[0]) for proc in procs]
    lines = journal.read_text().splitlines()
    assert taken == [40] * 4 and len(lines) == 2 * 160
    for first, second in zip(lines[::2], lines[1::2]):  # strictly in, out, in, out...
        assert first.startswith("in ") and second == "out " + first[3:]
    assert list((tmp_path / "locks").iterdir()) == []


# --- issue 15, case 12: one lock folder for every user -----------------------------------

def test_the_machine_lock_dir_is_created_shared_and_used(tmp_path):
    folder = tmp_path / "glancesync"
    previous = os.umask(0o022)
    try:
        assert default_lock_dir(folder) == folder
    finally:
        os.umask(previous)
    assert folder.stat().st_mode & 0o7777 == 0o1777


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.symlink_to(p.parent / "elsewhere", target_is_directory=True),
     "not a directory"),
    (lambda p: p.write_text(""), "not a directory"),
    (lambda p: (p.mkdir(), p.chmod(0o777)), "not sticky"),
    (lambda p: None if (p.parent / "missing").exists() else None, "cannot create it"),
])
def test_an_unusable_machine_lock_dir_falls_back_to_the_user_with_a_warning(
        tmp_path, caplog, make, reason):
    folder = tmp_path / "glancesync"
    make(folder)
    if reason == "cannot create it":
        folder = tmp_path / "missing" / "glancesync"
    (tmp_path / "elsewhere").mkdir()
    with caplog.at_level("WARNING", logger="glancesync.lock"):
        assert default_lock_dir(folder) == user_lock_dir()
        assert default_lock_dir(folder) == user_lock_dir()
    assert len(caplog.records) == 1  # warned once
    assert reason in caplog.text and "set lock_dir" in caplog.text


def as_nobody() -> list[str]:
    """A command prefix running as user nobody (root only)."""
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a folder of another user")
def test_a_machine_lock_dir_owned_by_another_user_is_not_trusted(tmp_path, caplog):
    folder = tmp_path / "glancesync"
    folder.mkdir(mode=0o1777)
    os.chown(folder, 65534, 65534)
    with caplog.at_level("WARNING", logger="glancesync.lock"):
        assert default_lock_dir(folder) == user_lock_dir()
    assert "owned by user 65534" in caplog.text


def test_the_default_lock_folder_is_shared_by_runs_of_different_homes(tmp_path, monkeypatch):
    """Cron and an operator, each with their home: they see each other's locks."""
    region = f"t:R-{os.getpid()}-{tmp_path.name}"  # the real machine folder: a unique name
    env = {**os.environ, "HOME": str(tmp_path / "cron"),
           "XDG_STATE_HOME": str(tmp_path / "cron" / "state")}
    code = HOLDER.replace("RegionLock(Path(sys.argv[1]), sys.argv[2])",
                          "RegionLock(None, sys.argv[2])")
    proc = subprocess.Popen([sys.executable, "-c", code, "", region], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        monkeypatch.setenv("HOME", str(tmp_path / "operator"))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "operator" / "state"))
        if default_lock_dir() == MACHINE_LOCK_DIR:
            with pytest.raises(LockedError, match=f"pid {proc.pid}"):
                RegionLock(None, region).acquire()
        else:  # a machine without a usable /var/lock: each home has its own folder
            assert default_lock_dir() == tmp_path / "operator" / "state" / "glancesync" / "locks"
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


@pytest.fixture
def shared() -> Path:
    """A lock folder like the machine-wide one (mode 1777), reachable by every user."""
    base = Path(tempfile.mkdtemp(prefix="glancesync-locks-", dir="/tmp"))
    base.chmod(0o755)
    folder = base / "locks"
    folder.mkdir()
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(base)


def test_a_lock_file_of_another_user_is_locked_read_only(shared):
    """Files are 0644: a run of another user opens them read-only, and that locks too."""
    path = shared / lock_file_name("t:R")
    path.write_text("")
    path.chmod(0o444)  # not writable by us (as root: owned by nobody)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
    with RegionLock(shared, "t:R") as lock:
        assert lock.locked and path.read_text() == ""  # locked, never written
        with pytest.raises(LockedError):
            RegionLock(shared, "t:R").acquire()
    assert path.exists()  # not ours: never removed


PROBE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from glancesync.errors import LockedError
    from glancesync.lock import RegionLock
    try:
        with RegionLock(Path(sys.argv[1]), "t:R"):
            print("took it")
    except LockedError as error:
        print("locked:", error)
""")


def _searchable_by_others(path: Path) -> bool:
    """Whether every folder from / down to ``path`` lets other users through."""
    return all(folder.stat().st_mode & stat.S_IXOTH
               for folder in (path, *path.parents) if folder.is_dir())


#: What user nobody must reach to run the probe: the interpreter's environment
#: and the project's package (an editable install points into the checkout).
PROBE_NEEDS = [Path(sys.prefix), Path(glancesync.__file__).resolve().parent]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can run a process as another user")
@pytest.mark.skipif(not all(map(_searchable_by_others, PROBE_NEEDS)),
                    reason="the checkout or its virtual environment is in a folder other"
                           " users cannot enter, so a process of user nobody cannot import"
                           " glancesync")
@pytest.mark.timeout(60)
def test_runs_of_two_users_exclude_each_other(shared):
    def probe() -> str:
        done = subprocess.run([*as_nobody(), sys.executable, "-c", PROBE, str(shared)],
                              capture_output=True, text=True, timeout=30,
                              env={**os.environ, "HOME": str(shared)})
        assert done.returncode == 0, done.stderr
        return done.stdout

    with RegionLock(shared, "t:R"):  # root's lock file, 0644: nobody locks it read-only
        assert probe().startswith("locked: another glancesync run")
    assert probe() == "took it\n"  # and nobody's own file goes away on release
    assert list(shared.iterdir()) == []


# --- issue 27: a release removes only the file it locked ---------------------------------

def test_a_release_does_not_remove_a_lock_file_it_does_not_own(tmp_path):
    """The first run's lock file is removed while it runs (by hand, a clean-up job);
    a second run creates a new one and locks it. When the first run ends, it must
    leave the second run's file alone: otherwise a third run would create yet
    another file and run beside the second."""
    first = RegionLock(tmp_path, "t:R")
    first.acquire()
    os.unlink(first.path)
    second = RegionLock(tmp_path, "t:R")
    second.acquire()
    second_file = os.stat(second.path)
    first.release()
    assert second.path.exists()
    assert os.stat(second.path).st_ino == second_file.st_ino
    third = RegionLock(tmp_path, "t:R")
    with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
        third.acquire()
    second.release()
    assert not second.path.exists()
    third.acquire()
    third.release()


def test_a_release_does_not_remove_a_file_put_in_place_of_its_own(tmp_path):
    """The lock file replaced by another (renamed over it): the release leaves it."""
    lock = RegionLock(tmp_path, "t:R")
    lock.acquire()
    other = tmp_path / "other"
    other.write_text("12345\n")
    os.replace(other, lock.path)
    lock.release()
    assert lock.path.read_text() == "12345\n"


def test_a_release_after_the_file_was_removed_creates_nothing(tmp_path):
    lock = RegionLock(tmp_path, "t:R")
    lock.acquire()
    os.unlink(lock.path)
    lock.release()
    assert list(tmp_path.iterdir()) == []
    assert not lock.locked


# --- waiting for a lock, on a clock of the test's own (mutation survivors) ----------------

class Clock:
    """A clock that moves only when the lock sleeps; ``on_sleep`` runs at each sleep."""

    def __init__(self, on_sleep=None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert len(self.sleeps) < 100, "the lock keeps waiting"
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


def test_no_timeout_means_no_wait(tmp_path):
    holder = RegionLock(tmp_path, "t:R")
    holder.acquire()
    clock = Clock()
    waiter = RegionLock(tmp_path, "t:R", sleep=clock.sleep, clock=clock)
    with pytest.raises(LockedError):
        waiter.acquire()
    with pytest.raises(LockedError):
        waiter.acquire(0)
    assert clock.sleeps == []
    holder.release()


@pytest.mark.timeout(30)
def test_a_wait_polls_until_the_deadline_then_says_so(tmp_path, caplog):
    holder = RegionLock(tmp_path, "t:R")
    holder.acquire()
    clock = Clock()
    waiter = RegionLock(tmp_path, "t:R", sleep=clock.sleep, clock=clock)
    with caplog.at_level("DEBUG", logger="glancesync.lock"), pytest.raises(LockedError):
        waiter.acquire(1.2)
    assert clock.sleeps == [0.5, 0.5, pytest.approx(0.2)]
    assert "region t:R: still locked after waiting 1.2 s" in caplog.text
    holder.release()


@pytest.mark.timeout(30)
def test_a_wait_without_deadline_ends_when_the_holder_releases(tmp_path):
    holder = RegionLock(tmp_path, "t:R")
    holder.acquire()
    clock = Clock(on_sleep=lambda count: count == 3 and holder.release())
    waiter = RegionLock(tmp_path, "t:R", sleep=clock.sleep, clock=clock)
    waiter.acquire(None)
    assert waiter.locked and clock.sleeps == [0.5, 0.5, 0.5]
    waiter.release()


@pytest.mark.timeout(30)
def test_a_wait_takes_the_lock_released_within_the_time(tmp_path):
    holder = RegionLock(tmp_path, "t:R")
    holder.acquire()
    clock = Clock(on_sleep=lambda count: count == 2 and holder.release())
    waiter = RegionLock(tmp_path, "t:R", sleep=clock.sleep, clock=clock)
    waiter.acquire(10)
    assert waiter.locked and clock.sleeps == [0.5, 0.5]
    waiter.release()


def test_holding_logs_the_lock_and_its_release(tmp_path, caplog):
    with caplog.at_level("DEBUG", logger="glancesync.lock"):
        with RegionLock(tmp_path, "t:R") as lock:
            pass
    assert f"locked region t:R ({lock.path})" in caplog.text
    assert "unlocked region t:R" in caplog.text
    assert repr(lock) == f"<RegionLock t:R {lock.path} free>"


def test_a_holder_file_that_is_not_a_pid_names_no_holder(tmp_path):
    lock = RegionLock(tmp_path, "t:R")
    tmp_path.mkdir(exist_ok=True)
    lock.path.write_bytes(b"\xff\xfe garbage")
    assert lock.holder() is None
    lock.path.write_bytes(b"12x\n")
    assert lock.holder() is None


def test_asking_for_the_holder_does_not_signal_it(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        lock = RegionLock(tmp_path, "t:R")
        lock.path.write_text(f"{sleeper.pid}\n")
        assert lock.holder() == f"pid {sleeper.pid}"
        assert sleeper.poll() is None  # signal 0 only: still running
    finally:
        sleeper.kill()
        sleeper.wait()
    assert lock.holder() is None  # gone: no holder


@pytest.mark.timeout(30)
def test_the_holder_of_a_fifo_is_read_without_hanging(tmp_path):
    lock = RegionLock(tmp_path, "t:R")
    os.mkfifo(lock.path)
    assert lock.holder() is None


def test_a_lock_path_made_a_link_before_the_lock_object_is_refused_on_acquiring(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    folder = tmp_path / "locks"
    folder.mkdir()
    (folder / lock_file_name("t:R")).symlink_to(target)
    lock = RegionLock(folder, "t:R")  # no error yet: the path is checked on use
    with pytest.raises(GlanceSyncError, match="is a symbolic link: refused"):
        lock.acquire()
    assert target.read_text() == "keep\n"


def test_a_lock_folder_that_cannot_be_made_is_named_with_the_reason(tmp_path):
    (tmp_path / "file").write_text("")
    lock = RegionLock(tmp_path / "file" / "locks", "t:R")
    with pytest.raises(GlanceSyncError, match="t_R-[0-9a-f]{16}.lock cannot be created: Not a"
                                              " directory") as caught:
        lock.acquire()
    assert caught.value.region == "t:R"


def test_one_object_cannot_take_its_lock_twice(tmp_path):
    lock = RegionLock(tmp_path, "t:R")
    lock.acquire()
    with pytest.raises(GlanceSyncError, match="is already held by this object") as caught:
        lock.acquire()
    assert caught.value.region == "t:R" and not isinstance(caught.value, LockedError)
    lock.release()


def test_a_fifo_at_the_lock_path_is_refused_with_what_to_do(tmp_path):
    lock = RegionLock(tmp_path, "t:R")
    os.mkfifo(lock.path)
    with pytest.raises(GlanceSyncError,
                       match=r"is not a regular file: refused \(remove it\)$") as caught:
        lock.acquire()
    assert caught.value.region == "t:R"


def test_a_holder_that_wrote_no_pid_is_unknown(tmp_path):
    import fcntl
    lock = RegionLock(tmp_path, "t:R")
    with open(lock.path, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LockedError, match=r"\(lock file .*, pid unknown\)$"):
            lock.acquire()
