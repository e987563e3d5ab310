"""Run folders stay bounded: keep_runs (issue 10, case 7).

Each ``--parallel`` run writes a ``run_<timestamp>`` folder under
``run_dir``; a cron job every five minutes used to add 288 a day, for ever.
Now a run deletes the oldest so that ``keep_runs`` remain, its own
included, and touches nothing else in ``run_dir``.
"""
from __future__ import annotations

import datetime
import io
import os
import textwrap
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.config import load_config
from glancesync.errors import ConfigError
from glancesync.facade import GlanceSync
from glancesync.runlog import RUN_FOLDER, prune_runs

PROJECT = "p-runs"


def old_runs(run_dir: Path, count: int) -> list[Path]:
    """``count`` run folders of past days, each with a log, oldest first."""
    start = datetime.datetime(2024, 1, 1)
    made = []
    for day in range(count):
        folder = run_dir / f"run_{start + datetime.timedelta(days=day):%Y%m%d_%H%M%S_%f}"
        folder.mkdir(parents=True)
        (folder / "master_RegionA.log").write_text("old\n")
        made.append(folder)
    return made


def test_prune_keeps_the_newest_and_nothing_else_is_touched(tmp_path):
    run_dir = tmp_path / "runs"
    runs = old_runs(run_dir, 6)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    (run_dir / "notes").mkdir()
    (run_dir / "run_20200101_000000_000000").write_text("a file, not a run folder")
    (run_dir / "run_20200101_000000_000001").symlink_to(outside)
    (run_dir / "run_2020").mkdir()  # not a run folder's name

    deleted = prune_runs(run_dir, 2)

    assert deleted == runs[:4]
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        ["notes", "run_20200101_000000_000000", "run_20200101_000000_000001", "run_2020",
         runs[4].name, runs[5].name])
    assert (outside / "precious").read_text() == "keep me"


def test_prune_of_a_missing_folder_or_fewer_runs_does_nothing(tmp_path):
    assert prune_runs(tmp_path / "nowhere", 3) == []
    runs = old_runs(tmp_path, 2)
    assert prune_runs(tmp_path, 3) == [] and all(folder.is_dir() for folder in runs)


def test_the_run_folder_name_is_what_prune_recognises(tmp_path):
    from glancesync.runlog import RunLogs
    assert RUN_FOLDER.fullmatch(RunLogs(tmp_path, []).folder.name)


@pytest.fixture
def federation(tmp_path, monkeypatch) -> Path:
    """A master with one image and two regions, local; returns the run folder."""
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    root = tmp_path / "regions"
    master = LocalRegionAdapter("master:Master", root / "Master", PROJECT)
    image = master.create_image("base", visibility="public", disk_format="raw",
                                container_format="bare")
    master.upload_data(image.id, [b"base" * 64], 256)
    master.close()
    for name in ("RegionA", "RegionB"):
        LocalRegionAdapter(f"master:{name}", root / name, PROJECT).ensure_exists()
    return tmp_path


def run_parallel(folder: Path, keep_runs: str | None) -> GlanceSync:
    keep = f"keep_runs = {keep_runs}\n" if keep_runs is not None else ""
    text = textwrap.dedent(f"""
        [main]
        master_region = Master
        run_dir = {folder / "runs"}
        max_children = 2
        """) + keep + textwrap.dedent(f"""
        [master]
        type = local
        path = {folder / "regions"}
        project = {PROJECT}
        """)
    with GlanceSync(io.StringIO(text), progress=False) as gs:
        result = gs.sync(parallel=True)
        assert result.exit_status == 0
        return result.log_folder


def test_a_parallel_run_keeps_keep_runs_folders(federation):
    runs = old_runs(federation / "runs", 40)
    (federation / "runs" / "README").write_text("not ours")
    newest = run_parallel(federation, "5")
    left = sorted(p for p in (federation / "runs").iterdir() if p.is_dir())
    assert left == [*runs[-4:], newest]
    assert (federation / "runs" / "README").read_text() == "not ours"


def test_keep_runs_defaults_to_30_and_0_keeps_all(federation):
    runs = old_runs(federation / "runs", 35)
    newest = run_parallel(federation, None)
    left = sorted(p for p in (federation / "runs").iterdir() if p.is_dir())
    assert left == [*runs[-29:], newest]
    run_parallel(federation, "0")
    # Run folders only: throughput.json is there too when an upload took long enough.
    assert len([p for p in (federation / "runs").iterdir() if p.is_dir()]) == 31


def test_keep_runs_must_be_a_count():
    with pytest.raises(ConfigError) as caught:
        load_config(io.StringIO("[main]\nmaster_region = M\nkeep_runs = -1\n"
                                "[master]\ncloud = c\n"), environ={})
    assert caught.value.option == "keep_runs"


@pytest.mark.skipif(os.geteuid() == 0, reason="root deletes whatever the modes")
def test_a_run_folder_that_cannot_be_deleted_is_a_warning(tmp_path, caplog):
    runs = old_runs(tmp_path, 3)
    runs[0].chmod(0o500)  # its log cannot be removed
    try:
        assert prune_runs(tmp_path, 1) == [runs[1]]
    finally:
        runs[0].chmod(0o700)
    assert "cannot delete the old run folder" in caplog.text
