"""Federations made of several local targets (SPEC section 9, issue 5).

The master region is a folder of one local target (``[master]``, project
``proj-master``); the destination is a region of another local target
(``[usb]``, another folder and project) declared with ``regions = USB``, so
it does not exist until the first sync. Everything is real: the folders,
their SQLite stores and the facade; nothing leaves the machine.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import ExitStatus, RegionNotFoundError
from glancesync.facade import GlanceSync
from glancesync.image import Image
from glancesync.plan import Status

MASTER_PROJECT = "proj-master"
USB_PROJECT = "proj-usb"
SYNCHRONISED = {"base", "kernel", "ramdisk", "machine"}


def data(seed: str, size: int = 3000) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def add(region: LocalRegionAdapter, name: str, payload: bytes, *,
        visibility: str = "public", disk_format: str = "raw",
        container_format: str = "bare", **props: str) -> Image:
    image = region.create_image(name, visibility=visibility, disk_format=disk_format,
                                container_format=container_format, properties=props)
    return region.upload_data(image.id, [payload], len(payload))


class Folders:
    """The two targets' folders and adapters of our own to inspect them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.master_path = root / "clouds"
        self.usb_path = root / "removable"
        self.config_text = ""

    def region(self, path: Path, name: str, project: str,
               is_admin: bool = True) -> LocalRegionAdapter:
        return LocalRegionAdapter(f"test:{name}", path / name, project, is_admin=is_admin)

    def images(self, path: Path, name: str, project: str) -> dict[str, Image]:
        """Active images of a region by name (admin's listing)."""
        region = self.region(path, name, project)
        try:
            return {i.name: i for i in region.list_images() if i.status == "active"}
        finally:
            region.close()

    def usb(self) -> dict[str, Image]:
        return self.images(self.usb_path, "USB", USB_PROJECT)

    def snapshot(self, path: Path, name: str) -> dict[str, Any]:
        """Every field, property and data byte of a region (admin's view)."""
        region = self.region(path, name, "snapshot")
        try:
            state = {}
            for image in region.list_images():
                record = image.to_dict()
                if image.status == "active":
                    record["data"] = b"".join(region.download_data(image.id))
                state[image.id] = record
            return state
        finally:
            region.close()

    def write_config(self, *, usb: str = "", extra: str = "") -> None:
        self.config_text = f"""\
[main]
master_region = Master
cache_dir = {self.root / 'cache'}
run_dir = {self.root / 'runs'}

[master]
type = local
path = {self.master_path}
project = {MASTER_PROJECT}

[usb]
type = local
path = {self.usb_path}
project = {USB_PROJECT}
regions = USB
{usb}
{extra}
"""

    def facade(self) -> GlanceSync:
        return GlanceSync(io.StringIO(self.config_text), progress=False)


@pytest.fixture
def folders(tmp_path: Path, monkeypatch) -> Iterator[Folders]:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Folders(tmp_path)
    master = made.region(made.master_path, "Master", MASTER_PROJECT)
    try:
        add(master, "base", data("base"), type="baseimage", nid="101", os_distro="debian")
        kernel = add(master, "kernel", data("kernel"), disk_format="aki",
                     container_format="aki")
        ramdisk = add(master, "ramdisk", data("ramdisk"), disk_format="ari",
                      container_format="ari")
        add(master, "machine", data("machine"), disk_format="ami", container_format="ami",
            kernel_id=kernel.id, ramdisk_id=ramdisk.id, type="baseimage")
        add(master, "secret", data("secret"), visibility="private", type="baseimage")
        add(master, "old_obsolete", data("old"), nid="90")
    finally:
        master.close()
    made.write_config()
    yield made


# --- a declared region ------------------------------------------------------------

