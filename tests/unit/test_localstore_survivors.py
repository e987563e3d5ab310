"""The local store's members, locations, properties, tags and read-only reads, pinned.

Each test was written against mutants of glancesync/backends/local/store.py that
the other unit tests let through (issue 27): exact messages, status codes,
the image an error names, the whole shape of the dicts returned.
"""
from __future__ import annotations

import datetime
import logging
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glancesync.backends.local.store import LocalStore, RequestContext
from glancesync.errors import (ConflictError, ImageNotFoundError, ServiceError, TransferError,
                               UnsafeNameError, UsageError)

OWNER = RequestContext("owner")
FRIEND = RequestContext("friend")
OTHER = RequestContext("stranger")
ADMIN = RequestContext("admin-project", is_admin=True)


@pytest.fixture
def store(tmp_path):
    with LocalStore(tmp_path / "region") as local:
        yield local


def shared_image(store: LocalStore, name: str = "a") -> str:
    return store.image_create(OWNER, {"name": name, "visibility": "shared"})["id"]


# -- members ---------------------------------------------------------------

def test_a_member_record_has_every_field(store):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    assert set(member) == {"id", "image_id", "member", "can_share", "status", "created_at",
                           "updated_at", "deleted_at", "deleted"}
    assert isinstance(member["id"], int)
    assert (member["image_id"], member["member"], member["can_share"], member["status"],
            member["deleted_at"], member["deleted"]) == (image_id, "friend", False, "pending",
                                                         None, False)
    assert member["created_at"] == member["updated_at"]
    assert member["created_at"].endswith("Z") and len(member["created_at"]) == 27
    store.image_member_delete(OWNER, member["id"])
    [gone] = store.image_member_find(OWNER, image_id=image_id, include_deleted=True)
    assert gone["deleted"] is True
    assert gone["deleted_at"] == gone["updated_at"] and gone["deleted_at"] >= member["created_at"]


def test_a_member_created_able_to_share_and_accepted(store):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend",
                                               "can_share": True, "status": "accepted"})
    assert (member["can_share"], member["status"]) == (True, "accepted")
    plain = store.image_member_create(OWNER, {"image_id": image_id, "member": "other"})
    assert plain["can_share"] is False


@pytest.mark.parametrize("member, message", [
    ("", "invalid member ''"), (None, "invalid member None"), (5, "invalid member 5")])
def test_an_invalid_member_is_refused(store, member, message):
    image_id = shared_image(store)
    with pytest.raises(UsageError) as caught:
        store.image_member_create(OWNER, {"image_id": image_id, "member": member})
    assert caught.value.message == message
    assert store.image_member_find(ADMIN, include_deleted=True) == []


def test_an_invalid_member_status_is_refused(store):
    image_id = shared_image(store)
    with pytest.raises(UsageError) as caught:
        store.image_member_create(OWNER, {"image_id": image_id, "member": "f", "status": "maybe"})
    assert caught.value.message == "invalid member status 'maybe'"


def test_a_member_twice_is_a_conflict_naming_the_image(store):
    image_id = shared_image(store)
    store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    with pytest.raises(ConflictError) as caught:
        store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    assert (caught.value.message, caught.value.image, caught.value.status_code) == (
        "friend is already a member", image_id, 409)
    other = shared_image(store, "b")
    assert store.image_member_create(OWNER, {"image_id": other, "member": "friend"})


@pytest.mark.parametrize("context", [OWNER, ADMIN, OTHER])
def test_a_missing_member_record(store, context):
    with pytest.raises(ImageNotFoundError) as caught:
        store.image_member_update(context, 99, {"status": "accepted"})
    assert (caught.value.message, caught.value.status_code) == ("no member record 99", 404)


def test_a_member_record_is_hidden_from_other_projects(store):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    for call in (lambda: store.image_member_update(OTHER, member["id"], {"status": "accepted"}),
                 lambda: store.image_member_delete(OTHER, member["id"])):
        with pytest.raises(ImageNotFoundError) as caught:
            call()
        assert (caught.value.message, caught.value.status_code) == (
            f"no member record {member['id']}", 404)
    assert store.image_member_find(ADMIN)[0]["status"] == "pending"


def test_the_member_and_the_owner_see_the_member_record(store):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    assert store.image_member_update(FRIEND, member["id"], {})["status"] == "pending"
    assert store.image_member_update(OWNER, member["id"], {})["status"] == "pending"


def test_member_update_refuses_unknown_fields(store):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    with pytest.raises(UsageError) as caught:
        store.image_member_update(ADMIN, member["id"], {"zeta": 1, "alpha": 2, "status": "x"})
    assert caught.value.message == "cannot set member field(s) alpha, zeta"


def test_member_update_accepts_its_image_and_member_unchanged(store):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    updated = store.image_member_update(FRIEND, member["id"], {
        "image_id": image_id, "member": "friend", "status": "accepted"})
    assert updated["status"] == "accepted"


@pytest.mark.parametrize("key, value", [("image_id", "another"), ("member", "someone")])
def test_member_update_refuses_to_move_a_member(store, key, value):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    with pytest.raises(UsageError) as caught:
        store.image_member_update(ADMIN, member["id"], {key: value})
    assert caught.value.message == f"a member's {key} cannot change"


def test_member_update_refuses_an_invalid_status(store):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    with pytest.raises(UsageError) as caught:
        store.image_member_update(FRIEND, member["id"], {"status": "maybe"})
    assert caught.value.message == "invalid member status 'maybe'"


def test_only_the_member_or_an_admin_accepts(store):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    with pytest.raises(ConflictError) as caught:
        store.image_member_update(OWNER, member["id"], {"status": "accepted"})
    assert (caught.value.message, caught.value.image, caught.value.status_code) == (
        "only the member may accept or reject a share", image_id, 403)
    assert store.image_member_update(ADMIN, member["id"], {"status": "rejected"})[
        "status"] == "rejected"
    updated = store.image_member_update(FRIEND, member["id"], {"status": "accepted"})
    assert (updated["status"], updated["can_share"]) == ("accepted", False)
    assert updated["updated_at"] >= member["updated_at"]
    assert store.image_member_find(OWNER, image_id=image_id)[0]["status"] == "accepted"


