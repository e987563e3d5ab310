"""The image model's shared primitives: the metadata diff."""
from __future__ import annotations

from glancesync.image import Image, metadata_diff


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
