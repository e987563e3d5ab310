"""Unattended runs tell the truth (issue 22): what cron, systemd and alerts see.

The scripts run as under cron (subprocesses, stderr not a terminal) on the
demo federation (:mod:`glancesync.demo`); the metrics file is read with
``prometheus_client``'s parser and the documented alert expressions are
evaluated on it (:func:`alerts`), as Prometheus would.
"""
from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.demo import PROJECT
from glancesync.facade import GlanceSync
from tests.unit.test_scripts_local import Federation

NO_RENAME = ["--config", "master.rename="]  # RegionC's debian-12: error_checksum


def series(path: Path) -> dict[str, dict[tuple, float]]:
    """name -> {sorted label pairs: value} of a metrics file."""
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = \
                sample.value
    return found


def labels(**pairs: str) -> tuple:
    return tuple(sorted(pairs.items()))


def alerts(path: Path, now: float | None = None) -> dict[str, set[tuple]]:
    """The documented alerts (monitoring page) that fire on the metrics file, by name.

    Each expression is a comparison of one metric (or ``time() - metric``)
    with a number, evaluated on every series as Prometheus does.
    """
    now = time.time() if now is None else now
    metrics = series(path)
    fired: dict[str, set[tuple]] = {}
    for name, (metric, offset, op, bound) in ALERT_EXPRESSIONS.items():
        for key, value in metrics.get(metric, {}).items():
            left = now - value if offset else value
            if (left > bound) if op == ">" else (left == bound):
                fired.setdefault(name, set()).add(key)
    return fired


#: The alert rules of docs/manual/monitoring.rst, parsed from the page.
def _documented_alerts() -> dict[str, tuple[str, bool, str, float]]:
    page = (Path(__file__).resolve().parents[2] / "docs" / "manual" / "monitoring.rst")
    text = page.read_text(encoding="utf-8")
    found = {}
    for name, expr in re.findall(r"- alert: (\w+)\n\s+expr: (.+)", text):
        match = re.fullmatch(r"(time\(\) - )?(\w+)(?:\{[^}]*\})? (==|>) (\d+)", expr.strip())
        assert match, f"an alert expression the test cannot read: {expr}"
        found[name] = (match.group(2), bool(match.group(1)), match.group(3),
                       float(match.group(4)))
    return found


ALERT_EXPRESSIONS = _documented_alerts()


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    federation = Federation(tmp_path)
    federation.prom = tmp_path / "glancesync.prom"
    text = federation.config.read_text()
    federation.config.write_text(text.replace("[main]\n", f"[main]\nmetrics_file = "
                                              f"{federation.prom}\n", 1))
    return federation


# --- case 2: a partial run keeps what it did not cover ---------------------------------


def test_a_partial_run_keeps_the_other_regions_and_the_alert(fed):
    assert fed.run("sync", "--show-status", *NO_RENAME).returncode == 4
    region_c = labels(image="debian-12", region="master:RegionC")
    assert region_c in alerts(fed.prom)["GlanceSyncImageNeedsOperator"]
    before = series(fed.prom)
    # One region by hand, then a sync of another: RegionC was not looked at.
    assert fed.run("sync", "--show-status", "RegionB", *NO_RENAME).returncode == 3
    assert fed.run("sync", "RegionA", "--no-progress", *NO_RENAME).returncode == 0
    after = series(fed.prom)
    assert region_c in alerts(fed.prom)["GlanceSyncImageNeedsOperator"]
    for name in ("glancesync_image_needs_operator", "glancesync_image_checked_timestamp_seconds"):
        assert after[name][region_c] == before[name][region_c]
    end = "glancesync_last_run_end_timestamp_seconds"
    status_c = labels(mode="status", region="master:RegionC")
    assert after[end][status_c] == before[end][status_c]  # staleness stays visible
    assert after[end][labels(mode="status", region="master:RegionB")] > \
        before[end][labels(mode="status", region="master:RegionB")]
    assert after["glancesync_images"][labels(region="master:RegionC",
                                             status="error_checksum")] == 1
    # The alert clears when a run saw the image fixed, not before.
    assert fed.run("sync", "--no-progress", "RegionC").returncode == 0
    assert region_c not in alerts(fed.prom).get("GlanceSyncImageNeedsOperator", set())