def test_only_the_owner_or_an_admin_changes_can_share(store):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend",
                                               "can_share": True})
    # The member may change its status without touching can_share.
    assert store.image_member_update(FRIEND, member["id"], {"status": "accepted"})["can_share"]
    with pytest.raises(ConflictError) as caught:
        store.image_member_update(FRIEND, member["id"], {"can_share": False})
    assert (caught.value.message, caught.value.image, caught.value.status_code) == (
        "only the owner may change can_share", image_id, 403)
    assert store.image_member_update(FRIEND, member["id"], {"can_share": True})["can_share"]
    assert store.image_member_update(OWNER, member["id"], {"can_share": False})[
        "can_share"] is False
    assert store.image_member_update(ADMIN, member["id"], {"can_share": True})["can_share"]


def test_only_the_owner_or_an_admin_removes_a_member(store):
    image_id = shared_image(store)
    member = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    with pytest.raises(ConflictError) as caught:
        store.image_member_delete(FRIEND, member["id"])
    assert (caught.value.message, caught.value.image, caught.value.status_code) == (
        "only the owner may remove a member", image_id, 403)
    store.image_member_delete(ADMIN, member["id"])
    [gone] = store.image_member_find(ADMIN, include_deleted=True)
    assert gone["deleted"] is True and gone["deleted_at"] is not None


def test_member_find_filters(store):
    first, second = shared_image(store, "a"), shared_image(store, "b")
    a = store.image_member_create(OWNER, {"image_id": first, "member": "friend",
                                          "status": "accepted"})
    b = store.image_member_create(OWNER, {"image_id": first, "member": "other"})
    c = store.image_member_create(OWNER, {"image_id": second, "member": "friend"})
    assert store.image_member_find(OWNER) == [a, b, c]
    assert store.image_member_find(OWNER, image_id=first) == [a, b]
    assert store.image_member_find(OWNER, member="friend") == [a, c]
    assert store.image_member_find(OWNER, status="pending") == [b, c]
    assert store.image_member_find(FRIEND) == [a, c]
    assert store.image_member_find(OTHER) == []
    store.image_member_delete(OWNER, b["id"])
    assert store.image_member_find(OWNER, image_id=first) == [a]
    assert [m["id"] for m in store.image_member_find(OWNER, image_id=first,
                                                     include_deleted=True)] == [a["id"], b["id"]]


def test_member_count(store):
    image_id = shared_image(store)
    assert store.image_member_count(OWNER, image_id) == 0
    first = store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    store.image_member_create(OWNER, {"image_id": image_id, "member": "other"})
    assert store.image_member_count(FRIEND, image_id) == 2
    store.image_member_delete(OWNER, first["id"])
    assert store.image_member_count(OWNER, image_id) == 1
    with pytest.raises(UsageError) as caught:
        store.image_member_count(OWNER, "")
    assert caught.value.message == "image_member_count needs an image id"
    with pytest.raises(ImageNotFoundError):
        store.image_member_count(OTHER, image_id)


# -- reads work on a read-only store ---------------------------------------

def test_every_read_works_on_a_read_only_store(tmp_path):
    with LocalStore(tmp_path / "region") as writer:
        image_id = shared_image(writer)
        writer.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
        writer.image_tag_create(OWNER, image_id, "t1")
    with LocalStore(tmp_path / "region", readonly=True) as reader:
        assert reader.is_image_visible(FRIEND, reader.image_get(OWNER, image_id))
        assert [m["member"] for m in reader.image_member_find(OWNER)] == ["friend"]
        assert reader.image_member_count(OWNER, image_id) == 1
        assert reader.image_tag_get_all(OWNER, image_id) == ["t1"]
        with pytest.raises(ServiceError):
            reader.image_tag_create(OWNER, image_id, "t2")


# -- locations -------------------------------------------------------------

@pytest.mark.parametrize("url", ["", None, 5])
def test_a_location_needs_a_url(store, url):
    image_id = shared_image(store)
    with pytest.raises(UsageError) as caught:
        store.image_location_add(OWNER, image_id, {"url": url})
    assert caught.value.message == "a location needs a url"
    assert store.image_get(OWNER, image_id)["locations"] == []


def test_a_location_added_with_a_status(store):
    image_id = shared_image(store)
    added = store.image_location_add(OWNER, image_id, {"url": "file:///x",
                                                       "status": "pending_delete"})
    assert added["status"] == "pending_delete"
    with pytest.raises(UsageError) as caught:
        store.image_location_add(OWNER, image_id, {"url": "file:///y", "status": "lost"})
    assert caught.value.message == "invalid location status 'lost'"


def test_a_missing_location(store):
    image_id = shared_image(store)
    other = shared_image(store, "b")
    elsewhere = store.image_location_add(OWNER, other, {"url": "file:///x"})
    for call in (lambda: store.image_location_update(OWNER, image_id, {"id": elsewhere["id"]}),
                 lambda: store.image_location_delete(OWNER, image_id, elsewhere["id"], "deleted")):
        with pytest.raises(ImageNotFoundError) as caught:
            call()
        assert (caught.value.message, caught.value.image, caught.value.status_code) == (
            f"no location {elsewhere['id']}", image_id, 404)


def test_a_location_update_keeps_what_it_does_not_change(store):
    image_id = shared_image(store)
    added = store.image_location_add(OWNER, image_id, {"url": "file:///x",
                                                       "metadata": {"k": "v"}})
    same = store.image_location_update(OWNER, image_id, {"id": added["id"]})
    assert same == added
    assert store.image_get(OWNER, image_id)["locations"] == [added]


def test_a_location_update_changes_status_and_metadata(store):
    image_id = shared_image(store)
    added = store.image_location_add(OWNER, image_id, {"url": "file:///x",
                                                       "metadata": {"k": "v"}})
    changed = store.image_location_update(OWNER, image_id, {
        "id": added["id"], "status": "pending_delete", "metadata": {"a": "b"}})
    assert changed == {"id": added["id"], "url": "file:///x", "metadata": {"a": "b"},
                       "status": "pending_delete"}
    cleared = store.image_location_update(OWNER, image_id, {"id": added["id"],
                                                            "metadata": None})
    assert cleared["metadata"] == {}
    with pytest.raises(UsageError) as caught:
        store.image_location_update(OWNER, image_id, {"id": added["id"], "status": "lost"})
    assert caught.value.message == "invalid location status 'lost'"


