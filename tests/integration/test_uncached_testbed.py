"""An image larger than the cache, streamed to its regions without caching (issue 23,
case 9).

The master image (3 MiB) does not fit the cache: a 2 MiB file system (a
tmpfs mounted for the test, as root) or ``cache_max_size`` below its size.
Each region gets it streamed from the master, verified while it passes
(one download per region); nothing is written in the cache; the status says
so before the sync. A region that converts it cannot (the conversion needs a
local copy) and says why.
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from glancesync.plan import Status
from tests.integration.test_import_upload_testbed import SIZE, Bed

pytestmark = pytest.mark.integration

REGIONS = ["RegionA", "other:RegionC"]


@pytest.fixture
def bed(testbed, monkeypatch, tmp_path) -> Iterator[Bed]:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Bed(testbed)
    yield made
    made.clean()


@pytest.fixture
def small_cache(tmp_path) -> Iterator[Path]:
    """A 2 MiB file system for the cache (needs root to mount a tmpfs)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "none",
                              str(folder)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def sync_without_caching(bed: Bed, folder: Path, cache: Path, **main: object) -> None:
    master = bed.add_master("big")
    gs = bed.facade(folder, main={"cache_dir": cache, **main})
    with gs:
        statuses = {s.region: s for s in gs.status(REGIONS).statuses if s.name == master.name}
        for status in statuses.values():
            assert status.status is Status.PENDING_UPLOAD
            assert "streamed from the master for this region without caching" in status.reason
        result = gs.sync(REGIONS)
        assert result.exit_status == 0, result.failures
        assert result.bytes_downloaded == 2 * SIZE, "one download per region"
        assert {s.status for s in gs.status(REGIONS).statuses} == {Status.OK}
    for region in ("RegionA", "RegionC"):
        (copy,) = bed.mine(region)
        assert copy.status == "active" and master.same_content(copy)
    assert not cache.exists() or [p.name for p in cache.iterdir()] == []


def test_an_image_larger_than_the_cache_file_system_is_streamed(bed, tmp_path,
                                                               small_cache):
    sync_without_caching(bed, tmp_path, small_cache)


def test_an_image_larger_than_cache_max_size_is_streamed(bed, tmp_path):
    sync_without_caching(bed, tmp_path, tmp_path / "cache", cache_max_size="1M")


def test_a_conversion_of_an_image_the_cache_cannot_hold_says_why(bed, tmp_path, small_cache):
    bed.add_master("big")
    with bed.facade(tmp_path, main={"cache_dir": small_cache},
                    convert_to="qcow2") as gs:
        result = gs.sync(["RegionA"])
    assert result.exit_status != 0
    (text,) = [o.error for o in result.results["master:RegionA"].outcomes if o.error]
    assert "cannot convert it to qcow2: the conversion needs a local copy" in text, text
    assert "room of the cache's file system" in text
    assert bed.mine("RegionA") == []
