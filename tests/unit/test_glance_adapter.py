"""GlanceRegionAdapter against a faked Keystone and Glance (requests-mock).

Keystone answers a password login with a catalog holding one image endpoint
in region RegionOne; Glance's answers are faked per test. The tests look at
the requests the adapter really sends: their order, count and bodies.
"""
from __future__ import annotations

import contextlib
import datetime
import email.utils
import io
import json
import logging
import socket
import threading
import time
import urllib.parse
from typing import Iterator

import pytest
import requests_mock
import requests
from keystoneauth1 import session as ksa_session
from keystoneauth1 import token_endpoint
from keystoneauth1.identity import v3

from glancesync.backends.base import CHUNK_SIZE, RegionAdapter
from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.errors import (AuthenticationError, ConflictError, ConnectionFailure,
                               EndpointError, ImageNotFoundError, ServiceError,
                               TransferError, UsageError)
from glancesync.image import Image

KEYSTONE = "http://127.0.0.1:35999/v3"
GLANCE = "http://127.0.0.1:39292"
IMAGES = f"{GLANCE}/v2/images"
PROJECT = "5a3e0bd7a4f44e2b9a3f7c1c1d2e3f40"
IMAGE_ID = "6f1c43c2-31a6-4b5e-9a8b-0c1d2e3f4a5b"

#: A small image schema in the shape Glance serves at /v2/schemas/image:
#: base properties plus string-valued additional properties.
SCHEMA = {
    "name": "image",
    "additionalProperties": {"type": "string"},
    "links": [{"href": "{self}", "rel": "self"}, {"href": "{file}", "rel": "enclosure"},
              {"href": "{schema}", "rel": "describedby"}],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": ["null", "string"]},
        "status": {"type": "string"},
        "visibility": {"type": "string",
                       "enum": ["community", "public", "private", "shared"]},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "checksum": {"type": ["null", "string"]},
        "os_hash_algo": {"type": ["null", "string"]},
        "os_hash_value": {"type": ["null", "string"]},
        "owner": {"type": ["null", "string"]},
        "size": {"type": ["null", "integer"]},
        "virtual_size": {"type": ["null", "integer"]},
        "container_format": {"type": ["null", "string"]},
        "disk_format": {"type": ["null", "string"]},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "min_ram": {"type": "integer"},
        "min_disk": {"type": "integer"},
        "self": {"type": "string"},
        "file": {"type": "string"},
        "schema": {"type": "string"},
        "os_distro": {"type": "string", "is_base": False},
    },
}


def image_body(image_id: str = IMAGE_ID, **fields: object) -> dict:
    body = {
        "id": image_id, "name": "cirros", "status": "active", "visibility": "private",
        "protected": False, "os_hidden": False, "owner": PROJECT, "size": 10,
        "virtual_size": None, "checksum": "c" * 32, "os_hash_algo": "sha512",
        "os_hash_value": "d" * 128, "container_format": "bare", "disk_format": "raw",
        "min_ram": 0, "min_disk": 0, "tags": [], "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z", "self": f"/v2/images/{image_id}",
        "file": f"/v2/images/{image_id}/file", "schema": "/v2/schemas/image",
    }
    body.update(fields)
    return body


def versions(root: str = GLANCE) -> dict:
    """Glance's version document at its root (HTTP 300), links under ``root``."""
    return {"versions": [
        {"id": f"v2.{minor}", "status": "CURRENT" if minor == 18 else "SUPPORTED",
         "links": [{"rel": "self", "href": f"{root}/v2/"}]} for minor in (18, 17, 1)]}


def glance_error(status: int, reason: str, explanation: str) -> dict:
    """How Glance (webob) words an error: status line first, then why."""
    return {"status_code": status, "headers": {"Content-Type": "text/plain"},
            "text": f"{status} {reason}\n\n{explanation}\n\n"}


def keystone_token(url: str = GLANCE) -> dict:
    """The body of a project-scoped Keystone v3 token with an image endpoint at ``url``."""
    domain = {"id": "default", "name": "Default"}
    return {"token": {
        "methods": ["password"], "expires_at": "2999-01-01T00:00:00.000000Z",
        "issued_at": "2024-01-01T00:00:00.000000Z",
        "user": {"id": "u1", "name": "alice", "domain": domain},
        "project": {"id": PROJECT, "name": "alice-project", "domain": domain},
        "roles": [{"id": "r1", "name": "member"}],
        "catalog": [{"type": "image", "id": "s1", "name": "glance", "endpoints": [
            {"id": "e1", "interface": "public", "url": url, "region": "RegionOne",
             "region_id": "RegionOne"}]}],
    }}


@pytest.fixture
def fake(requests_mock):
    token = keystone_token()
    requests_mock.post(f"{KEYSTONE}/auth/tokens", json=token,
                       headers={"X-Subject-Token": "secret-token-value"}, status_code=201)
    requests_mock.get(f"{GLANCE}/v2/schemas/image", json=SCHEMA)
    requests_mock.get(GLANCE, json=versions(), status_code=300)
    return requests_mock


def make_session() -> ksa_session.Session:
    auth = v3.Password(auth_url=KEYSTONE, username="alice", password="pw",
                       project_name="alice-project", user_domain_name="Default",
                       project_domain_name="Default")
    return ksa_session.Session(auth=auth)


@pytest.fixture
def adapter(fake) -> GlanceRegionAdapter:
    return GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT)


def glance_calls(mock) -> list[tuple[str, str]]:
    """(method, path?query) of every request sent to Glance's image API.

    The query's parameters are sorted, their order being meaningless.
    """
    calls = []
    for request in mock.request_history:
        url = urllib.parse.urlsplit(request.url)
        if url.port == 39292 and url.path.startswith("/v2/images"):
            query = "&".join(sorted(url.query.split("&"))) if url.query else ""
            calls.append((request.method, url.path + (f"?{query}" if query else "")))
    return calls


def test_is_a_region_adapter(adapter):
    assert isinstance(adapter, RegionAdapter)
    assert adapter.name == "master:RegionOne"
    assert adapter.project_id == PROJECT


# -- where the API is: version discovery -----------------------------------