def test_a_location_updated_to_deleted_is_gone(store):
    image_id = shared_image(store)
    added = store.image_location_add(OWNER, image_id, {"url": "file:///x"})
    kept = store.image_location_add(OWNER, image_id, {"url": "file:///y"})
    store.image_location_update(OWNER, image_id, {"id": added["id"], "status": "deleted"})
    assert store.image_get(OWNER, image_id)["locations"] == [kept]
    with pytest.raises(ImageNotFoundError):
        store.image_location_update(OWNER, image_id, {"id": added["id"]})
    with store._transaction(write=False) as conn:  # the row, as Glance keeps it
        row = conn.execute("SELECT * FROM image_locations WHERE id = ?",
                           (added["id"],)).fetchone()
        live = conn.execute("SELECT * FROM image_locations WHERE id = ?",
                            (kept["id"],)).fetchone()
    assert (row["deleted"], row["status"]) == (1, "deleted")
    assert row["deleted_at"] is not None and row["deleted_at"] == row["updated_at"]
    assert (live["deleted"], live["deleted_at"]) == (0, None)


def test_a_location_update_to_pending_delete_keeps_it_live(store):
    image_id = shared_image(store)
    added = store.image_location_add(OWNER, image_id, {"url": "file:///x"})
    store.image_location_update(OWNER, image_id, {"id": added["id"], "status": "pending_delete"})
    with store._transaction(write=False) as conn:
        row = conn.execute("SELECT * FROM image_locations WHERE id = ?",
                           (added["id"],)).fetchone()
    assert (row["deleted"], row["deleted_at"]) == (0, None)
    assert row["updated_at"] is not None


@pytest.mark.parametrize("status", ["deleted", "pending_delete"])
def test_a_location_deleted_with_a_status_and_a_time(store, status):
    image_id = shared_image(store)
    added = store.image_location_add(OWNER, image_id, {"url": "file:///x"})
    store.image_location_delete(OWNER, image_id, added["id"], status,
                                delete_time="2020-01-01T00:00:00.000000Z")
    with store._transaction(write=False) as conn:
        row = conn.execute("SELECT * FROM image_locations WHERE id = ?",
                           (added["id"],)).fetchone()
    assert (row["status"], row["deleted"], row["deleted_at"]) == (
        status, 1, "2020-01-01T00:00:00.000000Z")
    assert row["updated_at"] > row["deleted_at"]


def test_a_location_deleted_now_by_default(store):
    image_id = shared_image(store)
    added = store.image_location_add(OWNER, image_id, {"url": "file:///x"})
    store.image_location_delete(OWNER, image_id, added["id"], "deleted")
    with store._transaction(write=False) as conn:
        row = conn.execute("SELECT * FROM image_locations WHERE id = ?",
                           (added["id"],)).fetchone()
    assert row["deleted_at"] is not None and row["deleted_at"] == row["updated_at"]


def test_a_location_is_not_deleted_as_active(store):
    image_id = shared_image(store)
    added = store.image_location_add(OWNER, image_id, {"url": "file:///x"})
    with pytest.raises(UsageError) as caught:
        store.image_location_delete(OWNER, image_id, added["id"], "active")
    assert caught.value.message == ("a location is deleted with status deleted or"
                                    " pending_delete, not 'active'")


# -- properties --------------------------------------------------------------

@pytest.mark.parametrize("name, message", [
    ("", "invalid property name ''"), (None, "invalid property name None"),
    (5, "invalid property name 5")])
def test_an_invalid_property_name_is_refused(store, name, message):
    image_id = shared_image(store)
    with pytest.raises(UsageError) as caught:
        store.image_property_create(OWNER, {"image_id": image_id, "name": name, "value": "v"})
    assert caught.value.message == message
    assert store.image_get(OWNER, image_id)["properties"] == {}


def test_an_existing_property_is_a_conflict_naming_the_image(store):
    image_id = shared_image(store)
    store.image_property_create(OWNER, {"image_id": image_id, "name": "k", "value": "v"})
    with pytest.raises(ConflictError) as caught:
        store.image_property_create(OWNER, {"image_id": image_id, "name": "k", "value": "w"})
    assert (caught.value.message, caught.value.image, caught.value.status_code) == (
        "property 'k' exists", image_id, 409)


def test_a_property_created_keeps_the_others_and_touches_the_image(store):
    image = store.image_create(OWNER, {"name": "a", "properties": {"old": "1"}})
    prop = store.image_property_create(OWNER, {"image_id": image["id"], "name": "k",
                                               "value": "v"})
    assert store.image_get(OWNER, image["id"])["properties"] == {"old": "1", "k": "v"}
    assert store.image_get(OWNER, image["id"])["updated_at"] == prop["updated_at"]
    assert prop["updated_at"] > image["updated_at"]
    gone = store.image_property_delete(OWNER, "k", image["id"])
    assert store.image_get(OWNER, image["id"])["updated_at"] == gone["updated_at"]
    assert gone["deleted_at"] == gone["updated_at"] and gone["deleted_at"] >= prop["updated_at"]
    assert store.image_get(OWNER, image["id"])["properties"] == {"old": "1"}


def test_a_property_record_has_every_field(store):
    image_id = shared_image(store)
    prop = store.image_property_create(OWNER, {"image_id": image_id, "name": "k", "value": "v"})
    assert set(prop) == {"id", "image_id", "name", "value", "created_at", "updated_at",
                         "deleted_at", "deleted"}
    assert isinstance(prop["id"], int)
    assert (prop["image_id"], prop["name"], prop["value"], prop["deleted_at"],
            prop["deleted"]) == (image_id, "k", "v", None, False)
    assert prop["created_at"] == prop["updated_at"] and prop["created_at"].endswith("Z")
    gone = store.image_property_delete(OWNER, "k", image_id)
    assert (gone["id"], gone["created_at"], gone["deleted"]) == (prop["id"], prop["created_at"],
                                                                 True)


def test_a_missing_property(store):
    image_id = shared_image(store)
    store.image_property_create(OWNER, {"image_id": image_id, "name": "kept", "value": "v"})
    with pytest.raises(ImageNotFoundError) as caught:
        store.image_property_delete(OWNER, "absent", image_id)
    assert (caught.value.message, caught.value.image, caught.value.status_code) == (
        "no property 'absent'", image_id, 404)
    assert store.image_get(OWNER, image_id)["properties"] == {"kept": "v"}


