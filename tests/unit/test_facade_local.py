"""The ``GlanceSync`` facade on the demo federation of local folder regions.

``glancesync.demo.build_federation`` makes a master region (seven images:
an AMI triple, two base images, an obsolete and a private one) and three
destinations: RegionA empty, RegionB partly synchronised, RegionC holding a
conflicting ``debian-12`` that its configuration renames. The same methods
as the integration tests, in a fraction of a second, with no network.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from glancesync import demo
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import ExitStatus, ImageNotFoundError, RegionNotFoundError, UsageError
from glancesync.facade import GlanceSync
from glancesync.image import Image, utc_stamp
from glancesync.plan import Status

REGIONS = ("Master", "RegionA", "RegionB", "RegionC")
FOREIGN = "someone-else"
SYNCHRONISED = ["cirros-kernel", "cirros-machine", "cirros-ramdisk", "debian-12",
                "ubuntu-22.04"]


class Federation:
    """The demo federation's folders, reached with adapters of our own."""

    def __init__(self, folder: Path, template: Path) -> None:
        # Building the demo hashes megabytes: copy a federation built once.
        shutil.copytree(template, folder, dirs_exist_ok=True)
        self.config = folder / "glancesync.conf"
        self.config.write_text(self.config.read_text().replace(str(template), str(folder)))
        self.root = folder / "federation"

    def adapter(self, region: str, project: str = demo.PROJECT) -> LocalRegionAdapter:
        return LocalRegionAdapter(f"master:{region}", self.root / region, project,
                                  is_admin=project == demo.PROJECT)

    def add(self, region: str, name: str, data: bytes | None, *,
            project: str = demo.PROJECT, visibility: str = "public",
            properties: dict[str, str] | None = None) -> Image:
        adapter = self.adapter(region, project)
        try:
            image = adapter.create_image(name, visibility=visibility, disk_format="raw",
                                         container_format="bare", properties=properties)
            if data is not None:
                image = adapter.upload_data(image.id, [data], len(data))
            return image
        finally:
            adapter.close()

    def images(self, region: str) -> list[Image]:
        """Every image of ``region`` (the admin's listing)."""
        adapter = self.adapter(region)
        try:
            return adapter.list_images()
        finally:
            adapter.close()

    def get(self, region: str, image_id: str) -> Image:
        adapter = self.adapter(region)
        try:
            return adapter.get_image(image_id)
        finally:
            adapter.close()

    def named(self, region: str, name: str) -> list[Image]:
        return [i for i in self.images(region) if i.name == name]

    def snapshot(self) -> dict[str, list[tuple]]:
        """Everything a run could change, per region."""
        return {region: sorted((i.id, i.name, i.status, i.checksum, i.visibility,
                                i.owner, i.min_ram, i.protected,
                                tuple(sorted(i.properties.items())))
                               for i in self.images(region))
                for region in REGIONS}


def data(seed: str, size: int = 2048) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    demo.build_federation(folder)
    return folder


@pytest.fixture
def federation(tmp_path, template) -> Federation:
    return Federation(tmp_path / "demo", template)


@pytest.fixture
def facade(federation, monkeypatch) -> Iterator[GlanceSync]:
    # Region locks are per user and keyed by region name: other runs on this
    # machine may sync their own "master:RegionA" at the same time.
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(federation.root.parent / "locks"))
    with open(federation.config) as stream, GlanceSync(stream, progress=False) as made:
        yield made


# --- regions and reading ----------------------------------------------------------

def test_get_regions(facade):
    assert facade.get_regions() == ["RegionA", "RegionB", "RegionC"]
    assert facade.get_regions(omit_master_region=False) == ["Master", "RegionA", "RegionB",
                                                            "RegionC"]
    assert facade.resolve_regions(["RegionC", "master:RegionA"]) == [
        "master:RegionC", "master:RegionA"]
    with pytest.raises(RegionNotFoundError, match="configured targets are master"):
        facade.get_regions(target="other")
    with pytest.raises(RegionNotFoundError, match="RegionA, RegionB, RegionC"):
        facade.resolve_regions(["Atlantis"])


