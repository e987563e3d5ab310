"""GlanceRegionAdapter against the real Keystone and Glance of the test bed.

Images are created with ``disk_format = raw``: Glance checks that uploaded
bytes match the declared format, and any bytes are valid raw data.
"""
from __future__ import annotations

import hashlib
import random
import tracemalloc
import uuid
from typing import Iterator

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.base import CHUNK_SIZE
from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.errors import (AuthenticationError, ConflictError, ImageNotFoundError,
                               ServiceError)

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def make_session(credentials: dict[str, str]) -> ksa_session.Session:
    auth = v3.Password(**{key: value for key, value in credentials.items()
                          if key != "project_id"})
    return ksa_session.Session(auth=auth)


@pytest.fixture(scope="module")
def sessions(testbed) -> dict[str, ksa_session.Session]:
    """One session per cloud of the bed, as a target would hold it."""
    return {name: make_session(cloud) for name, cloud in testbed.info.clouds.items()}


class Region:
    """Adapters on the bed, and unique image names cleaned up afterwards."""

    def __init__(self, testbed, sessions: dict[str, ksa_session.Session]) -> None:
        self._testbed = testbed
        self._sessions = sessions
        self.prefix = f"gs-test-{uuid.uuid4().hex[:8]}-"
        self.used: set[tuple[str, str]] = set()

    def adapter(self, cloud: str, region: str = "RegionA", **options) -> GlanceRegionAdapter:
        keystone = cloud.split("-", 1)[0]
        self.used.add((keystone, region))
        return GlanceRegionAdapter(f"{keystone}:{region}", self._sessions[cloud], region,
                                   self._testbed.info.clouds[cloud]["project_id"],
                                   **options)

    def name(self, label: str) -> str:
        return self.prefix + label

    def clean(self) -> None:
        """Delete, as admin, every image this test named."""
        for keystone, region in self.used:
            admin = self.adapter(f"{keystone}-admin", region)
            for image in admin.list_images():
                if not (image.name or "").startswith(self.prefix):
                    continue
                if image.protected:
                    admin.update_image(image.id, {"protected": False})
                admin.delete_image(image.id)


@pytest.fixture
def bed(testbed, sessions) -> Iterator[Region]:
    helper = Region(testbed, sessions)
    yield helper
    helper.clean()


def random_chunks(count: int, seed: int, hashers: list) -> Iterator[bytes]:
    """COUNT chunks of CHUNK_SIZE random bytes, fed to HASHERS as they go."""
    generator = random.Random(seed)
    for _ in range(count):
        chunk = generator.randbytes(CHUNK_SIZE)
        for hasher in hashers:
            hasher.update(chunk)
        yield chunk


def test_contract_round_trip(bed, testbed):
    alice = bed.adapter("master-alice", "RegionA")
    name = bed.name("roundtrip")
    data = random.Random(7).randbytes(3 * MiB + 12345)

    image = alice.create_image(name, disk_format="raw", container_format="bare",
                               min_ram=64, min_disk=1,
                               properties={"os_distro": "cirros", "gs_note": "one"})
    assert image.status == "queued"
    assert image.owner == testbed.info.clouds["master-alice"]["project_id"]
    assert image.properties == {"os_distro": "cirros", "gs_note": "one"}
    assert (image.min_ram, image.min_disk, image.visibility) == (64, 1, "private")

    pieces = [data[i:i + 1000 * 1000] for i in range(0, len(data), 1000 * 1000)]
    uploaded = alice.upload_data(image.id, iter(pieces), size=len(data))
    assert uploaded.status == "active"
    assert uploaded.size == len(data)
    assert uploaded.checksum == hashlib.md5(data).hexdigest()
    assert uploaded.os_hash_algo == "sha512"
    assert uploaded.os_hash_value == hashlib.sha512(data).hexdigest()

    chunks = list(alice.download_data(image.id))
    assert b"".join(chunks) == data
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)

    updated = alice.update_image(image.id, {"gs_note": "two", "gs_new": "added",
                                            "min_ram": 128, "name": name + "-renamed"},
                                 remove=["os_distro", "not_there"])
    assert updated.properties == {"gs_note": "two", "gs_new": "added"}
    assert (updated.min_ram, updated.name) == (128, name + "-renamed")
    assert alice.get_image(image.id).properties == updated.properties

    assert alice.update_image(image.id, {"visibility": "shared"}).visibility == "shared"
    with pytest.raises(ServiceError) as caught:
        alice.update_image(image.id, {"visibility": "public"})
    assert caught.value.status_code == 403
    assert "admin role" in str(caught.value)

    admin = bed.adapter("master-admin", "RegionA")
    assert admin.update_image(image.id, {"visibility": "public"}).is_public
    assert image.id in {listed.id for listed in alice.list_images()}

    alice.delete_image(image.id)
    with pytest.raises(ImageNotFoundError) as missing:
        alice.get_image(image.id)
    assert missing.value.status_code == 404
    assert image.id not in {listed.id for listed in alice.list_images()}


