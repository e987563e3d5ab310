"""The documented schedules, run as written (issue 22).

The cron file, the systemd service and the ``[main]`` settings of
docs/manual/operations.rst are read from the page and run on the demo
federation (plus a second target), with the page's paths moved into a
temporary folder and ``/opt/glancesync/bin`` pointing at the installed
commands: a good run, a run that fails before any region and a partial
run by hand. After each, the documented alert rules of
docs/manual/monitoring.rst are evaluated on the metrics file, by parsing
it (:func:`tests.unit.test_unattended.alerts`) and, when ``promtool`` is
installed, by ``promtool test rules`` too, which must agree.
"""
from __future__ import annotations

import grp
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glancesync.demo import PROJECT
from tests.unit.test_scripts_local import Federation
from tests.unit.test_unattended import alerts, labels, series

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OPERATIONS = (ROOT / "docs" / "manual" / "operations.rst").read_text(encoding="utf-8")
MONITORING = (ROOT / "docs" / "manual" / "monitoring.rst").read_text(encoding="utf-8")


def code_blocks(text: str, language: str | None = None) -> list[str]:
    """The literal blocks of a page (``.. code-block:: LANG`` or ``::``), dedented."""
    marker = (rf"\.\. code-block:: {language}\n" if language else r"::\n")
    blocks = []
    for match in re.finditer(marker + r"\n((?:(?:    |   ).*\n|\n)+)", text):
        lines = match.group(1).rstrip("\n").splitlines()
        indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        blocks.append("\n".join(line[indent:] for line in lines))
    return blocks


CRON = next(block for block in code_blocks(OPERATIONS, "sh") if "MAILTO" in block)
SERVICE = next(block for block in code_blocks(OPERATIONS, "ini") if "ExecStart" in block)
MAIN_SETTINGS = next(block for block in code_blocks(OPERATIONS)
                     if block.startswith("cache_dir"))
RULES = next(block for block in code_blocks(MONITORING) if block.startswith("groups:"))


def cron_commands(text: str) -> list[str]:
    """The commands of a cron file (``m h dom mon dow user command``)."""
    return [line.split(None, 6)[6] for line in text.splitlines()
            if line.strip() and not line.startswith("#") and not re.fullmatch(r"\w+=\S*", line)]


class Host:
    """The page's machine in a temporary folder: its paths, its user's environment."""

    def __init__(self, folder: Path) -> None:
        self.fed = Federation(folder)
        self.folder = folder
        self.group = grp.getgrgid(os.getgid()).gr_name
        self.paths = {"/opt/glancesync/bin": str(BIN), "/etc/glancesync.conf": str(self.fed.config)}
        for path in ("/var/www/glancesync", "/var/lib/glancesync", "/var/log/glancesync",
                     "/var/backups/glancesync", "/var/cache/glancesync",
                     "/var/lib/node_exporter/textfile"):
            local = folder / "root" / path.strip("/")
            local.mkdir(parents=True)
            self.paths[path] = str(local)
        settings = self.moved(MAIN_SETTINGS).replace("glancesync-read", self.group)
        text = self.fed.config.read_text()
        text = re.sub(r"(?m)^cache_dir = .*\n", "", text)
        text = text.replace("[main]\n", "[main]\n" + settings + "\n", 1)
        text += (f"\n[other]\ntype = local\npath = {folder / 'other'}\n"
                 f"project = {PROJECT}\nregions = RegionD\n")
        self.fed.config.write_text(text)
        self.prom = Path(self.moved("/var/lib/node_exporter/textfile/glancesync.prom"))
        self.env = {"PATH": os.environ["PATH"], "HOME": str(folder), "LANG": "C.UTF-8",
                    "GLANCESYNC_LOCK_DIR": str(folder / "locks"),
                    "XDG_STATE_HOME": str(folder / "state")}

    def moved(self, text: str) -> str:
        for page, local in sorted(self.paths.items(), key=lambda item: -len(item[0])):
            text = text.replace(page, local)
        return text

    def cron_jobs(self) -> list[str]:
        """The commands of the cron file, in order; its variables set in ``self.env``."""
        jobs = []
        for line in CRON.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            variable = re.fullmatch(r"(\w+)=(\S*)", line)
            if variable:
                self.env[variable.group(1)] = self.moved(variable.group(2))
                continue
            fields = line.split(None, 6)
            assert len(fields) == 7 and fields[5] == "glancesync", line
            jobs.append(self.moved(fields[6]))
        return jobs

    def run(self, command: str) -> subprocess.CompletedProcess:
        """Run ``command`` as cron does: ``sh -c``, no terminal, the file's variables."""
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                              env=self.env, stdin=subprocess.DEVNULL, timeout=300,
                              cwd=self.folder)

    def service(self) -> tuple[list[str], dict[str, str], set[int]]:
        """The service's command line, environment and success statuses."""
        argv, env, success = [], dict(self.env), {0}
        for line in SERVICE.splitlines():
            key, _, value = line.partition("=")
            if key == "ExecStart":
                argv = shlex.split(self.moved(value))
            elif key == "Environment":
                name, _, setting = value.partition("=")
                env[name] = self.moved(setting)
            elif key == "SuccessExitStatus":
                success |= {int(status) for status in value.split()}
        return argv, env, success

    def run_service(self) -> tuple[subprocess.CompletedProcess, bool]:
        """Run the service as systemd would; whether systemd counts it a success."""
        argv, env, success = self.service()
        done = subprocess.run(argv, capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=300, cwd=self.folder)
        return done, done.returncode in success


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def test_the_pages_agree_on_one_set_up():
    """One systemd unit, one binary folder, every schedule over every target."""
    units = [block for page in (OPERATIONS, MONITORING) for block in code_blocks(page, "ini")
             + code_blocks(page) if "ExecStart" in block]
    assert len(units) == 1
    commands = re.findall(r"/\S+/bin/glancesync-\w+", OPERATIONS + MONITORING)
    assert commands and {c.rsplit("/", 1)[0] for c in commands} == {"/opt/glancesync/bin"}
    for job in [*cron_commands(CRON), SERVICE.split("ExecStart=")[1].splitlines()[0]]:
        assert "--all-targets" in job, job
    faq = (ROOT / "docs" / "manual" / "faq.rst").read_text(encoding="utf-8")
    backup = re.search(r"``(glancesync-backup [^`]*)``", faq.split("Take backups")[1]).group(1)
    assert "--all-targets" in backup


