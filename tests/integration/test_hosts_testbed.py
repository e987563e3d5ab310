"""Several hosts on one federation, coordinated through the bed's etcd (issue 25).

Two ``glancesync-sync --parallel`` processes stand for two hosts: each its
own cache, state and run folders, one configuration naming the bed's etcd
(``coordination_url``). Four regions: RegionA, RegionB (Keystone
``master``), RegionC (Keystone ``other``) and a local region
``mirror:Disk``. Uploads are paced (``region_bandwidth_limit``) so that a
region takes seconds and the hosts overlap. Uploads are counted in the
Glance regions' uWSGI request logs (``PUT /v2/images/ID/file``) and in the
local region's database. Every image carries the test's name prefix and
is deleted from every region at the end.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from pathlib import Path
from typing import Iterator

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.errors import ExitStatus, LockedError
from glancesync.lock.coordination import Coordination, CoordinatedLock, lock_key
from tests.testbed_config import write_config

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
GLANCE_REGIONS = ("RegionA", "RegionB", "RegionC")
ALL = ["master:RegionA", "master:RegionB", "other:RegionC", "mirror:Disk"]
TTL = 4


def wait_for(condition, what: str, seconds: float = 240.0, step: float = 0.2):
    """The first true value of ``condition()`` within ``seconds``, else a failure."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"not within {seconds:g} s: {what}")


class Hosts:
    """Images, configurations and host processes of one test."""

    def __init__(self, testbed, folder: Path) -> None:
        self.testbed = testbed
        self.info = testbed.info
        self.folder = folder
        self.prefix = f"gs-hosts-{uuid.uuid4().hex[:8]}-"
        self.mirror = folder / "mirror"
        self._sessions: dict[str, ksa_session.Session] = {}
        self.offsets = {region: self._log(region).stat().st_size
                        for region in GLANCE_REGIONS}

    # -- the federation -------------------------------------------------------------
    def adapter(self, region: str) -> GlanceRegionAdapter:
        keystone = "other" if region in self.info.regions["other"] else "master"
        cloud = f"{keystone}-admin"
        if cloud not in self._sessions:
            self._sessions[cloud] = ksa_session.Session(
                auth=v3.Password(**self.info.auth(cloud)))
        return GlanceRegionAdapter(f"{keystone}:{region}", self._sessions[cloud], region,
                                   self.info.project_id(cloud))

    def local(self) -> LocalRegionAdapter:
        return LocalRegionAdapter("mirror:Disk", self.mirror / "Disk", "mirror-project")

    def put_master(self, short: str, size: int) -> str:
        master = self.adapter("Master")
        image = master.create_image(self.prefix + short, visibility="public",
                                    disk_format="raw", container_format="bare")
        data = (short.encode() * (size // len(short) + 1))[:size]
        master.upload_data(image.id, [data], size)
        return image.id

    def images(self, region: str) -> list:
        adapter = self.local() if region == "mirror:Disk" else \
            self.adapter(region.split(":")[-1])
        return [i for i in adapter.list_images() if (i.name or "").startswith(self.prefix)]

    def _log(self, region: str) -> Path:
        return self.info.run_dir / "logs" / f"glance-{region}.log"

    def uploads(self, region: str) -> int:
        """Image data uploads (``PUT .../file``) into ``region`` since the test began."""
        with open(self._log(region), "rb") as log:
            log.seek(self.offsets[region])
            text = log.read().decode("utf-8", "replace")
        return len(re.findall(r"PUT /v2/images/[0-9a-f-]+/file", text))

    def cleanup(self) -> None:
        for region in self.info.glance_urls:
            adapter = self.adapter(region)
            try:
                for image in adapter.list_images():
                    if (image.name or "").startswith(self.prefix):
                        adapter.delete_image(image.id)
            finally:
                adapter.close()

    # -- hosts ----------------------------------------------------------------------
    def config(self, host: str, **main: object) -> Path:
        condition = f"image.name.startswith('{self.prefix}')"
        home = self.folder / host
        home.mkdir(exist_ok=True)
        options = {"coordination_url": self.info.coordination_url, "lock_ttl": TTL,
                   "max_children": 2, "cache_dir": home / "cache", "run_dir": home / "runs",
                   "stalled_upload_age": 2, **main}
        return write_config(self.info, home / "glancesync.conf", main=options,
                            master={"metadata_condition": condition},
                            other={"metadata_condition": condition},
                            extra_sections={
                                "DEFAULT": {"region_bandwidth_limit": "512K"},
                                "mirror": {"type": "local", "path": self.mirror,
                                           "project": "mirror-project", "regions": "Disk",
                                           "metadata_condition": condition}})

    def env(self, host: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("OS_", "GLANCESYNC_"))}
        env.update(XDG_STATE_HOME=str(self.folder / host / "state"),
                   GLANCESYNC_LOCK_DIR=str(self.folder / host / "locks"))
        return env

    def start(self, host: str, regions=ALL, **main: object) -> subprocess.Popen:
        config = self.config(host, **main)
        argv = [str(BIN / "glancesync-sync"), "--config-file", str(config), *regions,
                "--parallel", "--no-progress", "--report-json",
                str(self.folder / host / "report.json")]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.env(host), cwd=self.folder / host)

    def report(self, host: str) -> dict:
        return json.loads((self.folder / host / "report.json").read_text())


