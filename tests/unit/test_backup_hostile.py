"""Backups that are malformed, forged or meant for another region (issue 15, case 9).

Every line is checked before anything changes, in a dry run as in a real
restore; a backup recorded for another region is refused unless forced,
and then region-specific ids are not carried; only the project's own
images are touched.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from glancesync import demo
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import ConfigError, UsageError
from glancesync.facade import GlanceSync
from glancesync.report import MAX_BACKUP_LINE

BIN = Path(sys.executable).parent
FOREIGN = "someone-else"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The demo federation, synchronised, with a public image of another project."""
    folder = tmp_path_factory.mktemp("backups")
    config = demo.build_federation(folder)
    theirs = LocalRegionAdapter("master:RegionB", folder / "federation" / "RegionB", FOREIGN,
                                is_admin=False)
    image = theirs.create_image("their-public", visibility="public", disk_format="raw",
                                container_format="bare", properties={"owner_note": "theirs"})
    theirs.upload_data(image.id, [b"theirs"], 6)
    theirs.close()
    with pytest.MonkeyPatch.context() as patch, open(config) as stream, \
            GlanceSync(stream, progress=False) as gs:
        patch.setenv("GLANCESYNC_LOCK_DIR", str(folder / "locks"))
        result = gs.sync(["RegionA", "RegionB"])
        assert result.exit_status == 0
    return folder


class Fed:
    def __init__(self, folder: Path, template: Path) -> None:
        shutil.copytree(template, folder)
        self.folder = folder
        self.config = folder / "glancesync.conf"
        self.config.write_text(self.config.read_text().replace(str(template), str(folder)))
        with open(self.config) as stream:
            self.gs = GlanceSync(stream, progress=False)

    def adapter(self, region: str, project: str = demo.PROJECT) -> LocalRegionAdapter:
        return LocalRegionAdapter(f"master:{region}", self.folder / "federation" / region,
                                  project, is_admin=project == demo.PROJECT)

    def snapshot(self) -> dict[str, list[tuple]]:
        result = {}
        for region in ("RegionA", "RegionB"):
            adapter = self.adapter(region)
            result[region] = sorted((i.id, i.name, i.visibility, i.min_ram, i.protected,
                                     tuple(sorted(i.properties.items())))
                                    for i in adapter.list_images())
            adapter.close()
        return result

    def named(self, region: str, name: str):
        adapter = self.adapter(region)
        try:
            return next(i for i in adapter.list_images() if i.name == name)
        finally:
            adapter.close()

    def update(self, region: str, name: str, changes: dict, project: str = demo.PROJECT):
        image = self.named(region, name)
        adapter = self.adapter(region, project)
        adapter.update_image(image.id, changes)
        adapter.close()


@pytest.fixture
def fed(tmp_path, template, monkeypatch) -> Fed:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Fed(tmp_path / "fed", template)
    yield made
    made.gs.close()


def backup(fed: Fed, region: str) -> Path:
    return fed.gs.backup_glancemetadata_region(region, path=fed.folder / "saves")


def good_line(fed: Fed) -> dict:
    path = backup(fed, "RegionB")
    return json.loads(path.read_text().splitlines()[0])


# --- every line checked, in a dry run too ------------------------------------------------

def variants(base: dict) -> list[tuple[str, object]]:
    """(what, line): JSON lines of the wrong shape, each beside a valid line."""
    def with_(**changes):
        return {**base, **changes}

    def props(**changes):
        return {**base, "properties": {**base["properties"], **changes}}

    return [
        ("a list", []), ("a string", "x"), ("a number", 1), ("null", None), ("true", True),
        ("no id", {k: v for k, v in base.items() if k != "id"}),
        ("no properties", {k: v for k, v in base.items() if k != "properties"}),
        ("name a number", with_(name=1)), ("id an object", with_(id={})),
        ("id empty", with_(id="")), ("name too long", with_(name="x" * 256)),
        ("properties a list", with_(properties=[])),
        ("property an object", props(nid={"a": 1})), ("property a number", props(nid=1)),
        ("property null", props(nid=None)), ("property name empty", props(**{"": "x"})),
        ("visibility unknown", with_(visibility="bogus")),
        ("min_ram a string", with_(min_ram="x")), ("min_ram negative", with_(min_ram=-1)),
        ("min_ram a boolean", with_(min_ram=True)), ("min_ram huge", with_(min_ram=2 ** 40)),
        ("min_disk a float", with_(min_disk=1.5)),
        ("protected a string", with_(protected="yes")),
        ("region empty", with_(region="")), ("region a list", with_(region=["x"])),
        ("a core field as property", props(id="x")),
        ("a provenance property", props(**{"glancesync.master_image_id": "forged"})),
        ("an os_glance property", props(os_glance_importing_to_stores="x")),
    ]