# -- tags --------------------------------------------------------------------

def test_tags_are_listed_oldest_first(store):
    image_id = shared_image(store)
    for tag in ("zz", "aa", "mm"):
        store.image_tag_create(OWNER, image_id, tag)
    assert store.image_tag_get_all(OWNER, image_id) == ["zz", "aa", "mm"]
    assert store.image_tag_set_all(OWNER, image_id, ["mm", "bb", "zz"]) == ["mm", "bb", "zz"]
    assert store.image_tag_get_all(OWNER, image_id) == ["zz", "mm", "bb"]


def test_a_tag_set_again_after_its_removal(store):
    image_id = shared_image(store)
    store.image_tag_set_all(OWNER, image_id, ["a", "b"])
    store.image_tag_set_all(OWNER, image_id, ["b"])
    store.image_tag_set_all(OWNER, image_id, ["b", "a"])
    assert store.image_tag_get_all(OWNER, image_id) == ["b", "a"]
    with store._transaction(write=False) as conn:
        rows = conn.execute("SELECT value, deleted, deleted_at, updated_at FROM image_tags"
                            " ORDER BY id").fetchall()
    assert [(r["value"], r["deleted"]) for r in rows] == [("a", 1), ("b", 0), ("a", 0)]
    assert rows[0]["deleted_at"] == rows[0]["updated_at"] is not None


def test_a_missing_tag(store):
    image_id = shared_image(store)
    store.image_tag_create(OWNER, image_id, "kept")
    with pytest.raises(ImageNotFoundError) as caught:
        store.image_tag_delete(OWNER, image_id, "absent")
    assert (caught.value.message, caught.value.image, caught.value.status_code) == (
        "no tag 'absent'", image_id, 404)
    store.image_tag_delete(OWNER, image_id, "kept")
    with store._transaction(write=False) as conn:
        row = conn.execute("SELECT * FROM image_tags").fetchone()
    assert row["deleted"] == 1 and row["deleted_at"] == row["updated_at"] is not None


@pytest.mark.parametrize("tag", ["", None, 5])
def test_an_invalid_tag_is_refused(store, tag):
    image_id = shared_image(store)
    with pytest.raises(UsageError) as caught:
        store.image_tag_create(OWNER, image_id, tag)
    assert caught.value.message == f"invalid tag {tag!r}"


# -- a failed upload -----------------------------------------------------------

def test_a_failed_upload_of_an_image_changed_meanwhile_leaves_it_alone(store, caplog):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]

    def chunks():
        yield b"x"
        store.image_update(ADMIN, image_id, {"status": "killed"})
        raise OSError("source gone")

    with caplog.at_level(logging.WARNING, logger="glancesync.backends.local.store"):
        with pytest.raises(TransferError, match="source gone"):
            store.write_data(OWNER, image_id, chunks())
    assert store.image_get(OWNER, image_id)["status"] == "killed"
    [record] = [r for r in caplog.records if "could not reset" in r.getMessage()]
    assert record.getMessage() == (f"image {image_id}: could not reset status after a failed"
                                   f" upload: image {image_id}: image is killed, not saving")


# -- paging over NULLs -----------------------------------------------------------

def test_paging_by_a_column_with_nulls_and_zeros(store):
    sizes = [None, 0, 7, None, 0, None, 3, 0]
    for index, size in enumerate(sizes):
        image_id = store.image_create(OWNER, {"id": f"img-{index}", "name": f"i{index}"})["id"]
        if size is not None:
            store.image_update(OWNER, image_id, {"size": size})
    for direction in ("asc", "desc"):
        full = store.image_get_all(OWNER, sort_key="size", sort_dir=direction)
        # NULL sorts as 0; ties newest first (then by id, descending too).
        sign = 1 if direction == "asc" else -1
        expected = sorted(range(len(sizes)), key=lambda i: (sign * (sizes[i] or 0), -i))
        assert [image["id"] for image in full] == [f"img-{i}" for i in expected]
        paged, marker = [], None
        for _ in range(len(sizes) + 1):  # a wrong marker condition may loop
            page = store.image_get_all(OWNER, sort_key="size", sort_dir=direction,
                                       marker=marker, limit=1)
            if not page:
                break
            paged += page
            marker = page[-1]["id"]
        assert [image["id"] for image in paged] == [image["id"] for image in full]


# -- a region on read-only media ---------------------------------------------------