def test_declared_region_is_listed_and_created_on_first_sync(folders):
    assert not (folders.usb_path / "USB").exists()
    with folders.facade() as sync:
        assert sync.get_regions(target="usb") == ["usb:USB"]
        result = sync.sync(["usb:USB"])

    assert result.failures == {}
    assert result.results["usb:USB"].uploaded == len(SYNCHRONISED)
    assert (folders.usb_path / "USB" / "images.db").is_file()
    master = folders.images(folders.master_path, "Master", MASTER_PROJECT)
    usb = folders.usb()
    assert set(usb) == SYNCHRONISED
    for name, copy in usb.items():
        original = master[name]
        assert copy.id != original.id
        assert copy.owner == USB_PROJECT
        assert copy.checksum == original.checksum
        assert (copy.os_hash_algo, copy.os_hash_value) == (original.os_hash_algo,
                                                           original.os_hash_value)
        assert copy.visibility == original.visibility == "public"
        assert (copy.disk_format, copy.container_format) == (original.disk_format,
                                                             original.container_format)
    assert usb["base"].properties == {"type": "baseimage", "nid": "101",
                                      "os_distro": "debian"}
    assert usb["machine"].properties == {"type": "baseimage",
                                         "kernel_id": usb["kernel"].id,
                                         "ramdisk_id": usb["ramdisk"].id}


def test_second_sync_changes_nothing_and_reads_nothing(folders):
    with folders.facade() as sync:
        sync.sync(["usb:USB"])
    before = folders.snapshot(folders.usb_path, "USB")
    with folders.facade() as sync:
        result = sync.sync(["usb:"])
        report = sync.status(["usb:"])

    region = result.results["usb:USB"]
    assert (region.uploaded, region.updated, region.ok) == (0, 0, len(SYNCHRONISED))
    assert result.bytes_downloaded == 0
    assert folders.snapshot(folders.usb_path, "USB") == before
    assert {s.name: s.status for s in report.statuses} == dict.fromkeys(SYNCHRONISED,
                                                                        Status.OK)


def test_dry_run_changes_nothing(folders):
    """Neither a new region nor one with stale copies is touched by a dry run."""
    with folders.facade() as sync:
        sync.sync(["usb:USB"])
    usb = folders.region(folders.usb_path, "USB", USB_PROJECT)
    try:
        base = next(i for i in usb.list_images() if i.name == "base")
        usb.update_image(base.id, {"nid": "100", "visibility": "private"}, remove=["type"])
        machine = next(i for i in usb.list_images() if i.name == "machine")
        usb.delete_image(machine.id)
    finally:
        usb.close()
    before = {path: folders.snapshot(*path) for path in
              ((folders.usb_path, "USB"), (folders.master_path, "Master"))}

    with folders.facade() as sync:
        result = sync.sync(["usb:USB"], dry_run=True)

    plan = result.plans["usb:USB"]
    statuses = {s.name: s.status for s in plan.statuses}
    assert statuses["base"] is Status.PENDING_METADATA
    assert statuses["machine"] is Status.PENDING_UPLOAD
    assert result.dry_run and result.bytes_downloaded == 0
    assert {path: folders.snapshot(*path) for path in before} == before


def test_undeclared_missing_region_is_unknown_and_not_created(folders):
    with folders.facade() as sync:
        with pytest.raises(RegionNotFoundError) as error:
            sync.sync(["usb:Typo"])
        assert "USB" in str(error.value) and "Typo" in str(error.value)
        with pytest.raises(RegionNotFoundError):
            sync.status(["usb:Typo"])
    assert not (folders.usb_path / "Typo").exists()
    assert not (folders.usb_path / "USB").exists()


def test_existing_folder_regions_follow_the_declared_ones(folders):
    """A sub-folder holding a store is a region too, after the declared ones."""
    other = folders.region(folders.usb_path, "Attic", USB_PROJECT)
    other.ensure_exists()
    other.close()
    (folders.usb_path / "not-a-region").mkdir()
    with folders.facade() as sync:
        assert sync.get_regions(target="usb") == ["usb:USB", "usb:Attic"]
        result = sync.sync(["usb:"])
    assert set(result.results) == {"usb:USB", "usb:Attic"}
    assert set(folders.images(folders.usb_path, "Attic", USB_PROJECT)) == SYNCHRONISED


def test_missing_master_region_folder_is_unknown(folders):
    folders.config_text = folders.config_text.replace("master_region = Master",
                                                      "master_region = Mastre")
    with folders.facade() as sync, pytest.raises(RegionNotFoundError):
        sync.sync(["usb:USB"])
    assert not (folders.master_path / "Mastre").exists()


