"""The local folder region through the RegionAdapter contract."""
from __future__ import annotations

import hashlib
import uuid

import pytest

from glancesync.backends.base import CHUNK_SIZE, RegionAdapter
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import (ConflictError, ImageNotFoundError, ServiceError,
                               TransferError, UsageError)
from glancesync.image import Image
from glancesync.backends.local.store import DB_NAME, LocalStore, RequestContext


@pytest.fixture
def region(tmp_path):
    with LocalRegionAdapter("local:Spain", tmp_path / "Spain", "tenant") as adapter:
        yield adapter


def payload(size: int) -> bytes:
    return bytes(index % 253 for index in range(size))


def chunked(data: bytes, size: int = 100_000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_is_a_region_adapter_and_creates_folder_on_first_write(tmp_path):
    adapter = LocalRegionAdapter("local:R", tmp_path / "R", "tenant")
    assert isinstance(adapter, RegionAdapter)
    assert not (tmp_path / "R").exists()
    assert adapter.list_images() == []
    assert not (tmp_path / "R").exists()  # reading never creates the region
    adapter.create_image("first", disk_format="raw", container_format="bare")
    assert (tmp_path / "R" / DB_NAME).is_file()
    adapter.close()


def test_full_round_trip(region):
    created = region.create_image(
        "cirros", visibility="public", disk_format="qcow2", container_format="bare",
        min_ram=64, min_disk=1, properties={"type": "base", "os_distro": "cirros"})
    assert isinstance(created, Image)
    assert created.status == "queued" and created.owner == "tenant"
    assert created.is_public and created.min_ram == 64 and created.min_disk == 1
    assert created.properties == {"type": "base", "os_distro": "cirros"}
    assert created.created_at.endswith("Z") and len(created.created_at) == 20
    uuid.UUID(created.id)

    data = payload(2 * CHUNK_SIZE + 17)
    active = region.upload_data(created.id, chunked(data), size=len(data))
    assert active.status == "active" and active.size == len(data)
    assert active.checksum == hashlib.md5(data).hexdigest()
    assert active.os_hash_algo == "sha512"
    assert active.os_hash_value == hashlib.sha512(data).hexdigest()
    assert active.properties == created.properties

    chunks = list(region.download_data(created.id))
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)
    assert b"".join(chunks) == data

    updated = region.update_image(created.id, {"name": "cirros-0.6", "visibility": "private",
                                               "protected": True, "type": "fresh",
                                               "kernel_id": "k1"},
                                  remove=["os_distro", "not_there"])
    assert updated.name == "cirros-0.6" and updated.visibility == "private"
    assert updated.protected is True
    assert updated.properties == {"type": "fresh", "kernel_id": "k1"}
    assert region.get_image(created.id) == updated
    assert updated.same_content(active)

    with pytest.raises(ConflictError) as info:
        region.delete_image(created.id)
    assert info.value.region == "local:Spain" and info.value.image == created.id
    region.update_image(created.id, {"protected": False})
    region.delete_image(created.id)
    with pytest.raises(ImageNotFoundError):
        region.get_image(created.id)
    with pytest.raises(ImageNotFoundError):
        region.download_data(created.id)
    with pytest.raises(ImageNotFoundError):
        region.delete_image(created.id)
    assert region.list_images() == []
    assert not (region.path / "data" / created.id).exists()


def test_ids_are_not_reusable(region):
    image_id = str(uuid.uuid4())
    assert region.create_image("a", image_id=image_id).id == image_id
    with pytest.raises(ConflictError):
        region.create_image("b", image_id=image_id)
    region.delete_image(image_id)
    with pytest.raises(ConflictError):
        region.create_image("c", image_id=image_id)


@pytest.mark.parametrize("kwargs", [
    {"visibility": "everyone"}, {"disk_format": "floppy"}, {"container_format": "box"},
    {"min_ram": -1}, {"min_disk": "2"}, {"protected": "yes"}, {"image_id": "not-a-uuid"},
    {"properties": {"size": "1"}}, {"properties": {"os_glance_x": "1"}},
    {"properties": {"n": 1}},
])
def test_create_validates(region, kwargs):
    with pytest.raises(UsageError) as info:
        region.create_image("bad", **kwargs)
    assert info.value.region == "local:Spain"
    assert region.list_images() == []


@pytest.mark.parametrize("changes, remove", [
    ({"visibility": "world"}, ()), ({"disk_format": "floppy"}, ()), ({"checksum": "x"}, ()),
    ({"status": "active"}, ()), ({"prop": 3}, ()), ({}, ["name"]),
])
def test_update_validates(region, changes, remove):
    image = region.create_image("a")
    with pytest.raises(UsageError):
        region.update_image(image.id, changes, remove)
    assert region.get_image(image.id) == image


