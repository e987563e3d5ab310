"""The test bed's Glance regions import images from each other (``glance-download``).

A region of Keystone ``master`` pulls an image from another region of the
same Keystone itself, the client sending no bytes. Only keystoneauth1 talks
to the services here, so these checks hold whatever GlanceSync's own layers
do.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator

import pytest
from keystoneauth1 import adapter, session
from keystoneauth1.identity import v3

from glancesync.testbed import files

#: Real raw data (any bytes are raw): 4 MiB.
DATA = b"".join(hashlib.sha512(str(n).encode()).digest() for n in range(65_536))
#: Long enough for a few MiB on a loaded 2-core machine, short enough to fail fast.
IMPORT_SECONDS = 120.0


def image_api(testbed, cloud: str, region: str) -> adapter.Adapter:
    """An image-service adapter of CLOUD in REGION, found through the catalog."""
    auth = v3.Password(**testbed.info.auth(cloud))
    return adapter.Adapter(session.Session(auth=auth), service_type="image",
                           interface="public", region_name=region)


class Images:
    """Creates images through adapters and deletes them all at the end."""

    def __init__(self) -> None:
        self._created: list[tuple[adapter.Adapter, str]] = []

    def create(self, api: adapter.Adapter, **fields: object) -> dict:
        body = {"name": f"gs-import-{uuid.uuid4().hex[:8]}", "disk_format": "raw",
                "container_format": "bare", **fields}
        image = api.post("/v2/images", json=body).json()
        self._created.append((api, image["id"]))
        return image

    def delete_all(self) -> None:
        for api, image_id in reversed(self._created):
            api.delete(f"/v2/images/{image_id}", raise_exc=False)


@pytest.fixture
def images() -> Iterator[Images]:
    made = Images()
    yield made
    made.delete_all()


def upload(api: adapter.Adapter, image_id: str, data: bytes) -> dict:
    api.put(f"/v2/images/{image_id}/file", data=data,
            headers={"Content-Type": "application/octet-stream"})
    return api.get(f"/v2/images/{image_id}").json()


def glance_download(api: adapter.Adapter, image_id: str, source_id: str,
                    source_region: str) -> None:
    """Ask API's region to pull SOURCE_ID from SOURCE_REGION into IMAGE_ID."""
    answer = api.post(f"/v2/images/{image_id}/import", json={"method": {
        "name": "glance-download", "glance_image_id": source_id,
        "glance_region": source_region, "glance_service_interface": "public"}})
    assert answer.status_code == 202, answer.text


def wait_import(api: adapter.Adapter, image_id: str) -> tuple[dict, list[dict]]:
    """Poll until the image is active or its latest import task failed.

    Returns the image and its tasks (oldest first).
    """
    deadline = time.monotonic() + IMPORT_SECONDS
    while True:
        image = api.get(f"/v2/images/{image_id}").json()
        tasks = sorted(api.get(f"/v2/images/{image_id}/tasks").json()["tasks"],
                       key=lambda task: task["created_at"])
        if image["status"] == "active":
            return image, tasks
        if tasks and tasks[-1]["status"] == "failure" and image["status"] != "importing":
            return image, tasks
        assert time.monotonic() < deadline, (
            f"import of {image_id} not over after {IMPORT_SECONDS:.0f} s: "
            f"status {image['status']}, tasks {[task['status'] for task in tasks]}")
        time.sleep(0.2)


@pytest.mark.parametrize("cloud, region", [
    ("master-alice", "Master"), ("master-alice", "RegionA"),
    ("master-alice", "RegionB"), ("other-alice", "RegionC"),
])
def test_every_region_advertises_glance_download(testbed, cloud, region):
    answer = image_api(testbed, cloud, region).get("/v2/info/import").json()
    methods = answer["import-methods"]["value"]
    assert "glance-download" in methods
    assert methods == list(files.IMPORT_METHODS)


def test_region_a_imports_an_image_from_master(testbed, images):
    # A member (no admin role) imports her own private image.
    master = image_api(testbed, "master-alice", "Master")
    region_a = image_api(testbed, "master-alice", "RegionA")
    source = images.create(master, visibility="private", os_distro="debian",
                           hw_disk_bus="scsi", gs_custom="not copied")
    source = upload(master, source["id"], DATA)
    assert source["status"] == "active"

    target = images.create(region_a)
    assert target["status"] == "queued"
    glance_download(region_a, target["id"], source["id"], "Master")
    copy, tasks = wait_import(region_a, target["id"])

    assert copy["status"] == "active", tasks[-1]["message"]
    assert tasks[-1]["input"]["import_req"]["method"]["glance_image_id"] == source["id"]
    # RegionA computed the hashes of what it stored: the same bytes as Master's.
    assert copy["os_hash_algo"] == source["os_hash_algo"] == "sha512"
    assert copy["os_hash_value"] == source["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert copy["checksum"] == source["checksum"]
    assert copy["size"] == source["size"] == len(DATA)
    assert copy["owner"] == testbed.info.project_id("master-alice")
    # Only the prefixes of [glance_download_properties] are copied.
    assert copy["os_distro"] == "debian"
    assert copy["hw_disk_bus"] == "scsi"
    assert "gs_custom" not in copy
    assert b"".join(region_a.get(f"/v2/images/{target['id']}/file").iter_content(1 << 20)) == DATA


def test_region_of_another_keystone_cannot_import_from_master(testbed, images):
    master = image_api(testbed, "master-admin", "Master")
    region_c = image_api(testbed, "other-admin", "RegionC")
    source = upload(master, images.create(master, visibility="public")["id"], DATA)
    target = images.create(region_c)

    # Accepted, then the task fails: Master is not in RegionC's catalog.
    glance_download(region_c, target["id"], source["id"], "Master")
    image, tasks = wait_import(region_c, target["id"])

    assert image["status"] == "queued"
    assert [task["status"] for task in tasks] == ["failure"]
    assert image["size"] is None and image["os_hash_value"] is None
