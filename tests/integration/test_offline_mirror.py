"""Offline mirrors on the test bed: cloud -> folder -> isolated cloud (issue 5).

The documented workflow of ``docs/manual/local_regions.rst``: the bed's
Master region is dumped into a local target declared with ``regions = USB``
(the folder does not exist before), the folder is carried elsewhere, and a
configuration whose master *is* that folder loads it into RegionC, a region
of the other Keystone. A last test mixes cloud and local destinations in one
parallel run. Every image name carries a unique prefix and is deleted at the
end, because the bed is shared.
"""
from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import ImageNotFoundError
from glancesync.facade import GlanceSync
from glancesync.image import Image, is_user_property
from glancesync.plan import Status
from tests.testbed_config import credentials, write_config

pytestmark = pytest.mark.integration

MIRROR_PROJECT = "mirror-project"
#: The images the master holds; all but "secret" are synchronised.
SYNCHRONISED = {"base", "tools", "kernel", "ramdisk", "machine"}
AMI = ("kernel_id", "ramdisk_id")


def data(seed: str, size: int) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def user_properties(image: Image) -> dict[str, str]:
    return {k: v for k, v in image.properties.items() if is_user_property(k)}


class Cloud:
    """Admin adapters of the bed's regions and the images of this module."""

    def __init__(self, testbed) -> None:
        self.info = testbed.info
        self.prefix = f"gs-mir-{uuid.uuid4().hex[:8]}-"
        self.sessions: dict[str, ksa_session.Session] = {}
        self.master_images: dict[str, Image] = {}

    def adapter(self, region: str) -> GlanceRegionAdapter:
        cloud = "other-admin" if region == "RegionC" else "master-admin"
        if cloud not in self.sessions:
            self.sessions[cloud] = ksa_session.Session(auth=v3.Password(**self.info.auth(cloud)))
        keystone = cloud.split("-")[0]
        return GlanceRegionAdapter(f"{keystone}:{region}", self.sessions[cloud], region,
                                   self.info.project_id(cloud))

    def project(self, region: str) -> str:
        return self.info.project_id("other-admin" if region == "RegionC" else "master-admin")

    def add(self, name: str, payload: bytes, *, visibility: str = "public",
            disk_format: str = "raw", container_format: str = "bare", min_ram: int = 0,
            **props: str) -> Image:
        master = self.adapter("Master")
        image = master.create_image(self.prefix + name, visibility=visibility,
                                    disk_format=disk_format,
                                    container_format=container_format, min_ram=min_ram,
                                    properties=props)
        image = master.upload_data(image.id, [payload], len(payload))
        self.master_images[name] = image
        return image

    def mine(self, region: str) -> dict[str, Image]:
        """This module's images of a cloud region, by short name."""
        return {i.name[len(self.prefix):]: i for i in self.adapter(region).list_images()
                if (i.name or "").startswith(self.prefix)}

    def condition(self) -> str:
        """Synchronise only this module's public images (the bed is shared)."""
        return f"image.is_public and image.name.startswith('{self.prefix}')"

    def clean(self, region: str) -> None:
        adapter = self.adapter(region)
        for image in self.mine(region).values():
            try:
                adapter.delete_image(image.id)
            except ImageNotFoundError:
                pass


def local_images(path: Path, prefix: str) -> dict[str, Image]:
    region = LocalRegionAdapter("check", path, "check")
    try:
        return {i.name[len(prefix):]: i for i in region.list_images()
                if (i.name or "").startswith(prefix)}
    finally:
        region.close()


