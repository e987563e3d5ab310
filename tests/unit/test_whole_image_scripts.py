"""The whole image (issue 9) as an operator meets it: the commands, on local regions.

Each test runs ``glancesync-sync`` on the demo federation (see
``test_scripts_local.py``) after changing an image as an operator or an old
tool would: the status lines and exit statuses before and after, the
regional images after, and a second run that changes nothing. The same
situations run on the Glance test bed in ``tests/scenarios.py``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.demo import PROJECT
from tests.scenarios import SIGNATURE
from tests.unit.test_scripts_local import Federation


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    return Federation(tmp_path)


def region(fed: Federation, name: str) -> LocalRegionAdapter:
    return LocalRegionAdapter(f"master:{name}", fed.folder / "federation" / name, PROJECT)


def named(fed: Federation, region_name: str, name: str):
    adapter = region(fed, region_name)
    try:
        return [i for i in adapter.list_images() if i.name == name]
    finally:
        adapter.close()


def change(fed: Federation, region_name: str, name: str, **what) -> str:
    """Change image ``name`` of a region as an operator would; return its id."""
    adapter = region(fed, region_name)
    try:
        (image,) = [i for i in adapter.list_images() if i.name == name]
        if what.pop("deactivate", False):
            adapter.deactivate_image(image.id)
        if what.pop("strip_hashes", False):
            adapter.writable_store.image_update(adapter.context, image.id, {
                "checksum": None, "os_hash_algo": None, "os_hash_value": None})
        members = what.pop("members", ())
        if what:
            adapter.update_image(image.id, what)
        for project in members:
            adapter.add_member(image.id, project)
        return image.id
    finally:
        adapter.close()


def status_line(fed: Federation, *args: str) -> tuple[int, str]:
    result = fed.run("sync", "--show-status", *args)
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout


def sync(fed: Federation, *args: str) -> int:
    result = fed.run("sync", "--no-progress", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode


def test_deactivated_copy(fed):
    assert sync(fed, "RegionA") == 0
    copy = change(fed, "RegionA", "ubuntu-22.04", deactivate=True)
    code, out = status_line(fed, "RegionA")
    assert code == 4 and "error_deactivated,master:RegionA,ubuntu-22.04" in out
    assert sync(fed, "RegionA") == 4
    assert [(i.id, i.status) for i in named(fed, "RegionA", "ubuntu-22.04")] == [
        (copy, "deactivated")]  # never a second copy
    keep = ["--config", "deactivated_copies=keep"]
    code, out = status_line(fed, *keep, "RegionA")
    assert code == 0 and "ok_deactivated,master:RegionA,ubuntu-22.04" in out
    reactivate = ["--config", "deactivated_copies=reactivate"]
    code, out = status_line(fed, *reactivate, "RegionA")
    assert code == 3 and "pending_reactivate,master:RegionA,ubuntu-22.04" in out
    assert sync(fed, *reactivate, "RegionA") == 0
    assert [(i.id, i.status) for i in named(fed, "RegionA", "ubuntu-22.04")] == [
        (copy, "active")]
    assert status_line(fed, *reactivate, "RegionA")[0] == 0


def test_deactivated_master_image(fed):
    change(fed, "Master", "debian-12", deactivate=True)
    code, out = status_line(fed, "RegionA")
    assert code == 3  # the other images are pending; this one is only reported
    assert "info_master_deactivated,master:RegionA,debian-12" in out
    assert sync(fed, "RegionA") == 0
    assert named(fed, "RegionA", "debian-12") == []
    assert status_line(fed, "RegionA")[0] == 0


def test_hidden_and_tagged_master_image(fed):
    change(fed, "Master", "ubuntu-22.04", os_hidden=True, tags=["lts", "gpu"])
    assert sync(fed, "RegionA", "RegionB") == 0
    for name in ("RegionA", "RegionB"):
        (copy,) = named(fed, name, "ubuntu-22.04")
        assert copy.os_hidden and sorted(copy.tags) == ["gpu", "lts"]
    assert status_line(fed, "RegionA", "RegionB")[0] == 0


def test_master_image_without_checksum(fed):
    change(fed, "Master", "ubuntu-22.04", strip_hashes=True)
    code, out = status_line(fed, "RegionA")
    assert code == 4 and "error_unverifiable,master:RegionA,ubuntu-22.04" in out
    assert sync(fed, "RegionA") == 4
    assert named(fed, "RegionA", "ubuntu-22.04") == []
    allowed = ["--config", "sync_without_checksum=true"]
    code, out = status_line(fed, *allowed, "RegionA")
    assert code == 3 and "pending_upload,master:RegionA,ubuntu-22.04" in out
    assert sync(fed, *allowed, "RegionA") == 0
    (copy,) = named(fed, "RegionA", "ubuntu-22.04")
    master_file = fed.folder / "federation" / "Master" / "data"
    (data,) = [p.read_bytes() for p in master_file.iterdir() if p.stat().st_size == copy.size]
    assert copy.provenance.master_hash == "sha512:" + hashlib.sha512(data).hexdigest()
    code, out = status_line(fed, *allowed, "RegionA")
    assert code == 0 and "ok,master:RegionA,ubuntu-22.04" in out


def test_signed_master_image(fed):
    change(fed, "Master", "debian-12", **SIGNATURE)
    at_upload = ["--config", "signature_properties=at-upload"]
    result = fed.run("sync", "--no-progress", *at_upload, "RegionA")
    assert result.returncode == 4, result.stderr
    assert "need an operator" in result.stdout and "certificate" in result.stderr
    assert named(fed, "RegionA", "debian-12") == []  # nothing left behind
    assert sync(fed, "RegionA") == 0  # after-upload, the default
    (copy,) = named(fed, "RegionA", "debian-12")
    assert {key: copy.properties.get(key) for key in SIGNATURE} == SIGNATURE
    assert status_line(fed, "RegionA")[0] == 0


def test_members_follow_the_master(fed):
    image_id = change(fed, "Master", "tools-private", visibility="shared",
                      members=["alpha", "gamma"])
    options = ["--config", f"master.forcesyncs={image_id}", "--config", "sync_members=true",
               "--config", "master.projects=alpha, beta"]
    code, out = status_line(fed, *options, "RegionA")
    assert code == 3 and "pending_upload,master:RegionA,tools-private" in out
    assert sync(fed, *options, "RegionA") == 0
    (copy,) = named(fed, "RegionA", "tools-private")
    adapter = region(fed, "RegionA")
    try:
        assert copy.visibility == "shared" and adapter.list_members(copy.id) == ["alpha"]
    finally:
        adapter.close()
    code, out = status_line(fed, *options, "RegionA")
    assert code == 0 and "info_members_unmapped,master:RegionA,tools-private" in out