@pytest.fixture
def hosts(etcd, testbed, tmp_path) -> Iterator[Hosts]:
    helper = Hosts(testbed, tmp_path)
    try:
        yield helper
    finally:
        helper.cleanup()
        if not testbed.etcd_running():
            testbed.start_etcd()


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


def uploaded_regions(report: dict) -> set[str]:
    return {r["region"] for r in report["regions"] if r["bytes_uploaded"] > 0}


def test_two_hosts_share_four_regions_and_upload_each_image_once(hosts):
    # 12 s per region at 512 KiB/s: the second host starts well within that.
    for short in ("alpha", "beta"):
        hosts.put_master(short, 3 * MIB)
    first, second = hosts.start("host-1"), hosts.start("host-2")
    results = [finish(first), finish(second)]
    for code, out, err in results:
        assert code == ExitStatus.OK, (out, err)
        assert "Traceback" not in err
    # Every image reached every region exactly once: one upload each, no duplicate.
    for region in GLANCE_REGIONS:
        assert hosts.uploads(region) == 2, region
    for region in ALL:
        names = sorted(i.name for i in hosts.images(region))
        assert names == [hosts.prefix + "alpha", hosts.prefix + "beta"], region
    reports = [hosts.report("host-1"), hosts.report("host-2")]
    did = [uploaded_regions(r) for r in reports]
    assert did[0] and did[1], did  # each host did at least one region
    assert did[0].isdisjoint(did[1]) and did[0] | did[1] == set(ALL)
    # Each says which regions another host held, and who that was.
    for report, out in zip(reports, (results[0][1], results[1][1])):
        held = report["coordination"]["held_elsewhere"]
        done_here = report["coordination"]["done_here"]
        assert set(held) <= set(ALL) - uploaded_regions(report)
        # A region it did not upload to was held, or found in sync (a no-op).
        assert set(held) | set(done_here) == set(ALL)
        assert all(" pid " in holder for holder in held.values())
        assert "done by this host: " in out
        if held:
            assert "held by another host: " in out


def saving(hosts: Hosts, region: str) -> bool:
    return any(i.status in ("saving", "queued") for i in hosts.images(region))


def test_a_host_killed_mid_upload_leaves_its_region_to_the_other_after_the_ttl(hosts):
    hosts.put_master("big", 4 * MIB)  # 8 s at 512 KiB/s
    # A time to live long enough for host 2 to start while host 1's lock lives.
    victim = hosts.start("host-1", ["master:RegionA"], lock_ttl=20)
    try:
        wait_for(lambda: saving(hosts, "master:RegionA"), "host 1 uploading into RegionA")
        time.sleep(1.0)  # some data in: a half-made image
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    code, out, err = finish(hosts.start("host-2", ["master:RegionA"], lock_ttl=20))
    assert code == ExitStatus.OK, (out, err)
    # Host 2 found the lock held (host 1's, until its time to live ran out),
    # came back to it, cleaned the half-made image and uploaded once.
    report = hosts.report("host-2")
    assert "master:RegionA" in report["coordination"]["held_elsewhere"]
    assert report["coordination"]["done_here"] == ["master:RegionA"]
    copies = hosts.images("master:RegionA")
    assert [(i.name, i.status) for i in copies] == [(hosts.prefix + "big", "active")]
    region = report["regions"][0]
    assert any(o["kind"] == "cleanup" and o["result"] == "done"
               for o in region["operations"]), region["operations"]


def test_etcd_stopped_during_a_run_is_a_clear_error_and_the_next_run_converges(hosts,
                                                                              testbed):
    hosts.put_master("gamma", 3 * MIB)
    # An outage shorter than lock_ttl: the upload under the lock goes on.
    run = hosts.start("host-1", ["master:RegionA", "master:RegionB"], max_children=1,
                      lock_ttl=120)
    try:
        wait_for(lambda: saving(hosts, "master:RegionA"), "the upload into RegionA")
        testbed.stop_etcd()
        code, out, err = finish(run)
    finally:
        if run.poll() is None:
            run.kill()
    assert code == ExitStatus.COORDINATION, (out, err)
    assert "Traceback" not in err
    assert "master:RegionB: FAILED: " in out and "coordination_url" in out
    # RegionB was not touched; RegionA's upload, begun under the lock, is whole.
    assert hosts.images("master:RegionB") == []
    assert all(i.status == "active" for i in hosts.images("master:RegionA"))
    testbed.start_etcd()
    code, out, err = finish(hosts.start("host-1", ["master:RegionA", "master:RegionB"]))
    assert code == ExitStatus.OK, (out, err)
    for region in ("master:RegionA", "master:RegionB"):
        assert [(i.name, i.status) for i in hosts.images(region)] == \
            [(hosts.prefix + "gamma", "active")], region
    assert hosts.uploads("RegionA") == 1 and hosts.uploads("RegionB") == 1


