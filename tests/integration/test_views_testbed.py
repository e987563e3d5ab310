"""The views of issue 14 on the loopback OpenStack test bed (two Keystones).

A status, a sync with every output (HTML, JSON run report, metrics) and
``--image``, compared with ``--show-status --format json``; a hostile image
name (markup, quotes, a newline, ANSI escapes, long) in every format.
"""
from __future__ import annotations

import csv
import io
import json

import html5lib
import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from glancesync.safenames import printable
from glancesync.views import metrics, runreport
from tests.integration.test_scripts_testbed import bed  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

REGIONS = ["master:RegionA", "other:RegionC"]
XHTML = "{http://www.w3.org/1999/xhtml}"


def _statuses(bed, *args):
    done = bed.run("sync", "--show-status", "--format", "json", *args, *REGIONS)
    assert done.returncode in (0, 3), done.stderr
    return {(s["region"], s["name"]): s["status"] for s in json.loads(done.stdout)}


def test_views_of_a_sync_on_the_bed(bed, tmp_path):  # noqa: F811
    hostile = bed.prefix + '<b onmouseover="x">\'q\'\n\x1b[31m' + "y" * 150
    bed.put_master("alpha")
    bed.put_master(hostile[len(bed.prefix):])
    bed.put_master("beta")
    before = _statuses(bed)
    assert set(before.values()) == {"pending_upload"}
    table = bed.run("sync", "--show-status", "--format", "table", *REGIONS)
    assert table.returncode == 3 and "\x1b" not in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    # Only alpha: --image with a pattern.
    prom, report, page = (tmp_path / "g.prom", tmp_path / "r.json", tmp_path / "r.html")
    done = bed.run("sync", "--image", f"{bed.prefix}al*", "--config", f"metrics_file={prom}",
                   "--report-json", str(report), "--report-html", str(page), *REGIONS)
    assert done.returncode == 0, done.stderr
    assert bed.names("RegionA") == bed.names("RegionC") == {bed.prefix + "alpha"}
    data = json.loads(report.read_text())
    jsonschema.validate(data, runreport.schema())
    for region in data["regions"]:
        assert [(o["kind"], o["name"], o["result"]) for o in region["operations"]] == [
            ("upload", bed.prefix + "alpha", "done")]
        assert region["operations"][0]["bytes"] > 0
    # The page shows the regions as the sync left them: the JSON status of now.
    after = _statuses(bed, "--image", f"{bed.prefix}al*")
    document = html5lib.parse(page.read_text(encoding="utf-8"))
    cells = {(c.get("data-region"), row.find(f"{XHTML}td").get("data-image")):
             c.get("data-status")
             for row in document.iter(f"{XHTML}tr") for c in row.findall(f"{XHTML}td")[1:]
             if row.find(f"{XHTML}td") is not None and c.get("data-status")}
    assert cells == {key: value for key, value in after.items()}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(prom.read_text())
               for s in family.samples}
    for region in REGIONS:
        assert samples[("glancesync_image_in_sync",
                        (("image", bed.prefix + "alpha"), ("region", region)))] == 1
        assert samples[("glancesync_last_run_success", (("mode", "sync"),
                                                        ("region", region)))] == 1
    # The hostile name, still pending, in every format.
    html = bed.run("sync", "--show-status", "--format", "html", *REGIONS).stdout
    parsed = html5lib.parse(html)
    assert parsed.findall(f".//{XHTML}b") == []
    assert printable(hostile) in [c.text for c in parsed.iter(f"{XHTML}td")
                                  if c.get("data-image")]
    csv_out = bed.run("sync", "--show-status", *REGIONS).stdout
    assert "\x1b" not in csv_out
    assert printable(hostile) in {row[2] for row in csv.reader(io.StringIO(csv_out))}
    status_prom = tmp_path / "s.prom"
    bed.run("sync", "--show-status", "--config", f"metrics_file={status_prom}", *REGIONS)
    names = {s.labels.get("image") for f in text_string_to_metric_families(
        status_prom.read_text()) for s in f.samples}
    assert metrics._labels(hostile)[0] in names  # control characters escaped (issue 21)
    assert not any("\n" in (name or "") or "\x1b" in (name or "") for name in names)
