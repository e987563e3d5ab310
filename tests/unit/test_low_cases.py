"""The low cases of issue 21 (case 14): progress bars, blanks, encodings, CSV cells."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from glancesync import progress
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.demo import PROJECT, build_federation
from glancesync.report import as_csv_row, csv_cell
from tests import scenarios

BIN = Path(sys.executable).parent


def environment(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
    env.update(GLANCESYNC_LOCK_DIR=str(folder / "locks"), HOME=str(folder),
               XDG_STATE_HOME=str(folder / "state"), **extra)
    return env


def test_a_progress_bar_escapes_the_image_name():
    out = io.StringIO()
    bar = progress.progress_bar("upload \x1b]0;owned\x07evil\x1b[2J", 100, True, file=out)
    bar.update(50)
    bar.close()
    text = out.getvalue()
    assert "\x1b]" not in text and "\x07" not in text and "\x1b[2J" not in text
    assert "\\x1b]0;owned\\x07evil" in text


@pytest.mark.parametrize("cell", [" =HYPERLINK(\"http://x\")", "  +1", "\u00a0=1", " \t@x"])
def test_a_formula_after_blanks_is_neutralised(cell):
    assert csv_cell(cell).startswith("'")
    assert as_csv_row("ok", cell).split(",", 1)[1].lstrip('"').startswith("'")


def test_printimages_without_arguments_keeps_a_region_name_ending_in_a_blank(tmp_path):
    folder = tmp_path / "regions"
    config = tmp_path / "glancesync.conf"
    config.write_text(textwrap.dedent(f"""
        [main]
        master_region = Master
        [master]
        type = local
        path = {folder}
        regions = Master, RegionA, "RegionB "
    """))
    master = LocalRegionAdapter("master:Master", folder / "Master", "p-sync")
    scenarios.put(master, "img", b"x" * 1024)
    master.close()
    for name in ("RegionA", "RegionB "):
        LocalRegionAdapter(f"master:{name}", folder / name, "p-sync").close()
    done = subprocess.run([str(BIN / "glancesync-printimages"), "--config-file", str(config)],
                          capture_output=True, text=True, env=environment(tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "RegionB " in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize("form", ["csv", "table"])
def test_status_on_a_stdout_that_is_not_utf8(tmp_path, form):
    config = build_federation(tmp_path / "demo")
    master = LocalRegionAdapter("master:Master", tmp_path / "demo" / "federation" / "Master",
                                PROJECT)
    scenarios.put(master, "café ☕ ünïcode", b"y" * 2048)
    master.close()
    done = subprocess.run([str(BIN / "glancesync-sync"), "--config-file", str(config),
                           "--show-status", "--format", form], capture_output=True,
                          env=environment(tmp_path, PYTHONIOENCODING="ascii",
                                          LC_ALL="C", COLUMNS="200"), timeout=120)
    assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    assert done.returncode in (0, 3), done.stderr
    assert b"caf\\xe9" in done.stdout  # escaped, as the stream cannot encode it