def catalog_adapter(requests_mock, url: str) -> GlanceRegionAdapter:
    """An adapter whose catalog registers the image endpoint ``url``."""
    requests_mock.post(f"{KEYSTONE}/auth/tokens", json=keystone_token(url),
                       headers={"X-Subject-Token": "secret-token-value"}, status_code=201)
    for root in (GLANCE, f"{GLANCE}/image"):
        requests_mock.get(f"{root}/v2/schemas/image", json=SCHEMA)
    return GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT)


def paths(mock) -> list[tuple[str, str]]:
    return [(r.method, urllib.parse.urlsplit(r.url).path) for r in mock.request_history
            if urllib.parse.urlsplit(r.url).port == 39292]


@pytest.mark.parametrize("registered", ["", "/", "/v2", "/v2/"])
def test_a_versioned_or_bare_catalog_endpoint_reaches_the_same_api(requests_mock, registered):
    """Deployment tools register http://host:9292, or with the version: /v2."""
    requests_mock.get(GLANCE, json=versions(), status_code=300)
    requests_mock.get(f"{GLANCE}/v2/", status_code=404)  # as Glance answers /v2/
    requests_mock.get(IMAGES, json={"images": [image_body("a")]})
    requests_mock.put(f"{IMAGES}/a/file", status_code=204)
    requests_mock.get(f"{IMAGES}/a", json=image_body("a"))
    adapter = catalog_adapter(requests_mock, GLANCE + registered)
    assert [i.id for i in adapter.list_images()] == ["a"]
    adapter.upload_data("a", [b"abc"], size=3)
    used = {p for p in paths(requests_mock) if p[1] not in ("/", "/v2/")}  # discovery
    assert used == {("GET", "/v2/images"), ("GET", "/v2/schemas/image"),
                    ("PUT", "/v2/images/a/file"), ("GET", "/v2/images/a")}


@pytest.mark.parametrize("registered", ["/image", "/image/", "/image/v2"])
def test_an_endpoint_behind_a_path_prefix(requests_mock, registered):
    """A reverse proxy serving Glance under /image; its links name the prefix."""
    root = f"{GLANCE}/image"
    for document in (root, f"{root}/"):
        requests_mock.get(document, json=versions(root), status_code=300)
    requests_mock.get(f"{root}/v2/", status_code=404)
    requests_mock.get(f"{root}/v2/images", json={"images": [image_body("a")]})
    requests_mock.put(f"{root}/v2/images/a/file", status_code=204)
    requests_mock.get(f"{root}/v2/images/a", json=image_body("a"))
    adapter = catalog_adapter(requests_mock, GLANCE + registered)
    assert [i.id for i in adapter.list_images()] == ["a"]
    assert adapter.upload_data("a", [b"abc"], size=3).id == "a"
    assert ("PUT", "/image/v2/images/a/file") in paths(requests_mock)
    assert not any(p.startswith("/v2") for _, p in paths(requests_mock))


def test_the_api_is_discovered_once_per_adapter(requests_mock):
    requests_mock.get(GLANCE, json=versions(), status_code=300)
    requests_mock.get(IMAGES, json={"images": []})
    requests_mock.get(f"{IMAGES}/a", json=image_body("a"))
    adapter = catalog_adapter(requests_mock, GLANCE)
    adapter.list_images()
    adapter.get_image("a")
    adapter.list_images()
    assert [p for p in paths(requests_mock) if p[1] in ("", "/")] == [("GET", "/")]


def test_a_wrong_endpoint_is_an_endpoint_error_naming_the_url(requests_mock):
    """Nothing answers at the registered URL (a wrong prefix): not 'image not found'."""
    wrong = f"{GLANCE}/imgae"
    requests_mock.get(wrong, **glance_error(404, "Not Found", "no such path"))
    adapter = catalog_adapter(requests_mock, wrong)
    with pytest.raises(EndpointError) as caught:
        adapter.list_images()
    message = str(caught.value)
    assert wrong in message and "region RegionOne" in message
    assert "catalog of target master" in message and "HTTP 404" in message
    assert "image not found" not in message
    assert not caught.value.transient


def test_an_endpoint_of_another_service_is_an_endpoint_error(requests_mock):
    """The catalog points at Keystone: a version document, but no Image API v2."""
    identity = {"versions": {"values": [{"id": "v3.14", "status": "stable",
                                         "links": [{"rel": "self",
                                                    "href": f"{GLANCE}/v3/"}]}]}}
    requests_mock.get(GLANCE, json=identity, status_code=300)
    adapter = catalog_adapter(requests_mock, GLANCE)
    with pytest.raises(EndpointError) as caught:
        adapter.list_images()
    assert GLANCE in str(caught.value) and "no Image API v2" in str(caught.value)


def test_a_service_unavailable_during_discovery_is_transient(requests_mock):
    requests_mock.get(GLANCE, [glance_error(503, "Service Unavailable", "restarting"),
                               glance_error(503, "Service Unavailable", "restarting"),
                               {"json": versions(), "status_code": 300}])
    requests_mock.get(IMAGES, json={"images": []})
    adapter = catalog_adapter(requests_mock, GLANCE)
    with pytest.raises(ServiceError) as caught:
        adapter.list_images()
    assert caught.value.transient and caught.value.status_code == 503
    assert not isinstance(caught.value, EndpointError)
    assert adapter.list_images() == []  # found once the service is back


def test_a_404_on_the_image_collection_is_an_endpoint_error(adapter, fake):
    """The API was found, but the collection is not there: the endpoint is wrong."""
    not_found = glance_error(404, "Not Found", "The resource could not be found.")
    fake.get(IMAGES, **not_found)
    with pytest.raises(EndpointError) as caught:
        adapter.list_images()
    assert "listing images failed" in str(caught.value) and GLANCE in str(caught.value)
    fake.post(IMAGES, **not_found)
    with pytest.raises(EndpointError):
        adapter.create_image("x", image_id=IMAGE_ID)
    fake.get(f"{IMAGES}/{IMAGE_ID}", **not_found)
    with pytest.raises(ImageNotFoundError):  # one image missing is still that
        adapter.get_image(IMAGE_ID)


# -- listing -------------------------------------------------------------