def raw_variants() -> list[tuple[str, bytes]]:
    return [
        ("not JSON", b"not json"), ("cut", b'{"name": "x", "id": '),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
        ("huge number", b'{"name": "x", "id": "y", "properties": {}, "size": ' + b"9" * 5000
         + b"}"),
        ("NaN", b'{"name": "x", "id": "y", "properties": {"a": NaN}}'),
        ("not UTF-8", '{"name": "caf\u00e9", "id": "y", "properties": {}}'.encode("latin-1")),
        ("too long", b'{"name": "' + b"x" * MAX_BACKUP_LINE + b'"}'),
    ]


def write_lines(path: Path, first: dict, bad: bytes) -> Path:
    path.write_bytes(json.dumps(first).encode() + b"\n" + bad + b"\n")
    return path


@pytest.mark.parametrize("dry_run", [True, False])
def test_every_malformed_line_is_refused_before_any_change(fed, tmp_path, dry_run):
    base = good_line(fed)
    fed.update("RegionB", base["name"], {"nid": "changed"})  # the restore has work to do
    before = fed.snapshot()
    cases = [(what, json.dumps(line).encode()) for what, line in variants(base)]
    cases += raw_variants()
    for what, bad in cases:
        path = write_lines(tmp_path / "bad.jsonl", base, bad)
        with pytest.raises(ConfigError, match=r"line 2\b") as info:
            fed.gs.restore_backup("RegionB", path, dry_run=dry_run)
        assert str(path) in str(info.value), what
        assert len(str(info.value)) < 600, what
        assert fed.snapshot() == before, what


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "folder"])
def test_a_backup_that_is_no_file_is_refused_without_hanging(fed, tmp_path, kind):
    path = {"fifo": tmp_path / "fifo", "/dev/zero": Path("/dev/zero"), "folder": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(UsageError, match="cannot read the backup file"):
        fed.gs.restore_backup("RegionB", path, dry_run=True)


def test_the_script_prints_one_line_for_a_malformed_backup(fed, tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", good_line(fed), b'{"id": "x", "name": "y",'
                       b' "properties": {"k": {"nested": 1}}}')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
    env["GLANCESYNC_LOCK_DIR"] = str(tmp_path / "locks")
    for extra in ([], ["--dry-run"]):
        done = subprocess.run([str(BIN / "glancesync-backup"), "--config-file",
                               str(fed.config), "--restore", str(path), "RegionB", *extra],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert "line 2: properties.k: {'nested': 1} is not of type 'string'" in done.stderr


# --- another region's backup -----------------------------------------------------------

def test_a_backup_of_another_region_is_refused_unless_forced(fed):
    saved = backup(fed, "RegionB")
    kernel_a = fed.named("RegionA", "cirros-kernel").id
    kernel_b = fed.named("RegionB", "cirros-kernel").id
    assert kernel_a != kernel_b
    assert fed.named("RegionA", "cirros-machine").properties["kernel_id"] == kernel_a
    fed.update("RegionA", "ubuntu-22.04", {"nid": "changed"})
    before = fed.snapshot()
    for dry_run in (True, False):
        with pytest.raises(UsageError, match="recorded for region master:RegionB, not"
                                             " master:RegionA.*--force"):
            fed.gs.restore_backup("RegionA", saved, dry_run=dry_run)
    assert fed.snapshot() == before

    changed = fed.gs.restore_backup("RegionA", saved, force=True)
    ubuntu = fed.named("RegionA", "ubuntu-22.04")
    assert changed == [ubuntu.id] and ubuntu.properties["nid"] == "101"
    machine = fed.named("RegionA", "cirros-machine")  # its AMI ids still name RegionA's images
    assert machine.properties["kernel_id"] == kernel_a
    assert machine.properties["ramdisk_id"] == fed.named("RegionA", "cirros-ramdisk").id


def test_a_backup_without_region_is_refused_unless_forced(fed, tmp_path):
    line = {k: v for k, v in good_line(fed).items() if k != "region"}
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(UsageError, match="recorded for region None"):
        fed.gs.restore_backup("RegionB", path, dry_run=True)
    assert fed.gs.restore_backup("RegionB", path, dry_run=True, force=True) == []


def test_a_backup_mixing_regions_is_refused(fed, tmp_path):
    a, b = backup(fed, "RegionA"), backup(fed, "RegionB")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(a.read_text() + b.read_text())
    with pytest.raises(UsageError, match="recorded for region master:RegionA, not"
                                         " master:RegionB"):
        fed.gs.restore_backup("RegionB", mixed)


# --- only the project's own images --------------------------------------------------------

def test_a_restore_never_changes_another_projects_image(fed, caplog):
    saved = backup(fed, "RegionB")
    assert "their-public" in saved.read_text()  # saved: it is public in the region
    fed.update("RegionB", "their-public", {"owner_note": "changed by its owner",
                                           "visibility": "shared"}, project=FOREIGN)
    before = fed.snapshot()
    for dry_run in (True, False):
        assert fed.gs.restore_backup("RegionB", saved, dry_run=dry_run) == []
    assert fed.snapshot() == before
    assert "their-public" in caplog.text and "belongs to another project" in caplog.text