def test_get_images_region(federation, facade):
    hidden = federation.add("RegionB", "theirs-private", data("h"), project=FOREIGN,
                            visibility="private")
    shown = federation.add("RegionB", "theirs-public", data("s"), project=FOREIGN)
    own = federation.add("RegionB", "own-private", data("o"), visibility="private")

    listed = {i["id"]: i for i in facade.get_images_region("RegionB")}

    assert hidden.id in {i.id for i in federation.images("RegionB")}
    assert hidden.id not in listed
    assert shown.id in listed and own.id in listed
    assert sorted(i["name"] for i in listed.values()) == [
        "centos-7", "own-private", "theirs-public", "ubuntu-22.04"]
    ubuntu = next(i for i in listed.values() if i["name"] == "ubuntu-22.04")
    assert (ubuntu["nid"], ubuntu["is_public"], ubuntu["owner"]) == ("100", True, demo.PROJECT)
    assert facade.get_images_region("RegionA") == []


def test_print_images_master_region(facade, capsys):
    facade.print_images_master_region()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Master region Master: images to synchronise"
    assert [line.split()[0] for line in lines[1:]] == SYNCHRONISED
    ubuntu = next(line for line in lines if "ubuntu-22.04" in line)
    assert "nid=101" in ubuntu and "public" in ubuntu


def test_print_images_markers(federation, facade):
    same = data("same")
    federation.add("Master", "hidden", same, visibility="private")
    federation.add("Master", "changed", data("master-bytes"))
    federation.add("Master", "props", same, properties={"type": "baseimage"})
    federation.add("Master", "fine", same, properties={"type": "baseimage"})
    made = {
        "+": federation.add("RegionA", "only-here", same),
        "+$": federation.add("RegionA", "fine-queued", None),
        "-": federation.add("RegionA", "hidden", same),
        "!": federation.add("RegionA", "changed", data("regional-bytes")),
        "#": federation.add("RegionA", "props", same, properties={"type": "other"}),
        "": federation.add("RegionA", "fine", same, properties={"type": "baseimage"}),
    }
    made["#!"] = federation.add("RegionA", "debian-12", data("x"), visibility="private")

    out = io.StringIO()
    facade.print_images("RegionA", file=out)
    lines = out.getvalue().splitlines()

    assert lines[0] == "Region master:RegionA:"
    assert len(lines) == 1 + len(made)
    for marks, image in made.items():
        [line] = [line for line in lines if image.id in line]
        assert line[:3].strip() == "".join(sorted(marks, key="+$-!#".index))


def test_print_images_reports_an_empty_region(facade, capsys):
    facade.print_images("RegionA")
    assert capsys.readouterr().out == "Region master:RegionA:\n"


# --- backups ------------------------------------------------------------------------

def test_backup_and_restore(federation, facade, tmp_path):
    theirs = federation.add("RegionB", "theirs", data("t"), project=FOREIGN,
                            visibility="private")
    written = facade.backup_glancemetadata_region("RegionB", path=tmp_path / "saves")

    records = [json.loads(line) for line in written.read_text().splitlines()]
    assert written.name == "backup_master_RegionB.jsonl"
    assert written.parent.parent == tmp_path / "saves"
    assert [r["name"] for r in records] == ["centos-7", "ubuntu-22.04"]
    assert theirs.id not in {r["id"] for r in records}
    [ubuntu] = [r for r in records if r["name"] == "ubuntu-22.04"]
    assert ubuntu["properties"] == {"type": "baseimage", "nid": "100", "os_distro": "ubuntu"}
    assert ubuntu["region"] == "master:RegionB" and ubuntu["is_public"] is True

    adapter = federation.adapter("RegionB")
    adapter.update_image(ubuntu["id"], {"nid": "999", "visibility": "private",
                                        "min_ram": 64}, ["os_distro"])
    adapter.close()
    changed = federation.snapshot()

    assert facade.restore_backup("RegionB", written, dry_run=True) == [ubuntu["id"]]
    assert federation.snapshot() == changed

    assert facade.restore_backup("RegionB", written) == [ubuntu["id"]]
    restored = federation.get("RegionB", ubuntu["id"])
    assert restored.properties == ubuntu["properties"]
    assert (restored.visibility, restored.min_ram) == ("public", 0)
    assert facade.restore_backup("RegionB", written) == []


