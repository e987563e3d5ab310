"""Data outside its place (issue 15, cases 1 and 2, and their kind).

Names that come from a region, a catalog or a file (image ids, region
names) end up in file names: local data files, the image cache, the
``images_dir``, run logs, backups. Each must stay in its folder, whatever
the name: ``../../x``, an absolute path, a NUL, a link to elsewhere.
"""
from __future__ import annotations

import datetime
import hashlib
import logging
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from glancesync import demo, safenames
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.backends.local.store import LocalStore, RequestContext
from glancesync.errors import ImageNotFoundError, TransferError, UnsafeNameError, UsageError
from glancesync.facade import GlanceSync
from glancesync.image import Image
from glancesync.integrity import atomic_file
from glancesync.regions import RegionRef
from glancesync.report import write_backup
from glancesync.runlog import RunLogs, region_context
from glancesync.transfer import ImageCache, MasterImageSource

HOSTILE_NAMES = ["../../../VICTIM.txt", "/tmp/VICTIM.txt", "..", ".", "", "a/b",
                 "x\0y", "x/../../../../tmp/EVIL", "a" * 1000, "\x1b[31mred", "..\\..\\x",
                 "\u202eevil", "-rf", "~root"]


# --- the one place ---------------------------------------------------------------------

@pytest.mark.parametrize("name", HOSTILE_NAMES + ["master:RegionA", "RegionOne@http://h/v3"])
def test_file_names_are_plain_and_stay_in_their_folder(tmp_path, name):
    for made in (safenames.file_name(name, ".log"), safenames.region_file_name(name, ".log")):
        assert "/" not in made and "\0" not in made and not made.startswith(".")
        assert len(made.encode()) <= 255
        path = safenames.join(tmp_path, made)
        assert path.parent == tmp_path


def test_file_names_are_distinct_and_readable():
    names = ["master:RegionA", "master_RegionA", "master:Region_A", "master_Region:A",
             "a:b", "a_b", "a/b", "../a_b", "a_b-0123456789abcdef", "x" * 300, "x" * 301]
    assert len({safenames.file_name(n) for n in names}) == len(names)
    refs = ["master:RegionA", "master:Region_A", "master_Region:A", "other:x/../EVIL",
            "other:x_.._EVIL", "a:b-0123456789abcdef"]
    assert len({safenames.region_file_name(r) for r in refs}) == len(refs)
    assert safenames.file_name("plain-Region.1") == "plain-Region.1"
    assert safenames.region_file_name("master:RegionA", ".log") == "master_RegionA.log"


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "..", ".", "", "a/b", "x\0y"])
def test_join_refuses_what_is_not_a_plain_name(tmp_path, name):
    with pytest.raises(UnsafeNameError):
        safenames.join(tmp_path, name)
    with pytest.raises(UnsafeNameError):
        safenames.join(tmp_path, name, resolve=False)


def test_join_refuses_a_link_leading_outside_unless_told_not_to_resolve(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "inside").write_text("x")
    (folder / "link-in").symlink_to(folder / "inside")
    (folder / "link-out").symlink_to(tmp_path / "elsewhere")
    assert safenames.join(folder, "link-in") == folder / "link-in"
    with pytest.raises(UnsafeNameError, match="resolves outside"):
        safenames.join(folder, "link-out")
    assert safenames.join(folder, "link-out", resolve=False) == folder / "link-out"


def test_temporary_files_stay_in_the_folder(tmp_path):
    with pytest.raises(UnsafeNameError):
        with atomic_file(tmp_path / "final", prefix="../../escape-"):
            pass
    assert list(tmp_path.iterdir()) == []


# --- case 1: a local region's database pointing outside its folder ---------------------

@pytest.fixture
def federation(tmp_path, demo_template, monkeypatch) -> Path:
    """A copy of the demo federation; returns its configuration file."""
    folder = tmp_path / "demo"
    shutil.copytree(demo_template, folder)
    config = folder / "glancesync.conf"
    config.write_text(config.read_text().replace(str(demo_template), str(folder)))
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    return config