def test_etcd_gone_longer_than_the_ttl_stops_the_region_and_deletes_its_half_made_image(
        hosts, testbed):
    hosts.put_master("huge", 32 * MIB)  # a minute at 512 KiB/s
    run = hosts.start("host-1", ["master:RegionA"])  # lock_ttl = 4
    try:
        wait_for(lambda: saving(hosts, "master:RegionA"), "the upload into RegionA")
        testbed.stop_etcd()  # the lock cannot be renewed: it expires, another may take it
        code, out, err = finish(run)
    finally:
        if run.poll() is None:
            run.kill()
    assert code == ExitStatus.COORDINATION, (out, err)
    assert "Traceback" not in err
    assert "master:RegionA: FAILED: " in out, out
    assert "was lost (not renewed for 4 s, lock_ttl)" in out, out
    assert "transfer under way aborted" in out, out
    # The upload was aborted and its image deleted, not finished without the lock.
    assert hosts.images("master:RegionA") == []
    testbed.start_etcd()


def test_etcd_down_at_the_start_changes_nothing(hosts, testbed):
    hosts.put_master("delta", MIB)
    testbed.stop_etcd()
    code, out, err = finish(hosts.start("host-1", ["master:RegionA"]))
    assert code == ExitStatus.COORDINATION, (out, err)
    assert "Traceback" not in err
    assert "coordination_url" in out + err
    assert hosts.images("master:RegionA") == [] and hosts.uploads("RegionA") == 0


WATCHER = textwrap.dedent("""\
    import sys, time, types
    from glancesync.lock import make_leadership
    settings = types.SimpleNamespace(coordination_url=sys.argv[1], lock_ttl=int(sys.argv[2]),
                                     lock_dir=None)
    leadership = make_leadership(settings, sys.argv[3])
    while True:
        print("leader" if leadership.is_leader() else "follower", flush=True)
        time.sleep(0.2)
""")


class Watcher:
    """A process standing for one host's watcher: prints its role every 0.2 s."""

    def __init__(self, url: str, group: str, folder: Path, name: str) -> None:
        self.out = folder / f"{name}.out"
        self.process = subprocess.Popen(
            [sys.executable, "-c", WATCHER, url, str(TTL), group],
            stdout=open(self.out, "w"), stderr=subprocess.STDOUT)

    def role(self) -> str:
        lines = self.out.read_text().split()
        return lines[-1] if lines else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(60)


def test_one_leader_among_two_watchers_and_another_after_its_death(etcd, tmp_path):
    group = f"gs-hosts-{uuid.uuid4().hex[:8]}"
    one = Watcher(etcd.coordination_url, group, tmp_path, "one")
    wait_for(lambda: one.role() == "leader", "the first watcher leading")
    two = Watcher(etcd.coordination_url, group, tmp_path, "two")
    try:
        wait_for(lambda: two.role() == "follower", "the second watcher following")
        time.sleep(2 * TTL)  # the leader keeps its lock alive well past its time to live
        assert one.role() == "leader" and two.role() == "follower"
        assert "leader" not in two.out.read_text().split()
        one.process.send_signal(signal.SIGKILL)
        one.process.wait(60)
        wait_for(lambda: two.role() == "leader", "the second watcher taking over")
    finally:
        one.stop()
        two.stop()


def test_keys_hide_region_names_and_a_hostile_holder_name_is_shown_escaped(etcd):
    with warnings.catch_warnings():  # etcd3gw imports futurist, which imports eventlet
        warnings.simplefilter("ignore")
        import etcd3gw
    name = f"Region\x1b[31m/../../{uuid.uuid4().hex}@http://k"
    hostile = Coordination(etcd.coordination_url, TTL)
    # Another tenant of the etcd (or a hostile host) names itself with escapes.
    hostile.member = "evil\x1b]0;pwned\x07\n" + "A" * 5000
    held = CoordinatedLock(hostile, name)
    held.acquire(0)
    try:
        other = CoordinatedLock(Coordination(etcd.coordination_url, TTL), name)
        with pytest.raises(LockedError) as raised:
            other.acquire(0)
        holder = raised.value.holder
        assert holder and holder.startswith("evil")
        assert not any(ord(c) < 32 or ord(c) == 127 for c in holder)
        assert len(holder) < 1000 and holder.count("A") <= 200
        assert "\x1b" not in str(raised.value)
        port = int(etcd.coordination_url.rsplit(":", 1)[1])
        client = etcd3gw.client(host="127.0.0.1", port=port)
        keys = [meta["key"].decode() if isinstance(meta["key"], bytes) else meta["key"]
                for _, meta in client.get_prefix("/")]
        assert f"/tooz/locks/{lock_key('region', name)}" in keys
        assert not any("Region" in key or ".." in key for key in keys), keys
    finally:
        held.release()
