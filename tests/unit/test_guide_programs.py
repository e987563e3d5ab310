"""The three programs of the programmer's guide, run on the demo federation.

Each is a file of docs/examples shown in docs/programmer.rst; here each is
run as a newcomer runs it and its real effect is checked against the
commands: the JSON report against ``--show-status``, the custom rule
against what the regions hold afterwards.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from tests.unit.test_scripts_local import ROOT, Federation

EXAMPLES = ROOT / "docs" / "examples"


@pytest.fixture
def federation(tmp_path) -> Federation:
    return Federation(tmp_path / "demo")


def run_example(federation: Federation, name: str, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), str(federation.config), *args],
                          capture_output=True, text=True, timeout=120, env=federation.env,
                          cwd=federation.folder, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def show_status(federation: Federation) -> tuple[int, set[tuple[str, str, str]]]:
    """The exit status and the (status, region, image) lines of --show-status."""
    done = federation.run("sync", "--show-status")
    return done.returncode, {tuple(row) for row in csv.reader(io.StringIO(done.stdout))}


def test_json_status_report_says_what_show_status_says(federation):
    document = json.loads(run_example(federation, "example_json_status_report.py").stdout)
    exit_status, lines = show_status(federation)
    assert exit_status == 3 and document["exit_status"] == 3
    assert document["failures"] == {}
    reported = {(item["status"], region, item["image"])
                for region, items in document["regions"].items() for item in items}
    assert reported == lines
    # every line says why, and its category is the one that decides the exit
    for items in document["regions"].values():
        for item in items:
            assert item["reason"] or item["category"] == "ok"
    assert {item["category"] for items in document["regions"].values()
            for item in items} >= {"pending"}


def test_json_status_report_after_a_sync_is_all_ok(federation):
    assert federation.run("sync").returncode == 0
    document = json.loads(run_example(federation, "example_json_status_report.py").stdout)
    assert document["exit_status"] == 0
    assert {item["category"] for items in document["regions"].values()
            for item in items} == {"ok"}


def test_sync_one_image_copies_that_image_and_nothing_else(federation):
    before = {region: {(image.name, image.id) for image in federation.region(region).list_images()}
              for region in ("RegionA", "RegionB", "RegionC")}
    run_example(federation, "example_sync_one_image.py", "debian-12")
    _, lines = show_status(federation)
    for region in ("RegionA", "RegionB", "RegionC"):
        assert ("ok", f"master:{region}", "debian-12") in lines
        after = {(image.name, image.id) for image in federation.region(region).list_images()}
        # only debian-12 copies (and RegionC's local build renamed aside) changed
        assert {name for name, _ in after ^ before[region]} <= {"debian-12", "debian-12.old"}
    # the other images are still pending, as before
    assert ("pending_upload", "master:RegionA", "ubuntu-22.04") in lines
    assert ("pending_upload", "master:RegionC", "cirros-kernel") in lines


def test_custom_selection_rule_synchronises_only_what_it_selects(federation):
    run_example(federation, "example_custom_selection.py")
    cirros = {"cirros-kernel", "cirros-machine", "cirros-ramdisk"}
    for region in ("RegionA", "RegionB", "RegionC"):
        names = {image.name for image in federation.region(region).list_images()}
        assert cirros <= names, region
    # RegionA was empty: it holds the CirrOS images and nothing else
    assert {image.name for image in federation.region("RegionA").list_images()} == cirros
    # with the file's own selection, the other images are still to be copied
    exit_status, lines = show_status(federation)
    assert exit_status == 3
    assert ("pending_upload", "master:RegionA", "debian-12") in lines
    assert all(status == "ok" for status, _, image in lines if image in cirros)
