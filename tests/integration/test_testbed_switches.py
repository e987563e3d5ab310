"""Switches of the test bed: regions configured unlike the others (issue 23's cases).

One module-wide configuration switches two regions at once (a restart of
each, in parallel); each test shows one switch changing what Glance
answers, against a stock region of the same Keystone as the control. One
more test switches a region and back by itself, as a test of a field case
would.
"""
from __future__ import annotations

import io
import uuid

import pytest
import requests
from glanceclient import Client as GlanceClient
from glanceclient import exc as glance_exc
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.testbed import RegionSettings, TestBedError

SWITCHED = "RegionB"  # quotas, policy, schema, a dead endpoint listed first
SECOND = "RegionC"  # a second glance-api process behind a second endpoint
CONTROL = "RegionA"  # stock, same Keystone as SWITCHED
SCHEMA = {"os_distro": {"type": "string", "enum": ["debian", "ubuntu"]}}
SETTINGS = {
    SWITCHED: RegionSettings(
        glance_conf={"DEFAULT": {"image_property_quota": "2", "image_member_quota": "1"}},
        policy={"upload_image": "!"}, schema_image=SCHEMA,
        second_endpoint="dead", second_endpoint_first=True),
    SECOND: RegionSettings(second_endpoint="process"),
}
DATA = bytes(range(256)) * 4096  # 1 MiB of raw data


@pytest.fixture(scope="module")
def switched(testbed):
    """The bed with SETTINGS applied meanwhile (restored after the module)."""
    with testbed.configured(SETTINGS) as info:
        yield info
    for region in SETTINGS:
        assert testbed.region_settings(region).is_stock


def _session(info, cloud: str = "master-admin") -> ksa_session.Session:
    return ksa_session.Session(auth=v3.Password(**info.auth(cloud)))


def _glance(info, region: str, cloud: str = "master-admin") -> GlanceClient:
    return GlanceClient("2", session=_session(info, cloud), endpoint=info.glance_urls[region])


def _name() -> str:
    return f"gs-switch-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def made(testbed):
    """Images to delete at the end: (region, id)."""
    images: list[tuple[str, str]] = []
    yield images
    for region, image_id in images:
        cloud = "other-admin" if region == "RegionC" else "master-admin"
        try:
            _glance(testbed.info, region, cloud).images.delete(image_id)
        except glance_exc.HTTPNotFound:
            pass


def _patch(info, region: str, image_id: str, ops: list[dict]) -> requests.Response:
    """A raw JSON-patch of an image (glanceclient would check the schema itself first)."""
    return requests.patch(f"{info.glance_urls[region]}/v2/images/{image_id}", json=ops,
                          timeout=30, headers={
                              "X-Auth-Token": _session(info).get_token(),
                              "Content-Type": "application/openstack-images-v2.1-json-patch"})


def _catalog_urls(info, region: str, cloud: str) -> list[str]:
    auth = _session(info, cloud)
    endpoints = auth.auth.get_access(auth).service_catalog.get_endpoints(
        service_type="image", interface="public", region_name=region)["image"]
    return [endpoint["url"].rstrip("/") for endpoint in endpoints]


def test_property_quota_refuses_an_update_beyond_it(switched, made):
    for region in (SWITCHED, CONTROL):
        client = _glance(switched, region)
        image = client.images.create(name=_name(), disk_format="raw",
                                     container_format="bare", p1="a", p2="b")
        made.append((region, image.id))
        if region == SWITCHED:
            with pytest.raises(glance_exc.HTTPOverLimit):
                client.images.update(image.id, p3="c")
        else:
            assert client.images.update(image.id, p3="c")["p3"] == "c"


def test_member_quota_refuses_a_member_beyond_it(switched, made):
    projects = [switched.project_id("master-alice"), switched.project_id("master-bob")]
    for region in (SWITCHED, CONTROL):
        client = _glance(switched, region)
        image = client.images.create(name=_name(), disk_format="raw",
                                     container_format="bare", visibility="shared")
        made.append((region, image.id))
        client.image_members.create(image.id, projects[0])
        if region == SWITCHED:
            with pytest.raises(glance_exc.HTTPOverLimit):
                client.image_members.create(image.id, projects[1])
        else:
            client.image_members.create(image.id, projects[1])


