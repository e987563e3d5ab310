"""The scripts run as subprocesses against the loopback OpenStack test bed.

Targets: ``master`` (Keystone #1: Master, RegionA, RegionB) and ``other``
(Keystone #2: RegionC). The bed is shared: every test synchronises only
images carrying its own name prefix (a ``metadata_condition``), and deletes
them from every region at the end. Covers the exit statuses that need real
services (a stopped Glance, a lock) and the mistakes a new user makes with
credentials, URLs and TLS.
"""
from __future__ import annotations

import http.server
import os
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.lock import RegionLock
from tests.testbed_config import write_config
from tests.tls import self_signed_certificate

BIN = Path(sys.executable).parent
DATA = b"glancesync scripts test " * 200


class Bed:
    """Configuration, image helpers and script runner for one test."""

    def __init__(self, testbed, folder: Path) -> None:
        self.testbed = testbed
        self.info = testbed.info
        self.folder = folder
        self.prefix = f"gs-cli-{uuid.uuid4().hex[:8]}-"
        condition = f"image.name.startswith('{self.prefix}')"
        self.config = write_config(self.info, folder / "glancesync.conf",
                                   master={"metadata_condition": condition},
                                   other={"metadata_condition": condition})
        self.locks = folder / "locks"
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("OS_", "GLANCESYNC_"))}
        self.env.update(GLANCESYNC_LOCK_DIR=str(self.locks),
                        XDG_STATE_HOME=str(folder / "state"))
        self._sessions: dict[str, ksa_session.Session] = {}

    def adapter(self, region: str) -> GlanceRegionAdapter:
        keystone = "other" if region in self.info.regions["other"] else "master"
        cloud = f"{keystone}-admin"
        if cloud not in self._sessions:
            self._sessions[cloud] = ksa_session.Session(
                auth=v3.Password(**self.info.auth(cloud)))
        return GlanceRegionAdapter(f"{keystone}:{region}", self._sessions[cloud], region,
                                   self.info.project_id(cloud))

    def put_master(self, short: str) -> str:
        master = self.adapter("Master")
        image = master.create_image(self.prefix + short, visibility="public",
                                    disk_format="raw", container_format="bare")
        master.upload_data(image.id, [DATA], len(DATA))
        return image.id

    def names(self, region: str) -> set[str]:
        return {i.name for i in self.adapter(region).list_images()
                if i.name and i.name.startswith(self.prefix)}

    def cleanup(self) -> None:
        for region in self.info.glance_urls:
            adapter = self.adapter(region)
            try:
                for image in adapter.list_images():
                    if image.name and image.name.startswith(self.prefix):
                        adapter.delete_image(image.id)
            finally:
                adapter.close()

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess:
        argv = [str(BIN / f"glancesync-{command}"), "--config-file", str(self.config), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env,
                              cwd=self.folder, timeout=300)


@pytest.fixture
def bed(testbed, tmp_path) -> Iterator[Bed]:
    helper = Bed(testbed, tmp_path)
    try:
        yield helper
    finally:
        helper.cleanup()


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("glancesync-sync: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_status_sync_status_across_two_keystones(bed):
    bed.put_master("small")
    regions = ["master:RegionA", "other:RegionC"]
    status = bed.run("sync", "--show-status", *regions)
    assert status.returncode == 3, status.stderr
    assert f"pending_upload,other:RegionC,{bed.prefix}small" in status.stdout
    assert bed.run("sync", "--dry-run", *regions).returncode == 3
    assert bed.names("RegionC") == set()

    result = bed.run("sync", *regions)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "sync of 2 region(s): 2 done, 0 failed" in result.stdout
    assert bed.names("RegionA") == bed.names("RegionC") == {bed.prefix + "small"}
    again = bed.run("sync", "--show-status", *regions)
    assert again.returncode == 0
    assert again.stdout.splitlines() == [f"ok,master:RegionA,{bed.prefix}small",
                                         f"ok,other:RegionC,{bed.prefix}small"]


def test_stopped_region_exits_1_and_others_sync(bed):
    bed.put_master("one")
    bed.testbed.stop_region("RegionB")
    try:
        result = bed.run("sync", "RegionA", "RegionB")
    finally:
        bed.testbed.start_region("RegionB")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "master:RegionB: FAILED: " in result.stdout
    assert "1 done, 1 failed" in result.stdout
    assert "Traceback" not in result.stderr
    assert bed.names("RegionA") == {bed.prefix + "one"}


def test_locked_region_exits_5(bed):
    bed.put_master("locked")
    lock_name = f"RegionA@{bed.info.keystone_urls['master']}"
    with RegionLock(bed.locks, lock_name):
        result = bed.run("sync", "RegionA")
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert "another glancesync run" in result.stdout
    assert bed.names("RegionA") == set()


def test_wrong_password_exits_2(bed):
    result = bed.run("sync", "--show-status", "--config", "master.password=not-the-password")
    assert result.returncode == 2
    assert_one_error_line(result, "refused the credentials of target master")
    assert "not-the-password" not in result.stderr


def test_wrong_password_of_second_target_exits_2(bed):
    result = bed.run("sync", "--dry-run", "other:", "--config", "other.password=nope-nope")
    assert result.returncode == 2
    assert_one_error_line(result, "target other")


def test_unreachable_keystone(bed):
    url = f"http://127.0.0.1:{closed_port()}/v3"
    result = bed.run("sync", "--show-status", "--config", f"master.auth_url={url}")
    assert result.returncode == 1
    assert_one_error_line(result, "cannot connect to Keystone", url, "check auth_url")
    debug = bed.run("sync", "--show-status", "--config", f"master.auth_url={url}", "--debug")
    assert "Traceback" in debug.stderr


def test_https_to_a_plain_http_keystone(bed):
    plain = bed.info.keystone_urls["master"]
    url = plain.replace("http://", "https://")
    result = bed.run("sync", "--show-status", "--config", f"master.auth_url={url}")
    assert result.returncode == 2  # a TLS failure is a configuration matter
    assert_one_error_line(result, "TLS", "cacert")


@pytest.fixture
def self_signed_server(tmp_path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a freshly made self-signed certificate."""
    cert_file, key_file = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/v3"
    finally:
        server.shutdown()
        server.server_close()


def test_self_signed_certificate(bed, self_signed_server):
    result = bed.run("sync", "--show-status", "--config", f"master.auth_url={self_signed_server}")
    assert result.returncode == 2
    assert_one_error_line(result, "TLS", self_signed_server, "cacert")