def read_in_a_read_only_folder(folder: Path) -> subprocess.CompletedProcess:
    """Run a child that lists ``folder``'s store while ``folder`` is really read-only."""
    code = ("import sys\n"
            "from glancesync.backends.local.store import LocalStore, RequestContext\n"
            "with LocalStore(sys.argv[1], readonly=True) as store:\n"
            "    print(sorted(i['name'] for i in store.image_get_all(RequestContext('p', True))))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    command = [sys.executable, "-c", code, str(folder)]
    if os.geteuid() == 0:
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'set -e; mount --bind "$1" "$1"; mount -o remount,bind,ro "$1"; shift;'
                   ' exec "$@"', "sh", str(folder), *command]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")]}
    for path, mode in modes.items():
        path.chmod(mode & ~0o222)
    try:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def test_a_region_on_read_only_media_is_read(tmp_path):
    folder = tmp_path / "region"
    with LocalStore(folder) as writer:
        writer.image_create(OWNER, {"name": "a"})
        writer.image_create(OWNER, {"name": "b"})
    with LocalStore(folder, readonly=True) as reader:  # writable: a query_only connection
        assert len(reader.image_get_all(ADMIN)) == 2
        with pytest.raises(ServiceError):
            with reader._transaction(write=False) as conn:
                conn.execute("DELETE FROM images")
    before = sorted(path.name for path in folder.rglob("*"))
    done = read_in_a_read_only_folder(folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['a', 'b']"
    assert sorted(path.name for path in folder.rglob("*")) == before


# -- sorting over NULLs ------------------------------------------------------------

def test_sorting_by_name_puts_null_names_with_empty_ones(store):
    made = [store.image_create(OWNER, {"name": name})["id"]
            for name in (None, "Alpha", "", "beta", None)]
    listed = store.image_get_all(OWNER, sort_key="name", sort_dir="asc")
    # NULL and "" tie and are then ordered by created_at, newest first.
    assert [image["id"] for image in listed] == [made[4], made[2], made[0], made[1], made[3]]


# -- a deleted image and its children ------------------------------------------------

def test_a_deleted_image_shows_only_what_was_deleted_with_it(store):
    image_id = store.image_create(OWNER, {"name": "a", "properties": {"early": "1",
                                                                        "late": "2"}})["id"]
    store.image_tag_set_all(OWNER, image_id, ["early-tag", "late-tag"])
    store.image_property_delete(OWNER, "early", image_id)
    store.image_tag_delete(OWNER, image_id, "early-tag")
    store.image_destroy(OWNER, image_id)
    gone = store.image_get(OWNER, image_id, force_show_deleted=True)
    assert gone["properties"] == {"late": "2"}
    assert gone["tags"] == ["late-tag"]


def test_a_data_file_that_cannot_be_removed(store):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    (store.data_path / image_id).mkdir()
    (store.data_path / image_id / "inside").write_text("x")
    with pytest.raises(TransferError) as caught:
        store.image_destroy(OWNER, image_id)
    assert caught.value.message.startswith("image deleted but its data file remains: ")
    assert caught.value.image == image_id
    with pytest.raises(ImageNotFoundError):
        store.image_get(OWNER, image_id)


# -- rows altered by hand --------------------------------------------------------------

def test_an_altered_row_is_reported_once(store, caplog):
    store.image_create(OWNER, {"name": "fine"})
    with store._transaction() as conn:
        conn.execute("INSERT INTO images (id, name, status, visibility, created_at, owner)"
                     " VALUES ('../../x', 'evil', 'active', 'public', '2020', 'owner')")
    with caplog.at_level(logging.WARNING, logger="glancesync.backends.local.store"):
        assert [image["name"] for image in store.image_get_all(OWNER)] == ["fine"]
        assert [image["name"] for image in store.image_get_all(OWNER)] == ["fine"]
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings == [f"local region {store.path}: ignoring the image row with id"
                        " '../../x': not a valid image id (was the database altered?)"]


# -- reading data ------------------------------------------------------------------------

def test_an_image_without_data_says_so(store):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    with pytest.raises(ConflictError) as caught:
        store.read_data(OWNER, image_id)
    assert (caught.value.message, caught.value.image, caught.value.status_code) == (
        "image is queued, it has no data", image_id, 409)


def test_a_missing_data_file_names_the_image(store):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    store.write_data(OWNER, image_id, [b"abc"])
    (store.data_path / image_id).unlink()
    with pytest.raises(TransferError) as caught:
        store.read_data(OWNER, image_id)
    assert caught.value.message.startswith("cannot read image data: ")
    assert caught.value.image == image_id


# -- listing arguments ---------------------------------------------------------------------

@pytest.mark.parametrize("limit", [True, "5", 2.0, -1])
def test_a_bad_limit_is_refused(store, limit):
    store.image_create(OWNER, {"name": "a"})
    with pytest.raises(UsageError) as caught:
        store.image_get_all(OWNER, limit=limit)
    assert caught.value.message == f"limit must be an integer >= 0, not {limit!r}"


def test_a_marker_that_is_missing_or_unseen(store):
    private = store.image_create(OWNER, {"name": "p", "visibility": "private"})["id"]
    for context, marker in ((OWNER, "missing"), (OTHER, private)):
        with pytest.raises(ImageNotFoundError) as caught:
            store.image_get_all(context, marker=marker)
        assert (caught.value.message, caught.value.image, caught.value.status_code) == (
            "marker image not found", marker, 400)


def test_a_member_pages_past_a_shared_image(store):
    first = shared_image(store, "first")
    second = shared_image(store, "second")
    for image_id in (first, second):
        store.image_member_create(OWNER, {"image_id": image_id, "member": "friend",
                                          "status": "accepted"})
    page = store.image_get_all(FRIEND, limit=1)
    assert [image["id"] for image in page] == [second]
    assert [image["id"] for image in store.image_get_all(FRIEND, marker=second)] == [first]


# -- the messages of the busiest paths (measured only in part: see docs/testing.rst) ------

@pytest.mark.parametrize("values, message", [
    ({"status": None}, "image field 'status' cannot be null"),
    ({"protected": "yes"}, "image field 'protected' must be a boolean, not 'yes'"),
    ({"min_ram": -1}, "image field 'min_ram' must be an integer >= 0, not -1"),
    ({"size": True}, "image field 'size' must be an integer >= 0, not True"),
    ({"min_disk": "1"}, "image field 'min_disk' must be an integer >= 0, not '1'"),
    ({"name": 5}, "image field 'name' must be a string, not 5"),
    ({"status": "bogus"}, "unknown image status 'bogus'"),
    ({"visibility": "everyone"},
     "visibility must be one of public, community, shared, private, not 'everyone'"),
    ({"zeta": 1, "alpha": 2}, "cannot set image field(s) alpha, zeta"),
    ({"id": "../escape"}, "invalid image id '../escape'"),
    ({"properties": {"": "x"}}, "invalid property name ''"),
])
def test_image_create_says_what_is_wrong(store, values, message):
    with pytest.raises(UsageError) as caught:
        store.image_create(OWNER, {"name": "x", **values})
    assert caught.value.message == message
    assert store.image_get_all(ADMIN) == []


def test_nullable_fields_take_none_and_bools_take_ints(store):
    image = store.image_create(OWNER, {"name": None, "disk_format": None, "protected": 1,
                                       "os_hidden": 0, "min_ram": 3})
    assert (image["name"], image["disk_format"], image["protected"], image["os_hidden"],
            image["min_ram"], image["min_disk"]) == (None, None, True, False, 3, 0)


def test_an_id_used_before_names_the_image(store):
    store.image_create(OWNER, {"id": "img-1", "name": "a"})
    with pytest.raises(ConflictError) as caught:
        store.image_create(OWNER, {"id": "img-1", "name": "b"})
    assert (caught.value.message, caught.value.image, caught.value.status_code) == (
        "an image with this id exists or existed", "img-1", 409)


def test_image_errors_say_why(store):
    private = store.image_create(OWNER, {"name": "p", "visibility": "private"})["id"]
    public = store.image_create(OWNER, {"name": "q", "visibility": "public"})["id"]
    cases = [
        (lambda: store.image_get(OWNER, "../x"), ImageNotFoundError,
         "no such image (not a valid image id)", "'../x'", 404),
        (lambda: store.image_get(OWNER, "missing"), ImageNotFoundError, "no such image",
         "missing", 404),
        (lambda: store.image_get(OTHER, private), ImageNotFoundError, "no such image",
         private, 404),
        (lambda: store.image_update(OTHER, public, {"name": "x"}), ConflictError,
         "project stranger may not modify this image", public, 403),
        (lambda: store.image_update(OWNER, public, {"status": "active"}, from_state="saving"),
         ConflictError, "image is queued, not saving", public, 409),
    ]
    for call, kind, message, image, status in cases:
        with pytest.raises(kind) as caught:
            call()
        assert (caught.value.message, caught.value.image, caught.value.status_code) == (
            message, image, status)
    store.image_destroy(OWNER, public)
    with pytest.raises(ImageNotFoundError) as caught:
        store.image_get(OWNER, public)
    assert caught.value.message == "no such image"
    assert store.image_get(OWNER, public, force_show_deleted=True)["status"] == "deleted"


@pytest.mark.parametrize("kwargs, message", [
    ({"sort_key": ["name", "id"], "sort_dir": ["asc", "asc", "asc"]},
     "sort_dir must have one direction, or one per sort_key"),
    ({"sort_key": "nope"}, "cannot sort on 'nope'"),
    ({"sort_key": "name", "sort_dir": "up"}, "sort direction must be asc or desc, not 'up'"),
])
def test_a_bad_sort_says_what_is_wrong(store, kwargs, message):
    with pytest.raises(UsageError) as caught:
        store.image_get_all(OWNER, **kwargs)
    assert caught.value.message == message


def test_sort_directions_one_for_all_or_one_each(store):
    made = [store.image_create(OWNER, {"name": name, "min_ram": ram})["id"]
            for name, ram in (("b", 1), ("a", 1), ("c", 0))]
    by_both_asc = store.image_get_all(OWNER, sort_key=["min_ram", "name"], sort_dir="asc")
    assert [image["id"] for image in by_both_asc] == [made[2], made[1], made[0]]
    mixed = store.image_get_all(OWNER, sort_key=["min_ram", "name"], sort_dir=["desc", "asc"])
    assert [image["id"] for image in mixed] == [made[1], made[0], made[2]]
    by_name = store.image_get_all(OWNER, sort_key=["name"])  # desc by default
    assert [image["id"] for image in by_name] == [made[2], made[0], made[1]]


def test_store_errors_say_where(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ServiceError) as caught:
        LocalStore(tmp_path / "file" / "region")
    assert caught.value.message.startswith(
        f"cannot create the local region folder {tmp_path / 'file' / 'region'}: ")
    with pytest.raises(ServiceError) as caught:
        LocalStore(tmp_path / "none", readonly=True)
    assert caught.value.message == (f"{tmp_path / 'none' / 'images.db'} does not exist:"
                                    " no local region to read")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "images.db").write_bytes(b"not a database at all" * 50)
    with pytest.raises(ServiceError) as caught:
        LocalStore(tmp_path / "bad")
    assert caught.value.message == (f"cannot open {tmp_path / 'bad' / 'images.db'}: file is"
                                    " not a database")
    (tmp_path / "other").mkdir()
    with sqlite3.connect(tmp_path / "other" / "images.db") as conn:  # another program's
        conn.execute("CREATE TABLE images (x)")
    conn.close()
    with pytest.raises(ServiceError) as caught:
        LocalStore(tmp_path / "other")
    assert caught.value.message == (f"cannot initialise {tmp_path / 'other' / 'images.db'}:"
                                    " no such column: deleted")
    with sqlite3.connect(tmp_path / "other" / "images.db") as conn:  # rolled back whole
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                            " ORDER BY name").fetchall() == [("images",)]
    conn.close()
    store = LocalStore(tmp_path / "good")
    store.close()
    with pytest.raises(ServiceError) as caught:
        store.image_get_all(OWNER)
    assert caught.value.message == f"local store {tmp_path / 'good'} is closed"
    with LocalStore(tmp_path / "good", readonly=True) as reader:
        with pytest.raises(ServiceError) as caught:
            reader.image_create(OWNER, {"name": "x"})
    assert caught.value.message == f"local region {tmp_path / 'good'} is open for reading only"