def test_100_mib_streamed_both_ways(bed):
    alice = bed.adapter("master-alice", "RegionB")
    count = 100
    image = alice.create_image(bed.name("big"), disk_format="raw",
                               container_format="bare")
    md5, sha512 = hashlib.md5(), hashlib.sha512()

    tracemalloc.start()
    try:
        uploaded = alice.upload_data(image.id, random_chunks(count, 42, [md5, sha512]),
                                     size=count * CHUNK_SIZE)
        upload_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()

        down_md5, down_sha512, size = hashlib.md5(), hashlib.sha512(), 0
        for chunk in alice.download_data(image.id):
            assert len(chunk) <= CHUNK_SIZE
            size += len(chunk)
            down_md5.update(chunk)
            down_sha512.update(chunk)
        download_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert uploaded.status == "active"
    assert uploaded.size == count * CHUNK_SIZE
    assert uploaded.checksum == md5.hexdigest()
    assert uploaded.os_hash_value == sha512.hexdigest()
    assert size == count * CHUNK_SIZE
    assert down_md5.hexdigest() == md5.hexdigest()
    assert down_sha512.hexdigest() == sha512.hexdigest()
    # Memory stays flat: a few chunks in flight, never the image.
    assert upload_peak < 16 * MiB, upload_peak
    assert download_peak < 16 * MiB, download_peak


def test_project_isolation(bed, testbed):
    alice = bed.adapter("master-alice", "Master")
    bob = bed.adapter("master-bob", "Master")
    admin = bed.adapter("master-admin", "Master")
    alice_project = testbed.info.clouds["master-alice"]["project_id"]
    admin_project = testbed.info.clouds["master-admin"]["project_id"]

    secret = alice.create_image(bed.name("private"), disk_format="raw",
                                container_format="bare")
    alice.upload_data(secret.id, [b"alice's data"])

    assert secret.id in {image.id for image in alice.list_images()}
    assert secret.id not in {image.id for image in bob.list_images()}
    with pytest.raises(ImageNotFoundError):
        bob.get_image(secret.id)
    with pytest.raises(ImageNotFoundError):
        bob.delete_image(secret.id)

    # An admin's raw listing holds every project's private images ...
    everything = {image.id: image for image in admin.list_images()}
    assert everything[secret.id].owner == alice_project
    # ... so callers keep only their own project's images.
    own = [image for image in everything.values() if image.owner == admin_project]
    assert secret.id not in {image.id for image in own}


def test_paging_through_a_real_region(bed):
    alice = bed.adapter("master-alice", "RegionA")
    made = {alice.create_image(bed.name(f"page-{n}")).id for n in range(5)}
    paged = bed.adapter("master-alice", "RegionA", page_size=2)
    listed = [image.id for image in paged.list_images()]
    assert made <= set(listed)
    assert len(listed) == len(set(listed))
    assert listed == [image.id for image in alice.list_images()]


def test_format_mismatch_is_a_415(bed):
    alice = bed.adapter("master-alice", "RegionA")
    image = alice.create_image(bed.name("qcow"), disk_format="qcow2",
                               container_format="bare")
    with pytest.raises(ServiceError) as caught:
        alice.upload_data(image.id, [random.Random(1).randbytes(64 * 1024)])
    assert caught.value.status_code == 415
    assert caught.value.image == image.id
    assert alice.get_image(image.id).status == "queued"


def test_chosen_id_and_its_conflict(bed):
    alice = bed.adapter("master-alice", "RegionA")
    image_id = str(uuid.uuid4())
    assert alice.create_image(bed.name("chosen"), image_id=image_id).id == image_id
    with pytest.raises(ConflictError) as caught:
        alice.create_image(bed.name("chosen-again"), image_id=image_id)
    assert caught.value.status_code == 409


def test_upload_twice_conflicts(bed):
    alice = bed.adapter("master-alice", "RegionA")
    image = alice.create_image(bed.name("twice"), disk_format="raw", container_format="bare")
    alice.upload_data(image.id, [b"first"])
    with pytest.raises(ConflictError) as caught:
        alice.upload_data(image.id, [b"second"])
    assert caught.value.status_code == 409


def test_protected_image_is_not_deleted(bed):
    alice = bed.adapter("master-alice", "RegionA")
    image = alice.create_image(bed.name("guarded"), protected=True)
    with pytest.raises(ConflictError):
        alice.delete_image(image.id)
    assert alice.get_image(image.id).protected
    alice.update_image(image.id, {"protected": False})
    alice.delete_image(image.id)


def test_second_keystone_region(bed):
    other = bed.adapter("other-alice", "RegionC")
    image = other.create_image(bed.name("c"), disk_format="raw",
                               container_format="bare")
    assert other.upload_data(image.id, [b"c" * 100]).checksum == \
        hashlib.md5(b"c" * 100).hexdigest()


def test_region_of_another_keystone_has_no_endpoint(sessions, testbed):
    adapter = GlanceRegionAdapter("master:RegionC", sessions["master-alice"], "RegionC",
                                  testbed.info.clouds["master-alice"]["project_id"])
    with pytest.raises(ServiceError) as caught:
        adapter.list_images()
    assert "region RegionC has no image endpoint" in str(caught.value)


def test_wrong_password(testbed):
    credentials = dict(testbed.info.clouds["master-bob"], password="wrong")
    adapter = GlanceRegionAdapter("master:RegionA", make_session(credentials), "RegionA",
                                  None)
    with pytest.raises(AuthenticationError) as caught:
        adapter.list_images()
    assert caught.value.region == "master:RegionA"