def test_policy_forbids_the_direct_upload_but_not_staging(switched, made):
    for region in (SWITCHED, CONTROL):
        client = _glance(switched, region)
        image = client.images.create(name=_name(), disk_format="raw", container_format="bare")
        made.append((region, image.id))
        if region == SWITCHED:
            with pytest.raises(glance_exc.HTTPForbidden):
                client.images.upload(image.id, io.BytesIO(DATA), image_size=len(DATA))
            client.images.stage(image.id, io.BytesIO(DATA), image_size=len(DATA))
            assert client.images.get(image.id).status == "uploading"
        else:
            client.images.upload(image.id, io.BytesIO(DATA), image_size=len(DATA))
            assert client.images.get(image.id).status == "active"


def test_schema_image_refuses_a_value_it_does_not_allow(switched, made):
    for region in (SWITCHED, CONTROL):
        client = _glance(switched, region)
        image = client.images.create(name=_name(), disk_format="raw",
                                     container_format="bare", os_distro="debian")
        made.append((region, image.id))
        answer = _patch(switched, region, image.id,
                        [{"op": "replace", "path": "/os_distro", "value": "windows"}])
        assert answer.status_code == (400 if region == SWITCHED else 200), answer.text
    served = requests.get(f"{switched.glance_urls[SWITCHED]}/v2/schemas/image", timeout=30,
                          headers={"X-Auth-Token": _session(switched).get_token()}).json()
    assert served["properties"]["os_distro"]["enum"] == ["debian", "ubuntu"]


def test_second_endpoint_on_a_dead_port_listed_first(switched, testbed):
    urls = _catalog_urls(switched, SWITCHED, "master-alice")
    assert len(urls) == 2 and urls[1] == switched.glance_urls[SWITCHED]
    assert testbed.image_endpoints(SWITCHED) == urls, "one catalog, one order"
    assert urls[0].startswith("http://127.0.0.1:")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{urls[0]}/versions", timeout=10)
    assert requests.get(f"{urls[1]}/versions", timeout=30).ok
    assert _catalog_urls(switched, CONTROL, "master-alice") == [switched.glance_urls[CONTROL]]


def test_second_endpoint_served_by_a_second_process(switched, testbed, made):
    urls = _catalog_urls(switched, SECOND, "other-alice")
    assert len(urls) == 2 and urls[0] == switched.glance_urls[SECOND]
    client = _glance(switched, SECOND, "other-admin")
    image = client.images.create(name=_name(), disk_format="raw", container_format="bare")
    made.append((SECOND, image.id))
    client.images.upload(image.id, io.BytesIO(DATA), image_size=len(DATA))
    other = GlanceClient("2", session=_session(switched, "other-admin"), endpoint=urls[1])
    assert other.images.get(image.id).status == "active", "same database"
    assert b"".join(other.images.data(image.id)) == DATA, "same store"
    assert "glance2-RegionC" in testbed.processes().values()
    assert testbed.is_running()


def test_a_region_switched_and_back(testbed, made):
    """region_configured restarts one region with a setting, then restores it."""
    settings = RegionSettings(glance_conf={"DEFAULT": {"image_property_quota": "1"}})
    with testbed.region_configured(CONTROL, settings) as info:
        assert testbed.region_settings(CONTROL) == settings
        client = _glance(info, CONTROL)
        image = client.images.create(name=_name(), disk_format="raw",
                                     container_format="bare", p1="a")
        made.append((CONTROL, image.id))
        with pytest.raises(glance_exc.HTTPOverLimit):
            client.images.update(image.id, p2="b")
    assert testbed.region_settings(CONTROL).is_stock
    assert _glance(testbed.info, CONTROL).images.update(image.id, p2="b")["p2"] == "b"


def test_unknown_region_and_bad_settings_are_refused(testbed):
    with pytest.raises(TestBedError, match="unknown region 'Nowhere'"):
        testbed.reconfigure_region("Nowhere", RegionSettings())
    with pytest.raises(TestBedError, match="second_endpoint must be one of dead, process"):
        RegionSettings(second_endpoint="ipv6")
    with pytest.raises(TestBedError, match="second_endpoint_first needs a second_endpoint"):
        RegionSettings(second_endpoint_first=True)
    with pytest.raises(TestBedError, match="no newlines"):
        RegionSettings(glance_conf={"DEFAULT": {"debug": "true\n[x]"}})