def test_an_image_run_keeps_the_other_images(fed):
    assert fed.run("sync", "--show-status", *NO_RENAME).returncode == 4
    before = series(fed.prom)
    done = fed.run("sync", "--no-progress", "--image", "ubuntu*", *NO_RENAME)
    assert done.returncode == 0, done.stderr
    after = series(fed.prom)
    region_c = labels(image="debian-12", region="master:RegionC")
    assert after["glancesync_image_needs_operator"][region_c] == 1
    assert after["glancesync_image_checked_timestamp_seconds"][region_c] == \
        before["glancesync_image_checked_timestamp_seconds"][region_c]
    ubuntu = labels(image="ubuntu-22.04", region="master:RegionA")
    assert before["glancesync_image_in_sync"][ubuntu] == 0
    assert after["glancesync_image_in_sync"][ubuntu] == 1
    # The counts of the region: the ubuntu image now ok, the others as they were.
    counts = {dict(key)["status"]: value for key, value in after["glancesync_images"].items()
              if dict(key)["region"] == "master:RegionA" and value}
    assert counts == {"ok": 1, "pending_upload": 3, "pending_ami": 1}
    # An --image sync is not the sync of the region: its last success is not set.
    assert labels(region="master:RegionA") not in after.get(
        "glancesync_last_success_timestamp_seconds", {})


def test_a_region_that_cannot_be_read_keeps_its_images(fed):
    assert fed.run("sync", "--show-status", *NO_RENAME).returncode == 4
    (fed.folder / "federation" / "RegionC" / "images.db").write_bytes(b"not a database")
    assert fed.run("sync", "--show-status", *NO_RENAME).returncode == 1
    after = series(fed.prom)
    assert after["glancesync_last_run_success"][labels(mode="status",
                                                       region="master:RegionC")] == 0
    fired = alerts(fed.prom)
    assert labels(image="debian-12", region="master:RegionC") in \
        fired["GlanceSyncImageNeedsOperator"]
    assert labels(mode="status", region="master:RegionC") in fired["GlanceSyncRunFailed"]


# --- case 3: a run that fails before any region records it -------------------------------


def test_a_run_failing_before_any_region_records_it_in_every_output(fed, tmp_path):
    report, page = tmp_path / "run.json", tmp_path / "run.html"
    outputs = ["--report-json", str(report), "--report-html", str(page)]
    assert fed.run("sync", "--no-progress").returncode == 0
    synced = series(fed.prom)
    success = labels(mode="sync", region="master:RegionA")
    assert synced["glancesync_last_run_success"][success] == 1
    failed = fed.run("sync", "--no-progress", "--config", "master_region=Mastre", *outputs)
    assert failed.returncode == 2, failed.stderr
    after = series(fed.prom)
    for region in ("master:RegionA", "master:RegionB", "master:RegionC"):
        assert after["glancesync_last_run_success"][labels(mode="sync", region=region)] == 0
        assert labels(mode="sync", region=region) in alerts(fed.prom)["GlanceSyncRunFailed"]
    # The last success stays what it was: the region-not-synchronised alert keeps counting.
    assert after["glancesync_last_success_timestamp_seconds"] == \
        synced["glancesync_last_success_timestamp_seconds"]
    written = json.loads(report.read_text())
    assert written["exit_status"] == 2
    assert {r["result"] for r in written["regions"]} == {"failed"}
    assert "Mastre" in written["regions"][0]["error"]
    assert "Mastre" in page.read_text()