def test_list_follows_next_links_in_order(fake):
    pages = {
        None: {"images": [image_body("a", name="one"), image_body("b", name="two")],
               "next": "/v2/images?limit=2&visibility=all&marker=b"},
        "b": {"images": [image_body("c", name="three", os_distro="cirros",
                                    **{"owner_specified.openstack.md5": "x",
                                       "os_glance_importing_to_stores": "",
                                       "stores": "fs"})]},
    }

    hidden = {"images": [image_body("h", name="hidden", os_hidden=True)]}

    def page(request, context):
        if request.qs.get("os_hidden"):
            return hidden
        return pages[request.qs.get("marker", [None])[0]]

    fake.get(IMAGES, json=page)
    adapter = GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT,
                                  page_size=2)
    images = adapter.list_images()

    assert [image.id for image in images] == ["a", "b", "c", "h"]
    assert all(isinstance(image, Image) for image in images)
    assert images[2].properties == {"os_distro": "cirros"}
    assert images[0].owner == PROJECT and images[0].checksum == "c" * 32
    assert [image.os_hidden for image in images] == [False, False, False, True]
    # Glance lists hidden images only when asked for them alone: two listings.
    assert glance_calls(fake) == [
        ("GET", "/v2/images?limit=2&visibility=all"),
        ("GET", "/v2/images?limit=2&marker=b&visibility=all"),
        ("GET", "/v2/images?limit=2&os_hidden=True&visibility=all"),
    ]


def test_list_uses_page_size_1000_by_default(adapter, fake):
    fake.get(IMAGES, json={"images": []})
    assert adapter.list_images() == []
    assert glance_calls(fake) == [("GET", "/v2/images?limit=1000&visibility=all"),
                                  ("GET", "/v2/images?limit=1000&os_hidden=True&visibility=all")]


def test_list_stops_when_the_time_budget_is_spent(fake):
    def slow_page(request, context):
        threading.Event().wait(0.3)
        return {"images": [image_body("a")], "next": "/v2/images?limit=1&marker=a"}

    fake.get(IMAGES, json=slow_page)
    adapter = GlanceRegionAdapter("other:RegionC", make_session(), "RegionOne", PROJECT,
                                  list_timeout=0.2, page_size=1)
    with pytest.raises(ServiceError) as caught:
        adapter.list_images()
    assert caught.value.region == "other:RegionC"
    assert "longer than 0.2 s" in str(caught.value)
    assert len(glance_calls(fake)) == 1