def assert_copies(cloud: Cloud, copies: dict[str, Image], owner: str) -> None:
    """``copies`` are the synchronised master images: content, metadata, AMI ids."""
    assert set(copies) == SYNCHRONISED
    for name, copy in copies.items():
        original = cloud.master_images[name]
        assert copy.status == "active"
        assert copy.id != original.id
        assert copy.owner == owner
        assert copy.size == original.size
        assert copy.checksum == original.checksum
        assert (copy.os_hash_algo, copy.os_hash_value) == (original.os_hash_algo,
                                                           original.os_hash_value)
        assert copy.visibility == original.visibility == "public"
        assert (copy.disk_format, copy.container_format) == (original.disk_format,
                                                             original.container_format)
        assert copy.min_ram == original.min_ram
        expected = {k: v for k, v in user_properties(original).items() if k not in AMI}
        assert {k: v for k, v in user_properties(copy).items() if k not in AMI} == expected
    assert user_properties(copies["machine"])["kernel_id"] == copies["kernel"].id
    assert user_properties(copies["machine"])["ramdisk_id"] == copies["ramdisk"].id


def facade(path: Path) -> GlanceSync:
    with open(path) as stream:
        return GlanceSync(stream, progress=False)


@pytest.fixture(scope="module")
def cloud(testbed) -> Iterator[Cloud]:
    """The master images: public with properties, a private one, an AMI trio."""
    made = Cloud(testbed)
    try:
        made.add("base", data("base", 9000), type="baseimage", nid="101",
                 os_distro="debian")
        made.add("tools", data("tools", 5000), min_ram=512, sla="gold")
        made.add("secret", data("secret", 3000), visibility="private", type="baseimage")
        kernel = made.add("kernel", data("kernel", 6000), disk_format="aki",
                          container_format="aki")
        ramdisk = made.add("ramdisk", data("ramdisk", 4000), disk_format="ari",
                           container_format="ari")
        made.add("machine", data("machine", 2000), disk_format="ami",
                 container_format="ami", kernel_id=kernel.id, ramdisk_id=ramdisk.id,
                 type="baseimage")
        yield made
    finally:
        for region in ("Master", "RegionA", "RegionC"):
            made.clean(region)
        assert all(made.mine(region) == {} for region in ("Master", "RegionA", "RegionC"))


@pytest.fixture(autouse=True)
def lock_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))


def dump_config(cloud: Cloud, folder: Path, mirror: Path) -> Path:
    """Master on the bed, plus the local target of the documented dump."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_config(cloud.info, folder / "glancesync.conf",
                        master={"metadata_condition": cloud.condition()},
                        other={"metadata_condition": cloud.condition()},
                        extra_sections={"mirror": {
                            "type": "local", "path": mirror, "project": MIRROR_PROJECT,
                            "regions": "USB", "metadata_condition": cloud.condition()}})


@pytest.fixture(scope="module")
def mirror(cloud, tmp_path_factory) -> Path:
    """The folder ``[mirror]`` dumps the master into (one sync of mirror:USB)."""
    root = tmp_path_factory.mktemp("offline") / "mirror"
    assert not root.exists()
    with facade(dump_config(cloud, root.parent / "dump", root)) as sync:
        assert sync.get_regions(target="mirror") == ["mirror:USB"]
        result = sync.sync(["mirror:USB"])
    assert result.failures == {}
    assert result.results["mirror:USB"].uploaded == len(SYNCHRONISED)
    assert result.bytes_downloaded == sum(cloud.master_images[n].size for n in SYNCHRONISED)
    return root


# --- dump: cloud -> folder -----------------------------------------------------

def test_dump_copies_names_hashes_metadata_and_ami_ids(cloud, mirror):
    copies = local_images(mirror / "USB", cloud.prefix)
    assert "secret" not in copies
    assert_copies(cloud, copies, MIRROR_PROJECT)


def test_second_dump_uploads_nothing_and_reads_nothing(cloud, mirror, tmp_path):
    before = {n: (i.id, i.updated_at) for n, i in
              local_images(mirror / "USB", cloud.prefix).items()}
    with facade(dump_config(cloud, tmp_path, mirror)) as sync:
        result = sync.sync(["mirror:"])
        report = sync.status(["mirror:USB"])
    region = result.results["mirror:USB"]
    assert (region.uploaded, region.updated, region.errors) == (0, 0, 0)
    assert region.ok == len(SYNCHRONISED)
    assert result.bytes_downloaded == 0
    assert {n: (i.id, i.updated_at) for n, i in
            local_images(mirror / "USB", cloud.prefix).items()} == before
    assert {s.name[len(cloud.prefix):]: s.status for s in report.statuses} == dict.fromkeys(
        SYNCHRONISED, Status.OK)


# --- load: folder -> isolated cloud --------------------------------------------

def load_config(cloud: Cloud, folder: Path, media: Path) -> Path:
    """The isolated site's configuration: the carried folder is the master."""
    isolated = {**credentials(cloud.info, "other-admin"),
                "metadata_condition": cloud.condition()}
    lines = ["[main]", "master_region = USB", f"cache_dir = {folder / 'cache'}",
             f"run_dir = {folder / 'runs'}", "",
             "[master]", "type = local", f"path = {media}", f"project = {MIRROR_PROJECT}",
             "", "[isolated]", *(f"{k} = {v}" for k, v in isolated.items()), ""]
    path = folder / "isolated.conf"
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return path


