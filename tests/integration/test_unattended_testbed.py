"""Unattended runs on the real test bed (issue 22): what the docs tell an operator to run.

The test bed page's own configuration synchronises a public image; a run
whose credentials Keystone refuses records its failure in the metrics and
the run report; a master user who sees no candidate image is no success.
Every test synchronises only images carrying its own name prefix, and
deletes them from every region at the end (the bed is shared).
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_scripts_testbed import BIN, Bed
from tests.testbed_config import write_config

ROOT = Path(__file__).resolve().parents[2]


class UnattendedBed(Bed):
    def run_with_env(self, env: dict[str, str], command: str,
                     *args: str) -> subprocess.CompletedProcess:
        """Run ``glancesync-COMMAND ARGS`` (its own --config-file) as cron would."""
        return subprocess.run([str(BIN / f"glancesync-{command}"), *args],
                              capture_output=True, text=True, env=env, cwd=self.folder,
                              timeout=300, stdin=subprocess.DEVNULL)


@pytest.fixture
def bed(testbed, tmp_path):
    made = UnattendedBed(testbed, tmp_path)
    try:
        yield made
    finally:
        made.cleanup()


def _page_config() -> str:
    """The ``ini`` block of the test bed page."""
    text = (ROOT / "docs" / "manual" / "testbed.rst").read_text(encoding="utf-8")
    block = re.search(r"\.\. code-block:: ini\n\n((?:   .*\n|\n)+)", text).group(1)
    return "\n".join(line[3:] for line in block.splitlines()) + "\n"


def _success(prom: Path) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(prom.read_text(encoding="utf-8")):
        for sample in family.samples:
            if sample.name == "glancesync_last_run_success":
                found[(sample.labels["region"], sample.labels["mode"])] = sample.value
    return found


def test_the_test_bed_page_configuration_syncs_public_images(bed, tmp_path):
    name = bed.prefix + "public"
    bed.put_master("public")
    config = tmp_path / "testbed.conf"
    config.write_text(_page_config())
    env = dict(bed.env, OS_CLIENT_CONFIG_FILE=str(bed.info.clouds_yaml))
    condition = f"image.name.startswith('{bed.prefix}')"
    done = bed.run_with_env(env, "sync", "--config-file", str(config), "--no-progress",
                            "--config", f"master.metadata_condition={condition}",
                            "--config", f"other.metadata_condition={condition}",
                            "--config", f"run_dir={tmp_path / 'runs'}", "RegionA")
    assert done.returncode == 0, (done.stdout, done.stderr)
    [copy] = [i for i in bed.adapter("RegionA").list_images() if i.name == name]
    assert copy.visibility == "public"


def test_refused_credentials_are_recorded_in_every_output(bed, tmp_path):
    prom, report = tmp_path / "g.prom", tmp_path / "run.json"
    bed.put_master("first")
    assert bed.run("sync", "--no-progress", "--config", f"metrics_file={prom}",
                   "RegionA").returncode == 0
    assert _success(prom)[("master:RegionA", "sync")] == 1
    wrong = write_config(bed.info, tmp_path / "wrong.conf",
                         main={"metrics_file": prom, "retries": 0},
                         master={"password": "not-the-password",
                                 "metadata_condition": f"image.name.startswith('{bed.prefix}')"})
    done = bed.run_with_env(bed.env, "sync", "--config-file", str(wrong), "--no-progress",
                            "--report-json", str(report), "RegionA")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert _success(prom)[("master:RegionA", "sync")] == 0
    written = json.loads(report.read_text())
    assert written["exit_status"] == 2
    assert written["regions"][0]["result"] == "failed"


def test_a_member_who_sees_no_candidate_is_no_success(bed, tmp_path):
    bed.put_master("hidden")
    member = write_config(bed.info, tmp_path / "member.conf", master_cloud="master-alice",
                          master={"metadata_condition":
                                  f"image.name.startswith('{bed.prefix}')"})
    done = bed.run_with_env(bed.env, "sync", "--config-file", str(member), "--no-progress",
                            "-q", "RegionA")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "nothing to synchronise" in done.stderr
