"""Several hosts on one federation: region locks through tooz (issue 25).

Unit level: tooz's own ``file://`` driver (a real tooz driver, locks in a
folder) stands for the coordination service; the bed's etcd is used by
tests/integration/test_hosts_testbed.py. Two GlanceSync objects with
different members stand for two hosts.
"""
from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from glancesync import lock
from glancesync.cli import summary_lines
from glancesync.demo import build_federation
from glancesync.errors import ConfigError, CoordinationError, ExitStatus, LockedError
from glancesync.facade import GlanceSync
from glancesync.lock.coordination import Coordination, CoordinatedLock, lock_key
import jsonschema

from glancesync.views.runreport import run_report, schema

BIN = Path(sys.executable).parent


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def url(tmp_path) -> str:
    return f"file://{tmp_path / 'coordination'}"


@pytest.fixture
def config(tmp_path, url) -> Path:
    path = build_federation(tmp_path / "demo")
    text = path.read_text().replace(
        "[main]\n", f"[main]\ncoordination_url = {url}\nlock_ttl = 5\n", 1)
    path.write_text(text)
    return path


def uploads(gs: GlanceSync, region: str, name: str) -> int:
    return sum(1 for i in gs.adapter(region).list_images() if i.name == name)


# --- names and choices ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["RegionA@http://k:5000/v3", "../../tooz/locks/x",
                                  "R\n\x1b[31m@/", "a" * 5000, "/", "é@ü"])
def test_a_lock_key_is_a_hash_whatever_the_region_name(name):
    key = lock_key("region", name)
    kind, digest = key.rsplit(".", 1)
    assert kind == "glancesync.region" and len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")


def test_crafted_names_never_share_a_key():
    # A name built to look like another lock's key, or its prefix, is another key.
    names = ["RegionA@http://k", "RegionA@http://k/", "RegionA@http://k\0",
             lock_key("region", "RegionA@http://k"), "glancesync.region."]
    assert len({lock_key("region", n) for n in names}) == len(names)
    assert lock_key("region", "x") != lock_key("leader", "x")


def test_the_default_is_the_file_lock(tmp_path):
    settings = type("S", (), {"lock_dir": tmp_path, "coordination_url": None,
                              "lock_ttl": 30})()
    assert isinstance(lock.make_lock("R@x", settings), lock.RegionLock)
    assert lock.make_leadership(settings) is None


def test_a_tooz_url_gives_coordinated_locks_and_a_leadership(tmp_path, url):
    settings = type("S", (), {"lock_dir": tmp_path, "coordination_url": url,
                              "lock_ttl": 9})()
    made = lock.make_lock("R@x", settings)
    assert isinstance(made, CoordinatedLock) and isinstance(made, lock.Lock)
    assert made.heartbeat_interval == 3.0
    leadership = lock.make_leadership(settings)
    assert isinstance(leadership, lock.ToozLeadership)


@pytest.mark.parametrize("value, words", [
    ("etcd3+http", "not a tooz URL"), ("nosuchdriver://h:1", "tooz driver"),
    ("http://127.0.0.1:2379", "etcd3+http://")])
def test_a_url_of_no_tooz_driver_is_a_configuration_error(config, value, words):
    text = config.read_text().replace(f"coordination_url = ", "coordination_url = x", 1)
    text = text.replace(text.split("coordination_url = ")[1].split("\n")[0], value, 1)
    with pytest.raises(ConfigError) as raised:
        GlanceSync(io.StringIO(text))
    assert "coordination_url" in str(raised.value) and words in str(raised.value)


def test_a_time_to_live_below_two_seconds_is_refused(config):
    text = config.read_text().replace("lock_ttl = 5", "lock_ttl = 1")
    with pytest.raises(ConfigError) as raised:
        GlanceSync(io.StringIO(text))
    assert "lock_ttl" in str(raised.value)


def test_the_password_of_a_coordination_url_is_a_secret_never_shown(config, tmp_path):
    text = config.read_text().replace(f"file://{tmp_path / 'coordination'}",
                                      "redis://:s3cr%3Ft@127.0.0.1:1/?db=0&sentinel=x")
    with GlanceSync(io.StringIO(text), progress=False) as gs:
        assert "s3cr?t" in gs.config.secrets()
    session = Coordination(f"etcd3+http://user:s3cret@127.0.0.1:{closed_port()}"
                           "?cert_key=/etc/private.key", 3)
    assert session.shown == f"etcd3+http://127.0.0.1:{session.shown.rsplit(':', 1)[1]}"
    with pytest.raises(CoordinationError) as raised:
        CoordinatedLock(session, "RegionA@here").acquire(0)
    assert "s3cret" not in str(raised.value) and "private.key" not in str(raised.value)