def test_an_unreachable_keystone_is_recorded_under_its_target(tmp_path):
    fed = Federation(tmp_path)
    prom, report = tmp_path / "g.prom", tmp_path / "run.json"
    config = tmp_path / "keystone.conf"
    config.write_text(f"[main]\nmaster_region = RegionOne\nmetrics_file = {prom}\n"
                      "retries = 0\n[master]\nauth_url = http://127.0.0.1:9/v3\n"
                      "username = u\npassword = p\nproject_name = p\n")
    config.chmod(0o600)
    done = fed.run("sync", "--config-file", str(config), "--report-json", str(report),
                   config=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    after = series(prom)
    assert after["glancesync_last_run_success"] == {labels(mode="sync", region="master:"): 0}
    assert json.loads(report.read_text())["regions"][0]["region"] == "master:"


# --- case 4: runs that can do nothing are no success ---------------------------------------


def test_a_master_showing_no_image_is_not_a_success(fed):
    done = fed.run("sync", "--no-progress", "-q", "--config", "master.project=nobody")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "nothing to synchronise" in done.stderr
    assert "Traceback" not in done.stderr
    after = series(fed.prom)
    assert after["glancesync_last_run_success"][labels(mode="sync",
                                                       region="master:RegionA")] == 0
    assert fed.run("sync", "--show-status", "--config",
                   "master.project=nobody").returncode == 2


def test_an_image_pattern_matching_nothing_is_a_usage_error(fed):
    done = fed.run("sync", "--no-progress", "--image", "debain-12")
    assert done.returncode == 2
    assert "--image 'debain-12' matches no image" in done.stderr
    assert "closest names are debian-12" in done.stderr
    assert fed.statuses()[("master:RegionA", "debian-12")] == "pending_upload"


@pytest.mark.parametrize("override, fragment", [
    ("main.preferable_order=RegionA, RegionX", "preferable_order of [main]: 'RegionX'"),
    ("master.ignore_regions=RegionX", "ignore_regions of target master: 'RegionX'"),
    ("rename=0123", "[master] sets its own rename"),
])
def test_configuration_that_does_nothing_reaches_stderr_under_quiet(fed, override, fragment):
    assert fed.run("sync", "--no-progress").returncode == 0
    done = fed.run("sync", "-q", "--no-progress", "--config", override)
    assert done.returncode == 0
    assert fragment in done.stderr
    assert done.stdout == ""


# --- case 5: every target ---------------------------------------------------------------


@pytest.fixture
def two_targets(fed: Federation) -> Federation:
    with open(fed.config, "a") as out:
        out.write(f"\n[other]\ntype = local\npath = {fed.folder / 'other'}\n"
                  f"project = {PROJECT}\nregions = RegionD\n")
    return fed


def test_all_targets_covers_every_target(two_targets):
    fed = two_targets
    regions = ["master:RegionA", "master:RegionB", "master:RegionC", "other:RegionD"]
    shown = fed.run("sync", "--show-regions", "--all-targets")
    assert shown.stdout.split() == regions, shown.stderr
    assert shown.stderr == ""
    status = fed.run("sync", "--show-status", "--all-targets", "--format", "json")
    assert {s["region"] for s in json.loads(status.stdout)} == set(regions)
    dry = fed.run("sync", "--dry-run", "--all-targets")
    assert "other:RegionD: upload debian-12" in dry.stdout
    done = fed.run("sync", "--all-targets", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "other:RegionD: sync done" in done.stdout
    backup = fed.run("backup", "--all-targets")
    assert backup.returncode == 0
    assert any("backup_other_RegionD" in line for line in backup.stdout.split())
    both = fed.run("sync", "--all-targets", "RegionA")
    assert both.returncode == 2 and "either --all-targets or REGION" in both.stderr


@pytest.mark.parametrize("command", [["sync", "--dry-run"], ["sync", "--show-status"],
                                     ["sync", "-q"], ["backup"]])
def test_a_run_leaving_targets_out_says_so(two_targets, command):
    done = two_targets.run(*command)
    assert "target(s) other are left out" in done.stderr, done.stderr
    named = two_targets.run(*command, "master:")
    assert "left out" not in named.stderr


# --- case 6: quiet ------------------------------------------------------------------------


def test_quiet_prints_nothing_when_nothing_happened(fed):
    assert fed.run("sync", "--no-progress").returncode == 0
    quiet = fed.run("sync", "-q", "--no-progress")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert fed.run("sync", "--dry-run", "-q").stdout == ""
    # A change: only the region that changed, and the totals.
    region = fed.region("RegionA")
    region.delete_image(next(i.id for i in region.list_images() if i.name == "debian-12"))
    region.close()
    changed = fed.run("sync", "-q", "--no-progress")
    assert changed.returncode == 0
    lines = changed.stdout.splitlines()
    assert lines[0].startswith("master:RegionA: sync done:") and "1 uploaded" in lines[0]
    assert len(lines) == 2 and lines[1].startswith("sync of 3 region(s)")


def test_quiet_says_what_needs_an_operator(fed):
    assert fed.run("sync", "--no-progress", *NO_RENAME).returncode == 4
    again = fed.run("sync", "-q", "--no-progress", *NO_RENAME)
    assert again.returncode == 4
    assert "master:RegionC: debian-12: error_checksum:" in again.stdout
    assert "RegionA" not in again.stdout


# --- case 7: a dry run lists its actions ---------------------------------------------------


def test_dry_run_prints_one_line_per_action(fed):
    with GlanceSync(open(fed.config)) as glancesync:
        planned = glancesync.sync(dry_run=True)
        operations = [(region, op) for region, plan in planned.plans.items()
                      for op in plan.operations]
    done = fed.run("sync", "--dry-run")
    assert done.returncode == 3
    lines = [line for line in done.stdout.splitlines() if line[:2] in ("  ", "! ")]
    assert len(lines) == len(operations) > 10
    for line, (region, op) in zip(lines, operations):
        assert line[2:].startswith(f"{region}: {op.kind.value} {op.name}")
    assert any(re.match(r"  master:RegionC: rename debian-12 .*: pending_rename: regional"
                        r" checksum", line) for line in lines)


def _lifecycle(fed: Federation, grace: str) -> list[str]:
    assert fed.run("sync", "--no-progress").returncode == 0
    master = fed.region("Master")
    master.delete_image(next(i.id for i in master.list_images() if i.name == "debian-12"))
    master.close()
    return ["--config", "removal_policy=delete", "--config", f"removal_grace_hours={grace}",
            "RegionA"]


def test_dry_run_marks_destructive_steps(fed):
    done = fed.run("sync", "--dry-run", *_lifecycle(fed, "0"))
    assert done.returncode == 3
    [line] = [line for line in done.stdout.splitlines() if "debian-12" in line]
    assert line.startswith("! master:RegionA: delete debian-12 (")
    assert "removal_policy = delete" in line


def test_dry_run_says_when_a_removal_will_happen(fed):
    start = time.time()
    done = fed.run("sync", "--dry-run", *_lifecycle(fed, "48"))
    [later] = [line for line in done.stdout.splitlines() if "later at about" in line]
    due = re.search(r"at about (\S+ \S+) UTC", later).group(1)
    moment = time.mktime(time.strptime(due, "%Y-%m-%d %H:%M")) - time.timezone
    assert abs(moment - (start + 48 * 3600)) < 600
    assert "debian-12" in later and "to delete in 48 h" in later


# --- case 12: exit statuses ------------------------------------------------------------------


def test_misspelt_master_region_exits_2_listing_the_regions(fed):
    done = fed.run("sync", "--dry-run", "--config", "master_region=Mastr")
    assert done.returncode == 2
    assert "master_region 'Mastr'" in done.stderr
    assert "its regions are Master, RegionA, RegionB, RegionC" in done.stderr
    assert "did you mean Master?" in done.stderr


def test_metadata_condition_that_cannot_be_evaluated_exits_2(fed):
    done = fed.run("sync", "--dry-run", "--config",
                   "master.metadata_condition=image.user_properties['x'] == '1'")
    assert done.returncode == 2, done.stdout
    assert "KeyError" in done.stdout


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_delete_image_asks_on_stderr(fed, monkeypatch, capsys):
    region = fed.region("RegionB")
    [image] = [i for i in region.list_images() if i.name == "centos-7"]
    region.close()
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    with GlanceSync(open(fed.config)) as glancesync:
        assert glancesync.delete_image("RegionB", image.id) is False
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Delete image centos-7" in captured.err


# --- case 10: state of the default folder, per federation ---------------------------------


def test_default_state_folder_is_per_federation(tmp_path):
    """Two unrelated demo federations with the default run_dir, one user: the
    throughput measured on the first is not the second's estimate."""
    first, second = Federation(tmp_path / "one"), Federation(tmp_path / "two")
    state = tmp_path / "state"
    for fed in (first, second):
        text = fed.config.read_text()
        fed.config.write_text(re.sub(r"(?m)^run_dir = .*\n", "", text))
        fed.env.update(XDG_STATE_HOME=str(state))
    done = first.run("sync", "--no-progress", "--parallel", "RegionA")
    assert done.returncode == 0, done.stderr
    estimate = second.run("sync", "--dry-run", "RegionA").stdout
    assert "master:RegionA: 5.9 MiB to upload, no throughput measured yet" in estimate
    folders = sorted(p.name for p in (state / "glancesync" / "runs").iterdir())
    assert len(folders) == 1 and folders[0].startswith("Master_")
    own = state / "glancesync" / "runs" / folders[0]
    # The throughput is kept only for uploads measured over MIN_SECONDS, which a fast
    # machine may not take: when it was measured, it is in the first's own folder.
    measured = own / "throughput.json"
    if measured.exists():
        assert "master:RegionA" in json.loads(measured.read_text())
    assert len(list(own.glob("run_*/master_RegionA.log"))) == 1


# --- case 9: who may read the outputs -------------------------------------------------------


def _outputs(fed: Federation, tmp_path: Path, *extra: str) -> list[Path]:
    report, page, log = tmp_path / "run.json", tmp_path / "run.html", tmp_path / "sync.log"
    done = fed.run("sync", "--no-progress", "--parallel", "--report-json", str(report),
                   "--report-html", str(page), "--log-file", str(log), *extra)
    assert done.returncode == 0, done.stderr
    backup = fed.run("backup", "--path", str(tmp_path / "backups"), *extra)
    assert backup.returncode == 0, backup.stderr
    backups = [Path(line) for line in backup.stdout.split()]
    runs = list((fed.folder / "runs").glob("run_*/*.log"))
    assert backups and runs
    return [fed.prom, report, page, log, *backups, *runs]


def test_outputs_are_owner_only_by_default(fed, tmp_path):
    import os
    old = os.umask(0o022)  # the usual umask: the library must not rely on it
    try:
        for path in _outputs(fed, tmp_path):
            assert path.stat().st_mode & 0o777 == 0o600, path
    finally:
        os.umask(old)
    backup_folder = next((tmp_path / "backups").iterdir())
    assert backup_folder.stat().st_mode & 0o777 == 0o700


def test_output_group_may_read_the_outputs(fed, tmp_path):
    import grp
    import os
    group = grp.getgrgid(os.getgid()).gr_name
    for path in _outputs(fed, tmp_path, "--config", f"output_group={group}"):
        assert path.stat().st_mode & 0o777 == 0o640, path
        assert path.stat().st_gid == os.getgid()
    backup_folder = next((tmp_path / "backups").iterdir())
    assert backup_folder.stat().st_mode & 0o777 == 0o750


def test_an_unknown_output_group_is_a_configuration_error(fed):
    done = fed.run("sync", "--config", "output_group=no-such-group-here")
    assert done.returncode == 2
    assert "output_group: no group 'no-such-group-here' on this system" in done.stderr


# --- case 11: backups save and restore the whole image model ---------------------------------


def test_backup_restores_tags_hidden_members_and_marks(fed, tmp_path):
    assert fed.run("sync", "--no-progress").returncode == 0
    region = fed.region("RegionB")
    ubuntu = next(i for i in region.list_images() if i.name == "ubuntu-22.04")
    assert ubuntu.provenance is not None  # the sync's record of its copy
    region.update_image(ubuntu.id, {"tags": ["lts", "x86"], "os_hidden": True,
                                    "visibility": "shared",
                                    "glancesync.orphaned_at": "2026-01-01T00:00:00Z"})
    region.add_member(ubuntu.id, "partner-project")
    saved = region.get_image(ubuntu.id)
    region.close()
    done = fed.run("backup", "RegionB", "--path", str(tmp_path))
    assert done.returncode == 0, done.stderr
    [backup] = [Path(line) for line in done.stdout.split()]
    [line] = [json.loads(text) for text in backup.read_text().splitlines()
              if json.loads(text)["id"] == ubuntu.id]
    assert line["version"] == 2
    assert (line["tags"], line["os_hidden"]) == (["lts", "x86"], True)
    assert line["members"] == [{"project": "partner-project", "domain": "Default",
                                "project_id": "partner-project"}]
    assert line["marks"]["glancesync.master_image_id"] == ubuntu.provenance.master_image_id
    assert line["marks"]["glancesync.orphaned_at"] == "2026-01-01T00:00:00Z"
    # Lost by hand: tags, hiding, the member, the marks.
    region = fed.region("RegionB")
    region.update_image(ubuntu.id, {"tags": [], "os_hidden": False},
                        ("glancesync.orphaned_at", "glancesync.master_image_id"))
    region.remove_member(ubuntu.id, "partner-project")
    region.add_member(ubuntu.id, "intruder-project")
    region.close()
    dry = fed.run("backup", "RegionB", "--restore", str(backup), "--dry-run")
    assert dry.returncode == 3, dry.stderr
    restored = fed.run("backup", "RegionB", "--restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "1 image(s) updated" in restored.stdout
    region = fed.region("RegionB")
    after = region.get_image(ubuntu.id)
    assert (sorted(after.tags), after.os_hidden) == (["lts", "x86"], True)
    assert after.provenance == saved.provenance and after.marks == saved.marks
    assert region.list_members(ubuntu.id) == ["partner-project"]
    region.close()
    assert "0 image(s) updated" in fed.run("backup", "RegionB", "--restore",
                                           str(backup)).stdout


def test_a_backup_of_version_1_still_restores(fed, tmp_path):
    assert fed.run("sync", "--no-progress").returncode == 0
    region = fed.region("RegionB")
    ubuntu = next(i for i in region.list_images() if i.name == "ubuntu-22.04")
    region.update_image(ubuntu.id, {"tags": ["kept"]})
    region.close()
    old = {"region": "master:RegionB", "name": "ubuntu-22.04", "id": ubuntu.id,
           "status": "active", "size": ubuntu.size, "checksum": ubuntu.checksum,
           "owner": PROJECT, "is_public": True, "visibility": "public", "min_ram": 512,
           "min_disk": 0, "protected": False, "properties": {"nid": "old"}}
    backup = tmp_path / "backup_master_RegionB.jsonl"
    backup.write_text(json.dumps(old) + "\n")
    done = fed.run("backup", "RegionB", "--restore", str(backup))
    assert done.returncode == 0, done.stderr
    region = fed.region("RegionB")
    after = region.get_image(ubuntu.id)
    region.close()
    assert (after.properties, after.min_ram, after.tags) == ({"nid": "old"}, 512, ["kept"])
    assert after.provenance == ubuntu.provenance  # no marks saved: left alone


# --- case 13: the clouds.yaml error under cron -------------------------------------------------


def _cloud_run(tmp_path: Path, clouds: str | None):
    home = tmp_path / "home"
    (home / ".config" / "openstack").mkdir(parents=True)
    if clouds is not None:
        (home / ".config" / "openstack" / "clouds.yaml").write_text(clouds)
    config = tmp_path / "cloud.conf"
    config.write_text("[main]\nmaster_region = RegionOne\n[master]\ncloud = production\n")
    fed = Federation(tmp_path)
    fed.env.update(HOME=str(home))
    fed.env.pop("XDG_CONFIG_HOME", None)
    return fed.run("sync", "--config-file", str(config), config=False)


def test_clouds_yaml_error_says_where_it_looked_and_which_clouds_exist(tmp_path):
    done = _cloud_run(tmp_path, "clouds:\n  staging:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n"
                                "  prod:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n")
    assert done.returncode == 2, done.stderr
    clouds = tmp_path / "home" / ".config" / "openstack" / "clouds.yaml"
    assert f"read {clouds} as user" in done.stderr
    assert "its clouds are prod, staging" in done.stderr


def test_clouds_yaml_missing_says_where_it_looked(tmp_path):
    done = _cloud_run(tmp_path, None)
    assert done.returncode == 2, done.stderr
    assert "no clouds.yaml found as user" in done.stderr
    assert str(tmp_path / "home" / ".config" / "openstack" / "clouds.yaml") in done.stderr
    assert "OS_CLIENT_CONFIG_FILE" in done.stderr