def insert_row(region: Path, image_id: str, name: str, status: str = "queued",
               **columns: object) -> None:
    """Alter a region's database by hand, as an attacker (or a bad script) would."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    values = {"id": image_id, "name": name, "status": status, "visibility": "private",
              "owner": demo.PROJECT, "created_at": now, "updated_at": now,
              "disk_format": "raw", "container_format": "bare", **columns}
    with sqlite3.connect(region / "images.db") as conn:
        conn.execute(f"INSERT INTO images ({', '.join(values)}) "
                     f"VALUES ({', '.join('?' * len(values))})", list(values.values()))


def sync(config: Path, *regions: str):
    with open(config) as stream, GlanceSync(stream, progress=False) as gs:
        return gs.sync(list(regions))


@pytest.mark.parametrize("hostile_id, victim", [
    ("../../../VICTIM.txt", "demo/VICTIM.txt"),  # the case as reported
    ("../../RegionA/images.db", "demo/federation/RegionA/images.db"),  # another region
    ("{absolute}", "VICTIM.txt"),  # an absolute path
])
def test_a_row_whose_id_leaves_the_folder_is_never_acted_upon(federation, caplog,
                                                               hostile_id, victim):
    root = federation.parent.parent
    victim_path = root / victim
    if not victim_path.exists():
        victim_path.write_text("precious")
    before = victim_path.read_bytes()
    hostile_id = hostile_id.replace("{absolute}", str(victim_path))
    region = federation.parent / "federation" / "RegionB"
    # queued, owned by the project, with a synchronised name: a leftover to clean.
    insert_row(region, hostile_id, "debian-12")
    with caplog.at_level(logging.WARNING, logger="glancesync"):
        result = sync(federation, "RegionB")
    assert victim_path.read_bytes() == before
    assert result.exit_status == 0 and not result.failures
    assert result.results["master:RegionB"].cleaned == 0
    assert f"ignoring the image row with id {hostile_id!r}" in caplog.text
    with sqlite3.connect(region / "images.db") as conn:  # left as it was, for the operator
        assert conn.execute("SELECT status FROM images WHERE id = ?",
                            (hostile_id,)).fetchone() == ("queued",)


@pytest.mark.parametrize("hostile_id", ["../x", "/etc/passwd", ".hidden", "a b", "x" * 200])
def test_the_store_refuses_hostile_ids_on_writing_and_on_reading(tmp_path, hostile_id):
    store = LocalStore(tmp_path / "region")
    context = RequestContext("p", is_admin=True)
    with pytest.raises(UsageError, match="invalid image id"):
        store.image_create(context, {"id": hostile_id, "name": "x"})
    insert_row(tmp_path / "region", hostile_id, "x", status="active", owner="p")
    assert store.image_get_all(context) == []
    for call in (store.image_get, store.image_destroy, store.read_data):
        with pytest.raises(ImageNotFoundError):
            call(context, hostile_id)
    store.close()


def test_a_master_data_file_linked_outside_its_folder_is_not_read(tmp_path):
    """A local master image whose data file is a link to /etc/... is never uploaded."""
    adapter = LocalRegionAdapter("master:M", tmp_path / "M", "p")
    image = adapter.create_image("x", disk_format="raw", container_format="bare")
    adapter.upload_data(image.id, [b"data"], 4)
    secret = tmp_path / "secret"
    secret.write_text("not an image")
    data_file = tmp_path / "M" / "data" / image.id
    data_file.unlink()
    data_file.symlink_to(secret)
    with pytest.raises(UnsafeNameError, match="resolves outside"):
        b"".join(adapter.download_data(image.id))
    # Deleting the image removes the link, never what it points to.
    adapter.delete_image(image.id)
    assert secret.read_text() == "not an image" and not data_file.is_symlink()
    adapter.close()


@pytest.mark.timeout(60)  # the FIFO blocked for ever
def test_a_master_data_file_that_is_a_fifo_is_refused_at_once(tmp_path):
    """A local master region (an offline mirror from elsewhere) whose data file is a
    FIFO: a clean error, never a hang."""
    adapter = LocalRegionAdapter("master:M", tmp_path / "M", "p")
    image = adapter.create_image("x", disk_format="raw", container_format="bare")
    adapter.upload_data(image.id, [b"data"], 4)
    data_file = tmp_path / "M" / "data" / image.id
    data_file.unlink()
    os.mkfifo(data_file)
    with pytest.raises(TransferError, match="not a regular file"):
        b"".join(adapter.download_data(image.id))
    adapter.close()


@pytest.mark.parametrize("name", ["x\0y", "..", "a/b", "."])
def test_a_local_region_name_that_is_no_folder_name_is_a_clean_error(federation, name):
    # The master region is checked against the target's regions (issue 22) before
    # its name makes any path; the local backend refuses it too (its own test).
    with open(federation) as stream, GlanceSync(stream, progress=False,
                                                overrides=[f"main.master_region={name}"]
                                                ) as gs:
        with pytest.raises(UsageError, match="master_region .* is not a region of target"):
            gs.adapter(gs.master_region)
        with pytest.raises(UsageError, match="invalid local region name"):
            gs.target("master").adapter(RegionRef("master", name))


# --- master ids in the cache and images_dir ------------------------------------------

def master_image(image_id: str, data: bytes = b"data", algo: str = "sha512") -> Image:
    return Image(id=image_id, name="x", status="active", size=len(data),
                 checksum=hashlib.md5(data).hexdigest(), os_hash_algo=algo,
                 os_hash_value=hashlib.new("sha512", data).hexdigest())


class OneImage:
    """A master adapter serving one image's bytes (whatever its id)."""

    name = "master:M"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def download_data(self, image_id: str):
        return iter([self.data])


