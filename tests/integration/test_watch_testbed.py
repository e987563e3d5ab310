"""Continuous propagation on the real bed (issue 24): Glance's notifications on RabbitMQ.

A watcher (``GlanceSync.watcher``, in a thread of the test, or the
``glancesync-watch`` script) listens on the bed's RabbitMQ, where the
``Master`` Glance publishes. Each test synchronises only images carrying
its own name prefix (``metadata_condition``) and listens as a pool of its
own, deletes its images from every region at the end and starts again
whatever it stopped (the bed is shared). Every wait is bounded and
generous: a bound on a failure, never a speed requirement.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import oslo_messaging
import pytest
from oslo_config import cfg

from glancesync import GlanceSync
from tests.integration.test_scripts_testbed import BIN, DATA, Bed
from tests.testbed_config import write_config

WAIT = 240.0  # seconds: a bound on a failure, not an expected delay
REGIONS = ("RegionA", "RegionB", "RegionC")


def wait_for(check: Callable[[], Any], what: str, bound: float = WAIT) -> Any:
    """Poll ``check`` until it returns something true; fail after ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"after {bound:.0f} s: {what}")
        time.sleep(0.5)


class Watch:
    """A watcher of the bed, run in a thread, with its own pool and prefix."""

    def __init__(self, bed: Bed, tmp_path: Path, **main: Any) -> None:
        self.bed = bed
        # Private images are left out: a metadata_condition may admit them.
        condition = f"image.name.startswith('{bed.prefix}') and image.visibility == 'public'"
        options = {"notifications_url": bed.info.transport_url,
                   "watch_listen": "127.0.0.1:0", "reconcile_interval": 3600,
                   "lock_dir": tmp_path / "locks", "retry_wait": 0.2, **main}
        self.config = write_config(bed.info, tmp_path / "watch.conf", main=options,
                                   master={"metadata_condition": condition},
                                   other={"metadata_condition": condition})
        self.pool = f"glancesync-test-watch-{uuid.uuid4().hex[:8]}"
        self.glancesync = GlanceSync(str(self.config))
        self.watcher = self.glancesync.watcher(["master:", "other:"], pool=self.pool)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.watcher.run()
        except BaseException as error:  # reported by the test
            self.error = error

    def start(self) -> "Watch":
        self.thread.start()
        wait_for(lambda: self.value("glancesync_watch_last_reconciliation_end_timestamp"
                                    "_seconds") or self.error,
                 "the first reconciliation ends")
        wait_for(lambda: self.value("glancesync_watch_bus_up") == 1, "the bus is up")
        assert self.error is None, self.error
        return self

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.watcher.metrics.registry.get_sample_value(name, labels or {})

    def alive(self) -> bool:
        return self.thread.is_alive() and self.error is None

    def close(self) -> None:
        self.watcher.stop()
        self.thread.join(WAIT)
        self.glancesync.close()
        assert not self.thread.is_alive(), "the watcher stops"


@pytest.fixture
def bed(testbed, tmp_path) -> Iterator[Bed]:
    helper = Bed(testbed, tmp_path)
    try:
        yield helper
    finally:
        helper.cleanup()


@pytest.fixture
def watch(rabbitmq, bed, tmp_path) -> Iterator[Watch]:
    made = Watch(bed, tmp_path).start()
    try:
        yield made
    finally:
        made.close()


def everywhere(bed: Bed, name: str) -> bool:
    """Whether every region holds an active copy of ``name``."""
    return all(any(i.name == name and i.status == "active"
                   for i in bed.adapter(region).list_images()) for region in REGIONS)


def copies(bed: Bed, region: str) -> dict[str, int]:
    """Name -> number of images of the test's prefix in ``region``."""
    found: dict[str, int] = {}
    for image in bed.adapter(region).list_images():
        if image.name and image.name.startswith(bed.prefix):
            found[image.name] = found.get(image.name, 0) + 1
    return found