# --- the lock ---------------------------------------------------------------------------


def test_two_members_exclude_each_other(url):
    first = CoordinatedLock(Coordination(url, 3), "RegionA@here")
    second = CoordinatedLock(Coordination(url, 3), "RegionA@here")
    first.acquire(0)
    began = time.monotonic()
    with pytest.raises(LockedError) as raised:
        second.acquire(0.3)
    assert time.monotonic() - began >= 0.3
    assert "RegionA@here" in str(raised.value) and raised.value.exit_status == ExitStatus.LOCKED
    first.heartbeat()
    first.release()
    with lock.hold(second):
        assert second.locked
    assert not second.locked


def test_an_unreachable_service_is_a_coordination_error():
    session = Coordination(f"etcd3+http://127.0.0.1:{closed_port()}", 3)
    with pytest.raises(CoordinationError) as raised:
        CoordinatedLock(session, "RegionA@here").acquire(0)
    assert "coordination_url" in str(raised.value)
    assert raised.value.exit_status == ExitStatus.COORDINATION


# --- regions shared between hosts -------------------------------------------------------


class Waiter(logging.Handler):
    """Sets an event when a record's message holds ``words``."""

    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.seen.set()


def test_a_region_another_host_holds_is_skipped_then_found_in_sync(config, tmp_path, url,
                                                                   caplog):
    caplog.set_level(logging.INFO, logger="glancesync")
    with open(config) as stream:
        host_b = GlanceSync(stream, progress=False)
    other_host = CoordinatedLock(Coordination(url, 5), host_b.lock_name("RegionA"))
    waiter = Waiter("master:RegionA: held by")
    logging.getLogger("glancesync").addHandler(waiter)
    outcome = {}
    try:
        other_host.acquire(0)
        runner = threading.Thread(target=lambda: outcome.update(
            result=host_b.sync(["RegionA", "RegionB"], parallel=False)))
        runner.start()
        assert waiter.seen.wait(120), "host B never found RegionA held"
        # Meanwhile the other host synchronises RegionA (its own files, no lock here).
        plain = config.read_text().replace(f"coordination_url = {url}\n", "")
        with GlanceSync(io.StringIO(plain), progress=False) as host_a:
            host_a.sync_region("RegionA")
            assert uploads(host_a, "master:RegionA", "debian-12") == 1
        other_host.release()
        runner.join(120)
        assert not runner.is_alive()
    finally:
        logging.getLogger("glancesync").removeHandler(waiter)
        other_host.release()
    result = outcome["result"]
    assert result.exit_status == ExitStatus.OK, result.failures
    assert list(result.held_elsewhere) == ["master:RegionA"]
    assert sorted(result.done_here) == ["master:RegionA", "master:RegionB"]
    # Found in sync once free: a no-op, not a second upload.
    assert result.results["master:RegionA"].outcomes == []
    assert uploads(host_b, "master:RegionA", "debian-12") == 1
    lines = summary_lines(result)
    assert "done by this host: master:RegionA, master:RegionB" in lines
    assert any(line.startswith("held by another host: master:RegionA (") for line in lines)
    report = run_report(result)
    jsonschema.validate(report, schema())
    assert report["coordination"]["held_elsewhere"] == {"master:RegionA": "another host"}
    host_b.close()


class OtherHost(logging.Handler):
    """When host B starts its first change in RegionB, another host (in B's thread,
    so B waits) synchronises RegionA: after B planned it, before B locks it."""

    def __init__(self, config_text: str) -> None:
        super().__init__()
        self.config_text = config_text
        self.done = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.done or not record.getMessage().startswith("master:RegionB: "):
            return
        self.done = True
        with GlanceSync(io.StringIO(self.config_text), progress=False) as host_a:
            host_a.sync_region("RegionA")