@contextlib.contextmanager
def stalled_server() -> Iterator[tuple[str, ksa_session.Session]]:
    """A real loopback server that accepts connections and never answers, and a
    session whose catalog names it as the image endpoint."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        yield endpoint, ksa_session.Session(auth=token_endpoint.Token(endpoint, "tok"))


def test_list_timeout_bounds_a_stalled_server():
    with stalled_server() as (endpoint, session):
        adapter = GlanceRegionAdapter("master:Stalled", session, "Stalled", PROJECT,
                                      list_timeout=0.5, endpoint_override=endpoint)
        with pytest.raises(ServiceError) as caught:
            adapter.list_images()
    assert caught.value.region == "master:Stalled"
    assert "longer than 0.5 s" in str(caught.value)


@pytest.mark.timeout(120)
def test_list_timeout_bounds_the_discovery_of_a_stalled_server():
    """Finding the API of a server that never answers takes list_timeout per request.

    The bound is loose (a few requests of 0.5 s each, on a loaded machine): what it
    catches is a discovery that waits for the server for ever, or for minutes."""
    with stalled_server() as (endpoint, session):
        adapter = GlanceRegionAdapter("master:Stalled", session, "Stalled", PROJECT,
                                      list_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ConnectionFailure) as caught:
            adapter.list_images()
    assert time.monotonic() - started < 60
    assert caught.value.transient and caught.value.region == "master:Stalled"
    assert f"{endpoint} did not answer within 0.5 s" in str(caught.value)


def test_list_500(adapter, fake):
    fake.get(IMAGES, **glance_error(500, "Internal Server Error", "boom"))
    with pytest.raises(ServiceError) as caught:
        adapter.list_images()
    assert caught.value.status_code == 500
    assert caught.value.region == "master:RegionOne"


def test_list_500_is_transient_and_a_503_keeps_its_retry_after(adapter, fake):
    fake.get(IMAGES, [glance_error(500, "Internal Server Error", "boom"),
                      {**glance_error(503, "Service Unavailable", "restarting"),
                       "headers": {"Content-Type": "text/plain", "Retry-After": "7"}}])
    with pytest.raises(ServiceError) as caught:
        adapter.list_images()
    assert caught.value.transient and caught.value.retry_after is None
    with pytest.raises(ServiceError) as caught:
        adapter.list_images()
    assert caught.value.transient and caught.value.status_code == 503
    assert caught.value.retry_after == 7


def test_retry_after_as_a_date_and_on_uploads(adapter, fake):
    when = email.utils.format_datetime(
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=60),
        usegmt=True)
    fake.get(f"{IMAGES}/{IMAGE_ID}", status_code=503, text="busy",
             headers={"Content-Type": "text/plain", "Retry-After": when})
    with pytest.raises(ServiceError) as caught:
        adapter.get_image(IMAGE_ID)
    assert 50 < caught.value.retry_after <= 60
    fake.put(f"{IMAGES}/{IMAGE_ID}/file", status_code=503, text="busy",
             headers={"Content-Type": "text/plain", "Retry-After": "3"})
    with pytest.raises(ServiceError) as caught:
        adapter.upload_data(IMAGE_ID, [b"abc"], size=3)
    assert caught.value.retry_after == 3 and caught.value.transient


def test_client_errors_are_permanent(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}", **glance_error(404, "Not Found", "No image found"))
    with pytest.raises(ImageNotFoundError) as caught:
        adapter.get_image(IMAGE_ID)
    assert caught.value.transient is False


# -- get, create ---------------------------------------------------------

def test_get(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=image_body(os_distro="ubuntu", kernel_id="k1"))
    image = adapter.get_image(IMAGE_ID)
    assert image.id == IMAGE_ID and image.status == "active"
    assert image.os_hash_value == "d" * 128
    assert image.properties == {"os_distro": "ubuntu", "kernel_id": "k1"}


def test_get_missing(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}", **glance_error(404, "Not Found", "No image found"))
    with pytest.raises(ImageNotFoundError) as caught:
        adapter.get_image(IMAGE_ID)
    error = caught.value
    assert (error.region, error.image, error.status_code) == ("master:RegionOne", IMAGE_ID, 404)


def test_create_sends_fields_and_properties(adapter, fake):
    fake.post(IMAGES, status_code=201,
              json=image_body(status="queued", size=None, checksum=None, name="new",
                              os_distro="cirros", hw_arch="x86_64"))
    image = adapter.create_image("new", visibility="shared", disk_format="qcow2",
                                 container_format="bare", min_ram=512, min_disk=1,
                                 protected=True,
                                 properties={"os_distro": "cirros", "hw_arch": "x86_64"},
                                 image_id=IMAGE_ID)
    sent = fake.request_history[-1]
    assert sent.method == "POST" and sent.url == IMAGES
    assert sent.json() == {"name": "new", "visibility": "shared", "disk_format": "qcow2",
                           "container_format": "bare", "min_ram": 512, "min_disk": 1,
                           "protected": True, "id": IMAGE_ID, "os_distro": "cirros",
                           "hw_arch": "x86_64"}
    assert image.status == "queued"
    assert image.properties == {"os_distro": "cirros", "hw_arch": "x86_64"}


def test_create_leaves_unset_formats_out(adapter, fake):
    fake.post(IMAGES, status_code=201, json=image_body(status="queued"))
    adapter.create_image("plain")
    assert fake.request_history[-1].json() == {
        "name": "plain", "visibility": "private", "min_ram": 0, "min_disk": 0,
        "protected": False}


def test_create_with_a_used_id_conflicts(adapter, fake):
    fake.post(IMAGES, **glance_error(409, "Conflict", "Image ID already exists"))
    with pytest.raises(ConflictError) as caught:
        adapter.create_image("x", image_id=IMAGE_ID)
    assert caught.value.status_code == 409 and caught.value.image == IMAGE_ID


def test_create_public_forbidden_says_admin(adapter, fake):
    fake.post(IMAGES, **glance_error(403, "Forbidden", "Not allowed"))
    with pytest.raises(ServiceError) as caught:
        adapter.create_image("x", visibility="public")
    assert caught.value.status_code == 403
    assert "making an image public needs the admin role" in str(caught.value)


# -- upload, download ----------------------------------------------------

def test_upload_streams_chunks(adapter, fake):
    produced = []

    def source():
        for index in range(3):
            produced.append(index)
            yield bytes([index]) * CHUNK_SIZE
        produced.append("tail")
        yield b"end"

    received = {}

    def store(request, context):
        sizes, data = [], []
        received["produced_before_first_chunk"] = None
        for chunk in request.body:
            if received["produced_before_first_chunk"] is None:
                received["produced_before_first_chunk"] = len(produced)
            sizes.append(len(chunk))
            data.append(chunk)
        received["sizes"] = sizes
        received["data"] = b"".join(data)
        received["headers"] = request.headers
        context.status_code = 204
        return ""

    fake.put(f"{IMAGES}/{IMAGE_ID}/file", text=store)
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=image_body(size=3 * CHUNK_SIZE + 3))

    image = adapter.upload_data(IMAGE_ID, source(), size=3 * CHUNK_SIZE + 3)

    expected = b"".join(bytes([i]) * CHUNK_SIZE for i in range(3)) + b"end"
    assert received["data"] == expected
    assert received["sizes"] == [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE, 3]
    # Streamed: the server saw the first chunk before the source produced the rest.
    assert received["produced_before_first_chunk"] <= 2
    headers = received["headers"]
    # The size is known: a declared length, no chunked encoding.
    assert headers["Content-Length"] == str(3 * CHUNK_SIZE + 3)
    assert "Transfer-Encoding" not in headers
    assert headers["Content-Type"] == "application/octet-stream"
    assert image.size == 3 * CHUNK_SIZE + 3
    assert glance_calls(fake) == [("PUT", f"/v2/images/{IMAGE_ID}/file"),
                                  ("GET", f"/v2/images/{IMAGE_ID}")]


def test_upload_regroups_small_and_odd_chunks(adapter, fake):
    pieces = [b"a" * 1000, b"", b"b" * (CHUNK_SIZE + 5), b"c" * 7]
    received = []

    def store(request, context):
        received.extend(request.body)
        context.status_code = 204
        return ""

    fake.put(f"{IMAGES}/{IMAGE_ID}/file", text=store)
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=image_body())
    adapter.upload_data(IMAGE_ID, iter(pieces))
    assert b"".join(received) == b"".join(pieces)
    assert all(len(chunk) <= CHUNK_SIZE for chunk in received)
    assert "x-openstack-image-size" not in fake.request_history[-2].headers


def test_upload_format_mismatch_415(adapter, fake):
    fake.put(f"{IMAGES}/{IMAGE_ID}/file", status_code=415,
             headers={"Content-Type": "text/html"},
             text="<html><head><title>415 Unsupported Media Type</title></head><body>"
                  "<h1>415 Unsupported Media Type</h1>Image data does not match "
                  "the disk_format</body></html>")
    with pytest.raises(ServiceError) as caught:
        adapter.upload_data(IMAGE_ID, [b"not a qcow2"])
    assert caught.value.status_code == 415
    assert "disk_format" in str(caught.value)


def test_sized_upload_errors_are_translated(adapter, fake):
    fake.put(f"{IMAGES}/{IMAGE_ID}/file",
             **glance_error(409, "Conflict", "Image status transition not allowed"))
    with pytest.raises(ConflictError) as caught:
        adapter.upload_data(IMAGE_ID, [b"abc"], size=3)
    assert caught.value.status_code == 409
    assert caught.value.region == adapter.name


def test_sized_upload_refuses_a_short_source(adapter, fake):
    def store(request, context):
        b"".join(request.body)  # the transport reads the body: the source runs dry
        context.status_code = 204
        return ""

    fake.put(f"{IMAGES}/{IMAGE_ID}/file", text=store)
    with pytest.raises(TransferError, match="2 bytes, not the 5 declared"):
        adapter.upload_data(IMAGE_ID, [b"ab"], size=5)


def test_upload_to_a_non_queued_image_conflicts(adapter, fake):
    fake.put(f"{IMAGES}/{IMAGE_ID}/file",
             **glance_error(409, "Conflict", "Image status transition not allowed"))
    with pytest.raises(ConflictError) as caught:
        adapter.upload_data(IMAGE_ID, [b"x"])
    assert (caught.value.image, caught.value.status_code) == (IMAGE_ID, 409)


def test_download_chunks_are_bounded(adapter, fake):
    data = bytes(range(256)) * (CHUNK_SIZE * 5 // 2 // 256) + b"xyz"
    fake.get(f"{IMAGES}/{IMAGE_ID}/file", body=io.BytesIO(data),
             headers={"Content-Type": "application/octet-stream",
                      "Content-Length": str(len(data))})
    chunks = list(adapter.download_data(IMAGE_ID))
    assert b"".join(chunks) == data
    assert len(chunks) >= 3
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
    # Raw streaming: no metadata request for client-side verification.
    assert glance_calls(fake) == [("GET", f"/v2/images/{IMAGE_ID}/file")]


def test_download_missing_raises_at_call(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}/file", **glance_error(404, "Not Found", "gone"))
    with pytest.raises(ImageNotFoundError):
        adapter.download_data(IMAGE_ID)


def test_download_of_an_image_without_data(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}/file", status_code=204)
    with pytest.raises(ServiceError) as caught:
        adapter.download_data(IMAGE_ID)
    assert caught.value.status_code == 204


def test_download_broken_stream(adapter, fake):
    """A connection lost mid-body: requests reports a broken chunked stream."""
    class Breaking(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise requests.exceptions.ConnectionError("connection reset")

        def read1(self, size=-1):  # as a socket file: the adapter reads what came
            raise ConnectionResetError("connection reset")

    fake.get(f"{IMAGES}/{IMAGE_ID}/file", body=Breaking(),
             headers={"Content-Type": "application/octet-stream"})
    chunks = adapter.download_data(IMAGE_ID)
    with pytest.raises(TransferError) as caught:
        list(chunks)
    assert caught.value.image == IMAGE_ID


# -- update, delete ------------------------------------------------------

def test_update_sends_one_json_patch(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}", [
        {"json": image_body(os_distro="cirros", old_prop="1", keep="k")},
        {"json": image_body(os_distro="ubuntu", new_prop="n", keep="k", min_ram=256)},
    ])
    fake.patch(f"{IMAGES}/{IMAGE_ID}", json=image_body())
    image = adapter.update_image(IMAGE_ID,
                                 {"os_distro": "ubuntu", "new_prop": "n", "min_ram": 256},
                                 remove=["old_prop", "absent_prop"])
    patch = fake.request_history[-2]
    assert patch.method == "PATCH"
    assert patch.headers["Content-Type"] == "application/openstack-images-v2.1-json-patch"
    ops = sorted((op["op"], op["path"], op.get("value")) for op in patch.json())
    assert ops == [("add", "/new_prop", "n"), ("remove", "/old_prop", None),
                   ("replace", "/min_ram", 256), ("replace", "/os_distro", "ubuntu")]
    assert image.properties == {"os_distro": "ubuntu", "new_prop": "n", "keep": "k"}
    assert image.min_ram == 256
    assert [call[0] for call in glance_calls(fake)] == ["GET", "PATCH", "GET"]


def test_tags_are_set_with_the_tag_calls_even_to_none(adapter, fake):
    """glanceclient's JSON patch cannot empty the tags: one call per tag instead."""
    before, after = image_body(tags=["old", "keep"]), image_body(tags=["keep", "new"])
    # glanceclient's update reads the image before and after its patch; the
    # tags are then read, set, and the image read again; then a second update.
    fake.get(f"{IMAGES}/{IMAGE_ID}", [{"json": before}, {"json": before}, {"json": before},
                                      {"json": after}, {"json": after},
                                      {"json": image_body(tags=[])}])
    fake.patch(f"{IMAGES}/{IMAGE_ID}", json=image_body(tags=["old", "keep"]))
    fake.put(requests_mock.ANY, status_code=204)
    fake.delete(requests_mock.ANY, status_code=204)
    image = adapter.update_image(IMAGE_ID, {"tags": ["keep", "new"], "os_hidden": True})
    assert sorted(image.tags) == ["keep", "new"]
    patch = [r for r in fake.request_history if r.method == "PATCH"][0]
    # (glanceclient adds the tags it read back as they were: harmless)
    assert {"op": "replace", "path": "/os_hidden", "value": True} in patch.json()
    assert [c for c in glance_calls(fake) if c[0] in ("PUT", "DELETE")] == [
        ("DELETE", f"/v2/images/{IMAGE_ID}/tags/old"),
        ("PUT", f"/v2/images/{IMAGE_ID}/tags/new")]
    fake.reset_mock()
    assert adapter.update_image(IMAGE_ID, {"tags": []}).tags == []
    assert [c for c in glance_calls(fake) if c[0] != "GET"] == [
        ("DELETE", f"/v2/images/{IMAGE_ID}/tags/keep"),
        ("DELETE", f"/v2/images/{IMAGE_ID}/tags/new")]