class Publisher:
    """Notifications published on Glance's exchange and topic, as a (forged) Glance would."""

    def __init__(self, info) -> None:
        oslo_messaging.set_transport_defaults("glance")  # Glance's exchange
        self.transport = oslo_messaging.get_notification_transport(
            cfg.ConfigOpts(), url=info.transport_url)
        self.notifier = oslo_messaging.Notifier(
            self.transport, publisher_id="image.forged", driver="messagingv2",
            topics=[info.notification_topic])

    def send(self, event_type: Any, payload: Any) -> None:
        self.notifier.info({}, event_type, payload)

    def close(self) -> None:
        self.transport.cleanup()


@pytest.fixture
def publisher(rabbitmq) -> Iterator[Publisher]:
    made = Publisher(rabbitmq)
    try:
        yield made
    finally:
        made.close()


# --- the cases of issue 24 ------------------------------------------------------------

def test_an_image_activated_in_the_master_reaches_every_region_without_cron(watch, bed):
    reconciliations = watch.value("glancesync_watch_reconciliations_total", {"outcome": "ok"})
    bed.put_master("fresh")
    wait_for(lambda: everywhere(bed, bed.prefix + "fresh"), "the copies are made")
    assert watch.value("glancesync_watch_events_received_total",
                       {"event_type": "image.activate"}) >= 1
    # The lag is recorded once the watcher's sync returns, a moment after the last
    # copy is active: waited for, never assumed.
    wait_for(lambda: watch.value("glancesync_watch_propagation_lag_seconds_count") >= 1,
             "the lag recorded")
    assert watch.value("glancesync_watch_propagation_lag_seconds_count") == 1
    assert watch.value("glancesync_watch_reconciliations_total",
                       {"outcome": "ok"}) == reconciliations, "no cron, no reconciliation"
    health = json.loads(urllib.request.urlopen(
        "http://%s:%d/health" % watch.watcher.address, timeout=30).read())
    assert health["bus"] == "up" and health["leader"] is True
    metrics = urllib.request.urlopen("http://%s:%d/metrics" % watch.watcher.address,
                                     timeout=30).read().decode()
    assert "glancesync_watch_propagation_lag_seconds_bucket" in metrics


def test_a_burst_of_100_events_for_10_images_is_10_uploads_per_region(watch, bed, publisher):
    master = bed.adapter("Master")
    ids = {}
    for n in range(10):  # not selected yet: another name
        image = master.create_image(f"unselected-{bed.prefix}{n}", visibility="public",
                                    disk_format="raw", container_format="bare")
        master.upload_data(image.id, [DATA], len(DATA))
        ids[n] = image.id
    syncs_before = sum(watch.value("glancesync_watch_image_syncs_total", {"outcome": o})
                       for o in ("ok", "failed"))
    uploads_before = watch.value("glancesync_watch_copies_uploaded_total")
    for n, image_id in ids.items():  # one real event each: the rename selects it
        master.update_image(image_id, {"name": f"{bed.prefix}{n}"}, [])
    for _ in range(9):
        for image_id in ids.values():
            publisher.send("image.update", {"id": image_id, "name": "a hint only"})
    wait_for(lambda: all(len(copies(bed, r)) == 10 for r in REGIONS), "10 copies per region")
    wait_for(lambda: watch.value("glancesync_watch_events_acted_total") >= 100,
             "every event counted")
    wait_for(lambda: watch.value("glancesync_watch_copies_uploaded_total")
             - uploads_before >= 30, "the syncs end")
    watch.watcher.pending.wake()
    time.sleep(5)  # not a speed bound: late duplicate syncs would show below
    syncs = sum(watch.value("glancesync_watch_image_syncs_total", {"outcome": o})
                for o in ("ok", "failed")) - syncs_before
    assert watch.value("glancesync_watch_copies_uploaded_total") - uploads_before == 30
    assert 1 <= syncs <= 10, f"{syncs} syncs for 100 events of 10 images"
    assert all(set(copies(bed, r).values()) == {1} for r in REGIONS), "no duplicate"


