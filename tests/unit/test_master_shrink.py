"""A master listing that shrank suspiciously removes no copy (issue 21, case 11).

With ``removal_policy = delete``, a 200 answer listing 1 of 6 master images
deleted 10 of 12 regional copies (up to ``max_deletes``), exit 0, no
warning. A run whose master listing shows more than ``max_master_shrink``
percent fewer images than on the last run now takes none of its removal
steps (``error_master_shrank``, exit status 4), until an operator confirms
with ``--config max_master_shrink=100``. Local regions: the master listing
is cut short by a master adapter that shows its first image only (a fault
adapter of a registered backend, nothing of ours patched), and by real
deletions in the master region.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from glancesync import backends
from glancesync.backends import local
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.backends.local.target import LocalTarget
from glancesync.errors import ExitStatus
from glancesync.facade import GlanceSync
from glancesync.listing import FILE_NAME, shrank
from glancesync.plan import Status
from tests import scenarios

NAMES = [f"img-{i}" for i in range(6)]


class TruncatedMaster(LocalRegionAdapter):
    """The master region answering its listing with one image only (a 200 cut short)."""

    def list_images(self) -> list:
        return super().list_images()[:1]


class TruncatingTarget(LocalTarget):
    """Local regions whose master lists one image."""

    def adapter(self, region):
        made = super().adapter(region)
        if region.name != "Master":
            return made
        return TruncatedMaster(name=made.name, path=made.path, project_id=made.project_id,
                               list_timeout=made.list_timeout, create=made.create)


@pytest.fixture
def truncating_backend():
    backends.register(dataclasses.replace(local.BACKEND, name="truncating",
                                          make_target=TruncatingTarget))
    yield
    backends.unregister("truncating")


def config(tmp_path: Path, kind: str = "local", *extra: str) -> str:
    return textwrap.dedent(f"""
        [main]
        master_region = Master
        run_dir = {tmp_path / 'runs'}
        max_deletes = 50
        [master]
        type = {kind}
        path = {tmp_path / 'regions'}
        regions = Master, RegionA, RegionB
        removal_policy = delete
        removal_grace_hours = 0
        """) + "\n".join(extra) + "\n"


def facade(tmp_path: Path, kind: str = "local", *extra: str) -> GlanceSync:
    return GlanceSync(io.StringIO(config(tmp_path, kind, *extra)), progress=False)


def names(gs: GlanceSync, region: str) -> list[str]:
    return sorted(i.name for i in gs.adapter(region).list_images())


@pytest.fixture
def synced(tmp_path, monkeypatch) -> GlanceSync:
    """Six master images, copied to RegionA and RegionB; the count recorded."""
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    gs = facade(tmp_path)
    for name in NAMES:
        scenarios.put(gs.adapter("Master"), name, name.encode() * 100)
    assert gs.sync(["RegionA", "RegionB"]).exit_status == 0
    assert names(gs, "RegionA") == names(gs, "RegionB") == NAMES
    recorded = json.loads((tmp_path / "runs" / FILE_NAME).read_text())
    assert [entry["images"] for entry in recorded.values()] == [6]
    return gs


def test_a_truncated_master_listing_removes_no_copy(tmp_path, synced, truncating_backend):
    gs = facade(tmp_path, "truncating")
    report = gs.status(["RegionA", "RegionB"])
    held = [s for s in report.statuses if s.status is Status.ERROR_MASTER_SHRANK]
    assert len(held) == 10  # 5 copies in each region
    assert "shows 1 images, 6 on the last run" in held[0].reason
    result = gs.sync(["RegionA", "RegionB"])
    assert result.exit_status == ExitStatus.NEEDS_OPERATOR
    assert names(gs, "RegionA") == names(gs, "RegionB") == NAMES  # nothing deleted
    # The short listing is no reference: the next run holds them again.
    assert gs.sync(["RegionA", "RegionB"]).exit_status == ExitStatus.NEEDS_OPERATOR
    assert names(gs, "RegionA") == NAMES


def test_a_real_mass_removal_is_taken_once_confirmed(tmp_path, synced):
    """Variant: five master images really deleted; held, then confirmed."""
    master = synced.adapter("Master")
    for image in master.list_images():
        if image.name != "img-0":
            master.delete_image(image.id)
    gs = facade(tmp_path)
    dry = gs.sync(["RegionA", "RegionB"], dry_run=True)
    assert dry.exit_status == ExitStatus.NEEDS_OPERATOR
    shrank_lines = [s for plan in dry.plans.values() for s in plan.statuses
                    if s.status is Status.ERROR_MASTER_SHRANK]
    assert len(shrank_lines) == 10 and not any(p.removals for p in dry.plans.values())
    assert names(gs, "RegionA") == NAMES
    assert gs.sync(["RegionA", "RegionB"]).exit_status == ExitStatus.NEEDS_OPERATOR
    assert names(gs, "RegionA") == NAMES
    done = run(tmp_path, "--config", "max_master_shrink=100", "RegionA", "RegionB")
    assert done.returncode == 0, done.stderr
    assert names(gs, "RegionA") == names(gs, "RegionB") == ["img-0"]
    # The confirmed listing is the new reference: the next run is quiet.
    assert facade(tmp_path).sync(["RegionA", "RegionB"]).exit_status == 0


def test_a_listing_that_shrinks_within_the_limit_removes_as_before(tmp_path, synced):
    master = synced.adapter("Master")
    for image in master.list_images():
        if image.name in ("img-4", "img-5"):
            master.delete_image(image.id)
    gs = facade(tmp_path)
    assert gs.sync(["RegionA", "RegionB"]).exit_status == 0
    assert names(gs, "RegionA") == NAMES[:4]


def test_the_script_says_why_and_exits_4(tmp_path, synced):
    """The message an operator sees, and its exit status, from the script."""
    master = synced.adapter("Master")
    for image in master.list_images():
        if image.name != "img-0":
            master.delete_image(image.id)
    done = run(tmp_path, "RegionA")
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert "the master listing shows 1 images, 6 on the last run" in done.stderr
    assert "--config max_master_shrink=100" in done.stderr


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """glancesync-sync with the configuration of ``config`` (local regions)."""
    path = tmp_path / "glancesync.conf"
    path.write_text(config(tmp_path))
    path.chmod(0o600)
    return subprocess.run(
        [str(Path(sys.executable).parent / "glancesync-sync"), "--config-file", str(path),
         *args], capture_output=True, text=True, timeout=120,
        env={"GLANCESYNC_LOCK_DIR": str(tmp_path / "locks"), "PATH": "/usr/bin:/bin",
             "HOME": str(tmp_path)})


@pytest.mark.parametrize("previous, images, limit, expected", [
    (None, 1, 50, False), (0, 0, 50, False), (6, 1, 50, True), (6, 3, 50, False),
    (6, 2, 50, True), (6, 0, 0, True), (6, 6, 0, False), (6, 1, 100, False),
    (1000, 499, 50, True), (1000, 500, 50, False)])
def test_shrank(previous, images, limit, expected):
    assert shrank(previous, images, limit) is expected


@pytest.mark.timeout(120)
def test_a_record_that_is_a_fifo_or_garbage_never_hangs_a_run(tmp_path, synced, caplog):
    """The count is read back through the guard: a FIFO is refused (no previous
    count, a warning), garbage is no count; the run goes on."""
    record = tmp_path / "runs" / FILE_NAME
    record.unlink()
    os.mkfifo(record)
    assert facade(tmp_path).sync(["RegionA"]).exit_status == 0
    assert "not compared with the last run's" in caplog.text
    record.unlink()
    record.write_text('{"x": {"images": "six"}, "y": [1]}')
    record.chmod(0o600)
    assert facade(tmp_path).sync(["RegionA"]).exit_status == 0


def test_get_status_holds_them_too(tmp_path, synced, truncating_backend):
    statuses = facade(tmp_path, "truncating").get_status("RegionA")
    assert [s.status for s in statuses].count(Status.ERROR_MASTER_SHRANK) == 5