def test_deactivate_and_reactivate_are_glance_actions(adapter, fake):
    fake.post(f"{IMAGES}/{IMAGE_ID}/actions/deactivate", status_code=204)
    fake.post(f"{IMAGES}/{IMAGE_ID}/actions/reactivate", status_code=204)
    fake.get(f"{IMAGES}/{IMAGE_ID}", [{"json": image_body(status="deactivated")},
                                      {"json": image_body(status="active")}])
    assert adapter.deactivate_image(IMAGE_ID).status == "deactivated"
    assert adapter.reactivate_image(IMAGE_ID).status == "active"
    assert [c for c in glance_calls(fake) if c[0] == "POST"] == [
        ("POST", f"/v2/images/{IMAGE_ID}/actions/deactivate"),
        ("POST", f"/v2/images/{IMAGE_ID}/actions/reactivate")]


def test_members(adapter, fake):
    member = {"member_id": "p2", "image_id": IMAGE_ID, "status": "pending",
              "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
              "schema": "/v2/schemas/member"}
    fake.get(f"{GLANCE}/v2/schemas/member", json={"name": "member", "properties": {
        key: {"type": "string"} for key in member}})
    fake.get(f"{IMAGES}/{IMAGE_ID}/members", json={"members": [member]})
    fake.post(f"{IMAGES}/{IMAGE_ID}/members", json=member)
    fake.delete(f"{IMAGES}/{IMAGE_ID}/members/p2", status_code=204)
    assert adapter.list_members(IMAGE_ID) == ["p2"]
    adapter.add_member(IMAGE_ID, "p2")
    adapter.remove_member(IMAGE_ID, "p2")
    posted = [r for r in fake.request_history if r.method == "POST"
              and r.url.endswith("/members")][0]
    assert posted.json() == {"member": "p2"}


