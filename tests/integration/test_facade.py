"""Every method of the ``GlanceSync`` facade on the loopback test bed.

The facade reads through ``master-admin`` (regions Master, RegionA, RegionB)
and ``other-admin`` (RegionC). The images each test needs are made with
adapters of their own (``alice`` for another project's images); every name
carries a unique prefix and every image left in any region with that prefix
is deleted at the end of the test, because the bed is shared.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client as ks_client

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.backends.base import ProjectName
from glancesync.errors import ExitStatus, ImageNotFoundError, ServiceError, UsageError
from glancesync.facade import GlanceSync
from glancesync.image import Image
from glancesync.plan import Status
from tests.testbed_config import write_config

pytestmark = pytest.mark.integration

KEYSTONE_OF = {"Master": "master", "RegionA": "master", "RegionB": "master",
               "RegionC": "other"}


class Bed:
    """Adapters of the bed's clouds, and the images made by one test."""

    def __init__(self, testbed, sessions: dict[str, ksa_session.Session]) -> None:
        self.info = testbed.info
        self.sessions = sessions
        self.prefix = f"gs-fac-{uuid.uuid4().hex[:8]}-"

    def adapter(self, region: str, user: str = "admin") -> GlanceRegionAdapter:
        keystone = KEYSTONE_OF[region]
        cloud = f"{keystone}-{user}"
        return GlanceRegionAdapter(f"{keystone}:{region}", self.sessions[cloud], region,
                                   self.info.project_id(cloud))

    def add(self, region: str, name: str, data: bytes | None, *, user: str = "admin",
            visibility: str = "public", properties: dict[str, str] | None = None) -> Image:
        """An image called prefix + ``name`` (without data when ``data`` is None)."""
        adapter = self.adapter(region, user)
        image = adapter.create_image(self.prefix + name, visibility=visibility,
                                     disk_format="raw", container_format="bare",
                                     properties=properties)
        if data is None:
            return image
        return adapter.upload_data(image.id, [data], len(data))

    def mine(self, region: str) -> list[Image]:
        """The images of this test in ``region``, as the admin lists them."""
        return [i for i in self.adapter(region).list_images()
                if (i.name or "").startswith(self.prefix)]

    def clean(self) -> None:
        for region in KEYSTONE_OF:
            for image in self.mine(region):
                if image.protected:
                    self.adapter(region).update_image(image.id, {"protected": False})
                try:
                    self.adapter(region).delete_image(image.id)
                except ImageNotFoundError:
                    pass


def data(seed: str, size: int = 4096) -> bytes:
    """Distinct, reproducible bytes."""
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture(scope="module")
def sessions(testbed) -> dict[str, ksa_session.Session]:
    result = {}
    for name, cloud in testbed.info.clouds.items():
        auth = v3.Password(**{k: v for k, v in cloud.items() if k != "project_id"})
        result[name] = ksa_session.Session(auth=auth)
    return result


@pytest.fixture
def bed(testbed, sessions) -> Iterator[Bed]:
    made = Bed(testbed, sessions)
    yield made
    made.clean()
    assert all(made.mine(region) == [] for region in KEYSTONE_OF)


def glancesync(bed: Bed, folder: Path, **sections) -> GlanceSync:
    """A facade whose synchronisation is limited to the test's public images."""
    condition = f"image.is_public and image.name.startswith('{bed.prefix}')"
    for target in ("master", "other"):
        sections.setdefault(target, {"metadata_condition": condition})
    path = write_config(bed.info, folder / "glancesync.conf", **sections)
    with open(path) as stream:
        return GlanceSync(stream, progress=False)


@pytest.fixture
def facade(bed, tmp_path, monkeypatch) -> Iterator[GlanceSync]:
    # Region locks are per user and keyed by region name only: another bed
    # on this machine may have its own "master:RegionA" synchronised now.
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    with glancesync(bed, tmp_path) as made:
        yield made


# --- reading -------------------------------------------------------------------

