"""The local store: Glance's image database API on SQLite (seed 004)."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from glancesync.backends.base import CHUNK_SIZE
from glancesync.errors import (ConflictError, ImageNotFoundError, ServiceError,
                               TransferError, UsageError)
from glancesync.backends.local.store import DB_NAME, LocalStore, RequestContext

REPO = Path(__file__).resolve().parents[2]

OWNER = RequestContext("owner")
OTHER = RequestContext("stranger")
ADMIN = RequestContext("admin-project", is_admin=True)


@pytest.fixture
def store(tmp_path):
    with LocalStore(tmp_path / "region") as local:
        yield local


def ids(images):
    return [image["id"] for image in images]


# -- creation, shape, update ---------------------------------------------

def test_store_creates_folder_database_in_wal_mode(tmp_path):
    path = tmp_path / "a" / "b"
    with LocalStore(path) as local:
        assert (path / DB_NAME).is_file()
        assert (path / "data").is_dir()
        mode = local._connection().execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_image_create_returns_glance_shaped_dict(store):
    image = store.image_create(OWNER, {"name": "cirros", "disk_format": "qcow2",
                                       "properties": {"type": "base", "n": 3}})
    assert image["status"] == "queued"
    assert image["owner"] == "owner"
    assert image["visibility"] == "shared"
    assert image["protected"] is False and image["deleted"] is False
    assert image["properties"] == {"type": "base", "n": "3"}
    assert image["locations"] == [] and image["tags"] == []
    assert image["created_at"].endswith("Z") and image["deleted_at"] is None
    assert len(image["id"]) == 36
    assert store.image_get(OWNER, image["id"]) == image


def test_image_create_with_id_refuses_existing_and_deleted_ids(store):
    store.image_create(OWNER, {"id": "img-1", "name": "a"})
    with pytest.raises(ConflictError):
        store.image_create(OWNER, {"id": "img-1", "name": "b"})
    store.image_destroy(OWNER, "img-1")
    with pytest.raises(ConflictError):
        store.image_create(OWNER, {"id": "img-1", "name": "c"})


@pytest.mark.parametrize("values", [
    {"visibility": "everyone"}, {"status": "bogus"}, {"min_ram": -1},
    {"min_disk": "1"}, {"checksum_typo": "x"}, {"id": "../escape"}, {"deleted": True},
    {"protected": "yes"},
])
def test_image_create_rejects_bad_values(store, values):
    with pytest.raises(UsageError):
        store.image_create(OWNER, {"name": "x", **values})


def test_image_update_columns_and_properties(store):
    image = store.image_create(OWNER, {"name": "a", "properties": {"k1": "v1", "k2": "v2"}})
    time.sleep(0.001)
    updated = store.image_update(OWNER, image["id"], {"name": "b", "min_ram": 512,
                                                      "properties": {"k2": "new", "k3": "v3"}})
    assert updated["name"] == "b" and updated["min_ram"] == 512
    assert updated["properties"] == {"k1": "v1", "k2": "new", "k3": "v3"}
    assert updated["updated_at"] > image["updated_at"]
    purged = store.image_update(OWNER, image["id"], {"properties": {"k3": "v3"}}, purge_props=True)
    assert purged["properties"] == {"k3": "v3"}
    emptied = store.image_update(OWNER, image["id"], {}, purge_props=True)
    assert emptied["properties"] == {}
    revived = store.image_update(OWNER, image["id"], {"properties": {"k1": "again"}})
    assert revived["properties"] == {"k1": "again"}


def test_image_update_from_state(store):
    image = store.image_create(OWNER, {"name": "a"})
    with pytest.raises(ConflictError):
        store.image_update(OWNER, image["id"], {"status": "active"}, from_state="saving")
    assert store.image_get(OWNER, image["id"])["status"] == "queued"
    done = store.image_update(OWNER, image["id"], {"status": "saving"}, from_state="queued")
    assert done["status"] == "saving"


def test_image_update_missing_and_forbidden(store):
    with pytest.raises(ImageNotFoundError):
        store.image_update(OWNER, "nope", {"name": "x"})
    public = store.image_create(OWNER, {"name": "p", "visibility": "public"})
    private = store.image_create(OWNER, {"name": "q", "visibility": "private"})
    with pytest.raises(ConflictError):
        store.image_update(OTHER, public["id"], {"name": "hijack"})
    with pytest.raises(ImageNotFoundError):
        store.image_update(OTHER, private["id"], {"name": "hijack"})
    assert store.image_update(ADMIN, public["id"], {"name": "admin"})["name"] == "admin"
    with pytest.raises(UsageError):
        store.image_update(OWNER, public["id"], {"id": "other"})


# -- soft delete ---------------------------------------------------------

def test_image_destroy_is_a_soft_delete(store):
    image = store.image_create(OWNER, {"name": "a", "properties": {"k": "v"}})
    store.image_tag_create(OWNER, image["id"], "t1")
    store.image_member_create(OWNER, {"image_id": image["id"], "member": "friend"})
    location = store.image_location_add(OWNER, image["id"], {"url": "file:///x"})
    deleted = store.image_destroy(OWNER, image["id"])
    assert deleted["deleted"] is True and deleted["status"] == "deleted"
    with pytest.raises(ImageNotFoundError):
        store.image_get(OWNER, image["id"])
    with pytest.raises(ImageNotFoundError):
        store.image_destroy(OWNER, image["id"])
    shown = store.image_get(OWNER, image["id"], force_show_deleted=True)
    assert shown["deleted"] and shown["deleted_at"]
    assert shown["properties"] == {"k": "v"}
    assert shown["locations"] == [{**location, "status": "deleted"}]
    assert image["id"] not in ids(store.image_get_all(OWNER))
    assert ids(store.image_get_all(OWNER, filters={"deleted": True})) == [image["id"]]
    assert store.image_member_find(OWNER, image_id=image["id"]) == []
    assert len(store.image_member_find(OWNER, image_id=image["id"], include_deleted=True)) == 1
    rows = store._connection().execute(
        "SELECT deleted FROM image_tags WHERE image_id = ?", (image["id"],)).fetchall()
    assert [row[0] for row in rows] == [1]


def test_image_destroy_forbidden_to_others(store):
    image = store.image_create(OWNER, {"name": "a", "visibility": "public"})
    with pytest.raises(ConflictError):
        store.image_destroy(OTHER, image["id"])
    assert store.image_get(OTHER, image["id"])["status"] == "queued"


# -- visibility ----------------------------------------------------------

@pytest.fixture
def world(store):
    """One image per visibility, owned by ``owner``; the shared one has members."""
    images = {}
    for visibility in ("public", "community", "shared", "private"):
        images[visibility] = store.image_create(
            OWNER, {"name": visibility, "visibility": visibility})["id"]
    store.image_member_create(OWNER, {"image_id": images["shared"], "member": "acc",
                                      "status": "accepted"})
    store.image_member_create(OWNER, {"image_id": images["shared"], "member": "pend"})
    return images


def listed(store, context, **kwargs):
    return sorted(image["name"] for image in store.image_get_all(context, **kwargs))


@pytest.mark.parametrize("context, kwargs, expected", [
    (OWNER, {}, ["community", "private", "public", "shared"]),
    (OTHER, {}, ["public"]),
    (OTHER, {"filters": {"visibility": "community"}}, ["community"]),
    (OTHER, {"filters": {"visibility": "all"}}, ["community", "public"]),
    (RequestContext("acc"), {}, ["public", "shared"]),
    (RequestContext("pend"), {}, ["public"]),
    (RequestContext("pend"), {"member_status": "pending"}, ["public", "shared"]),
    (RequestContext("pend"), {"member_status": "all"}, ["public", "shared"]),
    (RequestContext("acc"), {"member_status": "pending"}, ["public"]),
    (RequestContext(None), {}, ["public"]),
    (ADMIN, {}, ["private", "public", "shared"]),
    (ADMIN, {"filters": {"visibility": "all"}}, ["community", "private", "public", "shared"]),
    (ADMIN, {"admin_as_user": True}, ["public"]),
    (RequestContext("acc", is_admin=True), {"admin_as_user": True}, ["public", "shared"]),
    (OWNER, {"is_public": True}, ["public"]),
    (OWNER, {"is_public": False}, ["community", "private", "shared"]),
    (OWNER, {"filters": {"is_public": True}}, ["public"]),
])
def test_listing_visibility(store, world, context, kwargs, expected):
    assert listed(store, context, **kwargs) == expected


@pytest.mark.parametrize("context, visible", [
    (OWNER, {"public", "community", "shared", "private"}),
    (OTHER, {"public", "community"}),
    (RequestContext("acc"), {"public", "community", "shared"}),
    (RequestContext("pend"), {"public", "community", "shared"}),
    (ADMIN, {"public", "community", "shared", "private"}),
])
def test_image_get_and_is_image_visible(store, world, context, visible):
    for visibility, image_id in world.items():
        image = store.image_get(OWNER, image_id)
        assert store.is_image_visible(context, image) == (visibility in visible)
        if visibility in visible:
            assert store.image_get(context, image_id)["id"] == image_id
        else:
            with pytest.raises(ImageNotFoundError):
                store.image_get(context, image_id)


def test_is_image_visible_with_member_status(store, world):
    shared = store.image_get(OWNER, world["shared"])
    assert store.is_image_visible(RequestContext("acc"), shared, status="accepted")
    assert not store.is_image_visible(RequestContext("pend"), shared, status="accepted")
    assert store.is_image_visible(RequestContext("pend"), shared, status="pending")
    ownerless = {"id": "x", "owner": None, "visibility": "private"}
    assert store.is_image_visible(OTHER, ownerless)


def test_is_image_mutable(store, world):
    image = store.image_get(OWNER, world["public"])
    assert store.is_image_mutable(OWNER, image)
    assert not store.is_image_mutable(OTHER, image)
    assert not store.is_image_mutable(RequestContext(None), image)
    assert store.is_image_mutable(ADMIN, image)
    assert not store.is_image_mutable(OWNER, {**image, "owner": None})


# -- paging, sorting, filters --------------------------------------------

@pytest.fixture
def many(store):
    """25 images with repeated min_ram, a few nameless, created in order."""
    created = []
    for index in range(25):
        values = {"name": None if index % 7 == 3 else f"img-{index:02d}",
                  "min_ram": (index * 5) % 3, "visibility": "public",
                  "properties": {"parity": "even" if index % 2 == 0 else "odd"}}
        created.append(store.image_create(OWNER, values))
    return created


def pages(store, context, limit, **kwargs):
    result, marker, count = [], None, 0
    while True:
        page = store.image_get_all(context, marker=marker, limit=limit, **kwargs)
        assert len(page) <= limit
        result.extend(page)
        count += 1
        if len(page) < limit:
            return result, count
        marker = page[-1]["id"]


def test_default_order_is_created_at_then_id_descending(store, many):
    listed_ids = ids(store.image_get_all(OWNER))
    expected = [image["id"] for image in sorted(
        many, key=lambda image: (image["created_at"], image["id"]), reverse=True)]
    assert listed_ids == expected


@pytest.mark.parametrize("sort_key, sort_dir", [
    (None, None), (["name"], ["asc"]), ("name", "desc"), (["min_ram", "name"], ["desc", "asc"]),
    (["min_ram"], ["asc"]), (["min_ram", "created_at"], ["asc"]),
])
@pytest.mark.parametrize("limit", [1, 4, 7, 25, 30])
def test_paging_covers_every_image_once_in_order(store, many, sort_key, sort_dir, limit):
    full = store.image_get_all(OWNER, sort_key=sort_key, sort_dir=sort_dir)
    paged, count = pages(store, OWNER, limit, sort_key=sort_key, sort_dir=sort_dir)
    assert ids(paged) == ids(full)
    assert len(full) == 25
    assert count == 25 // limit + 1


def test_sort_orders_match_python_sort(store, many):
    by_name = store.image_get_all(OWNER, sort_key=["name"], sort_dir=["asc"])
    names = [image["name"] or "" for image in by_name]
    assert names == sorted(names)
    mixed = store.image_get_all(OWNER, sort_key=["min_ram", "name"], sort_dir=["desc", "asc"])
    keys = [(-image["min_ram"], image["name"] or "") for image in mixed]
    assert keys == sorted(keys)


def test_bad_sort_and_marker(store, many):
    with pytest.raises(UsageError):
        store.image_get_all(OWNER, sort_key=["nope"])
    with pytest.raises(UsageError):
        store.image_get_all(OWNER, sort_key=["name"], sort_dir=["up"])
    with pytest.raises(UsageError):
        store.image_get_all(OWNER, sort_key=["name", "id"], sort_dir=["asc", "asc", "asc"])
    with pytest.raises(UsageError):
        store.image_get_all(OWNER, limit=-1)
    with pytest.raises(ImageNotFoundError):
        store.image_get_all(OWNER, marker="missing")
    assert store.image_get_all(OWNER, limit=0) == []


def test_filters(store, many):
    first = many[0]
    assert ids(store.image_get_all(OWNER, filters={"name": "img-00"})) == [first["id"]]
    assert len(store.image_get_all(OWNER, filters={"name": ["img-00", "img-01"]})) == 2
    even = store.image_get_all(OWNER, filters={"properties": {"parity": "even"}})
    assert len(even) == 13 and all(image["properties"]["parity"] == "even" for image in even)
    assert len(store.image_get_all(OWNER, filters={"parity": "odd"})) == 12
    assert store.image_get_all(OWNER, filters={"properties": {"parity": "even", "x": "y"}}) == []
    assert len(store.image_get_all(OWNER, filters={"min_ram": 0})) == 9
    store.image_update(OWNER, first["id"], {"protected": True, "size": 10})
    assert ids(store.image_get_all(OWNER, filters={"protected": True})) == [first["id"]]
    assert ids(store.image_get_all(OWNER, filters={"size_min": 5, "size_max": 10})) == [first["id"]]
    assert store.image_get_all(OWNER, filters={"size_min": 11}) == []
    store.image_tag_set_all(OWNER, first["id"], ["a", "b"])
    assert ids(store.image_get_all(OWNER, filters={"tags": ["a", "b"]})) == [first["id"]]
    assert store.image_get_all(OWNER, filters={"tags": ["a", "c"]}) == []
    later = store.image_get(OWNER, first["id"])["updated_at"]
    assert ids(store.image_get_all(OWNER, filters={"changes-since": later})) == [first["id"]]
    assert len(store.image_get_all(OWNER, filters={"status": ["queued", "active"]})) == 25


def test_return_tag(store, many):
    store.image_tag_create(OWNER, many[0]["id"], "gold")
    without = store.image_get_all(OWNER, limit=30)
    assert all("tags" not in image for image in without)
    tagged = {image["id"]: image["tags"] for image in store.image_get_all(OWNER, return_tag=True)}
    assert tagged[many[0]["id"]] == ["gold"] and tagged[many[1]["id"]] == []


# -- locations, properties, members, tags ---------------------------------

def test_locations(store):
    image = store.image_create(OWNER, {"name": "a"})
    first = store.image_location_add(OWNER, image["id"], {"url": "file:///one",
                                                          "metadata": {"store": "x"}})
    second = store.image_location_add(OWNER, image["id"], {"url": "file:///two"})
    assert first["status"] == "active" and first["metadata"] == {"store": "x"}
    assert store.image_get(OWNER, image["id"])["locations"] == [first, second]
    changed = store.image_location_update(OWNER, image["id"], {"id": first["id"],
                                                               "url": "file:///uno"})
    assert changed["url"] == "file:///uno" and changed["metadata"] == {"store": "x"}
    store.image_location_delete(OWNER, image["id"], second["id"], "pending_delete")
    remaining = store.image_get(OWNER, image["id"])["locations"]
    assert [loc["url"] for loc in remaining] == ["file:///uno"]
    with pytest.raises(ImageNotFoundError):
        store.image_location_update(OWNER, image["id"], {"id": second["id"], "url": "x"})
    with pytest.raises(UsageError):
        store.image_location_delete(OWNER, image["id"], first["id"], "active")
    with pytest.raises(UsageError):
        store.image_location_add(OWNER, image["id"], {"metadata": {}})
    with pytest.raises(ImageNotFoundError):
        store.image_location_add(OTHER, image["id"], {"url": "x"})


def test_properties(store):
    image = store.image_create(OWNER, {"name": "a", "visibility": "public"})
    prop = store.image_property_create(OWNER, {"image_id": image["id"], "name": "k", "value": "v"})
    assert prop["name"] == "k" and prop["value"] == "v" and prop["deleted"] is False
    with pytest.raises(ConflictError):
        store.image_property_create(OWNER, {"image_id": image["id"], "name": "k", "value": "w"})
    assert store.image_get(OWNER, image["id"])["properties"] == {"k": "v"}
    gone = store.image_property_delete(OWNER, "k", image["id"])
    assert gone["deleted"] is True
    assert store.image_get(OWNER, image["id"])["properties"] == {}
    with pytest.raises(ImageNotFoundError):
        store.image_property_delete(OWNER, "k", image["id"])
    again = store.image_property_create(OWNER, {"image_id": image["id"], "name": "k", "value": "w"})
    assert again["value"] == "w" and again["deleted"] is False
    with pytest.raises(ConflictError):
        store.image_property_create(OTHER, {"image_id": image["id"], "name": "z", "value": "1"})
    with pytest.raises(ImageNotFoundError):
        store.image_property_create(OWNER, {"image_id": "missing", "name": "z", "value": "1"})


def test_members(store):
    image = store.image_create(OWNER, {"name": "a"})
    member = store.image_member_create(OWNER, {"image_id": image["id"], "member": "friend"})
    assert member["status"] == "pending" and member["can_share"] is False
    with pytest.raises(ConflictError):
        store.image_member_create(OWNER, {"image_id": image["id"], "member": "friend"})
    with pytest.raises(ImageNotFoundError):
        store.image_member_create(OTHER, {"image_id": image["id"], "member": "stranger"})
    friend = RequestContext("friend")
    assert store.image_member_count(OWNER, image["id"]) == 1
    assert store.image_member_find(friend) == [member]
    assert store.image_member_find(OTHER) == []
    assert store.image_member_find(ADMIN, member="friend") == [member]
    assert store.image_member_find(OWNER, image_id=image["id"], status="accepted") == []
    with pytest.raises(ConflictError):
        store.image_member_update(OWNER, member["id"], {"status": "accepted"})
    accepted = store.image_member_update(friend, member["id"], {"status": "accepted"})
    assert accepted["status"] == "accepted"
    with pytest.raises(ConflictError):
        store.image_member_update(friend, member["id"], {"can_share": True})
    assert store.image_member_update(OWNER, member["id"], {"can_share": True})["can_share"]
    with pytest.raises(ImageNotFoundError):
        store.image_member_update(OTHER, member["id"], {"status": "rejected"})
    assert store.image_get(friend, image["id"])["id"] == image["id"]
    with pytest.raises(ConflictError):
        store.image_member_delete(friend, member["id"])
    store.image_member_delete(OWNER, member["id"])
    assert store.image_member_count(OWNER, image["id"]) == 0
    with pytest.raises(ImageNotFoundError):
        store.image_member_delete(OWNER, member["id"])
    with pytest.raises(ImageNotFoundError):
        store.image_get(friend, image["id"])
    again = store.image_member_create(OWNER, {"image_id": image["id"], "member": "friend",
                                              "status": "accepted"})
    assert again["id"] != member["id"]


def test_tags(store):
    image = store.image_create(OWNER, {"name": "a", "visibility": "public"})
    assert store.image_tag_get_all(OWNER, image["id"]) == []
    assert store.image_tag_create(OWNER, image["id"], "one") == "one"
    store.image_tag_create(OWNER, image["id"], "one")
    store.image_tag_create(OWNER, image["id"], "two")
    assert store.image_tag_get_all(OTHER, image["id"]) == ["one", "two"]
    store.image_tag_set_all(OWNER, image["id"], ["two", "three", "three"])
    assert store.image_tag_get_all(OWNER, image["id"]) == ["two", "three"]
    store.image_tag_delete(OWNER, image["id"], "two")
    assert store.image_get(OWNER, image["id"])["tags"] == ["three"]
    with pytest.raises(ImageNotFoundError):
        store.image_tag_delete(OWNER, image["id"], "two")
    with pytest.raises(ConflictError):
        store.image_tag_create(OTHER, image["id"], "mine")
    store.image_tag_set_all(OWNER, image["id"], [])
    assert store.image_tag_get_all(OWNER, image["id"]) == []


# -- data ----------------------------------------------------------------

def data_chunks(total: int, size: int = 300_000):
    sent = 0
    while sent < total:
        length = min(size, total - sent)
        yield bytes((sent + i) % 251 for i in range(length))
        sent += length


def test_write_and_read_data_with_hashes(store):
    image = store.image_create(OWNER, {"name": "a"})
    total = 3 * CHUNK_SIZE + 12345
    payload = b"".join(data_chunks(total))
    active = store.write_data(OWNER, image["id"], data_chunks(total))
    assert active["status"] == "active" and active["size"] == total
    assert active["checksum"] == hashlib.md5(payload).hexdigest()
    assert active["os_hash_algo"] == "sha512"
    assert active["os_hash_value"] == hashlib.sha512(payload).hexdigest()
    [location] = active["locations"]
    assert location["url"].startswith("file://") and location["url"].endswith(image["id"])
    chunks = list(store.read_data(OWNER, image["id"]))
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks) and len(chunks) == 4
    assert b"".join(chunks) == payload
    with pytest.raises(ConflictError):
        store.write_data(OWNER, image["id"], [b"again"])
    data_file = store.data_path / image["id"]
    assert data_file.stat().st_size == total
    store.image_destroy(OWNER, image["id"])
    assert not data_file.exists()
    with pytest.raises(ImageNotFoundError):
        store.read_data(OWNER, image["id"])


def test_read_data_of_image_without_data(store):
    image = store.image_create(OWNER, {"name": "a"})
    with pytest.raises(ConflictError):
        store.read_data(OWNER, image["id"])


def test_failed_write_returns_to_queued_and_leaves_no_file(store):
    image = store.image_create(OWNER, {"name": "a"})

    def broken():
        yield b"x" * 1000
        raise TransferError("source went away")

    with pytest.raises(TransferError, match="source went away"):
        store.write_data(OWNER, image["id"], broken())
    assert store.image_get(OWNER, image["id"])["status"] == "queued"
    assert list(store.data_path.iterdir()) == []
    with pytest.raises(TransferError):
        store.write_data(OWNER, image["id"], [b"abc"], expected_size=4)
    assert store.image_get(OWNER, image["id"])["status"] == "queued"
    assert list(store.data_path.iterdir()) == []
    assert store.write_data(OWNER, image["id"], [b"abc"], expected_size=3)["size"] == 3


def test_write_data_forbidden_to_others(store):
    image = store.image_create(OWNER, {"name": "a", "visibility": "public"})
    with pytest.raises(ConflictError):
        store.write_data(OTHER, image["id"], [b"abc"])
    assert store.image_get(OWNER, image["id"])["status"] == "queued"


WRITER = """
import sys
from pathlib import Path
from glancesync.backends.local.store import LocalStore, RequestContext