def test_the_bus_down_then_up_is_caught_up(watch, bed, testbed):
    testbed.stop_rabbitmq()
    try:
        wait_for(lambda: watch.value("glancesync_watch_bus_up") == 0, "the bus is seen down")
        bed.put_master("while-down")  # its events are lost: Glance drops them
        assert watch.alive()
        assert json.loads(urllib.request.urlopen(
            "http://%s:%d/health" % watch.watcher.address, timeout=30).read())["bus"] == "down"
    finally:
        testbed.start_rabbitmq()
    wait_for(lambda: everywhere(bed, bed.prefix + "while-down"),
             "the image made while the bus was down is synchronised once it is back")
    assert watch.value("glancesync_watch_bus_up") == 1
    assert watch.value("glancesync_watch_bus_outages_total") >= 1
    assert watch.value("glancesync_watch_bus_down_since_timestamp_seconds") > 0
    bed.put_master("after")  # and the listener is connected again
    wait_for(lambda: everywhere(bed, bed.prefix + "after"), "events flow again")
    assert watch.alive()


def test_a_region_down_does_not_hold_the_others_and_is_retried(watch, bed, testbed):
    testbed.stop_region("RegionB")
    try:
        bed.put_master("one")
        wait_for(lambda: all(bed.prefix + "one" in copies(bed, r)
                             for r in ("RegionA", "RegionC")), "the other regions go on")
        wait_for(lambda: watch.value("glancesync_watch_image_syncs_total",
                                     {"outcome": "failed"}) >= 1, "RegionB's failure seen")
    finally:
        testbed.start_region("RegionB")
    wait_for(lambda: everywhere(bed, bed.prefix + "one"), "RegionB is retried")
    wait_for(lambda: watch.value("glancesync_watch_propagation_lag_seconds_count") >= 1,
             "the lag recorded once every region holds the copy")
    assert watch.value("glancesync_watch_propagation_lag_seconds_count") == 1
    assert watch.alive()


def test_hostile_notifications_are_ignored_and_the_watcher_goes_on(watch, bed, publisher):
    master = bed.adapter("Master")
    private = master.create_image(bed.prefix + "private", visibility="private",
                                  disk_format="raw", container_format="bare")
    master.upload_data(private.id, [DATA], len(DATA))  # a real event, not selected
    obsolete = master.create_image(bed.prefix + "old_obsolete", visibility="public",
                                   disk_format="raw", container_format="bare")
    master.upload_data(obsolete.id, [DATA], len(DATA))
    for event_type, payload in [
            ("image.delete.forged", {"id": private.id}),  # unknown event type
            ("x" * 10_000, {"id": private.id}),
            ("image.update", {}),  # no id
            ("image.update", {"id": "../../etc/passwd"}),
            ("image.update", {"id": "' OR 1=1 --"}),
            ("image.update", ["not", "a", "mapping"]),
            ("image.update", {"id": str(uuid.uuid4())}),  # not in the master
            ("image.delete", {"id": str(uuid.uuid4())}),
            ("image.update", {"id": str(uuid.uuid4()), "junk": "x" * (8 * 1024 * 1024)}),
            ("image.member.create", {"image_id": None}),
    ]:
        publisher.send(event_type, payload)
    bed.put_master("after")
    wait_for(lambda: everywhere(bed, bed.prefix + "after"), "the watcher goes on")
    for reason in ("unknown_event", "bad_image_id", "malformed_payload"):
        assert watch.value("glancesync_watch_events_ignored_total", {"reason": reason}) >= 1
    for region in REGIONS:
        assert set(copies(bed, region)) == {bed.prefix + "after"}, "nothing else copied"
    assert watch.alive()


