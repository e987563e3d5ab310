"""The image model's shared primitives: the metadata diff, provenance."""
from __future__ import annotations

import datetime

from glancesync.image import (MARK_ORPHANED, MARK_RENAMED, PROVENANCE_HASH,
                              PROVENANCE_IMAGE_ID, PROVENANCE_REGION, PROVENANCE_TIME, Image,
                              Provenance, content_hash, is_user_property, metadata_diff,
                              utc_stamp)


def image(**kw) -> Image:
    return Image(id="i1", name="cirros", status="active", visibility="private",
                 min_ram=0, properties={"a": "1", "b": "2", "c": "3"}, **kw)


def test_diff_sets_what_differs_and_removes_what_is_unwanted():
    changes, remove = metadata_diff(
        image(), {"visibility": "public", "min_ram": 0, "name": None},
        {"a": "1", "b": "20", "c": None, "d": "4", "e": None})
    assert changes == {"b": "20", "d": "4", "visibility": "public"}
    assert list(changes) == ["b", "d", "visibility"]  # properties first, in order
    assert remove == ["c"]  # "e" is absent already


def test_diff_of_an_image_that_already_matches_is_empty():
    assert metadata_diff(image(), {"visibility": "private", "min_ram": 0},
                         {"a": "1", "z": None}) == ({}, [])


# --- provenance --------------------------------------------------------------------

def master_image(**kw) -> Image:
    fields = dict(id="m1", name="cirros", status="active", checksum="AB12",
                  os_hash_algo="SHA512", os_hash_value="CD34")
    fields.update(kw)
    return Image(**fields)


def test_content_hash_prefers_the_multihash_then_md5():
    assert content_hash(master_image()) == "sha512:cd34"
    assert content_hash(master_image(os_hash_algo=None, os_hash_value=None)) == "md5:ab12"
    assert content_hash(master_image(os_hash_algo=None, os_hash_value=None,
                                     checksum=None)) is None


def test_provenance_properties_round_trip_and_stamp():
    record = Provenance.of(master_image(), "Master")
    assert record.copied_at is None and PROVENANCE_TIME not in record.as_properties()
    when = datetime.datetime(2026, 11, 30, 12, 0, 5, tzinfo=datetime.timezone.utc)
    stamped = record.stamped(when)
    assert stamped.as_properties() == {
        PROVENANCE_IMAGE_ID: "m1", PROVENANCE_REGION: "Master",
        PROVENANCE_HASH: "sha512:cd34", PROVENANCE_TIME: "2026-11-30T12:00:05Z"}
    assert Provenance.from_properties(stamped.as_properties()) == stamped
    assert Provenance.from_properties({PROVENANCE_REGION: "Master"}) is None


def test_provenance_is_never_a_user_property():
    props = Provenance.of(master_image(), "Master").stamped().as_properties()
    assert not any(is_user_property(key) for key in props)
    # Glance lists properties at the top level; the local store under "properties".
    for data in ({"id": "r1", "name": "cirros", "status": "active", "type": "x", **props},
                 {"id": "r1", "name": "cirros", "status": "active",
                  "properties": {"type": "x", **props}}):
        copy = Image.from_dict(data)
        assert copy.properties == {"type": "x"}
        assert copy.provenance == Provenance.from_properties(props)
        assert {k: v for k, v in copy.to_dict().items() if k in props} == props


def test_is_copy_of_needs_the_same_id_and_the_same_content():
    record = Provenance.of(master_image(), "Master")
    assert record.is_copy_of(master_image())
    assert not record.is_copy_of(master_image(id="m2"))
    assert not record.is_copy_of(master_image(os_hash_value="EE"))
    assert not Provenance("m1").is_copy_of(master_image())


# --- lifecycle marks -------------------------------------------------------------------

def test_lifecycle_marks_are_kept_apart_from_properties_and_provenance():
    props = Provenance.of(master_image(), "Master").stamped().as_properties()
    marks = {MARK_ORPHANED: "2030-01-01T00:00:00Z", MARK_RENAMED: "2029-12-31T23:00:00Z"}
    for data in ({"id": "r1", "name": "c.old", "status": "active", "type": "x", **props,
                  **marks},
                 {"id": "r1", "name": "c.old", "status": "active",
                  "properties": {"type": "x", **props, **marks}}):
        copy = Image.from_dict(data)
        assert copy.properties == {"type": "x"}
        assert copy.marks == marks
        assert copy.provenance == Provenance.from_properties(props)
        assert {k: v for k, v in copy.to_dict().items() if k in marks} == marks
    assert not any(is_user_property(key) for key in marks)
    # An image without provenance may carry marks (a local build renamed NAME.old).
    assert Image.from_dict({"id": "r2", "name": "b.old", "status": "active",
                            MARK_RENAMED: "2030-01-01T00:00:00Z"}).marks == {
        MARK_RENAMED: "2030-01-01T00:00:00Z"}


def test_utc_stamp_writes_utc_whatever_the_zone():
    paris = datetime.timezone(datetime.timedelta(hours=1))
    assert utc_stamp(datetime.datetime(2030, 1, 1, 13, 0, tzinfo=paris)) == "2030-01-01T12:00:00Z"
    assert utc_stamp(datetime.datetime(2030, 1, 1, 12, 0)) == "2030-01-01T12:00:00Z"