def test_get_images_region_lists_the_projects_and_public_images(bed, facade):
    own_private = bed.add("Master", "own-private", data("a"), visibility="private")
    own_public = bed.add("Master", "own-public", data("b"))
    alice_private = bed.add("Master", "alice-private", data("c"), user="alice",
                            visibility="private")
    alice_public = bed.add("Master", "alice-public", data("d"), user="alice",
                           visibility="private")
    bed.adapter("Master").update_image(alice_public.id, {"visibility": "public"})

    listed = {i["id"]: i for i in facade.get_images_region("Master")}

    assert own_private.id in listed and own_public.id in listed
    assert alice_public.id in listed
    assert alice_private.id not in listed
    # The admin sees the other project's private image: the facade filters it.
    assert alice_private.id in {i.id for i in bed.adapter("Master").list_images()}
    assert listed[own_public.id]["name"] == bed.prefix + "own-public"
    assert listed[own_public.id]["is_public"] is True
    assert listed[own_private.id]["checksum"] == hashlib.md5(data("a")).hexdigest()
    assert all(i["is_public"] or i["owner"] == bed.info.project_id("master-admin")
               for i in listed.values())


def test_get_images_region_of_another_target(bed, facade):
    image = bed.add("RegionC", "c-image", data("c1"), visibility="private")
    hidden = bed.add("RegionC", "c-alice", data("c2"), user="alice", visibility="private")
    listed = {i["id"] for i in facade.get_images_region("other:RegionC")}
    assert image.id in listed
    assert hidden.id not in listed


def test_print_images_master_region(bed, facade, capsys):
    public = bed.add("Master", "pub", data("p"), properties={"type": "baseimage"})
    private = bed.add("Master", "priv", data("q"), visibility="private")
    obsolete = bed.add("Master", "old_obsolete", data("o"))

    facade.print_images_master_region()
    out = capsys.readouterr().out

    assert out.startswith("Master region Master")
    assert public.id in out and "type=baseimage" in out
    assert private.id not in out
    assert obsolete.id not in out

    buffer = io.StringIO()
    facade.print_images_master_region(file=buffer)
    assert buffer.getvalue() == out


def test_print_images_markers(bed, facade):
    """One crafted regional image per marker of the legend."""
    same = data("same")
    bed.add("Master", "hidden", same, visibility="private")
    bed.add("Master", "changed", data("master-bytes"))
    bed.add("Master", "props", same, properties={"type": "baseimage"})
    bed.add("Master", "fine", same, properties={"type": "baseimage"})

    only_here = bed.add("RegionA", "only-here", same)
    queued = bed.add("RegionA", "fine-queued", None)
    hidden = bed.add("RegionA", "hidden", same)
    changed = bed.add("RegionA", "changed", data("regional-bytes"))
    props = bed.add("RegionA", "props", same, properties={"type": "other"})
    fine = bed.add("RegionA", "fine", same, properties={"type": "baseimage"})

    buffer = io.StringIO()
    facade.print_images("RegionA", file=buffer)
    lines = buffer.getvalue().splitlines()

    assert lines[0] == "Region master:RegionA:"

    def marks(image: Image) -> str:
        [line] = [line for line in lines if image.id in line]
        return line.split(bed.prefix)[0].strip()

    assert marks(only_here) == "+"
    assert marks(queued) == "+$"
    assert marks(hidden) == "-"
    assert marks(changed) == "!"
    assert marks(props) == "#"
    assert marks(fine) == ""


def test_print_images_of_another_target(bed, facade, capsys):
    bed.add("Master", "shared", data("s"))
    regional = bed.add("RegionC", "shared", data("t"))
    facade.print_images("other:RegionC")
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Region other:RegionC:"
    [line] = [line for line in out.splitlines() if regional.id in line]
    assert line.split(bed.prefix)[0].strip() == "!"


# --- backups ----------------------------------------------------------------------