def test_sigterm_stops_the_script_and_the_upload_in_progress(rabbitmq, bed, tmp_path):
    condition = f"image.name.startswith('{bed.prefix}')"
    # Paced: 64 MiB at 512 KiB/s is two minutes per region, six for the three;
    # the stop must not wait for them.
    config = write_config(bed.info, tmp_path / "watch.conf",
                          main={"notifications_url": bed.info.transport_url,
                                "watch_listen": "127.0.0.1:0", "lock_dir": tmp_path / "l",
                                "bandwidth_limit": "512K"},
                          master={"metadata_condition": condition},
                          other={"metadata_condition": condition})
    process, lines = _script(bed, config, tmp_path)
    try:
        wait_for(lambda: any("reconciliation:" in line for line in lines), "it reconciles")
        master = bed.adapter("Master")
        image = master.create_image(bed.prefix + "big", visibility="public",
                                    disk_format="raw", container_format="bare")
        chunk = os.urandom(1024 * 1024)
        master.upload_data(image.id, (chunk for _ in range(64)), 64 * len(chunk))
        wait_for(lambda: any("uploading image" in line for line in lines), "an upload")
        wait_for(lambda: any(i.status == "saving" for r in REGIONS
                             for i in bed.adapter(r).list_images()
                             if i.name == bed.prefix + "big"), "data under way")
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT) == 0, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(1)  # the reader thread gets the last lines
    text = "".join(lines)
    assert "Traceback" not in text and "watcher stopped" in text, text
    assert "interrupted" in text, text
    made = {}
    for region in REGIONS:  # the upload under way aborted, its image deleted
        made[region] = {i.status for i in bed.adapter(region).list_images()
                        if i.name and i.name.startswith(bed.prefix)}
        assert made[region] <= {"active"}, (region, made[region])
    assert not all(made.values()), ("every copy was finished: the stop waited", made)


def _script(bed: Bed, config: Path, folder: Path) -> tuple[subprocess.Popen, list[str]]:
    """``glancesync-watch`` started on ``config``; its stderr lines, read as they come."""
    process = subprocess.Popen([str(BIN / "glancesync-watch"), "--config-file", str(config),
                                "--all-targets", "-v"], env=bed.env, cwd=folder,
                               stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True).start()
    return process, lines


def test_killed_mid_upload_then_started_again_converges_without_duplicates(rabbitmq, bed,
                                                                           tmp_path):
    condition = f"image.name.startswith('{bed.prefix}')"
    config = write_config(bed.info, tmp_path / "watch.conf",
                          main={"notifications_url": bed.info.transport_url,
                                "watch_listen": "127.0.0.1:0", "lock_dir": tmp_path / "l",
                                "stalled_upload_age": 0},
                          master={"metadata_condition": condition},
                          other={"metadata_condition": condition})
    process, lines = _script(bed, config, tmp_path)
    try:
        wait_for(lambda: any("reconciliation:" in line for line in lines), "it reconciles")
        master = bed.adapter("Master")
        image = master.create_image(bed.prefix + "big", visibility="public",
                                    disk_format="raw", container_format="bare")
        chunk = os.urandom(1024 * 1024)
        master.upload_data(image.id, (chunk for _ in range(64)), 64 * len(chunk))
        wait_for(lambda: any("uploading image" in line for line in lines), "an upload")
        process.kill()  # kill -9 in the middle of the upload
        process.wait(WAIT)
        process, lines = _script(bed, config, tmp_path)
        wait_for(lambda: everywhere(bed, bed.prefix + "big"), "it converges")
        wait_for(lambda: all(copies(bed, r) == {bed.prefix + "big": 1} for r in REGIONS),
                 "one copy per region, the partial one cleaned")
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT) == 0, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_master_image_deleted_goes_through_the_lifecycle(rabbitmq, bed, tmp_path):
    lifecycle = {"removal_policy": "delete", "removal_grace_hours": 0}
    made = Watch(bed, tmp_path, reconcile_interval=3600)
    condition = f"image.name.startswith('{bed.prefix}') and image.visibility == 'public'"
    made.config = write_config(bed.info, made.config, main={
        "notifications_url": bed.info.transport_url, "watch_listen": "127.0.0.1:0",
        "lock_dir": tmp_path / "locks", "retry_wait": 0.2, "reconcile_interval": 3600},
        master={"metadata_condition": condition, **lifecycle},
        other={"metadata_condition": condition, **lifecycle})
    made.glancesync = GlanceSync(str(made.config))
    made.watcher = made.glancesync.watcher(["master:", "other:"], pool=made.pool)
    made.start()
    try:
        # Two images stay in the master: the listing shrinks by a third, within
        # max_master_shrink (a master emptied at once holds its removals: issue 21).
        kept = [bed.put_master(f"kept-{n}") for n in (1, 2)]
        image_id = bed.put_master("doomed")
        wait_for(lambda: everywhere(bed, bed.prefix + "doomed"), "the copies are made")
        bed.adapter("Master").delete_image(image_id)
        wait_for(lambda: not any(bed.prefix + "doomed" in copies(bed, r) for r in REGIONS),
                 "the copies are deleted by removal_policy = delete")
        assert kept and all(everywhere(bed, bed.prefix + f"kept-{n}") for n in (1, 2))
    finally:
        made.close()


