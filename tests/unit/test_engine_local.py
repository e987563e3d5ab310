"""The scenario suite on local folder regions (fast, no network)."""
from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from glancesync.backends import get_backend
from glancesync.backends.base import Target
from glancesync.backends.local import LocalSettings
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.config import TargetConfig
from glancesync.errors import ChecksumMismatchError
from glancesync.plan import Status
from tests.engine import DirectSource
from tests import scenarios
from tests.scenarios import Bed, View

MASTER_PROJECT = "p-master"
REGION_PROJECT = "p-region"
OTHER_PROJECT = "p-other"
ALICE = "p-alice"


#: The projects of the local targets' "identity services" (names are ids): the
#: master's has every name, the others only these.
PROJECTS = ["alpha", "beta"]


def local_target(root: Path, name: str, project: str, projects: list[str]) -> Target:
    settings = LocalSettings(path=root, project=project, projects=projects)
    return get_backend("local").make_target(TargetConfig(name=name, backend="local",
                                                         settings=settings))


def strip_hashes(view: View, image_id: str) -> None:
    """What old tools, or a registration by location, leave: no hash at all."""
    store = view.inner.writable_store
    store.image_update(view.inner.context, image_id,
                       {"checksum": None, "os_hash_algo": None, "os_hash_value": None})


def local_bed(root: Path) -> Bed:
    prefix = f"{uuid.uuid4().hex[:8]}-"

    def view(region: str, project: str) -> View:
        return View(LocalRegionAdapter(region, root / region, project), prefix)

    def foreign(region: View) -> LocalRegionAdapter:
        return LocalRegionAdapter(region.name, root / region.name, ALICE)

    targets = {MASTER_PROJECT: local_target(root, "master", MASTER_PROJECT, []),
               REGION_PROJECT: local_target(root, "master", REGION_PROJECT, PROJECTS),
               OTHER_PROJECT: local_target(root, "other", OTHER_PROJECT, PROJECTS)}
    return Bed(prefix=prefix, master=view("Master", MASTER_PROJECT),
               regions=[view("RegionA", REGION_PROJECT), view("RegionB", REGION_PROJECT)],
               other=view("RegionC", OTHER_PROJECT), foreign=foreign,
               target_of=lambda v: targets[v.project_id], strip_hashes=strip_hashes,
               project=lambda v, name: name)


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


def test_every_status_reached(tmp_path_factory):
    """The whole table of SPEC section 5 is seen by the scenarios. Those that did
    not run in this session (``-k``, a test run alone) are run here: the test never
    skips (issue 27)."""
    for scenario in scenarios.SCENARIOS:
        if scenario.__name__ not in RAN:
            bed = local_bed(tmp_path_factory.mktemp(scenario.__name__[9:]))
            scenarios.run(bed, scenario)
            SEEN.update(bed.seen)
            RAN.add(scenario.__name__)
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
