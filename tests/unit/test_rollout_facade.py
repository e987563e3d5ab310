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
