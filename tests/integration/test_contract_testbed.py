"""Our fakes' model of Glance, checked on the test bed's Glance (issue 27).

The same checks (tests/contract.py) run in tests/unit/test_contract.py on
the local region and the in-memory backend: a behaviour of Glance that the
fakes model wrongly fails here, not in production.
"""
from __future__ import annotations

import uuid
from typing import Iterator

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from tests import contract

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def session(testbed) -> ksa_session.Session:
    cloud = testbed.info.clouds["master-admin"]
    return ksa_session.Session(auth=v3.Password(
        **{k: v for k, v in cloud.items() if k != "project_id"}))


@pytest.fixture
def glance(testbed, session) -> Iterator[tuple[GlanceRegionAdapter, str]]:
    adapter = GlanceRegionAdapter("master:RegionA", session, "RegionA",
                                  testbed.info.project_id("master-admin"))
    prefix = f"gs-contract-{uuid.uuid4().hex[:8]}-"
    yield adapter, prefix
    contract.clean(adapter, prefix)


@pytest.mark.parametrize("name", sorted(contract.CHECKS))
def test_glance_keeps_the_contract_of_the_fakes(glance, name):
    adapter, prefix = glance
    contract.CHECKS[name](adapter, prefix)