def test_backup_and_restore(bed, facade, tmp_path):
    image = bed.add("RegionB", "saved", data("saved"), visibility="private",
                    properties={"type": "baseimage", "nid": "7"})
    alice = bed.add("RegionB", "alice", data("al"), user="alice", visibility="private")

    written = facade.backup_glancemetadata_region("RegionB", path=tmp_path)

    assert written.parent.parent == tmp_path
    assert written.parent.name.startswith("backup_glance_")
    records = [json.loads(line) for line in written.read_text().splitlines()]
    visible = facade.get_images_region("RegionB")
    assert sorted(r["id"] for r in records) == sorted(i["id"] for i in visible)
    assert alice.id not in {r["id"] for r in records}
    [saved] = [r for r in records if r["id"] == image.id]
    assert saved["region"] == "master:RegionB"
    assert saved["properties"] == {"type": "baseimage", "nid": "7"}
    assert saved["visibility"] == "private" and saved["is_public"] is False
    assert saved["checksum"] == hashlib.md5(data("saved")).hexdigest()

    adapter = bed.adapter("RegionB")
    adapter.update_image(image.id, {"nid": "8", "extra": "x", "visibility": "public"},
                         ["type"])

    def state() -> tuple[str, dict[str, str]]:
        current = adapter.get_image(image.id)
        return current.visibility, current.properties

    changed_state = state()
    assert changed_state == ("public", {"nid": "8", "extra": "x"})

    assert facade.restore_backup("RegionB", written, dry_run=True) == [image.id]
    assert state() == changed_state

    assert facade.restore_backup("RegionB", written) == [image.id]
    assert state() == ("private", {"type": "baseimage", "nid": "7"})
    assert facade.restore_backup("RegionB", written) == []


def test_backup_of_several_regions(bed, facade, tmp_path):
    bed.add("RegionA", "a", data("a"), visibility="private")
    bed.add("RegionC", "c", data("c"), visibility="private")
    written = facade.backup(["RegionA", "other:"], path=tmp_path)
    assert [p.name for p in written] == ["backup_master_RegionA.jsonl",
                                         "backup_other_RegionC.jsonl"]
    assert len({p.parent for p in written}) == 1
    names = {json.loads(line)["name"] for line in written[1].read_text().splitlines()}
    assert bed.prefix + "c" in names and bed.prefix + "a" not in names


# --- changing one image -------------------------------------------------------------

def test_delete_image_without_confirmation(bed, facade):
    image = bed.add("RegionA", "doomed", data("d"), visibility="private")
    assert facade.delete_image("RegionA", image.id, confirm=False) is True
    assert bed.mine("RegionA") == []


def test_delete_image_confirmation_needs_a_terminal(bed, facade, monkeypatch):
    image = bed.add("RegionA", "kept", data("k"), visibility="private")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal
    with pytest.raises(UsageError, match="confirm"):
        facade.delete_image("RegionA", image.id)
    assert [i.id for i in bed.mine("RegionA")] == [image.id]


def test_delete_image_in_another_target(bed, facade):
    image = bed.add("RegionC", "doomed", data("d"), visibility="private")
    assert facade.delete_image("other:RegionC", image.id, confirm=False) is True
    assert bed.mine("RegionC") == []


def test_delete_missing_image(bed, facade):
    with pytest.raises(ImageNotFoundError):
        facade.delete_image("RegionA", str(uuid.uuid4()), confirm=False)


def test_update_metadata_image(bed, facade):
    image = bed.add("RegionB", "meta", data("m"), visibility="private",
                    properties={"type": "baseimage", "nid": "1"})
    listed = {i["id"]: i for i in facade.get_images_region("RegionB")}[image.id]

    listed.update({"nid": "2", "new": "yes", "type": None, "is_public": True,
                   "min_ram": 512})
    updated = facade.update_metadata_image("RegionB", listed)

    current = bed.adapter("RegionB").get_image(image.id)
    assert current.properties == {"nid": "2", "new": "yes"}
    assert current.visibility == "public"
    assert current.min_ram == 512
    assert updated.properties == current.properties

    current.visibility = "private"
    current.properties["new"] = "no"
    facade.update_metadata_image("RegionB", current)
    again = bed.adapter("RegionB").get_image(image.id)
    assert (again.visibility, again.properties) == ("private", {"nid": "2", "new": "no"})


