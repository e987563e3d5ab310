"""The scenario suite (tests/scenarios.py) against the real Glance test bed.

Master = region Master through the ``master-admin`` cloud; destinations
RegionA and RegionB (same Keystone, ``master-admin``) and RegionC (second
Keystone, ``other-admin``); other projects' images are made by the
``*-alice`` clouds. Every image name carries a unique prefix and is
deleted at the end of its test: the bed is shared.
"""
from __future__ import annotations

import uuid

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.plan import Status
from tests import scenarios
from tests.scenarios import Bed, View

pytestmark = pytest.mark.integration


def make_session(credentials: dict[str, str]) -> ksa_session.Session:
    auth = v3.Password(**{key: value for key, value in credentials.items()
                          if key != "project_id"})
    return ksa_session.Session(auth=auth)


@pytest.fixture(scope="module")
def sessions(testbed) -> dict[str, ksa_session.Session]:
    return {name: make_session(cloud) for name, cloud in testbed.info.clouds.items()}


def glance_bed(testbed, sessions) -> Bed:
    prefix = f"gs-scn-{uuid.uuid4().hex[:8]}-"
    clouds = testbed.info.clouds

    def adapter(cloud: str, region: str) -> GlanceRegionAdapter:
        keystone = cloud.split("-", 1)[0]
        return GlanceRegionAdapter(f"{keystone}:{region}", sessions[cloud], region,
                                   clouds[cloud]["project_id"])

    def view(cloud: str, region: str) -> View:
        return View(adapter(cloud, region), prefix)

    def foreign(region: View) -> GlanceRegionAdapter:
        keystone, region_name = region.name.split(":", 1)
        return adapter(f"{keystone}-alice", region_name)

    master_name, *destinations = testbed.info.regions["master"]
    return Bed(prefix=prefix, master=view("master-admin", master_name),
               regions=[view("master-admin", r) for r in destinations[:2]],
               other=view("other-admin", testbed.info.regions["other"][0]),
               foreign=foreign)


#: Statuses reported by the scenarios of this module, and the scenarios run.
SEEN: set[str] = set()
RAN: set[str] = set()


@pytest.mark.parametrize("scenario", scenarios.SCENARIOS, ids=lambda f: f.__name__[9:])
def test_scenario(testbed, sessions, scenario):
    bed = glance_bed(testbed, sessions)
    scenarios.run(bed, scenario)
    SEEN.update(bed.seen)
    RAN.add(scenario.__name__)
    assert all(view.list_images() == [] for view in bed.every_region)


def test_every_status_reached_on_glance():
    """Runs after the scenarios: the whole table of SPEC section 5 was seen."""
    if len(RAN) < len(scenarios.SCENARIOS):
        pytest.skip("needs every scenario to have run in this session")
    assert SEEN >= {status.value for status in Status}
