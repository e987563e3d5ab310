"""The scenario suite on local folder regions (fast, no network)."""
from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import ChecksumMismatchError
from glancesync.plan import Status
from tests.engine import DirectSource
from tests import scenarios
from tests.scenarios import Bed, View

MASTER_PROJECT = "p-master"
REGION_PROJECT = "p-region"
OTHER_PROJECT = "p-other"
ALICE = "p-alice"


def local_bed(root: Path) -> Bed:
    prefix = f"{uuid.uuid4().hex[:8]}-"

    def view(region: str, project: str) -> View:
        return View(LocalRegionAdapter(region, root / region, project), prefix)

    def foreign(region: View) -> LocalRegionAdapter:
        return LocalRegionAdapter(region.name, root / region.name, ALICE)

    return Bed(prefix=prefix, master=view("Master", MASTER_PROJECT),
               regions=[view("RegionA", REGION_PROJECT), view("RegionB", REGION_PROJECT)],
               other=view("RegionC", OTHER_PROJECT), foreign=foreign)


#: Statuses reported by the scenarios of this module, and the scenarios run.
SEEN: set[str] = set()
RAN: set[str] = set()


@pytest.mark.parametrize("scenario", scenarios.SCENARIOS, ids=lambda f: f.__name__[9:])
def test_scenario(tmp_path, scenario):
    bed = local_bed(tmp_path)
    scenarios.run(bed, scenario)
    SEEN.update(bed.seen)
    RAN.add(scenario.__name__)
    assert all(view.list_images() == [] for view in bed.every_region)


def test_every_status_reached():
    if len(RAN) < len(scenarios.SCENARIOS):
        pytest.skip("needs every scenario to have run in this session")
    assert SEEN >= {status.value for status in Status}


def test_direct_source_streams_and_checks_the_master_hashes(tmp_path):
    bed = local_bed(tmp_path)
    data = scenarios.content("src", 3 * 1024 * 1024 + 5)
    image = scenarios.put(bed.master, bed.n("src"), data)
    assert b"".join(DirectSource(bed.master).chunks(image)) == data
    lying = dataclasses.replace(image, checksum="0" * 32)
    with pytest.raises(ChecksumMismatchError):
        list(DirectSource(bed.master).chunks(lying))
    lying = dataclasses.replace(image, os_hash_value="0" * 128)
    with pytest.raises(ChecksumMismatchError):
        list(DirectSource(bed.master).chunks(lying))