def test_load_into_an_isolated_region(cloud, mirror, tmp_path):
    # Carry the folder: a copy elsewhere, the original out of reach meanwhile.
    media = tmp_path / "media" / "mirror"
    shutil.copytree(mirror, media)
    hidden = mirror.with_name("mirror-away")
    mirror.rename(hidden)
    try:
        config = load_config(cloud, tmp_path, media)
        with facade(config) as sync:
            assert sync.get_regions(target="isolated") == ["isolated:RegionC"]
            dry = sync.sync(["isolated:"], dry_run=True)
            assert cloud.mine("RegionC") == {}
            assert {s.name[len(cloud.prefix):] for s in dry.plans["isolated:RegionC"].statuses
                    } == SYNCHRONISED
            result = sync.sync(["isolated:"])
        with facade(config) as sync:
            report = sync.status(["isolated:RegionC"])
    finally:
        hidden.rename(mirror)

    assert result.failures == {}
    assert result.results["isolated:RegionC"].uploaded == len(SYNCHRONISED)
    assert result.bytes_downloaded == sum(cloud.master_images[n].size for n in SYNCHRONISED)
    assert_copies(cloud, cloud.mine("RegionC"), cloud.project("RegionC"))
    assert {s.name[len(cloud.prefix):]: s.status for s in report.statuses} == dict.fromkeys(
        SYNCHRONISED, Status.OK)
    assert report.exit_status == 0
    cloud.clean("RegionC")


# --- one federation, cloud and local destinations -------------------------------

def test_mixed_cloud_and_local_destinations_in_one_parallel_run(cloud, tmp_path):
    usb = tmp_path / "mixed-mirror"
    config = dump_config(cloud, tmp_path / "conf", usb)
    with facade(config) as sync:
        result = sync.sync(["RegionA", "mirror:USB"], parallel=True)
        report = sync.status(["RegionA", "mirror:USB"])
    try:
        assert result.failures == {}
        assert set(result.results) == {"master:RegionA", "mirror:USB"}
        for region in result.results.values():
            assert region.success and region.uploaded == len(SYNCHRONISED)
        # One download per image serves both destinations.
        assert result.bytes_downloaded == sum(cloud.master_images[n].size
                                              for n in SYNCHRONISED)
        assert_copies(cloud, cloud.mine("RegionA"), cloud.project("RegionA"))
        assert_copies(cloud, local_images(usb / "USB", cloud.prefix), MIRROR_PROJECT)
        assert {(s.region, s.name[len(cloud.prefix):]): s.status for s in report.statuses
                } == {(r, n): Status.OK for r in ("master:RegionA", "mirror:USB")
                      for n in SYNCHRONISED}
    finally:
        cloud.clean("RegionA")


def test_mirror_holds_the_master_bytes(cloud, mirror):
    """Not only the recorded hashes: the mirror's data files are the master's bytes."""
    local = LocalRegionAdapter("mirror:USB", mirror / "USB", MIRROR_PROJECT)
    master = cloud.adapter("Master")
    try:
        for name, copy in local_images(mirror / "USB", cloud.prefix).items():
            original = cloud.master_images[name]
            assert (b"".join(local.download_data(copy.id))
                    == b"".join(master.download_data(original.id)))
    finally:
        local.close()