def test_a_region_done_elsewhere_after_its_plan_is_planned_again(config, url, caplog):
    caplog.set_level(logging.INFO, logger="glancesync")
    with open(config) as stream:
        host_b = GlanceSync(stream, progress=False)
    other = OtherHost(config.read_text().replace(f"coordination_url = {url}\n", ""))
    logging.getLogger("glancesync").addHandler(other)
    try:
        result = host_b.sync(["RegionB", "RegionA"])
    finally:
        logging.getLogger("glancesync").removeHandler(other)
    assert other.done
    assert result.exit_status == ExitStatus.OK
    assert result.results["master:RegionA"].outcomes == []  # in sync when B got there
    assert result.plans["master:RegionA"].in_sync
    assert uploads(host_b, "master:RegionA", "debian-12") == 1
    host_b.close()


def test_an_unreachable_service_stops_the_run_before_anything_changes(config, tmp_path):
    text = config.read_text().replace(f"file://{tmp_path / 'coordination'}",
                                      f"etcd3+http://127.0.0.1:{closed_port()}")
    config.write_text(text)
    done = subprocess.run([str(BIN / "glancesync-sync"), "--config-file", str(config),
                           "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == ExitStatus.COORDINATION, (done.stdout, done.stderr)
    assert "coordination_url" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    with open(config) as stream, GlanceSync(stream, progress=False) as gs:
        assert uploads(gs, "master:RegionA", "debian-12") == 0


def test_a_dry_run_needs_no_coordination_service(config, tmp_path):
    text = config.read_text().replace(f"file://{tmp_path / 'coordination'}",
                                      f"etcd3+http://127.0.0.1:{closed_port()}")
    with GlanceSync(io.StringIO(text), progress=False) as gs:
        result = gs.sync(["RegionA"], dry_run=True)
        assert result.exit_status == ExitStatus.PENDING
        assert uploads(gs, "master:RegionA", "debian-12") == 0


# --- leader election --------------------------------------------------------------------


def test_one_leader_at_a_time_and_the_next_once_it_stands_down(url):
    first = lock.ToozLeadership(Coordination(url, 3), "watch@federation")
    second = lock.ToozLeadership(Coordination(url, 3), "watch@federation")
    elsewhere = lock.ToozLeadership(Coordination(url, 3), "watch@another-federation")
    try:
        assert first.is_leader()
        assert not second.is_leader()
        assert first.is_leader()  # still: it keeps leading
        assert elsewhere.is_leader()  # another group has its own leader
        first.close()
        assert second.is_leader()
        assert not first.is_leader()
    finally:
        for leadership in (first, second, elsewhere):
            leadership.close()


def test_a_leader_that_cannot_reach_the_service_does_not_lead():
    leadership = lock.ToozLeadership(Coordination(f"etcd3+http://127.0.0.1:{closed_port()}",
                                                  3), "watch@federation")
    assert leadership.is_leader() is False
    leadership.close()


def _watching(config: Path, port: int) -> str:
    """``config``'s text with a bus that does not answer and no endpoint."""
    return config.read_text().replace(
        "[main]\n", f"[main]\nnotifications_url = rabbit://u:p@127.0.0.1:{port}/\n"
                    "watch_listen = off\n", 1)


def test_the_watchers_of_one_federation_elect_one_leader_and_it_resigns_when_stopped(
        tmp_path, config):
    port = closed_port()
    other = build_federation(tmp_path / "other")  # another federation, the same service
    other.write_text(_watching(other, port).replace(
        "[main]\n", f"[main]\ncoordination_url = file://{tmp_path / 'coordination'}\n"
                    "lock_ttl = 5\n", 1))
    objects = [GlanceSync(io.StringIO(_watching(config, port)), progress=False)
               for _ in range(2)] + [GlanceSync(str(other), progress=False)]
    first, second, elsewhere = (gs.watcher() for gs in objects)
    regional = objects[1].watcher(["RegionA"])  # the same federation, other regions
    try:
        assert objects[0].watch_group() == objects[1].watch_group()
        assert objects[0].watch_group() != objects[2].watch_group()
        assert first.leadership.is_leader()
        assert not second.leadership.is_leader()
        assert elsewhere.leadership.is_leader(), "another federation elects its own"
        assert regional.leadership.is_leader(), "so do the watchers of other regions"
        runner = threading.Thread(target=first.run)
        runner.start()
        first.stop()
        runner.join(120)
        assert not runner.is_alive()
        assert second.leadership.is_leader(), "the leader resigned when it stopped"
    finally:
        for watcher in (first, second, elsewhere, regional):
            watcher.leadership.close()
        for gs in objects:
            gs.close()