# -- writing data --------------------------------------------------------------------------

def test_written_data_is_recorded(store):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    image = store.write_data(OWNER, image_id, [b"ab", b"c"], expected_size=3)
    assert (image["status"], image["size"], image["os_hash_algo"]) == ("active", 3, "sha512")
    assert image["checksum"] == "900150983cd24fb0d6963f7d28e17f72"
    assert image["os_hash_value"].startswith("ddaf35a193617aba")
    assert image["locations"] == [{"id": image["locations"][0]["id"],
                                   "url": (store.data_path / image_id).resolve().as_uri(),
                                   "metadata": {}, "status": "active"}]
    assert (store.data_path / image_id).read_bytes() == b"abc"
    assert store.image_get(OWNER, image_id) == image


def test_a_size_mismatch_says_so(store):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    with pytest.raises(TransferError) as caught:
        store.write_data(OWNER, image_id, [b"abc"], expected_size=10)
    assert (caught.value.message, caught.value.image) == ("received 3 bytes, expected 10",
                                                          image_id)
    assert store.image_get(OWNER, image_id)["status"] == "queued"
    assert list(store.data_path.iterdir()) == []


def test_an_image_changed_during_its_upload_keeps_no_data(store):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]

    def chunks():
        yield b"abc"
        store.image_update(ADMIN, image_id, {"status": "killed"})

    with pytest.raises(ConflictError) as caught:
        store.write_data(OWNER, image_id, chunks())
    assert (caught.value.message, caught.value.image, caught.value.status_code) == (
        "image became killed during the upload", image_id, 409)
    assert store.image_get(OWNER, image_id)["status"] == "killed"
    assert list(store.data_path.iterdir()) == []