# --- projects sharing one folder --------------------------------------------------

def test_only_tenant_images_between_projects_sharing_a_folder(folders):
    """Another project's image of the same name: ignored, or compared when asked."""
    intruder = folders.region(folders.usb_path, "USB", "proj-intruder", is_admin=False)
    try:
        foreign = add(intruder, "base", data("a local build"), visibility="shared",
                      type="local")
    finally:
        intruder.close()

    with folders.facade() as sync:
        statuses = {s.name: s for s in sync.get_status("usb:USB")}
    assert statuses["base"].status is Status.PENDING_UPLOAD

    folders.write_config(usb="only_tenant_images = false")
    with folders.facade() as sync:
        statuses = {s.name: s for s in sync.get_status("usb:USB")}
        assert statuses["base"].status is Status.ERROR_CHECKSUM
        assert statuses["base"].regional_id == foreign.id
        result = sync.sync(["usb:USB"])
    assert result.results["usb:USB"].needs_operator == 1
    assert "base" not in folders.usb() or folders.usb()["base"].id == foreign.id

    folders.write_config()
    with folders.facade() as sync:
        result = sync.sync(["usb:USB"])
    assert result.failures == {}
    bases = [i for i in folders.snapshot(folders.usb_path, "USB").values()
             if i["name"] == "base"]
    assert sorted(i["owner"] for i in bases) == ["proj-intruder", USB_PROJECT]
    untouched = next(i for i in bases if i["owner"] == "proj-intruder")
    assert untouched["id"] == foreign.id
    assert untouched["type"] == "local"
    assert untouched["visibility"] == "shared"
    assert untouched["data"] == data("a local build")


def test_two_targets_on_one_folder_see_only_their_projects_images(folders):
    """A second target on the same folder with its own project syncs its own copies."""
    folders.write_config(extra=f"""
[twin]
type = local
path = {folders.usb_path}
project = proj-twin
""")
    with folders.facade() as sync:
        first = sync.sync(["usb:USB"])
        assert sync.get_regions(target="twin") == ["twin:USB"]
        statuses = {s.name: s.status for s in sync.get_status("twin:USB")}
        assert statuses == {**dict.fromkeys(SYNCHRONISED, Status.PENDING_UPLOAD),
                            "machine": Status.PENDING_AMI}
        second = sync.sync(["twin:USB"])
    assert first.results["usb:USB"].uploaded == len(SYNCHRONISED)
    assert second.results["twin:USB"].uploaded == len(SYNCHRONISED)
    owners: dict[str, list[str]] = {}
    for image in folders.snapshot(folders.usb_path, "USB").values():
        owners.setdefault(image["name"], []).append(image["owner"])
    assert {name: sorted(o) for name, o in owners.items()} == dict.fromkeys(
        SYNCHRONISED, ["proj-twin", USB_PROJECT])


def test_parallel_run_of_two_targets_writing_one_folder(folders):
    """Two regions backed by the same store, written at once; master read once."""
    folders.write_config(extra=f"""
[twin]
type = local
path = {folders.usb_path}
project = proj-twin
regions = USB
""")
    master = folders.images(folders.master_path, "Master", MASTER_PROJECT)
    with folders.facade() as sync:
        result = sync.sync(["usb:USB", "twin:USB"], parallel=True)
        report = sync.status(["usb:USB", "twin:USB"])
    assert result.failures == {}
    assert all(r.success and r.uploaded == len(SYNCHRONISED)
               for r in result.results.values())
    assert result.bytes_downloaded == sum(master[n].size for n in SYNCHRONISED)
    assert {(s.region, s.name): s.status for s in report.statuses} == {
        (r, n): Status.OK for r in ("usb:USB", "twin:USB") for n in SYNCHRONISED}


def test_dry_run_of_a_new_declared_region_writes_no_image(folders):
    with folders.facade() as sync:
        result = sync.sync(["usb:USB"], dry_run=True)
    plan = result.plans["usb:USB"]
    assert {s.name for s in plan.statuses} == SYNCHRONISED
    assert result.exit_status is ExitStatus.PENDING
    assert folders.usb() == {}