def test_update_and_get_missing_image(region):
    missing = str(uuid.uuid4())
    with pytest.raises(ImageNotFoundError):
        region.update_image(missing, {"name": "x"})
    with pytest.raises(ImageNotFoundError) as info:
        region.get_image(missing)
    assert info.value.region == "local:Spain" and info.value.image == missing


def test_upload_size_mismatch_leaves_image_queued(region):
    image = region.create_image("a", disk_format="raw", container_format="bare")
    with pytest.raises(TransferError):
        region.upload_data(image.id, [b"abc"], size=10)
    assert region.get_image(image.id).status == "queued"
    assert region.upload_data(image.id, [b"abc"]).status == "active"
    with pytest.raises(ConflictError):
        region.upload_data(image.id, [b"abc"])


def test_no_data_without_formats_like_glance(region):
    image = region.create_image("a")
    with pytest.raises(UsageError, match="disk_format and container_format"):
        region.upload_data(image.id, [b"abc"])
    assert region.get_image(image.id).status == "queued"


def test_download_of_queued_image_is_a_conflict(region):
    image = region.create_image("a")
    with pytest.raises(ConflictError):
        region.download_data(image.id)


@pytest.mark.parametrize("count, page_size", [(0, 3), (3, 3), (7, 3), (12, 5)])
def test_list_images_reads_every_page(tmp_path, count, page_size):
    with LocalRegionAdapter("local:R", tmp_path / "R", "tenant",
                            page_size=page_size) as adapter:
        created = {adapter.create_image(f"img-{index}").id for index in range(count)}
        listed = adapter.list_images()
        newest_first = [image["id"] for image in adapter.store.image_get_all(adapter.context)]
    assert len(listed) == count and {image.id for image in listed} == created
    assert [image.id for image in listed] == newest_first


def test_list_images_honours_timeout(tmp_path):
    with LocalRegionAdapter("local:R", tmp_path / "R", "tenant", page_size=1,
                            list_timeout=-1) as adapter:
        adapter.create_image("a")
        adapter.create_image("b")
        with pytest.raises(ServiceError) as info:
            adapter.list_images()
    assert info.value.region == "local:R"


def test_visibility_between_projects(tmp_path):
    path = tmp_path / "R"
    owner = LocalRegionAdapter("local:R", path, "owner", is_admin=False)
    other = LocalRegionAdapter("local:R", path, "other", is_admin=False)
    admin = LocalRegionAdapter("local:R", path, "admin")
    with owner, other, admin:
        public = owner.create_image("pub", visibility="public")
        private = owner.create_image("priv", visibility="private")
        shared = owner.create_image("shr", visibility="shared")
        assert {image.name for image in other.list_images()} == {"pub"}
        assert {image.name for image in admin.list_images()} == {"pub", "priv", "shr"}
        with pytest.raises(ImageNotFoundError):
            other.get_image(private.id)
        with pytest.raises(ConflictError):
            other.update_image(public.id, {"name": "mine"})
        with pytest.raises(ConflictError):
            other.delete_image(public.id)
        other_image = other.create_image("theirs")
        assert other_image.owner == "other"
        owner.store.image_member_create(owner.context, {"image_id": shared.id,
                                                        "member": "other",
                                                        "status": "accepted"})
        assert {image.name for image in other.list_images()} == {"pub", "shr", "theirs"}
        admin.update_image(private.id, {"name": "renamed"})
        assert owner.get_image(private.id).name == "renamed"


def test_tags_and_user_properties_come_from_the_store(region):
    image = region.create_image("a", properties={"type": "base"})
    context = RequestContext("tenant")
    region.store.image_tag_set_all(context, image.id, ["x", "y"])
    region.store.image_update(context, image.id, {"properties": {"os_glance_lock": "1"}})
    fetched = region.get_image(image.id)
    assert fetched.tags == ["x", "y"]
    assert fetched.properties == {"type": "base"}
    assert [listed.tags for listed in region.list_images()] == [["x", "y"]]


def test_two_adapters_on_one_folder_see_the_same_region(tmp_path):
    with LocalRegionAdapter("a:R", tmp_path / "R", "p") as first:
        image = first.create_image("shared-folder", disk_format="raw",
                                   container_format="bare")
        first.upload_data(image.id, [b"hello"])
    with LocalRegionAdapter("b:R", tmp_path / "R", "p") as second:
        assert b"".join(second.download_data(image.id)) == b"hello"
    with LocalStore(tmp_path / "R") as store:
        assert store.image_get(RequestContext("p"), image.id)["status"] == "active"
