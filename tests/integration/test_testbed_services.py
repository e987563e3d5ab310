"""The test bed's RabbitMQ and etcd: Glance's notifications, tooz locks, outages.

Only oslo.messaging, tooz, etcd3gw and glanceclient talk to the services
here, as GlanceSync's watcher and coordination will: these checks hold
whatever GlanceSync's own layers do. Every wait is bounded and generous
(a failure bound, not a speed requirement).
"""
from __future__ import annotations

import hashlib
import io
import queue
import socket
import time
import uuid
from collections.abc import Iterator

import etcd3gw
import oslo_messaging
import pytest
from glanceclient import Client as GlanceClient
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3
from oslo_config import cfg
from tooz import coordination

from glancesync.testbed import NOTIFYING_REGION, TestBed, TestBedError

#: Real raw data, 1 MiB.
DATA = b"".join(hashlib.sha256(str(n).encode()).digest() for n in range(32_768))
EVENT_WAIT = 120.0  # seconds: a bound on a failure, not an expected delay
LOCK_TTL = 10  # seconds of a lock lease without heartbeat


def _glance(info, region: str = NOTIFYING_REGION) -> GlanceClient:
    auth = ksa_session.Session(auth=v3.Password(**info.auth("master-admin")))
    return GlanceClient("2", session=auth, endpoint=info.glance_urls[region])


class Recorder:
    """A notification endpoint that queues (event_type, payload) of every ``info`` event."""

    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.events.put((event_type, payload))
        return oslo_messaging.NotificationResult.HANDLED

    def wait_for(self, image_id: str, wanted: set[str]) -> dict[str, dict]:
        """Payloads of the WANTED event types about IMAGE_ID; bounded by EVENT_WAIT."""
        found: dict[str, dict] = {}
        deadline = time.monotonic() + EVENT_WAIT
        while not wanted <= set(found):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"after {EVENT_WAIT:.0f} s, only {sorted(found)} of "
                                     f"{sorted(wanted)} about {image_id}")
            try:
                event_type, payload = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if isinstance(payload, dict) and payload.get("id") == image_id:
                found.setdefault(event_type, payload)
        return found


@pytest.fixture
def listener(rabbitmq) -> Iterator[Recorder]:
    """An oslo.messaging listener pool on Glance's exchange and topic, started."""
    recorder, stop = _listen(rabbitmq)
    try:
        yield recorder
    finally:
        stop()


def _listen(info):
    conf = cfg.ConfigOpts()
    transport = oslo_messaging.get_notification_transport(conf, url=info.transport_url)
    targets = [oslo_messaging.Target(exchange=info.notification_exchange,
                                     topic=info.notification_topic)]
    recorder = Recorder()
    server = oslo_messaging.get_notification_listener(
        transport, targets, [recorder], executor="threading",
        pool=f"glancesync-test-{uuid.uuid4().hex[:8]}")
    server.start()  # declares and binds the pool's queue before it returns

    def stop() -> None:
        server.stop()
        server.wait()
        transport.cleanup()
    return recorder, stop


def _upload_and_delete(info) -> str:
    client = _glance(info)
    image = client.images.create(name=f"gs-bus-{uuid.uuid4().hex[:8]}", disk_format="raw",
                                 container_format="bare")
    try:
        client.images.upload(image.id, io.BytesIO(DATA), image_size=len(DATA))
        assert client.images.get(image.id).status == "active"
    finally:
        client.images.delete(image.id)
    return image.id


def test_master_glance_notifies_upload_and_delete(listener, rabbitmq):
    assert rabbitmq.notifying_region == NOTIFYING_REGION
    assert rabbitmq.transport_url.startswith("rabbit://glancesync:")
    assert "@127.0.0.1:" in rabbitmq.transport_url
    image_id = _upload_and_delete(rabbitmq)
    found = listener.wait_for(image_id, {"image.create", "image.activate", "image.delete"})
    assert found["image.activate"]["status"] == "active"
    assert found["image.activate"]["size"] == len(DATA)
    assert found["image.create"]["name"].startswith("gs-bus-")


def test_rabbitmq_runs_on_loopback_as_the_bed_user(rabbitmq, testbed):
    """The broker's ports listen on 127.0.0.1 only, and guest does not exist."""
    users = testbed.rabbitmqctl("list_users", "--quiet")
    assert "glancesync" in users and "guest" not in users
    listening = _listening_sockets()
    ports = rabbitmq.service_ports
    for port in (ports["amqp"], ports["erlang-dist"], ports["epmd"]):
        addresses = {host for host, found in listening if found == port}
        assert addresses and addresses <= {"127.0.0.1", "::1"}, (port, addresses)
    services = set(testbed.processes().values())
    assert {"rabbitmq", "epmd"} <= services


