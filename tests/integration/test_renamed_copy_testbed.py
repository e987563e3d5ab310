"""A copy renamed by hand in a real Glance region (issue 23, case 8).

An operator renames GlanceSync's copy in RegionA (``openstack image set
--name``). Glance keeps its properties, GlanceSync's provenance among them:
the next runs recognise the copy under its new name, report it as renamed
(``info_renamed``), upload nothing and diagnose nothing else.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from glancesync.plan import Status
from tests.integration.test_import_upload_testbed import Bed

pytestmark = pytest.mark.integration


@pytest.fixture
def bed(testbed, monkeypatch, tmp_path) -> Iterator[Bed]:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Bed(testbed)
    yield made
    made.clean()


def test_a_copy_renamed_by_hand_is_reported_as_renamed_and_not_uploaded_again(
        bed, tmp_path, caplog):
    master = bed.add_master("renamed")
    with bed.facade(tmp_path) as gs:
        assert gs.sync(["RegionA"]).results["master:RegionA"].uploaded == 1
        (copy,) = bed.mine("RegionA")
        bed.adapter("RegionA").update_image(copy.id, {"name": f"{master.name}-prod"})
        for _ in range(2):  # the second run sees what the first left
            with caplog.at_level(logging.WARNING):
                result = gs.sync(["RegionA"])
            assert result.exit_status == 0
            assert result.results["master:RegionA"].uploaded == 0
        (line,) = [s for s in gs.status(["RegionA"]).statuses if s.name == master.name]
    assert line.status is Status.INFO_RENAMED and line.regional_id == copy.id
    assert f"named '{master.name}-prod' in the region" in line.reason
    assert [image.id for image in bed.mine("RegionA")] == [copy.id]
    assert "lock" not in caplog.text
