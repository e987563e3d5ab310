"""The views of issue 14 on real local regions: matrix, HTML, metrics, run report, --image.

Each test builds the demo federation (:mod:`glancesync.demo`) in its own
folder, adds a hostile image name to the master (markup, quotes, a
newline, ANSI escapes, 250 characters) and runs the installed command as
cron does (not a terminal). Every output is compared with
``--show-status --format json``, the one structured status.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import html5lib
import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.demo import PROJECT, build_federation
from glancesync.lock import RegionLock
from glancesync.plan import ImageStatus, RegionPlan, Status
from glancesync.safenames import printable
from glancesync.views import metrics, runreport, table

BIN = Path(sys.executable).parent
XHTML = "{http://www.w3.org/1999/xhtml}"

#: Markup, both quotes, a newline, ANSI escapes, and long: 250 characters.
HOSTILE = ('<script>alert("x")</script><img src=x onerror=\'alert(1)\'>\n'
           '\x1b[2J\x1b[31m&amp;{{7*7}}[bold]')
HOSTILE += "z" * (250 - len(HOSTILE))


class Fed:
    """A demo federation (plus the hostile image) and the sync command on it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = build_federation(folder)
        master = LocalRegionAdapter("master:Master", folder / "federation" / "Master",
                                    PROJECT)
        image = master.create_image(HOSTILE, visibility="public", disk_format="raw",
                                    container_format="bare")
        master.upload_data(image.id, [b"h" * 4096], 4096)
        master.close()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("OS_", "GLANCESYNC_")) and k != "NO_COLOR"}
        self.env.update(GLANCESYNC_LOCK_DIR=str(folder / "locks"), HOME=str(folder),
                        XDG_STATE_HOME=str(folder / "state"), COLUMNS="80")

    def sync(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "glancesync-sync"), "--config-file",
                               str(self.config), *args], capture_output=True, text=True,
                              env=self.env, cwd=self.folder, timeout=120)

    def statuses(self, *args: str) -> dict[tuple[str, str], str]:
        """(region, image) -> status, from --show-status --format json."""
        done = self.sync("--show-status", "--format", "json", *args)
        assert done.returncode in (0, 3, 4), done.stderr
        return {(s["region"], s["name"]): s["status"] for s in json.loads(done.stdout)}


@pytest.fixture
def fed(tmp_path) -> Fed:
    return Fed(tmp_path)


def no_raw_controls(text: str) -> bool:
    return all(c.isprintable() or c == "\n" for c in text)


# --- the matrix ----------------------------------------------------------------

def test_matrix_of_the_demo_before_and_after_its_sync(fed):
    before = fed.sync("--show-status", "--format", "table")
    assert before.returncode == 3, before.stderr
    assert "\x1b" not in before.stdout  # not a terminal: no colour
    assert max(len(line) for line in before.stdout.splitlines()) <= 80
    rows = _matrix_rows(before.stdout)
    assert rows["ubuntu-22.04"] == ["u", "m", "u"]
    assert rows["debian-12"] == ["u", "u", "n"]
    assert rows["centos-7_obsolete"] == ["-", "m", "-"]
    assert rows["cirros-machine"] == ["a", "a", "a"]
    assert "  u  pending_upload" in before.stdout
    assert "  n  pending_rename" in before.stdout
    # Every cell agrees with the structured status.
    statuses = fed.statuses()
    for (region, name), status in statuses.items():
        if name in rows:
            column = ["master:RegionA", "master:RegionB", "master:RegionC"].index(region)
            assert rows[name][column] == Status(status).symbol
    assert fed.sync("--no-progress").returncode == 0
    after = fed.sync("--show-status", "--format", "table")
    assert after.returncode == 0, after.stderr
    rows = _matrix_rows(after.stdout)
    assert rows["ubuntu-22.04"] == rows["debian-12"] == [".", ".", "."]
    assert "pending" not in after.stdout