# --- several hosts: one leader (issue 25) -----------------------------------------------

LEADING_WATCHER = """\
import json, sys
from glancesync import GlanceSync
def started(watcher):
    print(json.dumps(list(watcher.address)), flush=True)
GlanceSync(sys.argv[1], progress=False).watch(["master:", "other:"], pool=sys.argv[2],
                                              started=started)
"""


class HostWatcher:
    """A process standing for one host's watcher (``GlanceSync.watch``, its default
    leadership from ``coordination_url``), with a pool of its own: on one machine,
    two processes would otherwise share the host's queue."""

    def __init__(self, bed: Bed, config: Path, folder: Path, name: str) -> None:
        self.log = folder / f"{name}.err"
        out = folder / f"{name}.out"
        self.process = subprocess.Popen(
            [sys.executable, "-c", LEADING_WATCHER, str(config),
             f"glancesync-test-{name}-{uuid.uuid4().hex[:8]}"],
            env=bed.env, cwd=folder, stdout=open(out, "w"), stderr=open(self.log, "w"))
        found = wait_for(lambda: out.read_text().strip() or self.process.poll() is not None,
                         f"{name} serving its endpoint")
        assert self.process.poll() is None, self.log.read_text()
        host, port = json.loads(found)
        self.url = f"http://{host}:{port}"

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/health", timeout=30) as answer:
            return json.load(answer)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        from prometheus_client.parser import text_string_to_metric_families
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as answer:
            text = answer.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in (labels or {}).items()):
                    return sample.value
        return 0.0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(60)


def test_two_watchers_one_leader_acts_and_the_other_takes_over_after_a_kill(
        rabbitmq, etcd, bed, tmp_path):
    condition = f"image.name.startswith('{bed.prefix}') and image.visibility == 'public'"
    config = write_config(bed.info, tmp_path / "watch.conf",
                          main={"notifications_url": bed.info.transport_url,
                                "watch_listen": "127.0.0.1:0", "reconcile_interval": 3600,
                                "retry_wait": 0.2, "coordination_url": etcd.coordination_url,
                                "lock_ttl": 4},
                          master={"metadata_condition": condition},
                          other={"metadata_condition": condition})
    one = HostWatcher(bed, config, tmp_path, "one")
    two = None
    try:
        wait_for(lambda: one.health()["leader"] and one.health()["last_reconciliation_end"],
                 "the first watcher leading and reconciled")
        two = HostWatcher(bed, config, tmp_path, "two")
        wait_for(lambda: two.health()["bus"] == "up", "the second watcher listening")
        assert two.health()["leader"] is False
        bed.put_master("first")
        wait_for(lambda: everywhere(bed, bed.prefix + "first"), "the leader copies it")
        wait_for(lambda: two.value("glancesync_watch_events_ignored_total",
                                   {"reason": "not_leader"}) >= 1,
                 "the follower saw the event and left it to the leader")
        assert one.value("glancesync_watch_events_acted_total") >= 1
        assert two.value("glancesync_watch_events_acted_total") == 0
        assert two.value("glancesync_watch_copies_uploaded_total") == 0
        assert two.value("glancesync_watch_reconciliations_total", {"outcome": "ok"}) == 0
        one.kill()  # kill -9: its leadership expires after lock_ttl
        wait_for(lambda: two.health()["leader"] and two.health()["last_reconciliation_end"],
                 "the second watcher leading (after its reconciliation)")
        bed.put_master("second")
        wait_for(lambda: everywhere(bed, bed.prefix + "second"), "the new leader copies it")
        wait_for(lambda: two.value("glancesync_watch_events_acted_total") >= 1,
                 "the new leader acted on the event")
        for region in REGIONS:
            assert copies(bed, region) == {bed.prefix + "first": 1, bed.prefix + "second": 1}
        assert "Traceback" not in two.log.read_text()
    finally:
        one.kill()
        if two is not None:
            two.kill()