def test_update_metadata_image_in_another_target(bed, facade):
    image = bed.add("RegionC", "meta", data("m"), visibility="private")
    facade.update_metadata_image("other:RegionC", {"id": image.id, "nid": "5"})
    assert bed.adapter("RegionC").get_image(image.id).properties == {"nid": "5"}


# --- status and synchronisation -------------------------------------------------------

def test_status_and_sync(bed, facade):
    payload = data("payload", 300_000)
    master = bed.add("Master", "small", payload, properties={"type": "baseimage"})
    bed.add("Master", "private", data("private"), visibility="private")
    regions = ["RegionA", "other:RegionC"]

    [before] = facade.get_status("RegionA")
    assert (before.status, before.name, before.master_id, before.regional_id) == (
        Status.PENDING_UPLOAD, bed.prefix + "small", master.id, None)
    report = facade.status(regions)
    assert not report.failures
    assert [(s.region, s.status) for s in report.statuses] == [
        ("master:RegionA", Status.PENDING_UPLOAD), ("other:RegionC", Status.PENDING_UPLOAD)]

    dry = facade.sync(regions, dry_run=True)
    assert dry.dry_run and not dry.failures
    assert bed.mine("RegionA") == [] and bed.mine("RegionC") == []

    result = facade.sync(regions)
    assert not result.failures
    assert sorted(result.results) == ["master:RegionA", "other:RegionC"]
    assert all(r.uploaded == 1 and r.success for r in result.results.values())
    assert result.bytes_downloaded == len(payload)
    for region in ("RegionA", "RegionC"):
        [copy] = bed.mine(region)
        assert copy.name == bed.prefix + "small"
        assert copy.checksum == master.checksum
        assert copy.properties == {"type": "baseimage"}
        assert copy.visibility == "public"
        # Glance keeps the provenance record, outside the user properties.
        assert copy.provenance is not None and copy.provenance.is_copy_of(master)
        assert copy.provenance.master_region == "Master"
    assert [s.status for s in facade.status(regions).statuses] == [Status.OK, Status.OK]

    second = facade.sync(regions)
    assert not second.failures
    assert all(r.uploaded == 0 and r.ok == 1 for r in second.results.values())
    assert second.bytes_downloaded == 0
    assert len(bed.mine("RegionA")) == 1


def test_sync_region_then_metadata_update(bed, facade):
    master = bed.add("Master", "one", data("one"), properties={"nid": "1"})
    result = facade.sync_region("RegionB")
    assert result.uploaded == 1 and result.success
    [copy] = bed.mine("RegionB")

    bed.adapter("Master").update_image(master.id, {"nid": "2"})
    [status] = facade.get_status("RegionB")
    assert (status.status, status.regional_id) == (Status.PENDING_METADATA, copy.id)
    result = facade.sync_region("RegionB")
    assert (result.updated, result.uploaded) == (1, 0)
    assert bed.adapter("RegionB").get_image(copy.id).properties == {"nid": "2"}


def test_unknown_region_is_an_error(bed, facade):
    with pytest.raises(UsageError, match="RegionA"):
        facade.get_images_region("Atlantis")
    with pytest.raises(UsageError, match="RegionC"):
        facade.print_images("other:Atlantis", file=io.StringIO())


# --- the whole image (issue 9) ---------------------------------------------------------

SIGNATURE = {"img_signature": "c2lnbmF0dXJl", "img_signature_hash_method": "SHA-256",
             "img_signature_key_type": "RSA-PSS",
             "img_signature_certificate_uuid": "7d3b6e4a-0000-4000-8000-000000000000"}


