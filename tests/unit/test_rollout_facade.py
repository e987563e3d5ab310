"""The release options (issue 26) through the facade, on the demo federation."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from glancesync import demo
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.facade import GlanceSync
from glancesync.image import Image


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    demo.build_federation(folder)
    return folder


class Federation:
    def __init__(self, folder: Path, template: Path) -> None:
        shutil.copytree(template, folder, dirs_exist_ok=True)
        self.config = folder / "glancesync.conf"
        self.config.write_text(self.config.read_text().replace(str(template), str(folder)))
        self.root = folder / "federation"

    def images(self, region: str) -> list[Image]:
        adapter = LocalRegionAdapter(f"master:{region}", self.root / region, demo.PROJECT)
        try:
            return adapter.list_images()
        finally:
            adapter.close()

    def add_config(self, text: str) -> None:
        self.config.write_text(self.config.read_text() + "\n" + text)


@pytest.fixture
def federation(tmp_path, template, monkeypatch) -> Federation:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    return Federation(tmp_path / "demo", template)


def facade_of(federation: Federation) -> GlanceSync:
    with open(federation.config) as stream:
        return GlanceSync(stream, progress=False)


def test_keep_image_id_per_target_and_per_region(federation):
    federation.add_config("[master:RegionB]\nkeep_image_id = false\n")
    text = federation.config.read_text().replace(
        "type = local\n", "type = local\nkeep_image_id = true\n", 1)
    federation.config.write_text(text)
    master_ids = {i.name: i.id for i in federation.images("Master")}
    with facade_of(federation) as facade:
        before = {region: sorted((i.id, i.name) for i in federation.images(region))
                  for region in ("RegionA", "RegionB")}
        dry = facade.sync(["RegionA", "RegionB"], dry_run=True)
        assert {region: sorted((i.id, i.name) for i in federation.images(region))
                for region in ("RegionA", "RegionB")} == before  # a dry run changes nothing
        described = [op.describe() for op in dry.plans["master:RegionA"].operations]
        assert any(d.endswith(f"as id {master_ids['debian-12']}") for d in described)
        assert not any(" as id " in op.describe()
                       for op in dry.plans["master:RegionB"].operations)
        result = facade.sync(["RegionA", "RegionB"])
        assert result.exit_status == 0
    region_a = {i.name: i.id for i in federation.images("RegionA")}
    assert region_a["debian-12"] == master_ids["debian-12"]
    assert region_a["cirros-machine"] == master_ids["cirros-machine"]
    region_b = {i.name: i.id for i in federation.images("RegionB")}
    assert region_b["debian-12"] != master_ids["debian-12"]
    with facade_of(federation) as facade:
        report = facade.status(["RegionA"])
    reasons = {s.name: s.reason for s in report.statuses}
    assert reasons["debian-12"].endswith("same id as the master image")


def test_validate_command_per_region_sees_its_region_and_the_local_target(federation,
                                                                          tmp_path):
    import shlex
    import sys
    seen = tmp_path / "seen"
    code = (f"import os; open({str(seen)!r}, 'a').write(os.environ['GLANCESYNC_REGION'] + ' '"
            " + os.environ['GLANCESYNC_IMAGE_NAME'] + ' '"
            " + os.environ['GLANCESYNC_TARGET_PATH'] + chr(10)); raise SystemExit("
            "os.environ['GLANCESYNC_IMAGE_NAME'] == 'debian-12')")
    federation.add_config(f"[master:RegionA]\nvalidate_command = {shlex.quote(sys.executable)}"
                          f" -c {shlex.quote(code)}\nvalidate_timeout = 120\n")
    with facade_of(federation) as facade:
        result = facade.sync(["RegionA", "RegionB"])
    lines = seen.read_text().splitlines()
    assert sorted(line.split()[1] for line in lines) == [
        "cirros-kernel", "cirros-machine", "cirros-ramdisk", "debian-12", "ubuntu-22.04"]
    assert all(line.startswith("RegionA ") for line in lines)  # RegionB validates nothing
    assert result.exit_status == 4
    line = result.plans["master:RegionA"].status_of("debian-12")
    assert line.status.value == "error_validation"
    public = {i.name for i in federation.images("RegionA") if i.visibility == "public"}
    assert "debian-12" not in public and "ubuntu-22.04" in public


def test_a_validate_command_with_unbalanced_quotes_is_refused_at_load(federation):
    from glancesync.errors import ConfigError
    federation.add_config("[master:RegionA]\nvalidate_command = boot-test 'unclosed\n")
    with pytest.raises(ConfigError, match="validate_command.*cannot be split"):
        facade_of(federation)


def set_main(federation: Federation, text: str) -> None:
    federation.config.write_text(federation.config.read_text().replace(
        "[main]\n", f"[main]\n{text}", 1))


def region_names(federation: Federation, region: str) -> set[str]:
    return {i.name for i in federation.images(region) if i.status == "active"}


def test_two_waves_over_runs_with_a_soak_time_and_a_wrong_clock(federation):
    set_main(federation, "rollout_waves = RegionA; RegionB\nwave_soak_hours = 2\n")
    before_b = {i.id for i in federation.images("RegionB")}
    with facade_of(federation) as facade:
        # A dry run shows the waves and changes nothing.
        dry = facade.sync(["RegionA", "RegionB", "RegionC"], dry_run=True)
        assert region_names(federation, "RegionA") == set()
        line = dry.plans["master:RegionB"].status_of("debian-12")
        assert line.status.value == "info_wave_waiting"
        assert "master:RegionA has no accepted copy yet" in line.reason
        assert dry.plans["master:RegionA"].operations
        # Run 1: the first wave only.
        first = facade.sync(["RegionA", "RegionB", "RegionC"])
    assert "debian-12" in region_names(federation, "RegionA")
    # No new copy in RegionB (its obsolete image is renamed: only new copies wait).
    assert {i.id for i in federation.images("RegionB")} == before_b
    assert "centos-7_obsolete" in region_names(federation, "RegionB")
    assert first.plans["master:RegionC"].status_of("debian-12").status.value == "info_wave_waiting"
    with facade_of(federation) as facade:
        # Run 2, at once: RegionA's copies are not 2 hours old.
        report = facade.status(["RegionB"])
        reason = report.plans["master:RegionB"].status_of("debian-12").reason
        assert "h of wave_soak_hours = 2 left" in reason
        assert report.exit_status == 0  # nothing a sync would do now
        # Every view shows the waiting region's status.
        from glancesync.views import html, matrix, metrics, runreport
        grid = matrix.build(report.plans)
        assert "w" in matrix.symbols(report.plans["master:RegionB"].statuses)
        assert grid is not None
        assert "info_wave_waiting" in html.render(report)
        assert "info_wave_waiting" in runreport.dumps(report)
        text = metrics.registry_for(report, [])
        from prometheus_client import generate_latest
        assert b'status="info_wave_waiting"' in generate_latest(text)
    # RegionA's copies were accepted 3 hours ago (their records say so)...
    stamp_copies(federation, "RegionA", hours=-3)
    with facade_of(federation) as facade:
        facade.sync(["RegionB"])
    assert "debian-12" in region_names(federation, "RegionB")
    # ... but RegionB's records are a day in the future of this host's clock.
    stamp_copies(federation, "RegionB", hours=24)
    with facade_of(federation) as facade:
        report = facade.status(["RegionC"])
    reason = report.plans["master:RegionC"].status_of("debian-12").reason
    assert "in the future of this host's clock" in reason


def stamp_copies(federation: Federation, region: str, hours: float) -> None:
    import datetime
    from glancesync.image import PROVENANCE_TIME, utc_stamp
    when = utc_stamp(datetime.datetime.now(datetime.timezone.utc)
                     + datetime.timedelta(hours=hours))
    adapter = LocalRegionAdapter(f"master:{region}", federation.root / region, demo.PROJECT)
    try:
        for image in adapter.list_images():
            if image.provenance is not None:
                adapter.update_image(image.id, {PROVENANCE_TIME: when})
    finally:
        adapter.close()


def test_a_wave_naming_a_region_twice_or_no_region_is_refused(federation):
    from glancesync.errors import ConfigError
    set_main(federation, "rollout_waves = RegionA; RegionB, RegionA\n")
    with pytest.raises(ConfigError, match="master:RegionA is in two waves"):
        facade_of(federation)


def test_an_empty_wave_is_refused(federation):
    from glancesync.errors import ConfigError
    set_main(federation, "rollout_waves = RegionA;; RegionB\n")
    with pytest.raises(ConfigError, match="wave 2 names no region"):
        facade_of(federation)


def test_an_expired_image_with_a_promised_id_is_hidden_not_deleted(federation):
    """Through the facade: provided_until passed, removal_policy = delete, but
    uuid_validity promises the id: the copy is hidden; a dry run changes nothing."""
    master = LocalRegionAdapter("master:Master", federation.root / "Master", demo.PROJECT)
    try:
        debian = next(i for i in master.list_images() if i.name == "debian-12")
        master.update_image(debian.id, {"provided_until": "2020-01-01",
                                        "uuid_validity": "forever"})
    finally:
        master.close()
    with facade_of(federation) as facade:
        facade.sync(["RegionA"])  # removal_policy = keep: still copied
    copy = next(i for i in federation.images("RegionA") if i.name == "debian-12")
    text = federation.config.read_text().replace(
        "type = local\n", "type = local\nremoval_policy = delete\nremoval_grace_hours = 0\n", 1)
    federation.config.write_text(text)
    with facade_of(federation) as facade:
        dry = facade.sync(["RegionA"], dry_run=True)
        ops = [op for op in dry.plans["master:RegionA"].operations if op.kind.removes]
        assert [(op.kind.value, op.name) for op in ops] == [("hide", "debian-12")]
        assert not next(i for i in federation.images("RegionA") if i.id == copy.id).os_hidden
        result = facade.sync(["RegionA"])
    assert result.exit_status == 0
    kept = next(i for i in federation.images("RegionA") if i.id == copy.id)
    assert kept.os_hidden and kept.status == "active"
    with facade_of(federation) as facade:
        report = facade.status(["RegionA"])
    found = {s.status.value for s in report.statuses if s.name == "debian-12"}
    assert found == {"info_end_of_life", "ok_retired"}


def test_another_tenants_image_posing_as_a_copy_does_not_open_the_next_wave(federation):
    """A tenant of the first wave's region makes a public image with the provenance
    record and validation marks of a master image: the next wave still waits."""
    set_main(federation, "rollout_waves = RegionA; RegionB\n")
    master = {i.name: i for i in federation.images("Master")}
    debian = master["debian-12"]
    tenant = LocalRegionAdapter("master:RegionA", federation.root / "RegionA", "a-tenant")
    try:
        fake = tenant.create_image("debian-12", visibility="public", disk_format="raw",
                                   container_format="bare", properties={
                                       "glancesync.master_image_id": debian.id,
                                       "glancesync.master_region": "Master",
                                       "glancesync.copied_at": "2020-01-01T00:00:00Z",
                                       "glancesync.validation": "passed",
                                       "glancesync.validated_at": "2020-01-01T00:00:00Z"})
        tenant.upload_data(fake.id, [b"x" * 16], 16)
    finally:
        tenant.close()
    with facade_of(federation) as facade:
        report = facade.status(["RegionA", "RegionB"])
    line = report.plans["master:RegionB"].status_of("debian-12")
    assert line.status.value == "info_wave_waiting"
    assert "master:RegionA has no accepted copy yet" in line.reason


def test_sync_region_and_get_status_honour_the_waves(federation):
    set_main(federation, "rollout_waves = RegionA; RegionB\n")
    with facade_of(federation) as facade:
        assert {s.status.value for s in facade.get_status("RegionB")
                if s.name == "debian-12"} == {"info_wave_waiting"}
        result = facade.sync_region("RegionB")
    assert result.uploaded == 0
    assert "debian-12" not in region_names(federation, "RegionB")
