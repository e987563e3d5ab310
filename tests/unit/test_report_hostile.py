"""Names that try to rewrite the terminal or a spreadsheet (issue 15, case 10).

Image names (and region names, properties, server messages) are printed by
``--show-status``, ``printimages``, the log and the summary. Control
characters are shown escaped, a newline never forges a line, and CSV cells
never start a spreadsheet formula.
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.demo import PROJECT, build_federation
from glancesync.report import as_csv_row, csv_cell
from glancesync.safenames import printable

BIN = Path(sys.executable).parent

HOSTILE = {
    "ansi": "clear\x1b[2J\x1b[31mred",
    "forged": "forged\n  ubuntu-22.04  0000  1.0 MiB  active  public",
    "cr": "over\rwritten",
    "nul": "nul\x00name",
    "bidi": "\u202egpj.exe",
    "formula": '=HYPERLINK("http://127.0.0.1/x","click")',
    "plus": "+1+cmd",
    "minus": "-2+3",
    "at": "@SUM(A1)",
    "tab": "\tindented",
}


def raw_controls(text: str) -> set[str]:
    """Characters of ``text`` a terminal would act on (line ends excepted)."""
    return {c for c in text if not c.isprintable() and c != "\n"}


@pytest.fixture(scope="module")
def fed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("hostile-names")
    config = build_federation(folder)
    master = LocalRegionAdapter("master:Master", folder / "federation" / "Master", PROJECT)
    for number, name in enumerate(HOSTILE.values()):
        image = master.create_image(name, visibility="public", disk_format="raw",
                                    container_format="bare",
                                    properties={"note\x1b[1m": "v\nalue"})
        master.upload_data(image.id, [bytes([number]) * 64], 64)
    master.close()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OS_", "GLANCESYNC_"))}
    env.update(GLANCESYNC_LOCK_DIR=str(folder / "locks"), HOME=str(folder),
               XDG_STATE_HOME=str(folder / "state"))
    return config, env


def run(fed, command: str, *args: str) -> subprocess.CompletedProcess:
    config, env = fed
    return subprocess.run([str(BIN / f"glancesync-{command}"), "--config-file", str(config),
                           *args], capture_output=True, text=True, env=env, timeout=120)


def test_show_status_shows_names_escaped_one_line_each(fed):
    done = run(fed, "sync", "--show-status", "RegionA")
    assert done.returncode == 3, done.stderr
    assert raw_controls(done.stdout) == set()
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert len(rows) == len(done.stdout.splitlines()) == 5 + len(HOSTILE)
    names = {row[2] for row in rows}
    assert "clear\\x1b[2J\\x1b[31mred" in names
    assert "forged\\n  ubuntu-22.04  0000  1.0 MiB  active  public" in names
    assert {"over\\rwritten", "nul\\x00name", "\\u202egpj.exe", "'\\tindented"} <= names
    # Spreadsheets read these as text, never as formulas.
    assert {"'" + HOSTILE[key] for key in ("formula", "plus", "minus", "at")} <= names


def test_json_status_keeps_the_exact_names_escaped_by_json(fed):
    done = run(fed, "sync", "--show-status", "--output", "json", "RegionA")
    assert raw_controls(done.stdout) == set()
    assert HOSTILE["ansi"].replace("\x1b", "\\u001b") in done.stdout


def test_printimages_shows_names_escaped_and_no_forged_line(fed):
    done = run(fed, "printimages", "master", "RegionA")
    assert done.returncode == 0, done.stderr
    assert raw_controls(done.stdout) == set()
    master_lines = [line for line in done.stdout.splitlines() if line.startswith("  ")
                    and "MiB" in line]
    assert len(master_lines) == 5 + len(HOSTILE)  # one line per image, none forged
    assert any(line.startswith("  forged\\n  ubuntu-22.04") for line in master_lines)
    assert "note\\x1b[1m=v\\nalue" in done.stdout


def test_log_and_summary_show_names_escaped(fed):
    done = run(fed, "sync", "--verbose", "--no-progress", "RegionB")
    assert done.returncode == 0, done.stderr
    assert raw_controls(done.stdout + done.stderr) == set()
    assert "clear\\x1b[2J\\x1b[31mred" in done.stderr


@pytest.mark.parametrize("text, shown", [
    ("plain name", "plain name"), ("a\x1b[31mb", "a\\x1b[31mb"), ("a\nb", "a\\nb"),
    ("a\\nb", "a\\\\nb"), ("x\u2028y", "x\\u2028y"), ("caf\u00e9", "caf\u00e9"),
    ("\U000e0041", "\\U000e0041"),
])
def test_printable(text, shown):
    assert printable(text) == shown
    assert printable(text).isprintable()


@pytest.mark.parametrize("field, cell", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\\tx"),
    ("\rx", "'\\rx"), ("a=1", "a=1"), ("", ""), (None, ""), ("ok", "ok"),
])
def test_csv_cells_are_never_formulas(field, cell):
    assert csv_cell(field) == cell


def test_csv_rows_stay_valid_csv():
    row = as_csv_row("pending_upload", "master:RegionA", 'a,"b"\nc')
    assert list(csv.reader(io.StringIO(row))) == [["pending_upload", "master:RegionA",
                                                   'a,"b"\\nc']]
