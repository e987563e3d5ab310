"""How copies reach a region: the decisions of glancesync.strategy (no I/O)."""
from __future__ import annotations

import dataclasses

import pytest

from glancesync.image import Image, Provenance
from glancesync.strategy import RegionTransfer, Strategy, Transfer

POSSIBLE = RegionTransfer("auto", region="RegionA", master_region="Master",
                          same_keystone=True, same_credential=True, project_id="p-a",
                          import_methods=frozenset({"glance-direct", "glance-download"}))


def master(disk_format="qcow2", visibility="private", owner="p-master"):
    return Image(id="m-1", name="img", status="active", owner=owner, visibility=visibility,
                 size=10, checksum="c" * 32, os_hash_algo="sha512", os_hash_value="a" * 128,
                 disk_format=disk_format, container_format="bare")


def test_a_possible_server_side_copy_is_chosen():
    chosen = POSSIBLE.choose(master())
    assert chosen == Transfer(Strategy.GLANCE_DOWNLOAD, "qcow2", source_region="Master")
    assert chosen.server_side and chosen.describe() == "glance-download from Master"


def test_stream_asked_is_stream_without_a_note():
    chosen = dataclasses.replace(POSSIBLE, transfer="stream").choose(master())
    assert chosen == Transfer(Strategy.STREAM, "qcow2") and chosen.describe() == "stream"


@pytest.mark.parametrize("change, note", [
    ({"same_keystone": False}, "RegionA is not in the master's Keystone"),
    ({"import_methods": frozenset({"web-download"})}, "RegionA does not offer glance-download"),
    ({"same_credential": False}, "the region's credential cannot read the master image"),
    ({"convert_to": "raw"}, "a server-side copy keeps the source's disk format"),
])
def test_where_a_server_side_copy_is_impossible_the_image_is_streamed(change, note):
    chosen = dataclasses.replace(POSSIBLE, **change).choose(master())
    assert chosen.strategy is Strategy.STREAM and chosen.note == note
    assert chosen.describe().endswith(f"({note})")


@pytest.mark.parametrize("image, readable", [
    (master(visibility="public"), True),
    (master(visibility="community"), True),
    (master(visibility="shared"), False),
    (master(owner="p-a"), True),
    (master(), False),
])
def test_another_credential_reads_public_images_and_its_own(image, readable):
    other = dataclasses.replace(POSSIBLE, same_credential=False)
    assert other.can_read(image) is readable
    assert other.choose(image).server_side is readable


@pytest.mark.parametrize("source, wanted, expected", [
    ("qcow2", "raw", "raw"), ("raw", "qcow2", "qcow2"), ("raw", "raw", "raw"),
    ("vmdk", "qcow2", "qcow2"), ("iso", "raw", "iso"), ("aki", "qcow2", "aki"),
    ("qcow2", None, "qcow2"), (None, "raw", None),
])
def test_disk_format_of_the_copy(source, wanted, expected):
    transfer = RegionTransfer(convert_to=wanted)
    image = master(disk_format=source)
    assert transfer.disk_format(image) == expected
    assert transfer.converts(image) is (expected != source)


def test_same_format_asked_is_no_conversion_and_may_copy_server_side():
    chosen = dataclasses.replace(POSSIBLE, convert_to="qcow2").choose(master())
    assert chosen.server_side and chosen.convert_from is None


def test_a_converted_copy_is_the_same_content_by_its_record():
    source = master()
    copy = Image(id="r-1", name="img", status="active", disk_format="raw",
                 checksum="d" * 32, provenance=Provenance.of(source, "Master"))
    to_raw = RegionTransfer(convert_to="raw")
    assert to_raw.same_copy(source, copy)
    assert not RegionTransfer().same_copy(source, copy)  # unconverted: hashes differ
    changed = dataclasses.replace(source, os_hash_value="b" * 128)
    assert not to_raw.same_copy(changed, copy)
    assert not to_raw.same_copy(source, dataclasses.replace(copy, provenance=None))
    assert not to_raw.same_copy(source, dataclasses.replace(copy, disk_format="qcow2"))


def test_a_master_without_checksum_is_streamed_as_it_is():
    hashless = dataclasses.replace(master(), checksum=None, os_hash_algo=None,
                                   os_hash_value=None)
    transfer = dataclasses.replace(POSSIBLE, convert_to="raw")
    assert transfer.disk_format(hashless) == "qcow2" and not transfer.converts(hashless)
    chosen = transfer.choose(hashless)
    assert chosen.strategy is Strategy.STREAM
    assert chosen.note == "the master image has no checksum: only the bytes sent can be verified"
