"""The loopback OpenStack test bed itself: clouds, catalogs, images, faults.

Only keystoneauth1, requests and python-glanceclient talk to the services
here, so these checks hold whatever GlanceSync's own layers do.
"""
from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from glanceclient import Client as GlanceClient
from glanceclient import exc as glance_exc
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.testbed import TestBed, TestBedError

CLOUDS = ["master-admin", "master-alice", "master-bob",
          "other-admin", "other-alice", "other-bob"]
#: Real raw data (any bytes are raw), a bit over 3 MiB so uploads are chunked.
DATA = b"".join(hashlib.sha256(str(n).encode()).digest() for n in range(100_000))


def session(info, cloud: str) -> ksa_session.Session:
    return ksa_session.Session(auth=v3.Password(**info.auth(cloud)))


def glance(info, cloud: str, region: str) -> GlanceClient:
    return GlanceClient("2", session=session(info, cloud), endpoint=info.glance_urls[region])


@pytest.fixture
def image_name() -> str:
    return f"gs-testbed-{uuid.uuid4().hex[:8]}"


def test_layout(testbed):
    info = testbed.info
    assert info.regions == {"master": ["Master", "RegionA", "RegionB"], "other": ["RegionC"]}
    assert sorted(info.clouds) == sorted(CLOUDS)
    urls = list(info.keystone_urls.values()) + list(info.glance_urls.values())
    assert all(url.startswith("http://127.0.0.1:") for url in urls)
    assert len(set(urls)) == 6, "every service has its own port"
    assert set(info.glance_urls) == {"Master", "RegionA", "RegionB", "RegionC"}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_cloud_authenticates(testbed, cloud):
    info = testbed.info
    auth_session = session(info, cloud)
    assert auth_session.get_token()
    assert auth_session.get_project_id() == info.project_id(cloud)
    keystone = cloud.split("-")[0]
    assert info.auth(cloud)["auth_url"] == info.keystone_urls[keystone]


def test_users_of_one_keystone_are_unknown_to_the_other(testbed):
    info = testbed.info
    foreign = dict(info.auth("master-alice"), auth_url=info.keystone_urls["other"])
    with pytest.raises(ksa_exc.Unauthorized):
        ksa_session.Session(auth=v3.Password(**foreign)).get_token()


@pytest.mark.parametrize("keystone, regions", [
    ("master", {"Master", "RegionA", "RegionB"}),
    ("other", {"RegionC"}),
])
def test_catalog_has_one_image_endpoint_per_region(testbed, keystone, regions):
    info = testbed.info
    alice = session(info, f"{keystone}-alice")
    access = alice.auth.get_access(alice)
    endpoints = access.service_catalog.get_endpoints(service_type="image", interface="public")
    found = {endpoint["region_id"]: endpoint["url"] for endpoint in endpoints["image"]}
    assert set(found) == regions
    for region, url in found.items():
        assert url.rstrip("/") == info.glance_urls[region]


def test_clouds_yaml_and_openrc(testbed):
    info = testbed.info
    clouds = yaml.safe_load(info.clouds_yaml.read_text())["clouds"]
    assert sorted(clouds) == sorted(CLOUDS)
    for name, cloud in clouds.items():
        assert "region_name" not in cloud
        assert cloud["identity_api_version"] == 3
        assert cloud["auth"] == info.auth(name)
        rc = (info.run_dir / f"openrc-{name}").read_text()
        region = "Master" if name.startswith("master") else "RegionC"
        assert f"export OS_REGION_NAME={region}\n" in rc
        assert f"export OS_AUTH_URL={info.keystone_urls[name.split('-')[0]]}\n" in rc
        assert "export OS_IDENTITY_API_VERSION=3\n" in rc
        assert f"export OS_USERNAME={cloud['auth']['username']}\n" in rc


def test_cli_status_and_env(testbed):
    info = testbed.info
    status = subprocess.run([sys.executable, "-m", "glancesync.testbed", "status",
                             "--dir", str(info.run_dir)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert status.returncode == 0, status.stderr
    assert info.glance_urls["RegionC"] in status.stdout
    env = subprocess.run([sys.executable, "-m", "glancesync.testbed", "env",
                          "--dir", str(info.run_dir), "--cloud", "other-bob"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert env.returncode == 0, env.stderr
    assert "export OS_USERNAME=bob\n" in env.stdout


def test_attach_to_running_bed(testbed):
    attached = TestBed.load(testbed.info.run_dir)
    assert attached.is_running()
    assert attached.info.glance_urls == testbed.info.glance_urls


def test_start_refuses_when_not_installed(tmp_path):
    bed = TestBed(tmp_path / "run", home=tmp_path / "home")
    with pytest.raises(TestBedError, match="not installed"):
        bed.start()
    assert not bed.is_running()


def test_alice_uploads_a_raw_image(testbed, image_name):
    client = glance(testbed.info, "master-alice", "RegionA")
    image = client.images.create(name=image_name, disk_format="raw", container_format="bare")
    try:
        client.images.upload(image.id, io.BytesIO(DATA), image_size=len(DATA))
        stored = client.images.get(image.id)
        assert stored.status == "active"
        assert stored.size == len(DATA)
        assert stored.checksum == hashlib.md5(DATA).hexdigest()
        assert stored.os_hash_algo == "sha512"
        assert stored.os_hash_value == hashlib.sha512(DATA).hexdigest()
        assert stored.owner == testbed.info.project_id("master-alice")
        assert b"".join(client.images.data(image.id)) == DATA
    finally:
        client.images.delete(image.id)


def test_bob_cannot_see_alice_private_image(testbed, image_name):
    info = testbed.info
    alice = glance(info, "master-alice", "Master")
    bob = glance(info, "master-bob", "Master")
    image = alice.images.create(name=image_name, disk_format="raw", container_format="bare",
                                visibility="private")
    try:
        assert image.id in {found.id for found in alice.images.list()}
        assert image.id not in {found.id for found in bob.images.list()}
        with pytest.raises(glance_exc.HTTPNotFound):
            bob.images.get(image.id)
    finally:
        alice.images.delete(image.id)


def test_stop_and_start_region(testbed, image_name):
    info = testbed.info
    client = glance(info, "master-alice", "RegionB")
    image = client.images.create(name=image_name, disk_format="raw", container_format="bare")
    before = testbed.glance_pids("RegionB")
    assert len(before) >= 2, "uWSGI master and one worker"
    try:
        testbed.stop_region("RegionB")
        assert testbed.glance_pids("RegionB") == []
        assert not testbed.is_running()
        for pid in before:
            assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{info.glance_urls['RegionB']}/versions", timeout=5)
        # Other regions keep serving.
        assert requests.get(f"{info.glance_urls['RegionA']}/versions", timeout=5).ok

        testbed.start_region("RegionB")
        after = testbed.glance_pids("RegionB")
        assert after and not set(after) & set(before)
        assert testbed.is_running()
        # A fresh client: pooled connections died with the old process.
        client = glance(info, "master-alice", "RegionB")
        assert client.images.get(image.id).name == image_name, "data survives a restart"
    finally:
        if not testbed.glance_pids("RegionB"):
            testbed.start_region("RegionB")
        glance(info, "master-alice", "RegionB").images.delete(image.id)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"