@pytest.mark.parametrize("image_id", ["../../escaped", "/tmp/escaped", "..", "a/b"])
def test_the_cache_keeps_hostile_master_ids_in_its_folder(tmp_path, image_id):
    cache = ImageCache(tmp_path / "cache")
    image = master_image(image_id)
    path = MasterImageSource(OneImage(b"data"), cache).path(image)
    assert path.parent == tmp_path / "cache" and path.read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_a_hostile_hash_algorithm_stays_in_the_cache_folder(tmp_path):
    image = master_image("id", algo="../../../escaped")
    path = ImageCache(tmp_path / "cache").path_for(image)
    assert path.parent == tmp_path / "cache"


def test_images_dir_is_not_searched_outside_with_a_hostile_id(tmp_path):
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    (tmp_path / "outside").write_bytes(b"data")  # what ../outside would name
    source = MasterImageSource(OneImage(b"data"), ImageCache(tmp_path / "cache"), images_dir)
    path = source.path(master_image("../outside"))
    assert source.images_dir_hits == 0 and source.downloads == 1
    assert path.parent == tmp_path / "cache"


# --- case 2: region names from a catalog in run logs and backups ----------------------

def test_run_logs_of_hostile_region_names_stay_in_the_run_folder(tmp_path):
    regions = ["other:x/../../../../tmp/EVIL", "other:/tmp/EVIL2", "other:..", "other:\0",
               "master:RegionA"]
    logger = logging.getLogger("glancesync.test")
    with RunLogs(tmp_path / "runs", regions) as logs:
        for region in regions:
            with region_context(region):
                logger.warning("hello from %s", region)
    files = sorted(logs.folder.iterdir())
    assert len(files) == len(regions)
    assert {p.parent for p in logs.paths.values()} == {logs.folder}
    assert logs.paths["master:RegionA"].name == "master_RegionA.log"
    for region, path in logs.paths.items():
        assert safenames.printable(f"hello from {region}") in path.read_text()
    assert not Path("/tmp/EVIL.log").exists() and not Path("/tmp/EVIL2.log").exists()
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == files


def test_backups_of_hostile_region_names_stay_in_the_backup_folder(tmp_path):
    folder = tmp_path / "backup"
    folder.mkdir()
    written = [write_backup(folder, region, []) for region in
               ("other:x/../../EVIL", "other:x_.._.._EVIL", "master:RegionA")]
    assert {p.parent for p in written} == {folder} and len(set(written)) == 3
    assert written[2].name == "backup_master_RegionA.jsonl"
    assert sorted(os.listdir(tmp_path)) == ["backup"]