store = LocalStore(Path(sys.argv[1]))
flag = Path(sys.argv[3])

def chunks():
    block = b"z" * (1024 * 1024)
    for index in range(400):
        if index == 8:
            flag.touch()
        yield block

store.write_data(RequestContext("owner"), sys.argv[2], chunks())
"""


def test_writer_killed_mid_write_leaves_no_active_image(tmp_path):
    region = tmp_path / "region"
    with LocalStore(region) as local:
        image_id = local.image_create(OWNER, {"name": "big"})["id"]
    flag = tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(region), image_id, str(flag)],
                             env=env)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert child.poll() is None, "the writer ended before writing"
            assert time.monotonic() < deadline, "the writer never started"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    with LocalStore(region) as reader:
        image = reader.image_get(OWNER, image_id)
        assert image["status"] in ("queued", "saving")
        assert image["size"] is None and image["checksum"] is None
        assert image["locations"] == []
        assert reader.image_get_all(OWNER, filters={"status": "active"}) == []
        with pytest.raises(ConflictError):
            reader.read_data(OWNER, image_id)
        assert not (reader.data_path / image_id).exists()
        leftovers = [path.name for path in reader.data_path.iterdir()]
        assert all(name.startswith(".") and name.endswith(".part") for name in leftovers)
        reader.image_destroy(OWNER, image_id)


def test_threads_share_one_store(store):
    errors = []

    def worker(index):
        try:
            for step in range(5):
                image = store.image_create(OWNER, {"name": f"t{index}-{step}"})
                store.write_data(OWNER, image["id"], [f"{index}-{step}".encode()])
        except ServiceError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    images = store.image_get_all(OWNER)
    assert len(images) == 30 and {image["status"] for image in images} == {"active"}


def test_closed_store_raises_service_error(tmp_path):
    local = LocalStore(tmp_path / "r")
    local.close()
    with pytest.raises(ServiceError):
        local.image_get_all(OWNER)


def test_unwritable_folder_is_a_service_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ServiceError):
        LocalStore(blocker / "region")