def test_backup_of_every_region(facade, tmp_path):
    written = facade.backup(path=tmp_path)
    assert [p.name for p in written] == [f"backup_master_Region{x}.jsonl" for x in "ABC"]
    assert len({p.parent for p in written}) == 1
    assert [len(p.read_text().splitlines()) for p in written] == [0, 2, 1]


def test_restore_of_a_malformed_backup(facade, tmp_path):
    from glancesync.errors import ConfigError
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "x", "id": "y", "properties": {}}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2"):
        facade.restore_backup("RegionB", bad)


# --- changing one image -------------------------------------------------------------

class Terminal(io.StringIO):
    """A stdin that claims to be a terminal, with the user's answer in it."""

    def isatty(self) -> bool:
        return True


def test_delete_image_confirmations(federation, facade, monkeypatch):
    [image] = federation.named("RegionB", "centos-7")

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    with pytest.raises(UsageError, match="confirm=False"):
        facade.delete_image("RegionB", image.id)
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    assert facade.delete_image("RegionB", image.id) is False
    assert federation.named("RegionB", "centos-7") != []

    monkeypatch.setattr("sys.stdin", Terminal("yes\n"))
    assert facade.delete_image("RegionB", image.id) is True
    assert federation.named("RegionB", "centos-7") == []

    [ubuntu] = federation.named("RegionB", "ubuntu-22.04")
    assert facade.delete_image("RegionB", ubuntu.id, confirm=False) is True
    assert federation.images("RegionB") == []
    with pytest.raises(ImageNotFoundError):
        facade.delete_image("RegionB", ubuntu.id, confirm=False)


def test_update_metadata_image(federation, facade):
    [ubuntu] = [i for i in facade.get_images_region("RegionB") if i["name"] == "ubuntu-22.04"]
    before = federation.get("RegionB", ubuntu["id"])

    ubuntu.update({"nid": "101", "os_distro": None, "extra": 5, "is_public": False,
                   "checksum": "0" * 32, "size": 1, "min_disk": 2})
    updated = facade.update_metadata_image("RegionB", ubuntu)

    after = federation.get("RegionB", ubuntu["id"])
    assert after.properties == {"type": "baseimage", "nid": "101", "extra": "5"}
    assert (after.visibility, after.min_disk) == ("private", 2)
    assert (after.checksum, after.size) == (before.checksum, before.size)
    assert updated.properties == after.properties

    after.visibility = "public"
    after.properties.pop("extra")
    after.properties["nid"] = "102"
    facade.update_metadata_image("RegionB", after)
    again = federation.get("RegionB", ubuntu["id"])
    assert again.visibility == "public"
    # An Image gives no None to remove a property: properties it lacks stay.
    assert again.properties == {"type": "baseimage", "nid": "102", "extra": "5"}

    unchanged = federation.snapshot()
    facade.update_metadata_image("RegionB", again)
    assert federation.snapshot() == unchanged
    with pytest.raises(UsageError, match="'id'"):
        facade.update_metadata_image("RegionB", {"name": "x"})


# --- status and synchronisation -------------------------------------------------------

def statuses(plan_statuses) -> dict[str, Status]:
    return {s.name: s.status for s in plan_statuses}