def test_an_image_that_is_not_shared_has_no_members(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}/members", **glance_error(
        403, "Forbidden", "Only shared images have members."))
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=image_body(visibility="public"))
    assert adapter.list_members(IMAGE_ID) == []


def test_update_visibility(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=image_body())
    fake.patch(f"{IMAGES}/{IMAGE_ID}", json=image_body())
    adapter.update_image(IMAGE_ID, {"visibility": "shared"})
    patch = [r for r in fake.request_history if r.method == "PATCH"][0]
    assert json.loads(patch.text) == [{"op": "replace", "path": "/visibility",
                                       "value": "shared"}]


def test_publicize_forbidden_says_admin(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=image_body())
    fake.patch(f"{IMAGES}/{IMAGE_ID}", **glance_error(403, "Forbidden", "policy"))
    with pytest.raises(ServiceError) as caught:
        adapter.update_image(IMAGE_ID, {"visibility": "public"})
    error = caught.value
    assert (error.region, error.image, error.status_code) == ("master:RegionOne", IMAGE_ID, 403)
    assert "making an image public needs the admin role" in str(error)


def test_update_forbidden_other_reason(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=image_body())
    fake.patch(f"{IMAGES}/{IMAGE_ID}", **glance_error(403, "Forbidden", "not owner"))
    with pytest.raises(ServiceError) as caught:
        adapter.update_image(IMAGE_ID, {"name": "x"})
    assert caught.value.status_code == 403
    assert "admin role" not in str(caught.value)


@pytest.mark.parametrize("rule", ["modify_image", "delete_image", "upload_image"])
def test_a_403_of_the_region_s_policy_names_the_rule_not_the_role(adapter, fake, rule):
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=image_body())
    refusal = glance_error(403, "Forbidden", f"You are not authorized to complete {rule}"
                                             " action.")
    fake.patch(f"{IMAGES}/{IMAGE_ID}", **refusal)
    with pytest.raises(ServiceError) as caught:
        adapter.update_image(IMAGE_ID, {"name": "x"})
    text = str(caught.value)
    assert f"forbidden (HTTP 403) by the region's policy (rule {rule})" in text
    assert "role or project does not allow" not in text
    assert "upload_method" not in text, "only a direct upload may take the import API"


def test_delete(adapter, fake):
    fake.delete(f"{IMAGES}/{IMAGE_ID}", status_code=204)
    assert adapter.delete_image(IMAGE_ID) is None
    assert glance_calls(fake) == [("DELETE", f"/v2/images/{IMAGE_ID}")]


def test_delete_protected_is_a_conflict(adapter, fake):
    fake.delete(f"{IMAGES}/{IMAGE_ID}",
                **glance_error(403, "Forbidden", f"Image {IMAGE_ID} is protected and "
                                                 "cannot be deleted."))
    with pytest.raises(ConflictError) as caught:
        adapter.delete_image(IMAGE_ID)
    assert caught.value.status_code == 403


def test_delete_missing(adapter, fake):
    fake.delete(f"{IMAGES}/{IMAGE_ID}", **glance_error(404, "Not Found", "none"))
    with pytest.raises(ImageNotFoundError):
        adapter.delete_image(IMAGE_ID)


# -- connection and authentication ---------------------------------------

def test_glance_401_is_an_authentication_error(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}", **glance_error(401, "Unauthorized", "bad token"))
    with pytest.raises(AuthenticationError) as caught:
        adapter.get_image(IMAGE_ID)
    assert caught.value.status_code == 401


def test_keystone_refuses_the_password(requests_mock):
    requests_mock.post(f"{KEYSTONE}/auth/tokens", status_code=401,
                       json={"error": {"code": 401, "message": "The request you have made "
                                       "requires authentication.", "title": "Unauthorized"}})
    adapter = GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT)
    with pytest.raises(AuthenticationError) as caught:
        adapter.list_images()
    assert caught.value.region == "master:RegionOne"


def test_region_without_image_endpoint(fake):
    adapter = GlanceRegionAdapter("master:Nowhere", make_session(), "Nowhere", PROJECT)
    with pytest.raises(ServiceError) as caught:
        adapter.get_image(IMAGE_ID)
    assert "region Nowhere has no image endpoint" in str(caught.value)
    assert caught.value.region == "master:Nowhere"


def test_connection_refused_faked(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}", exc=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(ConnectionFailure) as caught:
        adapter.get_image(IMAGE_ID)
    assert (caught.value.region, caught.value.image) == ("master:RegionOne", IMAGE_ID)


def test_connection_refused_real():
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = ksa_session.Session(auth=token_endpoint.Token(f"http://127.0.0.1:{port}", "t"))
    adapter = GlanceRegionAdapter("master:Closed", session, "Closed", PROJECT)
    with pytest.raises(ConnectionFailure) as caught:
        adapter.delete_image(IMAGE_ID)
    assert caught.value.region == "master:Closed"


def test_token_is_never_logged(adapter, fake, caplog):
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=image_body())
    with caplog.at_level("DEBUG"):
        adapter.get_image(IMAGE_ID)
    assert caplog.records
    assert "secret-token-value" not in caplog.text


def test_value_outside_the_schema_is_a_usage_error(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=image_body())
    with pytest.raises(UsageError) as caught:
        adapter.update_image(IMAGE_ID, {"min_ram": "lots"})
    assert "min_ram" in str(caught.value) and "\n" not in str(caught.value)
    assert not [r for r in fake.request_history if r.method == "PATCH"]


# -- local files: sendfile on plain HTTP, requests elsewhere ---------------------