def test_the_cron_file_as_written(host):
    sync, status, backup = host.cron_jobs()
    first = host.run(sync)
    assert first.returncode == 0, first.stderr
    assert "other:RegionD: sync done" in first.stdout  # every target
    # Nothing changed since: nothing printed, so cron sends no mail.
    again = host.run(sync)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert host.run(status).stdout == ""  # exit 0: the morning check mails nothing
    saved = host.run(backup)
    assert (saved.returncode, saved.stdout, saved.stderr) == (0, "", "")
    folders = list(Path(host.paths["/var/backups/glancesync"]).iterdir())
    assert len(folders) == 1
    assert {p.name for p in folders[0].iterdir()} == {
        "backup_master_RegionA.jsonl", "backup_master_RegionB.jsonl",
        "backup_master_RegionC.jsonl", "backup_other_RegionD.jsonl"}
    # Who may read what: the web server's and node_exporter's group, nobody else.
    page = Path(host.moved("/var/www/glancesync/index.html"))
    for path in (page, host.prom, Path(host.moved("/var/lib/glancesync/last-run.json")),
                 Path(host.moved("/var/log/glancesync/sync.log")),
                 *folders[0].iterdir()):
        assert (path.stat().st_mode & 0o777, path.stat().st_gid) == (0o640, os.getgid()), path
    assert not check_alerts(host.prom)


def test_a_run_failing_before_any_region_fires_the_alert(host):
    sync = host.cron_jobs()[0]
    assert host.run(sync).returncode == 0
    text = host.fed.config.read_text()
    host.fed.config.write_text(text.replace("master_region = Master", "master_region = Mastre"))
    failed = host.run(sync)
    assert failed.returncode == 2
    assert "master_region 'Mastre'" in failed.stderr  # mailed
    fired = check_alerts(host.prom)
    assert {dict(key)["region"] for key in fired["GlanceSyncRunFailed"]} == {
        "master:RegionA", "master:RegionB", "master:RegionC", "other:RegionD"}
    assert "failed" in Path(host.moved("/var/www/glancesync/index.html")).read_text()
    done, success = host.run_service()
    assert done.returncode == 2 and not success  # systemctl --failed shows it


