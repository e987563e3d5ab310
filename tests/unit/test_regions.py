"""Region names: parsing, expansion, ignore_regions, preferable_order."""
from __future__ import annotations

import io
import textwrap

import pytest

from glancesync.config import Config, load_config
from glancesync.errors import RegionNotFoundError, UsageError
from glancesync.regions import RegionRef, order_regions, parse_region
from glancesync.regions import resolve_regions as resolve_refs

CATALOGS = {
    "master": ["Master", "RegionA", "RegionB", "RegionTest", "RegionZ"],
    "other": ["RegionC", "RegionD"],
}


def make_config(preferable_order: str = "", master_ignore: str = "",
                other_ignore: str = "") -> Config:
    text = textwrap.dedent(f"""
        [main]
        master_region = Master
        preferable_order = {preferable_order}
        [master]
        cloud = c1
        ignore_regions = {master_ignore}
        [other]
        cloud = c2
        ignore_regions = {other_ignore}
    """)
    return load_config(io.StringIO(text), environ={})


def resolve_regions(*args) -> list[str]:
    """The resolved references, as ``target:name`` strings."""
    refs = resolve_refs(*args)
    assert all(isinstance(ref, RegionRef) for ref in refs)
    return [str(ref) for ref in refs]


class Lister:
    """A region lister over fixed catalogs that counts its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, target: str) -> list[str]:
        self.calls.append(target)
        return list(CATALOGS[target])


@pytest.mark.parametrize("text, expected", [
    ("Spain", ("master", "Spain")),
    ("master:Spain", ("master", "Spain")),
    ("other:", ("other", None)),
    ("other:RegionC", ("other", "RegionC")),
    (" other : RegionC ", ("other", "RegionC")),
    ("master:", ("master", None)),
])
def test_parse_region(text, expected):
    assert parse_region(text) == expected


@pytest.mark.parametrize("text", ["", ":", ":RegionA", "  "])
def test_parse_region_invalid(text):
    with pytest.raises(UsageError, match="expected Region"):
        parse_region(text)


def test_no_argument_is_every_master_region_but_the_master():
    lister = Lister()
    assert resolve_regions([], make_config(), lister) == [
        "master:RegionA", "master:RegionB", "master:RegionTest", "master:RegionZ"]
    assert lister.calls == ["master"]


def test_ignore_regions_bare_or_qualified():
    config = make_config(master_ignore="RegionTest, master:RegionZ", other_ignore="RegionC")
    assert resolve_regions(["master:", "other:"], config, Lister()) == [
        "master:RegionA", "master:RegionB", "other:RegionD"]


def test_other_target_keeps_all_its_regions():
    assert resolve_regions(["other:"], make_config(), Lister()) == [
        "other:RegionC", "other:RegionD"]


def test_explicit_list_keeps_given_order_and_allows_ignored_and_master():
    config = make_config(preferable_order="RegionA RegionB", master_ignore="RegionTest")
    assert resolve_regions(["RegionZ", "other:RegionD", "RegionTest", "Master", "RegionA"],
                           config, Lister()) == [
        "master:RegionZ", "other:RegionD", "master:RegionTest", "master:Master",
        "master:RegionA"]


def test_preferable_order_after_expansion():
    config = make_config(preferable_order="other:RegionD, RegionB, Unknown, nope:X, RegionZ")
    assert resolve_regions(["master:", "other:"], config, Lister()) == [
        "other:RegionD", "master:RegionB", "master:RegionZ",
        "master:RegionA", "master:RegionTest", "other:RegionC"]


def test_preferable_order_applies_to_a_mixed_list():
    config = make_config(preferable_order="other:RegionC, RegionZ")
    assert resolve_regions(["RegionA", "other:"], config, Lister()) == [
        "other:RegionC", "master:RegionA", "other:RegionD"]


def test_duplicates_removed():
    lister = Lister()
    assert resolve_regions(["RegionA", "master:RegionA", "master:", "RegionB"],
                           make_config(), lister) == [
        "master:RegionA", "master:RegionB", "master:RegionTest", "master:RegionZ"]
    assert lister.calls == ["master"]  # each catalog read once


def test_unknown_region_names_target_and_existing_regions():
    with pytest.raises(RegionNotFoundError) as info:
        resolve_regions(["other:RegionA"], make_config(), Lister())
    message = str(info.value)
    assert message == ("target 'other' has no region 'RegionA' with an image service;"
                       " its regions are RegionC, RegionD")
    assert info.value.region == "other:RegionA"


def test_references_are_resolved_and_checked_too():
    assert resolve_regions([RegionRef("other", "RegionD"), "RegionA"], make_config(),
                           Lister()) == ["other:RegionD", "master:RegionA"]
    with pytest.raises(RegionNotFoundError, match="'RegionQ'"):
        resolve_regions([RegionRef("master", "RegionQ")], make_config(), Lister())


@pytest.mark.parametrize("text, expected", [
    ("Spain", RegionRef("master", "Spain")),
    (" other : RegionC ", RegionRef("other", "RegionC")),
    (RegionRef("t", "R"), RegionRef("t", "R")),
])
def test_region_ref_parse(text, expected):
    ref = RegionRef.parse(text)
    assert ref == expected and str(ref) == f"{expected.target}:{expected.name}"


def test_region_ref_of_a_whole_target_is_refused():
    with pytest.raises(UsageError, match="names a target"):
        RegionRef.parse("other:")


def test_unknown_target_lists_targets():
    lister = Lister()
    with pytest.raises(RegionNotFoundError, match="master, other"):
        resolve_regions(["ghost:RegionA"], make_config(), lister)
    assert lister.calls == []


def test_target_without_image_regions():
    with pytest.raises(RegionNotFoundError, match=r"\(none\)"):
        resolve_regions(["other:X"], make_config(), lambda target: [])
    assert resolve_regions(["other:"], make_config(), lambda target: []) == []


def test_order_regions_stable_for_unlisted():
    refs = [RegionRef.parse(name) for name in ("t:B", "master:A", "t:C", "master:D")]
    assert [str(ref) for ref in order_regions(refs, ["D", "t:C"])] == [
        "master:D", "t:C", "t:B", "master:A"]