class _Server:
    """A loopback HTTP server answering PUTs with a chosen status; records requests."""

    def __init__(self, status: int = 204, read_body: bool = True) -> None:
        self.status = status
        self.read_body = read_body
        self.requests: list[tuple[str, dict, bytes]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        client, _ = self.listener.accept()
        with client, client.makefile("rb") as stream:
            line = stream.readline().decode().strip()
            headers = {}
            while (header := stream.readline().decode().strip()):
                key, _, value = header.partition(":")
                headers[key.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"])) if self.read_body else b""
            self.requests.append((line, headers, body))
            text = b"" if self.status == 204 else b"409 Conflict\n\nImage is not queued\n"
            client.sendall(f"HTTP/1.1 {self.status} X\r\nContent-Type: text/plain\r\n"
                           f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n"
                           .encode() + text)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


def _local_file(tmp_path, size: int) -> tuple[object, bytes]:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path = tmp_path / "image.raw"
    path.write_bytes(data)
    return path, data


def test_a_local_file_is_sent_with_sendfile_on_plain_http(fake, tmp_path):
    from glancesync.integrity import FileData
    server = _Server()
    adapter = GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT,
                                  endpoint_override=f"http://127.0.0.1:{server.port}")
    fake.get(f"http://127.0.0.1:{server.port}/v2/images/{IMAGE_ID}",
             json=image_body(size=3 * CHUNK_SIZE + 5))
    fake.get(f"http://127.0.0.1:{server.port}/v2/schemas/image", json=SCHEMA)
    path, data = _local_file(tmp_path, 3 * CHUNK_SIZE + 5)
    steps = []
    try:
        with open(path, "rb") as handle:
            image = adapter.upload_data(IMAGE_ID, FileData(handle, len(data), steps.append),
                                        len(data))
    finally:
        server.close()
    ((line, headers, body),) = server.requests
    assert line == f"PUT /v2/images/{IMAGE_ID}/file HTTP/1.1"
    assert headers["content-length"] == str(len(data))
    assert headers["content-type"] == "application/octet-stream"
    assert headers["x-auth-token"] == "secret-token-value"
    assert body == data and sum(steps) == len(data)
    assert image.size == len(data)


def test_an_error_answer_to_sendfile_is_translated(fake, tmp_path):
    from glancesync.integrity import FileData
    server = _Server(status=409, read_body=False)
    adapter = GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT,
                                  endpoint_override=f"http://127.0.0.1:{server.port}")
    path, data = _local_file(tmp_path, 4 * CHUNK_SIZE)
    try:
        with open(path, "rb") as handle, pytest.raises(ConflictError) as caught:
            adapter.upload_data(IMAGE_ID, FileData(handle, len(data)), len(data))
    finally:
        server.close()
    assert caught.value.status_code == 409 and "not queued" in str(caught.value)


@pytest.mark.parametrize("endpoint, env", [
    ("https://glance.example:9292", {}),
    ("http://glance.example:9292", {"HTTP_PROXY": "http://proxy.example:3128"}),
])
def test_a_local_file_goes_through_requests_over_tls_or_a_proxy(fake, tmp_path, monkeypatch,
                                                                endpoint, env):
    from glancesync.integrity import FileData
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    adapter = GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT,
                                  endpoint_override=endpoint)
    received = {}

    def store(request, context):
        received["data"] = b"".join(request.body)
        received["length"] = request.headers["Content-Length"]
        context.status_code = 204
        return ""

    fake.put(f"{endpoint}/v2/images/{IMAGE_ID}/file", text=store)
    fake.get(f"{endpoint}/v2/images/{IMAGE_ID}", json=image_body())
    fake.get(f"{endpoint}/v2/schemas/image", json=SCHEMA)
    path, data = _local_file(tmp_path, CHUNK_SIZE + 9)
    with open(path, "rb") as handle:
        adapter.upload_data(IMAGE_ID, FileData(handle, len(data)), len(data))
    assert received == {"data": data, "length": str(len(data))}


def test_a_local_file_never_bypasses_the_origin_guard(tmp_path):
    """An API root the catalog does not name gets no sendfile: the guarded request
    is refused with the reason, and nothing reaches the host (issue 15, case 7)."""
    from glancesync.backends.openstack.origins import guarded_session
    from glancesync.errors import GlanceSyncError
    from glancesync.integrity import FileData
    from tests.faultproxy import Recorder
    path, data = _local_file(tmp_path, CHUNK_SIZE)
    with Recorder() as recorder:
        session = ksa_session.Session(
            auth=token_endpoint.Token(recorder.url, "secret-token-value"),
            session=guarded_session(lambda: ["http://127.0.0.1:1/v3"]))
        adapter = GlanceRegionAdapter("master:RegionOne", session, "RegionOne", PROJECT,
                                      endpoint_override=recorder.url)
        with open(path, "rb") as handle, pytest.raises(GlanceSyncError,
                                                       match="refused to send a request"):
            adapter.upload_data(IMAGE_ID, FileData(handle, len(data)), len(data))
    assert recorder.received == []


# -- server-side copies ---------------------------------------------------------------

def test_import_methods_are_asked_once(adapter, fake):
    fake.get(f"{GLANCE}/v2/info/import", json={"import-methods": {
        "description": "Import methods available.", "type": "array",
        "value": ["glance-direct", "web-download", "copy-image", "glance-download"]}})
    assert adapter.import_methods() == {"glance-direct", "web-download", "copy-image",
                                        "glance-download"}
    assert adapter.import_methods() == adapter.import_methods()
    assert [r.path for r in fake.request_history].count("/v2/info/import") == 1


def test_a_glance_without_discovery_offers_no_import(adapter, fake):
    fake.get(f"{GLANCE}/v2/info/import", **glance_error(404, "Not Found", "no such call"))
    assert adapter.import_methods() == frozenset()


def test_import_asks_a_glance_download_from_the_source_region(adapter, fake):
    fake.post(f"{IMAGES}/{IMAGE_ID}/import", status_code=202, text="")
    adapter.import_image(IMAGE_ID, source_region="Master", source_image_id="m-1")
    (post,) = [r for r in fake.request_history if r.method == "POST"
               and r.path.endswith("/import")]
    assert post.json() == {"method": {"name": "glance-download", "glance_region": "Master",
                                      "glance_image_id": "m-1",
                                      "glance_service_interface": "public"}}