def test_a_partial_run_by_hand_keeps_the_alert(host):
    text = host.fed.config.read_text()
    host.fed.config.write_text(re.sub(r"(?m)^rename = .*\n", "", text))  # RegionC: conflict
    done, success = host.run_service()
    assert done.returncode == 4 and not success
    assert "master:RegionC: debian-12: error_checksum:" in done.stdout  # in the journal
    operator = labels(image="debian-12", region="master:RegionC")
    assert operator in check_alerts(host.prom)["GlanceSyncImageNeedsOperator"]
    # An operator looks at another region, and syncs a third by hand.
    manual = [str(BIN / "glancesync-sync"), "--config-file", str(host.fed.config)]
    env = dict(host.env, GLANCESYNC_CONFIG=str(host.fed.config))
    for args in (["--show-status", "RegionB"], ["RegionA"], ["--image", "ubuntu*"]):
        subprocess.run([*manual, *args], env=env, capture_output=True, timeout=300,
                       stdin=subprocess.DEVNULL, check=False)
    fired = check_alerts(host.prom)
    assert operator in fired["GlanceSyncImageNeedsOperator"]
    assert "GlanceSyncRunFailed" not in fired
    # The morning check mails the statuses.
    status = host.run(host.cron_jobs()[1])
    assert "error_checksum,master:RegionC,debian-12" in status.stdout


def test_systemctl_stop_of_the_service_fires_the_alert_and_leaves_nothing_half_made(host):
    """``systemctl stop`` sends SIGTERM to the service's command as written."""
    from glancesync.backends.local.adapter import LocalRegionAdapter
    from tests import scenarios
    master = LocalRegionAdapter("master:Master", host.folder / "federation" / "Master",
                                PROJECT)
    scenarios.put(master, "big", scenarios.content("big", 128 * 1024 * 1024 + 1))
    regions = {name: host.fed.region(name) for name in ("RegionA", "RegionB", "RegionC")}
    argv, env, success = host.service()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, stdin=subprocess.DEVNULL, cwd=host.folder)
    deadline = time.monotonic() + 240
    saving = None
    while saving is None and time.monotonic() < deadline and process.poll() is None:
        saving = next((name for name, region in regions.items()
                       if any(i.status == "saving" for i in region.list_images())), None)
        time.sleep(0.05)
    assert saving is not None, "no upload was seen under way"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 143 and 143 not in success, (out, err)  # a failed unit
    assert "SIGTERM received: stopping" in err and "run stopped (SIGTERM received)" in out
    for name, region in regions.items():
        assert [i.name for i in region.list_images() if i.status != "active"] == [], name
    fired = {dict(key)["region"] for key in check_alerts(host.prom)["GlanceSyncRunFailed"]}
    assert f"master:{saving}" in fired
    for name, region in regions.items():  # every region the run did not finish
        if "big" not in {i.name for i in region.list_images()}:
            assert f"master:{name}" in fired
    report = json.loads(Path(host.moved("/var/lib/glancesync/last-run.json")).read_text())
    assert report["exit_status"] == 143 and report["stopped"] == "stopped: SIGTERM received"


# --- the alert rules -------------------------------------------------------------------------


def check_alerts(prom: Path) -> dict[str, set[tuple]]:
    """The documented alerts firing on ``prom``; checked by promtool too when installed."""
    now = time.time()
    fired = alerts(prom, now)
    promtool = shutil.which("promtool")
    if promtool:
        _promtool_agrees(promtool, prom, now, fired)
    return fired


def _promtool_agrees(promtool: str, prom: Path, now: float,
                     fired: dict[str, set[tuple]]) -> None:
    import yaml
    folder = prom.parent / "promtool"
    folder.mkdir(exist_ok=True)
    (folder / "rules.yml").write_text(RULES + "\n")
    check = subprocess.run([promtool, "check", "rules", str(folder / "rules.yml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    rules = {rule["alert"]: rule for group in yaml.safe_load(RULES)["groups"]
             for rule in group["rules"]}
    evaluated = 3 * 3600  # past every rule's "for"
    steps = evaluated // 60 + 1
    inputs = []
    for name, samples in series(prom).items():
        for key, value in samples.items():
            if name.endswith("_timestamp_seconds"):
                value -= now - evaluated  # the same age at the evaluation time
            selector = name + "{" + ",".join(f'{k}="{v}"' for k, v in key) + "}"
            inputs.append({"series": selector, "values": f"{value:.3f}+0x{steps}"})
    tests = []
    for alert, rule in rules.items():
        expected = []
        for key in sorted(fired.get(alert, set())):
            values = dict(key)
            summary = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: values[m.group(1)],
                             rule["annotations"]["summary"])
            expected.append({"exp_labels": values, "exp_annotations": {"summary": summary}})
        tests.append({"eval_time": f"{evaluated}s", "alertname": alert,
                      "exp_alerts": expected})
    (folder / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": inputs, "alert_rule_test": tests}]}))
    done = subprocess.run([promtool, "test", "rules", str(folder / "test.yml")],
                          capture_output=True, text=True, timeout=120, cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