def test_get_status_and_status(facade):
    assert statuses(facade.get_status("RegionB")) == {
        "cirros-kernel": Status.PENDING_UPLOAD, "cirros-ramdisk": Status.PENDING_UPLOAD,
        "cirros-machine": Status.PENDING_AMI, "debian-12": Status.PENDING_UPLOAD,
        "ubuntu-22.04": Status.PENDING_METADATA,
        # centos-7 is renamed to the master's centos-7_obsolete: a metadata change.
        "centos-7_obsolete": Status.PENDING_METADATA}
    assert statuses(facade.get_status("RegionC"))["debian-12"] == Status.PENDING_RENAME

    report = facade.status()
    assert sorted(report.plans) == ["master:RegionA", "master:RegionB", "master:RegionC"]
    assert not report.failures
    assert report.exit_status == ExitStatus.PENDING
    assert {s.region for s in report.statuses} == set(report.plans)
    assert all(s.status == Status.PENDING_UPLOAD or s.status == Status.PENDING_AMI
               for s in report.statuses if s.region == "master:RegionA")


def test_dry_run_changes_nothing(federation, facade):
    before = federation.snapshot()
    result = facade.sync(dry_run=True)
    assert federation.snapshot() == before
    assert result.dry_run and not result.failures
    assert result.exit_status == ExitStatus.PENDING
    assert all(r.dry_run for r in result.results.values())
    assert result.results["master:RegionA"].uploaded == len(SYNCHRONISED)
    assert result.results["master:RegionC"].renamed == 1

    single = facade.sync_region("RegionB", dry_run=True)
    assert single.dry_run and single.updated == 1
    assert federation.snapshot() == before


def test_parallel_sync_logs_each_region(federation, facade, caplog):
    caplog.set_level(logging.INFO, logger="glancesync")
    master = {i.name: i for i in federation.images("Master")}

    result = facade.sync(parallel=True)

    assert not result.failures and result.exit_status == ExitStatus.OK
    assert result.bytes_downloaded == sum(master[n].size for n in SYNCHRONISED)
    for region in ("RegionA", "RegionB", "RegionC"):
        names = {i.name: i for i in federation.images(region) if i.visibility == "public"}
        for name in SYNCHRONISED:
            assert names[name].checksum == master[name].checksum, (region, name)
    machine = federation.named("RegionA", "cirros-machine")[0]
    assert machine.properties["kernel_id"] == federation.named("RegionA", "cirros-kernel")[0].id
    [old] = federation.named("RegionC", "debian-12.old")
    assert old.visibility == "private"
    assert federation.named("RegionB", "centos-7") == []
    assert len(federation.named("RegionB", "centos-7_obsolete")) == 1

    folder = result.log_folder
    assert folder is not None and folder.parent == federation.root.parent / "runs"
    logs = sorted(p.name for p in folder.iterdir())
    assert logs == ["master_RegionA.log", "master_RegionB.log", "master_RegionC.log"]
    texts = {name: (folder / name).read_text() for name in logs}
    assert "debian-12.old" in texts["master_RegionC.log"]
    assert "debian-12.old" not in texts["master_RegionA.log"] + texts["master_RegionB.log"]
    assert all(text for text in texts.values())
    for name, text in texts.items():
        region = name[len("master_"):-len(".log")]
        others = [r for r in ("RegionA", "RegionB", "RegionC") if r != region]
        assert not any(f"master:{other}" in text for other in others), name

    assert all(s.status == Status.OK for s in facade.status().statuses)
    again = facade.sync()
    assert again.exit_status == ExitStatus.OK
    assert again.bytes_downloaded == 0
    assert all(r.uploaded == 0 for r in again.results.values())


def test_sync_region(federation, facade):
    result = facade.sync_region("RegionB")
    assert result.success and (result.updated, result.uploaded) == (1, 4)
    assert all(s.status == Status.OK for s in facade.get_status("RegionB"))
    assert facade.sync_region("RegionB").uploaded == 0  # provenance is never a difference
    with pytest.raises(UsageError):
        facade.sync_region("master:")