@pytest.mark.parametrize("status, text, error, words", [
    (400, "400 Bad Request\n\nUnknown import method name &#x27;glance-download&#x27;.\n\n",
     ServiceError, "Unknown import method name 'glance-download'."),
    (409, "409 Conflict\n\nImage has active task\n\n", ConflictError, "Image has active task"),
])
def test_a_refused_import_is_translated(adapter, fake, status, text, error, words):
    fake.post(f"{IMAGES}/{IMAGE_ID}/import", status_code=status, text=text,
              headers={"Content-Type": "text/plain"})
    with pytest.raises(error) as caught:
        adapter.import_image(IMAGE_ID, source_region="Master", source_image_id="m-1")
    assert words in str(caught.value) and caught.value.status_code == status


def test_import_task_is_the_latest_one(adapter, fake):
    fake.get(f"{IMAGES}/{IMAGE_ID}/tasks", json={"tasks": [
        {"id": "t2", "status": "processing", "message": "",
         "created_at": "2026-01-01T10:00:05.000000"},
        {"id": "t1", "status": "failure", "message": "Task failed due to Internal Error",
         "created_at": "2026-01-01T10:00:01.000000"}]})
    task = adapter.import_task(IMAGE_ID)
    assert (task.task_id, task.status, task.failed) == ("t2", "processing", False)
    fake.get(f"{IMAGES}/{IMAGE_ID}/tasks", json={"tasks": []})
    assert adapter.import_task(IMAGE_ID) is None


def test_a_stop_aborts_a_sendfile_upload_between_two_slices(fake, tmp_path):
    """The stream's progress callback raises StoppedError: the upload ends there, as that
    error (no connection failure to retry), after one slice of the file."""
    from glancesync import StopRequest, StoppedError
    from glancesync.backends.openstack.glance import SENDFILE_SLICE
    from glancesync.integrity import FileData
    server = _Server()
    adapter = GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT,
                                  endpoint_override=f"http://127.0.0.1:{server.port}")
    path, data = _local_file(tmp_path, 3 * SENDFILE_SLICE)
    stop = StopRequest()
    steps = []

    def step(sent: int) -> None:
        stop.check("master:RegionOne")
        steps.append(sent)
        stop.set("SIGTERM received")

    try:
        with open(path, "rb") as handle, pytest.raises(StoppedError):
            adapter.upload_data(IMAGE_ID, FileData(handle, len(data), step), len(data))
    finally:
        server.close()
    assert len(steps) == 1 and steps[0] <= SENDFILE_SLICE


# -- several image endpoints for one region (issue 23, case 12) ------------------------

def _catalog_with(requests_mock, urls: list[str]) -> None:
    token = keystone_token()
    token["token"]["catalog"][0]["endpoints"] = [
        {"id": f"e{n}", "interface": "public", "url": url, "region": "RegionOne",
         "region_id": "RegionOne"} for n, url in enumerate(urls)]
    requests_mock.post(f"{KEYSTONE}/auth/tokens", json=token,
                       headers={"X-Subject-Token": "secret-token-value"}, status_code=201)


def test_a_dead_first_endpoint_gives_way_to_the_next_and_is_named(requests_mock, caplog):
    dead = "http://glance-v6.example:9292"
    _catalog_with(requests_mock, [dead, GLANCE])
    requests_mock.get(dead, exc=requests.exceptions.ConnectionError("Connection refused"))
    requests_mock.get(GLANCE, json=versions(), status_code=300)
    adapter = GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT)
    with caplog.at_level(logging.WARNING):
        assert adapter.api.root.rstrip("/") == GLANCE
    assert f"image endpoint {dead} did not work (Connection refused); using the region's" \
        f" endpoint {GLANCE} instead" in caplog.text


def test_a_catalog_of_many_dead_endpoints_is_tried_only_so_far(requests_mock, caplog):
    urls = [f"http://glance{n}.example:9292" for n in range(50)]
    _catalog_with(requests_mock, urls)
    for url in urls:
        requests_mock.get(url, exc=requests.exceptions.ConnectionError("Connection refused"))
    adapter = GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT)
    with pytest.raises(ConnectionFailure) as caught, caplog.at_level(logging.WARNING):
        adapter.list_images()
    assert "none of the 4 image endpoints (public) of region RegionOne" in str(caught.value)
    assert all(url in str(caught.value) for url in urls[:4])
    assert urls[4] not in str(caught.value)
    assert "lists 50 image endpoints (public) for the region: only the first 4" in caplog.text
    tried = {r.url.rstrip("/") for r in requests_mock.request_history if "glance" in r.url}
    assert tried == set(urls[:4])


def test_a_stop_cuts_the_wait_of_a_glance_direct_import(fake):
    from glancesync import StopRequest, StoppedError
    adapter = GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT,
                                  upload_method="glance-direct", import_timeout=60)
    adapter.import_stop = stop = StopRequest()
    fake.put(f"{IMAGES}/{IMAGE_ID}/stage", status_code=204)
    fake.post(f"{IMAGES}/{IMAGE_ID}/import", status_code=202, text="")
    polls = []

    def importing(request, context):  # the import goes on until stopped
        polls.append(request)
        if len(polls) == 2:
            threading.Thread(target=stop.set, args=("SIGTERM received",)).start()
        return image_body(IMAGE_ID, status="importing")
    fake.get(f"{IMAGES}/{IMAGE_ID}", json=importing)
    with pytest.raises(StoppedError, match="SIGTERM received") as stopped:
        adapter.upload_data(IMAGE_ID, [b"data"], 4)
    assert stopped.value.region == "master:RegionOne"  # not import_timeout's TransferError


def test_the_executor_gives_its_stop_to_the_adapter(fake, tmp_path):
    from glancesync import StopRequest
    from glancesync.executor import Executor
    from glancesync.retry import RetryingAdapter, RetryPolicy
    adapter = GlanceRegionAdapter("master:RegionOne", make_session(), "RegionOne", PROJECT)
    stop = StopRequest()
    Executor(RetryingAdapter(adapter, RetryPolicy()), None, stop=stop)
    assert adapter.import_stop is stop
