"""The three scripts run as an operator runs them: subprocesses, local regions.

Each test builds the demo federation (:mod:`glancesync.demo`: master region
Master, RegionA empty, RegionB partly synchronised, RegionC in conflict) in
its own folder and runs the installed console commands with stderr not a
terminal, as under cron. Output, exit status and the absence of tracebacks
are checked for every case of the operator experience (issue 6).
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.demo import PROJECT, build_federation
from glancesync import GlanceSync
from glancesync.lock import RegionLock

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
REGIONS = ["master:RegionA", "master:RegionB", "master:RegionC"]


class Federation:
    """A demo federation in a temporary folder, and a way to run the scripts on it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = build_federation(folder)
        self.locks = folder / "locks"
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("OS_", "GLANCESYNC_"))}
        self.env.update(GLANCESYNC_LOCK_DIR=str(self.locks),
                        XDG_STATE_HOME=str(folder / "state"), HOME=str(folder))

    def run(self, command: str, *args: str, config: bool = True) -> subprocess.CompletedProcess:
        """Run console command ``glancesync-<command>`` with this federation."""
        argv = [str(BIN / f"glancesync-{command}")]
        if config:
            argv += ["--config-file", str(self.config)]
        return subprocess.run([*argv, *args], capture_output=True, text=True,
                              env=self.env, cwd=self.folder, timeout=120)

    def lock_name(self, region: str) -> str:
        """The lock the tool takes for ``region`` (keyed by its folder)."""
        with GlanceSync(open(self.config)) as glancesync:
            return glancesync.lock_name(region)

    def region(self, name: str) -> LocalRegionAdapter:
        return LocalRegionAdapter(f"master:{name}", self.folder / "federation" / name,
                                  PROJECT)

    def statuses(self) -> dict[tuple[str, str], str]:
        """(region, image) -> status, read with --show-status --output json."""
        result = self.run("sync", "--show-status", "--output", "json")
        assert result.returncode in (0, 3, 4), result.stderr
        return {(s["region"], s["name"]): s["status"] for s in json.loads(result.stdout)}


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    return Federation(tmp_path)