def test_whole_image_through_the_facade(bed, tmp_path, monkeypatch):
    """Members mapped through both Keystones, a master image without checksum
    (read through the master data source), a signed, a hidden and tagged image."""
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    master = bed.adapter("Master")
    shared = bed.add("Master", "shared", data("shared"), visibility="shared")
    master.add_member(shared.id, bed.info.project_id("master-alice"))
    identity = ks_client.Client(session=bed.sessions["master-admin"])
    gamma = (identity.projects.list(name="gamma")
             or [identity.projects.create("gamma", "default")])[0]
    master.add_member(shared.id, gamma.id)
    bare = bed.add("Master", "bare", data("bare", 9000))
    with contextlib.closing(sqlite3.connect(
            Path(bed.info.run_dir) / "glance-Master" / "glance.db", timeout=30)) as db, db:
        db.execute("UPDATE images SET checksum = NULL, os_hash_algo = NULL,"
                   " os_hash_value = NULL WHERE id = ?", (bare.id,))
    signed = bed.add("Master", "signed", data("signed"))
    master.update_image(signed.id, dict(SIGNATURE))  # the master's own data verified before
    fancy = bed.add("Master", "fancy", data("fancy"))
    master.update_image(fancy.id, {"os_hidden": True, "tags": ["gpu"]})
    condition = (f"image.name.startswith('{bed.prefix}')"
                 " and image.visibility in ('public', 'shared')")
    options = {"metadata_condition": condition, "sync_members": "true",
               "sync_without_checksum": "true"}
    with glancesync(bed, tmp_path, master={"metadata_condition": condition},
                    other=options) as facade:
        region = "other:RegionC"
        before = facade.status([region])
        assert {s.name[len(bed.prefix):]: s.status for s in before.statuses} == {
            "shared": Status.PENDING_UPLOAD, "bare": Status.PENDING_UPLOAD,
            "signed": Status.PENDING_UPLOAD, "fancy": Status.PENDING_UPLOAD}
        assert before.exit_status == ExitStatus.PENDING
        result = facade.sync([region])
        assert result.exit_status == ExitStatus.OK, result.failures
        copies = {i.name[len(bed.prefix):]: i for i in bed.mine("RegionC")}
        other = bed.adapter("RegionC")
        assert other.list_members(copies["shared"].id) == [
            bed.info.project_id("other-alice")]
        assert copies["bare"].provenance.master_hash == (
            "sha512:" + hashlib.sha512(data("bare", 9000)).hexdigest())
        assert all(copies["signed"].properties[k] == v for k, v in SIGNATURE.items())
        assert copies["fancy"].os_hidden and copies["fancy"].tags == ["gpu"]
        after = facade.status([region])
        assert {s.name[len(bed.prefix):]: s.status for s in after.statuses} == {
            "shared": Status.INFO_MEMBERS_UNMAPPED, "bare": Status.OK,
            "signed": Status.OK, "fancy": Status.OK}
        assert "gamma" in after.plans[region].status_of(bed.prefix + "shared").reason
        assert after.exit_status == ExitStatus.OK
        again = facade.sync([region]).results[region]
        assert (again.uploaded, again.updated, again.errors) == (0, 0, 0)
        assert not again.plan.operations


def test_project_lookups_say_what_a_member_credential_lacks(bed, tmp_path):
    """sync_members reads projects: a member's credential is refused, clearly."""
    path = write_config(bed.info, tmp_path / "alice.conf", master_cloud="master-alice")
    with open(path) as stream, GlanceSync(stream, progress=False) as facade:
        with pytest.raises(ServiceError) as caught:
            facade.target("master").find_project(ProjectName("beta", "Default"))
    assert caught.value.status_code == 403
    assert "allowed to read projects and domains" in str(caught.value)
    with glancesync(bed, tmp_path) as facade:
        assert facade.target("other").find_project(ProjectName("beta", "Default")) == \
            bed.info.project_id("other-bob")
        assert facade.target("other").find_project(ProjectName("beta", "Nowhere")) is None
        assert facade.target("other").find_project(ProjectName("nobody", "Default")) is None
        assert facade.target("master").project_name(bed.info.project_id("master-alice")) == \
            ProjectName("alpha", "Default")
