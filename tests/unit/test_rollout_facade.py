"""The release options (issue 26) through the facade, on the demo federation."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from glancesync import demo
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.facade import GlanceSync
from glancesync.image import Image


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    demo.build_federation(folder)
    return folder


class Federation:
    def __init__(self, folder: Path, template: Path) -> None:
        shutil.copytree(template, folder, dirs_exist_ok=True)
        self.config = folder / "glancesync.conf"
        self.config.write_text(self.config.read_text().replace(str(template), str(folder)))
        self.root = folder / "federation"

    def images(self, region: str) -> list[Image]:
        adapter = LocalRegionAdapter(f"master:{region}", self.root / region, demo.PROJECT)
        try:
            return adapter.list_images()
        finally:
            adapter.close()

    def add_config(self, text: str) -> None:
        self.config.write_text(self.config.read_text() + "\n" + text)


@pytest.fixture
def federation(tmp_path, template, monkeypatch) -> Federation:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    return Federation(tmp_path / "demo", template)


def facade_of(federation: Federation) -> GlanceSync:
    with open(federation.config) as stream:
        return GlanceSync(stream, progress=False)


def test_keep_image_id_per_target_and_per_region(federation):
    federation.add_config("[master:RegionB]\nkeep_image_id = false\n")
    text = federation.config.read_text().replace(
        "type = local\n", "type = local\nkeep_image_id = true\n", 1)
    federation.config.write_text(text)
    master_ids = {i.name: i.id for i in federation.images("Master")}
    with facade_of(federation) as facade:
        before = {region: sorted((i.id, i.name) for i in federation.images(region))
                  for region in ("RegionA", "RegionB")}
        dry = facade.sync(["RegionA", "RegionB"], dry_run=True)
        assert {region: sorted((i.id, i.name) for i in federation.images(region))
                for region in ("RegionA", "RegionB")} == before  # a dry run changes nothing
        described = [op.describe() for op in dry.plans["master:RegionA"].operations]
        assert any(d.endswith(f"as id {master_ids['debian-12']}") for d in described)
        assert not any(" as id " in op.describe()
                       for op in dry.plans["master:RegionB"].operations)
        result = facade.sync(["RegionA", "RegionB"])
        assert result.exit_status == 0
    region_a = {i.name: i.id for i in federation.images("RegionA")}
    assert region_a["debian-12"] == master_ids["debian-12"]
    assert region_a["cirros-machine"] == master_ids["cirros-machine"]
    region_b = {i.name: i.id for i in federation.images("RegionB")}
    assert region_b["debian-12"] != master_ids["debian-12"]
    with facade_of(federation) as facade:
        report = facade.status(["RegionA"])
    reasons = {s.name: s.reason for s in report.statuses}
    assert reasons["debian-12"].endswith("same id as the master image")


def test_validate_command_per_region_sees_its_region_and_the_local_target(federation,
                                                                          tmp_path):
    import shlex
    import sys
    seen = tmp_path / "seen"
    code = (f"import os; open({str(seen)!r}, 'a').write(os.environ['GLANCESYNC_REGION'] + ' '"
            " + os.environ['GLANCESYNC_IMAGE_NAME'] + ' '"
            " + os.environ['GLANCESYNC_TARGET_PATH'] + chr(10)); raise SystemExit("
            "os.environ['GLANCESYNC_IMAGE_NAME'] == 'debian-12')")
    federation.add_config(f"[master:RegionA]\nvalidate_command = {shlex.quote(sys.executable)}"
                          f" -c {shlex.quote(code)}\nvalidate_timeout = 120\n")
    with facade_of(federation) as facade:
        result = facade.sync(["RegionA", "RegionB"])
    lines = seen.read_text().splitlines()
    assert sorted(line.split()[1] for line in lines) == [
        "cirros-kernel", "cirros-machine", "cirros-ramdisk", "debian-12", "ubuntu-22.04"]
    assert all(line.startswith("RegionA ") for line in lines)  # RegionB validates nothing
    assert result.exit_status == 4
    line = result.plans["master:RegionA"].status_of("debian-12")
    assert line.status.value == "error_validation"
    public = {i.name for i in federation.images("RegionA") if i.visibility == "public"}
    assert "debian-12" not in public and "ubuntu-22.04" in public


def test_a_validate_command_with_unbalanced_quotes_is_refused_at_load(federation):
    from glancesync.errors import ConfigError
    federation.add_config("[master:RegionA]\nvalidate_command = boot-test 'unclosed\n")
    with pytest.raises(ConfigError, match="validate_command.*cannot be split"):
        facade_of(federation)
