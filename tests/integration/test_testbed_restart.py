"""Restarting a region of the test bed on its own port, again and again, mid-upload.

``stop_region`` SIGKILLs a region's uWSGI while an upload is in flight (as
the fault tests do) and ``start_region`` starts it again on the same port.
Every cycle checks the contract that makes the restart reliable: when
``stop_region`` returns, no thread of the old processes is left and the
port is bindable the way uWSGI binds it (one attempt, no waiting); then the
new service answers an authenticated ``GET /v2/images``.
"""
from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid

import pytest
import requests
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.testbed import TestBedError, ports, procs

pytestmark = pytest.mark.integration

REGION = "RegionB"
CYCLES = 10
MIB = 1024 * 1024


class Upload(threading.Thread):
    """A chunked upload of random raw data into IMAGE_URL, until killed or stopped."""

    def __init__(self, image_url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.image_url = image_url
        self.token = token
        self.stopped = threading.Event()
        self.outcome: object = None

    def run(self) -> None:
        try:
            self.outcome = requests.put(
                f"{self.image_url}/file", data=self._body(), timeout=60,
                headers={"X-Auth-Token": self.token,
                         "Content-Type": "application/octet-stream"})
        except requests.RequestException as error:
            self.outcome = error

    def _body(self):
        block = os.urandom(MIB)
        for _ in range(4096):  # 4 GiB: far more than one cycle sends
            if self.stopped.is_set():
                return
            yield block


def _wait_status(image_url: str, headers: dict[str, str], status: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = requests.get(image_url, headers=headers, timeout=10)
        if answer.ok and answer.json()["status"] == status:
            return
        time.sleep(0.02)
    raise AssertionError(f"{image_url} did not become {status}")


def test_ten_kill_and_restart_cycles_of_one_region_mid_upload(testbed):
    info = testbed.info
    url = info.glance_urls[REGION]
    port = int(url.rsplit(":", 1)[1])
    auth = ksa_session.Session(auth=v3.Password(**info.auth("master-admin")))
    headers = {"X-Auth-Token": auth.get_token()}
    name = f"gs-restart-{uuid.uuid4().hex[:8]}"
    made: list[str] = []
    try:
        for cycle in range(CYCLES):
            answer = requests.post(f"{url}/v2/images", headers=headers, timeout=10, json={
                "name": name, "disk_format": "raw", "container_format": "bare"})
            assert answer.status_code == 201, answer.text
            made.append(answer.json()["id"])
            image_url = f"{url}/v2/images/{made[-1]}"
            upload = Upload(image_url, headers["X-Auth-Token"])
            upload.start()
            try:
                _wait_status(image_url, headers, "saving")
                old = testbed.glance_pids(REGION)
                assert old, "uWSGI master and worker"
                testbed.stop_region(REGION)
            finally:
                upload.stopped.set()
            assert [pid for pid in old if procs.is_alive(pid, None)] == [], f"cycle {cycle}"
            probe = ports.wait_bindable(port, time.monotonic())
            assert probe is not None, f"cycle {cycle}: port {port}: {ports.holders(port)}"
            probe.close()
            upload.join(timeout=30)
            assert isinstance(upload.outcome, requests.ConnectionError), upload.outcome

            testbed.start_region(REGION)
            assert not set(testbed.glance_pids(REGION)) & set(old)
            listing = requests.get(f"{url}/v2/images", params={"name": name},
                                   headers=headers, timeout=10)
            assert listing.status_code == 200, listing.text
            # The killed upload left its image saving for good (TESTBED.md).
            statuses = {image["id"]: image["status"] for image in listing.json()["images"]}
            assert statuses == {image_id: "saving" for image_id in made}
    finally:
        if not testbed.glance_pids(REGION):
            testbed.start_region(REGION)
        for image_id in made:
            requests.delete(f"{url}/v2/images/{image_id}", headers=headers, timeout=30)


def test_start_region_names_who_holds_its_port(testbed):
    port = int(testbed.info.glance_urls[REGION].rsplit(":", 1)[1])
    testbed.stop_region(REGION)
    squatter = socket.socket()  # another server that binds the port as uWSGI does
    try:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        began = time.monotonic()
        with pytest.raises(TestBedError, match=re.escape(
                f"LISTEN 127.0.0.1:{port} held by pid {os.getpid()} (")) as info:
            testbed.start_region(REGION, timeout=1)
        assert f"port {port} of glance-{REGION} is still in use after" in str(info.value)
        assert time.monotonic() - began < 5, "bounded by the timeout"
        assert testbed.glance_pids(REGION) == [], "nothing was started"
    finally:
        squatter.close()
        if not testbed.glance_pids(REGION):
            testbed.start_region(REGION)
    assert testbed.is_running()