def test_rabbitmq_stopped_and_started_again(rabbitmq, testbed):
    before = {pid for pid, name in testbed.processes().items()
              if name in ("rabbitmq", "epmd")}
    assert before
    testbed.stop_rabbitmq()
    try:
        assert not testbed.rabbitmq_running()
        left = {pid: name for pid, name in testbed.processes().items()
                if name in ("rabbitmq", "epmd")}
        assert left == {}, "no RabbitMQ, Erlang helper or epmd process is left"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", rabbitmq.service_ports["amqp"]),
                                     timeout=10).close()
        # The bus is down: the master still serves (its notifications are dropped).
        _upload_and_delete(rabbitmq)
    finally:
        testbed.start_rabbitmq()
    assert testbed.rabbitmq_running()
    assert not before & set(testbed.processes()), "new processes"
    recorder, stop = _listen(testbed.info)
    try:
        image_id = _upload_and_delete(rabbitmq)
        recorder.wait_for(image_id, {"image.create", "image.activate", "image.delete"})
    finally:
        stop()


def test_start_rabbitmq_refuses_a_second_start(rabbitmq, testbed):
    with pytest.raises(TestBedError, match="already running"):
        testbed.start_rabbitmq()


def _coordinator(info, member: str, *, heart: bool = True, **options: str):
    query = "&".join(f"{key}={value}" for key, value in options.items())
    url = info.coordination_url + (f"?{query}" if query else "")
    coordinator = coordination.get_coordinator(url, member.encode())
    coordinator.start(start_heart=heart)
    return coordinator


def test_tooz_lock_is_exclusive_between_two_coordinators(etcd):
    name = f"gs-lock-{uuid.uuid4().hex[:8]}".encode()
    first = _coordinator(etcd, "host-a")
    second = _coordinator(etcd, "host-b")
    try:
        held = first.get_lock(name)
        assert held.acquire(blocking=False)
        other = second.get_lock(name)
        assert not other.acquire(blocking=False), "held by host-a"
        assert held.release()
        assert other.acquire(blocking=False), "free after release"
        assert other.release()
    finally:
        first.stop()
        second.stop()


def test_tooz_lock_expires_when_its_holder_stops_heartbeating(etcd):
    name = f"gs-ttl-{uuid.uuid4().hex[:8]}".encode()
    holder = _coordinator(etcd, "host-dead", heart=False, lock_timeout=str(LOCK_TTL))
    waiter = _coordinator(etcd, "host-b")
    try:
        acquired_at = time.monotonic()
        assert holder.get_lock(name).acquire(blocking=False)
        lock = waiter.get_lock(name)
        refused = lock.acquire(blocking=False)
        elapsed = time.monotonic() - acquired_at
        assert elapsed < LOCK_TTL, f"the machine stalled {elapsed:.1f} s: cannot judge"
        assert not refused, "the lease still runs"
        # No heartbeat from the holder: its lease ends after LOCK_TTL seconds.
        deadline = time.monotonic() + LOCK_TTL + EVENT_WAIT
        while not lock.acquire(blocking=False):
            assert time.monotonic() < deadline, "the dead holder's lock never expired"
            time.sleep(0.5)
        assert time.monotonic() - acquired_at >= LOCK_TTL - 1, "not before its TTL"
        assert lock.release()
    finally:
        holder.stop()
        waiter.stop()


def test_etcd_stopped_and_started_again(etcd, testbed):
    client = etcd3gw.client(host="127.0.0.1", port=etcd.service_ports["etcd-client"])
    key = f"/glancesync-test/{uuid.uuid4().hex}"
    assert client.put(key, "kept")
    coordinator = _coordinator(etcd, "host-a")
    before = {pid for pid, name in testbed.processes().items() if name == "etcd"}
    testbed.stop_etcd()
    try:
        assert not testbed.etcd_running()
        assert not {pid for pid, name in testbed.processes().items() if name == "etcd"}
        with pytest.raises(coordination.ToozError):
            coordinator.get_lock(b"gs-down").acquire(blocking=False)
    finally:
        testbed.start_etcd()
    assert testbed.etcd_running()
    assert not before & set(testbed.processes())
    assert client.get(key) == [b"kept"], "data survives a restart"
    lock = coordinator.get_lock(f"gs-up-{uuid.uuid4().hex[:8]}".encode())
    assert lock.acquire(blocking=False)
    assert lock.release()
    coordinator.stop()
    client.delete(key)


def _listening_sockets() -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket, IPv4 and IPv6."""
    found = set()
    for path, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":
                continue
            host, port = fields[1].split(":")
            raw = bytes.fromhex(host)
            if family == socket.AF_INET:
                address = socket.inet_ntop(family, raw[::-1])
            else:
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                address = socket.inet_ntop(family, words)
            found.add((address, int(port, 16)))
    return found


@pytest.mark.parametrize("method", ["start_rabbitmq", "stop_rabbitmq", "start_etcd",
                                    "stop_etcd", "rabbitmqctl"])
def test_services_of_a_bed_that_does_not_run(tmp_path, method):
    bed = TestBed(tmp_path / "run", home=tmp_path / "home")
    with pytest.raises(TestBedError, match="no running test bed in .*run"):
        getattr(bed, method)()