def assert_one_error_line(result: subprocess.CompletedProcess, prog: str,
                          *fragments: str) -> None:
    """A user mistake: exactly one line on stderr, naming the script, no traceback."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"glancesync-{prog}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]


# --- help -----------------------------------------------------------------------


#: What ``--help`` of each script says of its exit statuses (its own, not sync's).
HELP_STATUSES = {
    "sync": ("0  done", "1  at least one region failed", "2  usage or configuration",
             "3  work is pending", "4  images need an operator", "5  another glancesync"),
    "printimages": ("0  the reports were printed", "1  a region could not be read",
                    "2  usage or configuration"),
    "backup": ("0  the backups were written", "1  a region could not be read",
               "2  usage or configuration", "3  --restore --dry-run"),
}


@pytest.mark.parametrize("command", ["sync", "printimages", "backup"])
def test_help_documents_the_exit_statuses(fed, command):
    result = fed.run(command, "--help", config=False)
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: glancesync-{command}")
    for line in HELP_STATUSES[command]:
        assert line in result.stdout
    if command != "sync":  # issue 22: not sync's statuses (pending work, locks)
        assert "4  images need an operator" not in result.stdout
        assert "5  another glancesync" not in result.stdout
    assert "--config-file" in result.stdout and "--log-file" in result.stdout


def test_printimages_help_has_the_legend(fed):
    result = fed.run("printimages", "--help", config=False)
    for marker in ("+  not in the master region", "$  not active", "!  in the master"):
        assert marker in result.stdout


def test_script_file_runs_like_the_console_command(fed):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync.py"),
                             "--config-file", str(fed.config), "--show-regions"],
                            capture_output=True, text=True, env=fed.env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == REGIONS


# --- statuses and exit statuses ---------------------------------------------------


def test_show_regions(fed):
    result = fed.run("sync", "--show-regions")
    assert (result.returncode, result.stdout.split(), result.stderr) == (0, REGIONS, "")
    result = fed.run("sync", "--show-regions", "RegionC", "RegionA")
    assert result.stdout.split() == ["master:RegionC", "master:RegionA"]


def test_show_status_with_pending_work_exits_3(fed):
    result = fed.run("sync", "--show-status")
    assert result.returncode == 3, result.stderr
    rows = [line.split(",") for line in result.stdout.splitlines()]
    assert all(len(row) == 3 for row in rows)
    assert ["pending_upload", "master:RegionA", "ubuntu-22.04"] in rows
    assert ["pending_metadata", "master:RegionB", "ubuntu-22.04"] in rows
    assert ["pending_rename", "master:RegionC", "debian-12"] in rows
    assert {row[1] for row in rows} == set(REGIONS)


def test_show_status_json(fed):
    result = fed.run("sync", "--show-status", "--output", "json", "RegionB")
    assert result.returncode == 3
    items = json.loads(result.stdout)
    assert {item["region"] for item in items} == {"master:RegionB"}
    ubuntu = next(item for item in items if item["name"] == "ubuntu-22.04")
    assert ubuntu["status"] == "pending_metadata"
    assert ubuntu["master_id"] and ubuntu["regional_id"]


def test_dry_run_exits_3_and_changes_nothing(fed):
    before = fed.statuses()
    result = fed.run("sync", "--dry-run")
    assert result.returncode == 3, result.stderr
    assert "master:RegionA: dry run done" in result.stdout
    assert "dry run of 3 region(s): 3 done, 0 failed" in result.stdout
    assert fed.statuses() == before
    assert fed.region("RegionA").list_images() == []


def test_sync_then_everything_is_in_sync(fed):
    result = fed.run("sync")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # under cron: only the summary, on stdout
    assert "sync of 3 region(s): 3 done, 0 failed, 0 image(s) need an operator" in result.stdout
    assert set(fed.statuses().values()) == {"ok"}
    for options in (["--show-status"], ["--dry-run"], []):
        again = fed.run("sync", *options)
        assert again.returncode == 0, (options, again.stdout, again.stderr)


def test_regions_after_config_are_not_swallowed(fed):
    result = fed.run("sync", "--config", "main.max_children=2", "RegionA")
    assert result.returncode == 0, result.stderr
    assert "master:RegionA: sync done" in result.stdout
    assert "RegionB" not in result.stdout
    statuses = fed.statuses()
    assert statuses[("master:RegionA", "debian-12")] == "ok"
    assert statuses[("master:RegionB", "debian-12")] == "pending_upload"


def test_images_needing_an_operator_exit_4(fed):
    # Without its rename directive, RegionC's local build of debian-12 is an
    # error_checksum: the operator must decide.
    no_rename = ["--config", "master.rename=", "RegionC"]
    status = fed.run("sync", "--show-status", *no_rename)
    assert status.returncode == 4, status.stderr
    assert "error_checksum,master:RegionC,debian-12" in status.stdout
    assert fed.run("sync", "--dry-run", *no_rename).returncode == 4
    result = fed.run("sync", *no_rename)
    assert result.returncode == 4
    assert "1 image(s) need an operator" in result.stdout
    assert "debian-12" in result.stderr  # the warning says which image


def test_two_master_images_with_one_name_are_shown_by_default_and_exit_4(fed):
    """Issue 10, case 3: an image meant for every region that reaches none."""
    master = fed.region("Master")
    for seed in (b"one", b"two"):
        image = master.create_image("twin", visibility="public", disk_format="raw",
                                    container_format="bare")
        master.upload_data(image.id, [seed * 512], 3 * 512)
    status = fed.run("sync", "--show-status")
    assert status.returncode == 4, status.stderr
    for region in REGIONS:
        assert f"error_duplicate,{region},twin" in status.stdout.splitlines()
    dry = fed.run("sync", "--dry-run")
    assert dry.returncode == 4
    assert "3 image(s) need an operator" in dry.stdout
    result = fed.run("sync")
    assert result.returncode == 4, result.stderr
    assert "3 image(s) need an operator" in result.stdout
    # Under cron (no -v): each region's error names the image and the cure.
    errors = [line for line in result.stderr.splitlines() if "twin" in line]
    assert len(errors) == 3 and all("rename or delete the extra ones" in e for e in errors)
    assert all(name != "twin" for name in
               (i.name for i in fed.region("RegionA").list_images()))


def test_show_status_csv_quotes_names_with_line_breaks_and_commas(fed):
    """Issue 10, case 6: one image is one row for a CSV reader, whatever its name."""
    before = len(fed.run("sync", "--show-status", "RegionA").stdout.splitlines())
    master = fed.region("Master")
    names = ["two\nlines", "carriage\rreturn", "a, b", 'say "hi"']
    for index, name in enumerate(names):
        image = master.create_image(name, visibility="public", disk_format="raw",
                                    container_format="bare")
        master.upload_data(image.id, [bytes([index]) * 64], 64)
    argv = [str(BIN / "glancesync-sync"), "--config-file", str(fed.config),
            "--show-status", "RegionA"]
    result = subprocess.run(argv, capture_output=True, env=fed.env, cwd=fed.folder,
                            timeout=120)  # bytes: no newline translation
    assert result.returncode == 3, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout.decode(), newline="")))
    assert all(len(row) == 3 for row in rows), rows
    # Every image is one row (control characters in a name may be escaped).
    assert len(rows) == before + len(names)
    found = {row[2]: row[0] for row in rows}
    assert found["a, b"] == found['say "hi"'] == "pending_upload"


def test_the_summary_and_the_log_count_the_same_failures(fed):
    """Issue 10, case 6: a region whose upload failed is failed in both end lines."""
    master = fed.region("Master")
    ubuntu = next(i for i in master.list_images() if i.name == "ubuntu-22.04")
    data = fed.folder / "federation" / "Master" / "data" / ubuntu.id
    data.write_bytes(b"\0" * data.stat().st_size)  # the master's bytes went bad
    log = fed.folder / "run.log"
    result = fed.run("sync", "--log-file", str(log))
    assert result.returncode == 1, result.stderr
    totals = re.compile(r"sync of \d+ region\(s\): \d+ done, \d+ failed, "
                        r"\d+ image\(s\) need an operator")
    printed = totals.findall(result.stdout)
    logged = totals.findall(log.read_text())
    assert len(printed) == len(logged) == 1 and printed == logged
    assert ", 2 failed," in printed[0]  # RegionA and RegionC needed the bad image


def test_failed_region_exits_1_and_others_are_synchronised(fed):
    (fed.folder / "federation" / "RegionB" / "images.db").write_text("not a database")
    result = fed.run("sync")
    assert result.returncode == 1
    assert "master:RegionB: FAILED: " in result.stdout
    assert "2 done, 1 failed" in result.stdout
    assert "Traceback" not in result.stderr
    assert "master:RegionA: sync done" in result.stdout


def test_locked_region_exits_5(fed):
    with RegionLock(fed.locks, fed.lock_name("RegionA")):
        result = fed.run("sync")
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert f"pid {os.getpid()}" in result.stdout
    assert "master:RegionA: FAILED: another glancesync run" in result.stdout
    assert "master:RegionB: sync done" in result.stdout
    # The lock was the only problem: the region syncs once it is free.
    assert fed.run("sync", "RegionA").returncode == 0


def test_dry_run_ignores_locks(fed):
    with RegionLock(fed.locks, fed.lock_name("RegionA")):
        assert fed.run("sync", "--dry-run", "RegionA").returncode == 3


# --- user mistakes -----------------------------------------------------------------

MISTAKES = [
    ("unknown region", ["sync", "RegionZ"], ["RegionZ", "RegionA, RegionB"]),
    ("unknown target", ["sync", "other:"], ["unknown target 'other'"]),
    ("unknown target region", ["printimages", "other:RegionA"], ["unknown target"]),
    ("bad option value", ["sync", "--config", "main.max_children=lots"],
     ["max_children", "lots"]),
    ("unknown config option", ["sync", "--config", "master.colour=blue"],
     ["[master] colour", "unknown option"]),
    ("bad override", ["sync", "--config", "nonsense"], ["section.key=value"]),
    ("override as region", ["sync", "--config", "a=1", "max_children=2"],
     ["--config max_children=2"]),
    ("unknown option", ["sync", "--frobnicate"], ["--frobnicate", "--help"]),
    ("bad choice", ["sync", "--show-status", "--output", "xml"], ["xml"]),
    ("exclusive actions", ["sync", "--dry-run", "--show-status"], ["not allowed"]),
    ("output without status", ["sync", "--output", "json"], ["--show-status"]),
    ("restore without region", ["backup", "--restore", "x.jsonl"], ["exactly one REGION"]),
    ("dry run without restore", ["backup", "--dry-run"], ["--restore"]),
    ("restore file missing", ["backup", "--restore", "nowhere.jsonl", "RegionA"],
     ["nowhere.jsonl"]),
    ("unwritable log file", ["sync", "--show-regions", "--log-file", "/proc/no/log"],
     ["/proc/no/log"]),
]


@pytest.mark.parametrize("args, fragments", [m[1:] for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])
def test_user_mistakes_give_one_line_and_exit_2(fed, args, fragments):
    result = fed.run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert_one_error_line(result, args[0], *fragments)


@pytest.mark.parametrize("content, fragment", [
    (None, "No such file"),
    ("[main\nmaster_region = Master\n", "line 1"),
    ("[main]\ncolour = blue\n", "[main] colour"),
    ("[main]\nmaster_region = Master\n[master]\ntype = local\n", "path"),
], ids=["missing", "syntax", "unknown option", "missing path"])
def test_unreadable_or_invalid_configuration_exits_2(fed, content, fragment):
    config = fed.folder / "broken.conf"
    if content is not None:
        config.write_text(content)
    result = fed.run("sync", "--config-file", str(config), config=False)
    assert result.returncode == 2
    assert_one_error_line(result, "sync", str(config) if content is None else "broken.conf",
                          fragment)


def test_configuration_folder_instead_of_file(fed):
    result = fed.run("printimages", "--config-file", str(fed.folder), config=False)
    assert result.returncode == 2
    assert_one_error_line(result, "printimages", "cannot read the configuration file")


def test_debug_shows_the_traceback(fed):
    result = fed.run("sync", "RegionZ", "--debug")
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("glancesync-sync: error: ")


def test_a_password_quoted_by_a_config_error_is_masked(fed):
    config = fed.folder / "leak.conf"
    config.write_text("password = Hunter2-very-secret\n[main]\n")
    for extra in ([], ["--debug"]):
        result = fed.run("sync", "--config-file", str(config), *extra, config=False)
        assert result.returncode == 2
        assert "Hunter2-very-secret" not in result.stderr + result.stdout
        assert "password = ***" in result.stderr


# --- output levels and logs ------------------------------------------------------------


def test_verbose_logs_actions_quiet_does_not(fed):
    quiet = fed.run("sync", "--dry-run", "--quiet", "RegionA")
    assert quiet.stderr == ""
    verbose = fed.run("sync", "--dry-run", "--verbose", "RegionA")
    assert "master:RegionA: would upload image debian-12" in verbose.stderr
    assert quiet.stdout.splitlines()[-1] == verbose.stdout.splitlines()[-1]


def test_log_file_gets_the_actions_under_cron(fed):
    log = fed.folder / "sync.log"
    result = fed.run("sync", "--log-file", str(log), "RegionA")
    assert (result.returncode, result.stderr) == (0, "")
    text = log.read_text()
    assert "INFO glancesync.executor: master:RegionA: uploading image ubuntu-22.04" in text
    assert "DEBUG" not in text


def test_parallel_writes_one_log_per_region(fed):
    result = fed.run("sync", "--parallel", "--no-progress")
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.splitlines()[-1].removeprefix("logs: "))
    assert folder.parent == fed.folder / "runs"
    logs = {path.name: path.read_text() for path in folder.glob("*.log")}
    assert sorted(logs) == ["master_RegionA.log", "master_RegionB.log", "master_RegionC.log"]
    assert "renam" in logs["master_RegionC.log"]
    assert "master:RegionC" not in logs["master_RegionA.log"]


# --- printimages and backup ---------------------------------------------------------------


def test_printimages_marks_anomalies(fed):
    result = fed.run("printimages", "RegionB")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Markers:\n")
    assert "Region master:RegionB:" in result.stdout
    line = next(line for line in result.stdout.splitlines() if "ubuntu-22.04" in line)
    assert line.lstrip().startswith("#")  # nid differs from the master's


def test_printimages_master_and_regions(fed):
    result = fed.run("printimages", "master", "RegionA")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Master region Master")
    assert "tools-private" not in result.stdout  # private: not synchronised
    assert "Region master:RegionA:" in result.stdout


def test_backup_and_restore(fed):
    result = fed.run("backup", "--path", str(fed.folder / "backups"), "RegionB")
    assert result.returncode == 0, result.stderr
    backup = Path(result.stdout.strip())
    assert backup.parent.name.startswith("backup_glance_") and backup.is_file()
    saved = [json.loads(line) for line in backup.read_text().splitlines()]
    assert {record["name"] for record in saved} == {"ubuntu-22.04", "centos-7"}

    region = fed.region("RegionB")
    ubuntu = next(i for i in region.list_images() if i.name == "ubuntu-22.04")
    region.update_image(ubuntu.id, {"nid": "999", "extra": "x"}, [])
    region.close()

    dry = fed.run("backup", "--restore", str(backup), "RegionB", "--dry-run")
    assert (dry.returncode, dry.stdout.strip()) == (3, "1 image(s) would be updated")
    region = fed.region("RegionB")
    assert region.get_image(ubuntu.id).properties["nid"] == "999"
    region.close()

    done = fed.run("backup", "--restore", str(backup), "RegionB")
    assert (done.returncode, done.stdout.strip()) == (0, "1 image(s) updated")
    region = fed.region("RegionB")
    restored = region.get_image(ubuntu.id)
    region.close()
    assert restored.properties.get("nid") == "100" and "extra" not in restored.properties
    assert fed.run("backup", "--restore", str(backup), "RegionB", "--dry-run").returncode == 0


def test_sync_make_backup(fed):
    result = fed.run("sync", "--make-backup", "RegionB", "RegionC")
    assert result.returncode == 0, result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert [p.name for p in paths] == ["backup_master_RegionB.jsonl",
                                       "backup_master_RegionC.jsonl"]
    assert paths[0].parent == paths[1].parent
    assert paths[0].parent.parent == fed.folder


def test_conversion_without_qemu_img_exits_2_with_the_advice(fed):
    fed.env["PATH"] = str(fed.folder / "no-such-bin")
    result = fed.run("sync", "--config", "master:RegionB.convert_to=raw", "RegionB")
    assert result.returncode == 2
    assert result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("glancesync-sync: error: qemu-img is missing")
    assert "apt-get install qemu-utils" in line
    assert fed.run("sync", "--config", "master:RegionB.convert_to=raw",
                   "RegionA").returncode == 0  # RegionA converts nothing


def test_show_status_json_says_how_each_copy_travels(fed):
    result = fed.run("sync", "--show-status", "--output", "json")
    items = json.loads(result.stdout)
    uploads = [item for item in items
               if item["status"] in ("pending_upload", "pending_replace", "pending_rename")]
    assert uploads and {item["transfer"] for item in uploads} == {"stream"}
    updates = [item for item in items if item["status"] == "pending_metadata"]
    assert updates and {item["transfer"] for item in updates} == {None}