def test_copies_carry_their_provenance(federation, facade):
    masters = {i.name: i for i in federation.images("Master")}
    before = {i.id for i in federation.images("RegionB")}
    facade.sync_region("RegionB")
    new = [i for i in federation.images("RegionB") if i.id not in before]
    assert len(new) == 4 and {i.name for i in new} <= set(SYNCHRONISED)
    for copy in new:
        record = copy.provenance
        assert record is not None and record.is_copy_of(masters[copy.name])
        assert record.master_region == "Master" and record.copied_at.endswith("Z")
        assert not any(key.startswith("glancesync.") for key in copy.properties)
    # The copies made before provenance existed (same name and content as a master
    # image) are adopted: their record is written once, dated by their creation.
    adopted = [i for i in federation.images("RegionB") if i.id in before]
    assert sorted(i.name for i in adopted) == ["centos-7_obsolete", "ubuntu-22.04"]
    for copy in adopted:
        assert copy.provenance.is_copy_of(masters[copy.name])
        assert copy.provenance.copied_at == utc_stamp(
            datetime.datetime.fromisoformat(copy.created_at.replace("Z", "+00:00")))


def test_sync_of_an_unknown_region_changes_nothing(federation, facade):
    before = federation.snapshot()
    with pytest.raises(RegionNotFoundError):
        facade.sync(["RegionA", "Atlantis"])
    assert federation.snapshot() == before


def test_max_deletes_bounds_the_whole_run(federation, facade, caplog):
    """Every region is planned before any is changed: a run whose removal steps, all
    regions together, exceed max_deletes takes none of them, says so and ends with
    exit status 4; status and dry run say the same beforehand."""
    assert facade.sync().exit_status == ExitStatus.OK
    master = federation.adapter("Master")
    for image in master.list_images():
        if image.name in ("debian-12", "ubuntu-22.04"):
            master.delete_image(image.id)
    master.close()
    federation.add("Master", "fedora-40", data("fedora"))

    def run(max_deletes: int) -> GlanceSync:
        with open(federation.config) as stream:
            return GlanceSync(stream, progress=False, overrides=[
                "removal_policy=delete", "removal_grace_hours=0",
                f"max_deletes={max_deletes}"])

    copies = {region: sorted(i.name for i in federation.images(region))
              for region in ("RegionA", "RegionB", "RegionC")}
    with run(5) as held:
        report = held.status()
        assert report.exit_status == ExitStatus.NEEDS_OPERATOR
        lines = [s for s in report.statuses if s.status is Status.ERROR_MAX_DELETES]
        assert sorted((s.region, s.name) for s in lines) == sorted(
            (f"master:{region}", name) for region in copies
            for name in ("debian-12", "ubuntu-22.04"))
        assert all("6 removal steps, more than max_deletes = 5" in s.reason for s in lines)
        assert statuses(held.get_status("RegionA"))["debian-12"] is Status.PENDING_REMOVAL
        before = federation.snapshot()
        assert held.sync(dry_run=True).exit_status == ExitStatus.NEEDS_OPERATOR
        assert federation.snapshot() == before
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="glancesync"):
            result = held.sync()
        assert result.exit_status == ExitStatus.NEEDS_OPERATOR
        assert "would take 6 removal steps" in caplog.text and "max_deletes=6" in caplog.text
        assert all((r.uploaded, r.deleted) == (1, 0) for r in result.results.values())
        for region, names in copies.items():
            assert sorted(i.name for i in federation.images(region)) == sorted(
                names + ["fedora-40"])
        # One region alone is within the limit.
        assert held.sync_region("RegionA").deleted == 2
    with run(6) as allowed:
        result = allowed.sync()
        assert result.exit_status == ExitStatus.OK
        assert sum(r.deleted for r in result.results.values()) == 4
        assert not [i for region in copies for i in federation.images(region)
                    if i.name in ("debian-12", "ubuntu-22.04")]
        assert allowed.status().exit_status == ExitStatus.OK