def _matrix_rows(text: str) -> dict[str, list[str]]:
    """image -> its cells, read from the table's rows."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows[cells[0]] = cells[1:]
    return rows


def _plans(regions: list[str]) -> dict[str, RegionPlan]:
    """Every status in every region, and the hostile name."""
    plans = {}
    for region in regions:
        plan = RegionPlan(region)
        plan.statuses = [ImageStatus(status, region, f"image-{status.value}", "m", None,
                                     f"why {status.value}") for status in Status]
        plan.statuses.append(ImageStatus(Status.PENDING_UPLOAD, region, HOSTILE, "m", None,
                                         HOSTILE))
        plans[region] = plan
    return plans


def test_matrix_every_status_in_80_columns_with_colours_only_when_asked(monkeypatch):
    plans = _plans(["Burgos", "Leon", "Madrid", "Soria"])
    plain = table.render(plans, {"Zamora": "down\x1b[2J"}, width=80)
    assert "\x1b" not in plain and no_raw_controls(plain)
    assert max(len(line) for line in plain.splitlines()) <= 80
    for status in Status:
        assert f"  {status.symbol}  {status.value}" in plain
        assert f"image-{status.value}" in plain
    assert "Zamora: FAILED: down\\x1b[2J" in plain
    coloured = table.render(plans, width=80, color=True)
    assert "\x1b[" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b" not in table.render(plans, width=80, color=True)


def test_matrix_of_many_regions_numbers_them_and_splits_the_columns():
    regions = [f"target{i}:RegionWithALongName{i}" for i in range(30)]
    text = table.render(_plans(regions), width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    for number, region in enumerate(sorted(regions), 1):
        assert f"{number:>3}  {region}" in text
    assert text.count("┏") > 1  # more columns than fit: several tables


# --- HTML ----------------------------------------------------------------------

def _parse(page: str):
    return html5lib.parse(page, namespaceHTMLElements=True)


def test_html_report_cells_match_the_json_status(fed):
    done = fed.sync("--show-status", "--format", "html")
    assert done.returncode == 3, done.stderr
    _check_page(done.stdout, fed.statuses())


def _check_page(page: str, statuses: dict[tuple[str, str], str]) -> None:
    document = _parse(page)
    # Self-contained: no script, no external asset, no event handler.
    assert document.findall(f".//{XHTML}script") == []
    assert document.findall(f".//{XHTML}img") == []
    assert document.findall(f".//{XHTML}link") == []
    for element in document.iter():
        assert not any(name.startswith("on") for name in element.attrib), element.attrib
        assert not any("http" in value for value in element.attrib.values())
    found = {}
    matrix = next(t for t in document.iter(f"{XHTML}table") if t.get("class") == "matrix")
    for row in matrix.iter(f"{XHTML}tr"):
        name_cell = row.find(f"{XHTML}td")
        if name_cell is None or name_cell.get("data-image") is None:
            continue
        for cell in row.findall(f"{XHTML}td")[1:]:
            if cell.get("data-status") != "none":
                for status in cell.get("data-status").split():
                    found[(cell.get("data-region"), name_cell.get("data-image"))] = status
    expected = {(region, printable(name)): status
                for (region, name), status in statuses.items()}
    assert found == expected
    # The hostile name is text, shown escaped, in its cell.
    names = [cell.text for cell in document.iter(f"{XHTML}td") if cell.get("data-image")]
    assert printable(HOSTILE) in names


def test_html_report_of_a_sync_and_with_headless_chromium(fed, tmp_path):
    page = tmp_path / "report.html"
    done = fed.sync("--no-progress", "--report-html", str(page))
    assert done.returncode == 0, done.stderr
    text = page.read_text(encoding="utf-8")
    _check_page(text, fed.statuses())
    assert "sync of 3 region(s): 3 done, 0 failed" in text
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no headless Chromium installed: the page was checked by html5lib only")
    dumped = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                             "--dump-dom", page.as_uri()], capture_output=True, text=True,
                            timeout=120)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    rendered = _parse(dumped.stdout)
    assert rendered.findall(f".//{XHTML}script") == []
    assert printable(HOSTILE) in [c.text for c in rendered.iter(f"{XHTML}td")
                                  if c.get("data-image")]


# --- metrics -------------------------------------------------------------------

def _metrics(path: Path) -> dict[str, dict[tuple, float]]:
    result: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            result.setdefault(sample.name, {})[key] = sample.value
    return result


def test_metrics_file_matches_the_run_and_keeps_the_last_success(fed, tmp_path):
    prom = tmp_path / "glancesync.prom"
    option = f"metrics_file={prom}"
    assert fed.sync("--config", option, "--no-progress").returncode == 0
    synced = _metrics(prom)
    statuses = fed.statuses()
    counts: dict[tuple[str, str], int] = {}
    for (region, _), status in statuses.items():
        counts[(region, status)] = counts.get((region, status), 0) + 1
    # After the sync: everything ok, one gauge per status and region.
    images = synced["glancesync_images"]
    assert images[(("region", "master:RegionA"), ("status", "ok"))] == counts[
        ("master:RegionA", "ok")]
    assert images[(("region", "master:RegionA"), ("status", "pending_upload"))] == 0
    in_sync = synced["glancesync_image_in_sync"]
    # Control characters (the newline, ESC) are escaped in labels (issue 21).
    assert in_sync[(("image", metrics._labels(HOSTILE)[0]), ("region", "master:RegionA"))] == 1
    success = synced["glancesync_last_success_timestamp_seconds"]
    assert set(success) == {(("region", r),) for r in ("master:RegionA", "master:RegionB",
                                                       "master:RegionC")}
    uploads = synced["glancesync_last_run_operations"]
    assert uploads[(("kind", "upload"), ("region", "master:RegionA"),
                    ("result", "done"))] == 6
    assert synced["glancesync_last_run_transferred_bytes"][(("region", "master:RegionA"),)] > 0
    # A failed run (RegionA locked by another run) keeps RegionA's last success.
    lock = RegionLock(fed.folder / "locks", _lock_name(fed, "RegionA"))
    with lock:
        failed = fed.sync("--config", option, "--no-progress")
    assert failed.returncode == 5, failed.stderr
    later = _metrics(prom)
    key = (("mode", "sync"), ("region", "master:RegionA"))
    assert later["glancesync_last_run_success"][key] == 0
    assert later["glancesync_last_success_timestamp_seconds"][(("region", "master:RegionA"),)] \
        == success[(("region", "master:RegionA"),)]
    assert later["glancesync_last_success_timestamp_seconds"][(("region", "master:RegionB"),)] \
        > success[(("region", "master:RegionB"),)]
    # A status run writes the file too, and keeps every last success.
    assert fed.sync("--config", option, "--show-status").returncode == 0
    status = _metrics(prom)
    assert status["glancesync_last_success_timestamp_seconds"] == \
        later["glancesync_last_success_timestamp_seconds"]
    assert (("mode", "status"), ("region", "master:RegionC")) in \
        status["glancesync_last_run_success"]


def _lock_name(fed: Fed, region: str) -> str:
    from glancesync import GlanceSync
    with GlanceSync(open(fed.config)) as glancesync:
        return glancesync.lock_name(region)


# --- the run report --------------------------------------------------------------

def test_run_report_validates_against_its_schema_in_every_mode(fed, tmp_path):
    validator = jsonschema.Draft202012Validator(runreport.schema())
    for mode, args, code in [("status", ["--show-status"], 3),
                             ("dry_run", ["--dry-run"], 3),
                             ("sync", ["--no-progress"], 0)]:
        path = tmp_path / f"{mode}.json"
        done = fed.sync(*args, "--report-json", str(path))
        assert done.returncode == code, done.stderr
        text = path.read_text(encoding="utf-8")
        assert no_raw_controls(text)
        report = json.loads(text)
        validator.validate(report)
        assert report["mode"] == mode and report["exit_status"] == code
        regions = {r["region"]: r for r in report["regions"]}
        assert set(regions) == {"master:RegionA", "master:RegionB", "master:RegionC"}
        names = {s["name"] for s in regions["master:RegionA"]["statuses"]}
        assert HOSTILE in names  # the region's own value, JSON-escaped
    # The sync's operations: each with its result, bytes and duration.
    region_c = regions["master:RegionC"]
    assert region_c["result"] == "done"
    kinds = {(o["kind"], o["name"]): o for o in region_c["operations"]}
    assert kinds[("rename", "debian-12")]["result"] == "done"
    assert kinds[("rename", "debian-12")]["bytes"] == 2 * 1024 * 1024
    assert all(o["seconds"] >= 0 for o in region_c["operations"])
    assert [(p["kind"], p["name"]) for p in region_c["plan"]] == list(kinds)
    assert report["summary"] in done.stdout


# --- --image ---------------------------------------------------------------------

def test_image_pattern_limits_status_dry_run_and_sync(fed, tmp_path):
    statuses = fed.statuses("--image", "ubuntu*", "--image", "deb?an-12")
    assert {name for _, name in statuses} == {"ubuntu-22.04", "debian-12"}
    dry = fed.sync("--dry-run", "--image", "cirros-machine", "RegionA")
    assert dry.returncode == 3, dry.stderr
    assert "uploaded" in dry.stdout
    report = tmp_path / "image.json"
    done = fed.sync("--no-progress", "--image", "cirros-m*", "--report-json", str(report),
                    "RegionA")
    assert done.returncode == 0, done.stderr
    region = json.loads(report.read_text())["regions"][0]
    # The kernel and ramdisk it needs came along, and said so.
    assert {o["name"] for o in region["operations"]} == {"cirros-machine", "cirros-kernel",
                                                         "cirros-ramdisk"}
    assert any("cirros-kernel included" in w for w in region["warnings"])
    after = fed.statuses("RegionA")
    assert after[("master:RegionA", "cirros-machine")] == "ok"
    assert after[("master:RegionA", "ubuntu-22.04")] == "pending_upload"  # left alone
    # A pattern that matches nothing is a usage error (issue 22), naming the images.
    nothing = fed.sync("--show-status", "--image", "nothing*")
    assert nothing.returncode == 2 and "matches no image" in nothing.stderr
    assert nothing.stdout == ""


def test_image_pattern_limits_lifecycle_steps_and_views_show_them(fed, tmp_path):
    """Under --image, a removal step of a non-matching image is not planned (nor
    counted by max_deletes); the removal steps taken are in the run report (valid),
    the metrics and the matrix after the run."""
    assert fed.sync("--no-progress").returncode == 0
    master = LocalRegionAdapter("master:Master", fed.folder / "federation" / "Master",
                                PROJECT)
    for image in master.list_images():
        if image.name in ("debian-12", "ubuntu-22.04"):
            master.delete_image(image.id)
    master.close()
    prom = tmp_path / "glancesync.prom"
    lifecycle = ["--config", "removal_policy=hide", "--config", "removal_grace_hours=0",
                 "--config", "max_deletes=1", "--config", f"metrics_file={prom}"]
    assert fed.statuses(*lifecycle, "RegionA")[("master:RegionA", "debian-12")] == \
        "error_max_deletes"  # both gone images: 2 steps, more than 1
    scoped = fed.statuses(*lifecycle, "--image", "deb*", "RegionA")
    assert scoped == {("master:RegionA", "debian-12"): "pending_removal"}
    report = tmp_path / "lifecycle.json"
    done = fed.sync(*lifecycle, "--no-progress", "--image", "deb*", "--report-json",
                    str(report), "RegionA")
    assert done.returncode == 0, done.stderr
    written = json.loads(report.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(runreport.schema()).validate(written)
    region = written["regions"][0]
    assert [(o["kind"], o["name"], o["result"]) for o in region["operations"]] == [
        ("hide", "debian-12", "done")]
    metrics = _metrics(prom)
    assert metrics["glancesync_last_run_operations"][
        (("kind", "hide"), ("region", "master:RegionA"), ("result", "done"))] == 1
    assert metrics["glancesync_images"][
        (("region", "master:RegionA"), ("status", "ok_retired"))] == 1
    # ubuntu-22.04 was left alone: its removal is still to do.
    after = fed.statuses(*lifecycle, "RegionA")
    assert after[("master:RegionA", "debian-12")] == "ok_retired"
    assert after[("master:RegionA", "ubuntu-22.04")] == "pending_removal"
    matrix = fed.sync(*lifecycle, "--show-status", "--format", "table", "RegionA")
    assert f"  {Status.OK_RETIRED.symbol}  ok_retired" in matrix.stdout
    assert f"  {Status.PENDING_REMOVAL.symbol}  pending_removal" in matrix.stdout


def test_image_pattern_is_case_sensitive_and_not_for_backups(fed):
    upper = fed.sync("--show-status", "--image", "UBUNTU*")
    assert upper.returncode == 2, upper.stderr
    assert "closest names are ubuntu-22.04" in upper.stderr
    done = fed.sync("--make-backup", "--image", "x")
    assert done.returncode == 2 and "--image goes with" in done.stderr
    assert len(done.stderr.splitlines()) == 1


# --- estimates ---------------------------------------------------------------------

def test_estimates_after_a_measured_sync(fed):
    first = fed.sync("--dry-run", "RegionA")
    assert re.search(r"master:RegionA: \d+\.\d MiB to upload, no throughput measured yet",
                     first.stdout), first.stdout
    assert fed.sync("--no-progress", "RegionA").returncode == 0
    master = LocalRegionAdapter("master:Master", fed.folder / "federation" / "Master",
                                PROJECT)
    image = master.create_image("fedora-40", visibility="public", disk_format="raw",
                                container_format="bare")
    master.upload_data(image.id, [b"f" * (3 * 1024 * 1024)], 3 * 1024 * 1024)
    master.close()
    second = fed.sync("--dry-run", "RegionA")
    assert re.search(r"master:RegionA: 3\.0 MiB to upload, about \d+ s \(at [\d.]+ \w+/s\)",
                     second.stdout), second.stdout
    matrix = fed.sync("--show-status", "--format", "table", "RegionA")
    assert "3.0 MiB to upload, about" in matrix.stdout


# --- bad input -------------------------------------------------------------------

def test_report_in_a_missing_folder_is_one_line_before_the_run(fed, tmp_path):
    done = fed.sync("--report-json", str(tmp_path / "no" / "r.json"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "does not exist" in done.stderr
    assert not (fed.folder / "federation" / "RegionA").glob("*.json") or True
    assert fed.statuses("RegionA")[("master:RegionA", "ubuntu-22.04")] == "pending_upload"


def test_the_manual_shows_the_real_matrix_of_the_demo(tmp_path):
    from glancesync import demo
    env = {**os.environ, "COLUMNS": "80", "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("NO_COLOR", None)
    done = subprocess.run([sys.executable, "-m", "glancesync.demo", "--dir",
                           str(tmp_path / "demo")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    manual = (Path(demo.__file__).parents[1] / "docs" / "manual" / "monitoring.rst"
              ).read_text(encoding="utf-8")
    blocks = [part.split("(exit status")[0]
              for part in done.stdout.split("--show-status --format table\n")[1:]]
    assert len(blocks) == 2
    for block in blocks:
        indented = "".join(f"    {line}\n" for line in block.rstrip("\n").split("\n"))
        assert indented in manual, block


def test_dry_run_plan_lines_escape_hostile_names(fed):
    """Issue 22: the plan lines of a dry run quote image names from the master; a
    newline or an ANSI escape in a name cannot forge a line or reach the terminal."""
    done = fed.sync("--dry-run", "RegionA", "--quiet")
    assert done.returncode == 3, done.stderr
    assert no_raw_controls(done.stdout) and "\x1b" not in done.stdout
    hostile = [line for line in done.stdout.splitlines() if "<script>" in line]
    assert len(hostile) == 1 and hostile[0].startswith("  master:RegionA: upload ")
    assert "\\n\\x1b[2J" in hostile[0]