def test_data_that_cannot_be_written_says_so(store):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    store.data_path.rmdir()
    with pytest.raises(TransferError) as caught:
        store.write_data(OWNER, image_id, [b"abc"])
    assert caught.value.message.startswith("cannot write image data: ")
    assert caught.value.image == image_id
    assert store.image_get(OWNER, image_id)["status"] == "queued"


# -- filters -------------------------------------------------------------------------------

def test_visibility_filters(store):
    made = {visibility: store.image_create(OWNER, {"name": visibility,
                                                   "visibility": visibility})["id"]
            for visibility in ("public", "community", "shared", "private")}

    def names(context, **kwargs):
        return sorted(image["name"] for image in store.image_get_all(context, **kwargs))

    assert names(OWNER) == ["community", "private", "public", "shared"]
    assert names(OTHER) == ["public"]
    assert names(OTHER, filters={"visibility": "all"}) == ["community", "public"]
    assert names(OTHER, filters={"visibility": "community"}) == ["community"]
    assert names(RequestContext(None)) == ["public"]
    assert names(RequestContext(None), filters={"visibility": "all"}) == ["community",
                                                                          "public"]
    assert names(ADMIN) == ["private", "public", "shared"]  # community of others left out
    assert names(ADMIN, filters={"visibility": "all"}) == sorted(made)
    assert names(ADMIN, is_public=True) == ["public"]
    assert names(OWNER, is_public=False) == ["community", "private", "shared"]
    assert names(OWNER, filters={"is_public": True}) == ["public"]
    assert names(OWNER, filters={"is_public": True}, is_public=False) == [
        "community", "private", "shared"]
    assert names(OWNER, filters={"deleted": False, "name": None}) == names(OWNER)
    store.image_destroy(OWNER, made["private"])
    assert names(OWNER, filters={"deleted": True}) == ["private"]
    assert names(ADMIN, admin_as_user=True) == ["public"]


def test_member_status_filter_of_a_listing(store):
    image_id = shared_image(store, "s")
    store.image_member_create(OWNER, {"image_id": image_id, "member": "friend"})
    assert store.image_get_all(FRIEND) == []
    assert [i["id"] for i in store.image_get_all(FRIEND, member_status="pending")] == [image_id]
    assert [i["id"] for i in store.image_get_all(FRIEND, member_status="all")] == [image_id]


def test_value_filters(store):
    small = store.image_create(OWNER, {"name": "small", "protected": True})["id"]
    big = store.image_create(OWNER, {"name": "big"})["id"]
    store.image_update(OWNER, small, {"size": 5})
    store.image_update(OWNER, big, {"size": 50})

    def names(**filters):
        return sorted(image["name"] for image in store.image_get_all(OWNER, filters=filters))

    assert names(size_min=5) == ["big", "small"] and names(size_min=6) == ["big"]
    assert names(size_max=50) == ["big", "small"] and names(size_max=49) == ["small"]
    assert names(protected=[True]) == ["small"] and names(protected=False) == ["big"]
    assert names(name=("small", "big")) == ["big", "small"]
    assert names(name={"small"}) == ["small"]
    assert names(owner="owner", name="big") == ["big"]
    assert names(size_min=None, size_max=None) == ["big", "small"]
    store.image_update(OWNER, small, {"properties": {"n": "7"}})
    assert names(n=7) == ["small"] and names(properties={"n": 7}) == ["small"]
    since = store.image_get(OWNER, small)["updated_at"]
    assert names(**{"changes-since": since}) == ["small"]


@pytest.mark.parametrize("name", ["", 5])
def test_a_property_name_is_checked_before_the_image(store, name):
    with pytest.raises(UsageError) as caught:
        store.image_property_create(OWNER, {"image_id": "missing", "name": name, "value": "v"})
    assert caught.value.message == f"invalid property name {name!r}"


def test_a_deleted_listing_shows_the_deleted_locations(store):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    store.write_data(OWNER, image_id, [b"abc"])
    store.image_destroy(OWNER, image_id)
    [gone] = store.image_get_all(OWNER, filters={"deleted": True})
    assert [location["status"] for location in gone["locations"]] == ["deleted"]
    assert store.image_get_all(OWNER, filters={"deleted": False}) == []


def test_a_location_row_without_metadata_is_read(store):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    added = store.image_location_add(OWNER, image_id, {"url": "file:///x"})
    with store._transaction() as conn:  # a database altered by hand
        conn.execute("UPDATE image_locations SET meta_data = '' WHERE id = ?", (added["id"],))
    assert store.image_get(OWNER, image_id)["locations"][0]["metadata"] == {}


def test_an_id_that_cannot_name_a_data_file_takes_no_data(store):
    with pytest.raises(UnsafeNameError) as caught:
        store.write_data(OWNER, "../x", [b"abc"])
    assert (caught.value.message, caught.value.image) == (
        "image id '../x' cannot name a data file", "../x")
    assert list(store.data_path.iterdir()) == []


def test_an_unreadable_database_on_read_only_media_says_so(tmp_path):
    folder = tmp_path / "region"
    folder.mkdir()
    (folder / "images.db").write_bytes(b"not a database at all" * 50)
    with pytest.raises(ServiceError):  # in this process too
        LocalStore(folder, readonly=True).image_get_all(ADMIN)
    done = read_in_a_read_only_folder(folder)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"glancesync.errors.ServiceError: cannot open {folder / 'images.db'}: file is not a"
        " database")


def test_times_are_utc_whatever_the_local_zone(store, monkeypatch):
    monkeypatch.setenv("TZ", "Etc/GMT-5")  # five hours ahead of UTC
    time.tzset()
    try:
        before = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        image = store.image_create(OWNER, {"name": "a"})
        after = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert before <= image["created_at"] <= after
    assert image["created_at"].endswith("Z") and len(image["created_at"]) == 27


def test_the_busy_timeout_is_given_to_sqlite(tmp_path):
    with LocalStore(tmp_path / "region", busy_timeout=12.5) as local:
        assert local._connection().execute("PRAGMA busy_timeout").fetchone()[0] == 12500


def test_data_is_written_to_a_hidden_part_file_first(store):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    seen = []

    def chunks():
        yield b"abc"
        seen.extend(path.name for path in store.data_path.iterdir())

    store.write_data(OWNER, image_id, chunks())
    [part] = seen
    assert part.startswith(f".{image_id}.") and part.endswith(".part")
    assert [path.name for path in store.data_path.iterdir()] == [image_id]


