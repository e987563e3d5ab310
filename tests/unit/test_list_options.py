"""List options: one parser for all, names with blanks, entries that match nothing.

Issue 10, case 2: ``ignore_regions = Test Lab, eu-west-1`` must ignore the
region ``Test Lab``; quotes may hold commas; every entry of
``preferable_order``, ``ignore_regions`` and ``forcesyncs`` that matches
nothing is warned about, once per run. Old files that separated region
names with blanks keep working, with a warning; lists of ids, properties
and checksums still accept blanks as separators.
"""
from __future__ import annotations

import io
import logging
import textwrap
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.config import load_config
from glancesync.errors import ConfigError
from glancesync.facade import GlanceSync
from glancesync.options import split_list
from glancesync.regions import resolve_regions

PROJECT = "lab-project"


@pytest.mark.parametrize("text, blanks, expected", [
    ("Test Lab, eu-west-1", False, ["Test Lab", "eu-west-1"]),
    ("  Test Lab ,eu-west-1,  ", False, ["Test Lab", "eu-west-1"]),
    ('"Test Lab", eu-west-1', False, ["Test Lab", "eu-west-1"]),
    ("'Lab, old' , \"it's\", x", False, ["Lab, old", "it's", "x"]),
    ('" padded ", O\'Brien', False, [" padded ", "O'Brien"]),
    ("a,,a, b,a", False, ["a", "b"]),
    ('"", x', False, ["x"]),
    ("id-1 id-2,id-3\tid-4", True, ["id-1", "id-2", "id-3", "id-4"]),
    ('"odd key" other', True, ["odd key", "other"]),
    ("", True, []),
])
def test_split_list(text, blanks, expected):
    assert split_list(text, blanks=blanks) == expected


@pytest.mark.parametrize("text", ['"Test Lab, eu-west-1', "'a' b, c"])
def test_split_list_refuses_broken_quotes(text):
    with pytest.raises(ValueError):
        split_list(text)


def load(text: str, **kw):
    return load_config(io.StringIO(textwrap.dedent(text)), environ={}, **kw)


def test_region_lists_keep_blanks_inside_names():
    config = load("""
        [main]
        master_region = Master
        preferable_order = Test Lab, "eu-west-1", other:Lab 2
        [master]
        cloud = c
        ignore_regions = Test Lab, eu-west-1
        forcesyncs = id-1 id-2, id-3
        metadata_set = nid type, sdc_aware
        dontupdate = aaaa bbbb,cccc
    """)
    assert config.main.preferable_order == ["Test Lab", "eu-west-1", "other:Lab 2"]
    master = config.target("master")
    assert master.ignore_regions == ["Test Lab", "eu-west-1"]
    assert master.forcesyncs == {"id-1", "id-2", "id-3"}  # blanks still separate ids
    assert master.metadata_set == {"nid", "type", "sdc_aware"}
    assert master.dontupdate == {"aaaa", "bbbb", "cccc"}


def test_an_override_holds_a_quoted_name():
    config = load("[main]\nmaster_region = M\n[master]\ncloud = c\n",
                  overrides=['master.ignore_regions = "Lab, old", Test Lab'])
    assert config.target("master").ignore_regions == ["Lab, old", "Test Lab"]


def test_an_unclosed_quote_is_a_config_error_naming_the_option():
    with pytest.raises(ConfigError) as caught:
        load('[main]\nmaster_region = M\n[master]\ncloud = c\nignore_regions = "Test Lab\n')
    assert caught.value.section == "master" and caught.value.option == "ignore_regions"
    assert "not closed" in str(caught.value)


# --- resolution -----------------------------------------------------------------

CATALOG = ["Master", "Test Lab", "eu-west-1", "prod", "Lab"]


def resolve(config, *args, warnings=None) -> list[str]:
    warn = warnings.append if warnings is not None else None
    return [str(ref) for ref in resolve_regions(list(args), config,
                                                lambda target: list(CATALOG), warn)]


def config_with(ignore: str = "", order: str = ""):
    return load(f"""
        [main]
        master_region = Master
        preferable_order = {order}
        [master]
        cloud = c
        ignore_regions = {ignore}
    """)


def test_a_region_name_with_a_blank_is_ignored():
    warnings: list[str] = []
    assert resolve(config_with("Test Lab, eu-west-1"), warnings=warnings) == [
        "master:prod", "master:Lab"]
    assert warnings == []


def test_preferable_order_names_regions_with_blanks():
    assert resolve(config_with(order="prod, Test Lab")) == [
        "master:prod", "master:Test Lab", "master:eu-west-1", "master:Lab"]


def test_entries_matching_nothing_are_warned_naming_the_option_and_entry():
    warnings: list[str] = []
    config = config_with(ignore="Tset Lab, master:prod, other:X", order="Nowhere, ghost:Y")
    assert resolve(config, warnings=warnings) == [
        "master:Test Lab", "master:eu-west-1", "master:Lab"]
    assert any("ignore_regions of target master: 'Tset Lab' matches no region" in w
               for w in warnings)
    assert any("ignore_regions of target master: 'other:X'" in w for w in warnings)
    assert any("preferable_order of [main]: 'Nowhere' matches no region" in w
               for w in warnings)
    assert any("preferable_order of [main]: 'ghost:Y'" in w for w in warnings)
    assert len(warnings) == 4


def test_an_old_blank_separated_list_still_works_with_a_warning():
    warnings: list[str] = []
    assert resolve(config_with("prod eu-west-1", order="Lab Master"),
                   warnings=warnings) == ["master:Lab", "master:Test Lab"]
    assert len(warnings) == 2
    assert all("separate region names with commas" in w for w in warnings)


# --- a run: warned once, and forcesyncs ----------------------------------------------

def make_region(root: Path, name: str) -> None:
    adapter = LocalRegionAdapter(f"master:{name}", root / name, PROJECT, create=True)
    adapter.ensure_exists()
    adapter.close()


@pytest.fixture
def lab(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    root = tmp_path / "regions"
    for name in ("Master", "Test Lab", "eu-west-1", "prod"):
        make_region(root, name)
    master = LocalRegionAdapter("master:Master", root / "Master", PROJECT)
    image = master.create_image("base", visibility="public", disk_format="raw",
                                container_format="bare")
    master.upload_data(image.id, [b"base" * 100], 400)
    master.close()
    config = tmp_path / "glancesync.conf"
    config.write_text(textwrap.dedent(f"""
        [main]
        master_region = Master
        run_dir = {tmp_path / "runs"}
        [master]
        type = local
        path = {root}
        project = {PROJECT}
        ignore_regions = Test Lab, eu-west-1, Tset Lab
        forcesyncs = 00000000-0000-0000-0000-00000000dead, {image.id}
    """))
    return config


def test_a_run_warns_once_about_each_entry_matching_nothing(lab, caplog):
    caplog.set_level(logging.WARNING, logger="glancesync")
    with open(lab) as stream, GlanceSync(stream, progress=False) as gs:
        assert gs.get_regions() == ["prod"]
        result = gs.sync()
        assert result.exit_status == 0 and list(result.results) == ["master:prod"]
        gs.status()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings.count("ignore_regions of target master: 'Tset Lab' matches no"
                          " region; the regions are Master, Test Lab, eu-west-1,"
                          " prod") == 1
    unknown = [w for w in warnings if "00000000-0000-0000-0000-00000000dead" in w]
    assert unknown == ["forcesyncs of target master: 00000000-0000-0000-0000-00000000dead"
                       " matches no image of the master region"]