def test_data_replaces_a_link_left_at_its_place(store, tmp_path):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    (store.data_path / image_id).symlink_to(outside)
    store.write_data(OWNER, image_id, [b"abc"])
    assert not (store.data_path / image_id).is_symlink()
    assert (store.data_path / image_id).read_bytes() == b"abc"
    assert outside.read_bytes() == b"keep"


def test_a_stored_write_is_logged(store, caplog):
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    with caplog.at_level(logging.DEBUG, logger="glancesync.backends.local.store"):
        store.write_data(OWNER, image_id, [b"abc"])
    assert f"stored 3 bytes for image {image_id}" in [r.getMessage() for r in caplog.records]


def test_an_image_deleted_just_before_its_upload_ends(store):
    """Another process deletes the image (and its new file) as the upload is recorded."""
    image_id = store.image_create(OWNER, {"name": "a"})["id"]
    other = LocalStore(store.path)
    begins = []

    def meanwhile(statement: str) -> None:
        # SQLite traces a statement before running it: the write lock is not taken yet.
        if statement == "BEGIN IMMEDIATE":
            begins.append(statement)
            if len(begins) == 2:  # the transaction that records the upload
                other.image_destroy(ADMIN, image_id)

    store._connection().set_trace_callback(meanwhile)
    with pytest.raises(ImageNotFoundError):
        store.write_data(OWNER, image_id, [b"abc"])
    store._connection().set_trace_callback(None)
    other.close()
    assert list(store.data_path.iterdir()) == []
    assert store.image_get(OWNER, image_id, force_show_deleted=True)["status"] == "deleted"


def test_an_invisible_image_is_logged(store, caplog):
    private = store.image_create(OWNER, {"name": "p", "visibility": "private"})["id"]
    with caplog.at_level(logging.DEBUG, logger="glancesync.backends.local.store"):
        with pytest.raises(ImageNotFoundError):
            store.image_get(OTHER, private)
    assert f"image {private} is not visible to project stranger" in [
        r.getMessage() for r in caplog.records]


def test_a_context_without_project_sees_no_private_image(store):
    private = store.image_create(OWNER, {"name": "p", "visibility": "private"})["id"]
    shared = shared_image(store, "s")
    nobody = RequestContext(None)
    for image_id in (private, shared):
        with pytest.raises(ImageNotFoundError):
            store.image_get(nobody, image_id)
    assert not store.is_image_visible(nobody, store.image_get(OWNER, shared))


def test_a_change_returns_the_live_locations_only(store):
    image_id = shared_image(store)
    kept = store.image_location_add(OWNER, image_id, {"url": "file:///kept"})
    gone = store.image_location_add(OWNER, image_id, {"url": "file:///gone"})
    store.image_location_delete(OWNER, image_id, gone["id"], "deleted")
    assert store.image_update(OWNER, image_id, {"name": "renamed"})["locations"] == [kept]
    assert store.image_get(OWNER, image_id)["locations"] == [kept]


def test_an_update_changing_nothing_keeps_the_update_time(store):
    image = store.image_create(OWNER, {"name": "a", "properties": {"k": "same"}})
    again = store.image_update(OWNER, image["id"], {"properties": {"k": "same"}})
    assert again["updated_at"] == image["updated_at"]
    assert store.image_update(OWNER, image["id"], {})["updated_at"] == image["updated_at"]


def test_a_property_set_to_none_is_null(store):
    image = store.image_create(OWNER, {"name": "a", "properties": {"k": None, "n": 3}})
    assert image["properties"] == {"k": None, "n": "3"}


def test_filters_after_an_unset_one_or_a_property_still_apply(store):
    small = store.image_create(OWNER, {"name": "small", "protected": True,
                                       "properties": {"n": "7"}})["id"]
    store.image_create(OWNER, {"name": "big"})

    def names(filters):
        return sorted(image["name"] for image in store.image_get_all(OWNER, filters=filters))

    assert names({"name": None, "owner": "someone-else"}) == []
    assert names({"n": "7", "name": "big"}) == []
    assert names({"n": "7", "name": "small"}) == ["small"]
    assert names({"protected": 2}) == ["small"]  # any true value means True
    assert store.image_get(OWNER, small)["protected"] is True


def test_a_new_property_alone_touches_the_image(store):
    image = store.image_create(OWNER, {"name": "a"})
    changed = store.image_update(OWNER, image["id"], {"properties": {"new": "v"}})
    assert changed["updated_at"] > image["updated_at"]
    revived = store.image_update(OWNER, image["id"], {"properties": {"new": "w"}})
    assert revived["updated_at"] > changed["updated_at"]


def test_a_purge_keeps_every_property_named(store):
    image = store.image_create(OWNER, {"name": "a", "properties": {"a": "1", "b": "2", "c": "3"}})
    kept = store.image_update(OWNER, image["id"], {"properties": {"a": "1", "b": "2"}},
                              purge_props=True)
    assert kept["properties"] == {"a": "1", "b": "2"}


def test_a_purge_touches_the_image_only_when_it_removes_something(store):
    image = store.image_create(OWNER, {"name": "a", "properties": {"a": "1", "b": "2"}})
    purged = store.image_update(OWNER, image["id"], {"properties": {"a": "1"}}, purge_props=True)
    assert purged["properties"] == {"a": "1"}
    assert purged["updated_at"] > image["updated_at"]
    again = store.image_update(OWNER, image["id"], {"properties": {"a": "1"}}, purge_props=True)
    assert again["updated_at"] == purged["updated_at"]


def test_a_location_added_as_deleted_is_not_shown(store):
    image_id = shared_image(store)
    store.image_location_add(OWNER, image_id, {"url": "file:///gone", "status": "deleted"})
    kept = store.image_location_add(OWNER, image_id, {"url": "file:///kept"})
    assert store.image_get(OWNER, image_id)["locations"] == [kept]


def test_the_default_busy_timeout_is_30_seconds(tmp_path):
    with LocalStore(tmp_path / "region") as local:
        assert local._connection().execute("PRAGMA busy_timeout").fetchone()[0] == 30000
