"""Our fakes of Glance keep the contract the test bed's Glance keeps (issue 27).

The same checks (tests/contract.py) run here on the local region and the
in-memory backend, and in tests/integration/test_contract_testbed.py on
the real Glance of the bed.
"""
from __future__ import annotations

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from tests import contract
from tests.memory_backend import MemoryRegionAdapter


@pytest.fixture(params=["local", "memory"])
def adapter(request, tmp_path):
    if request.param == "local":
        region = LocalRegionAdapter("master:RegionA", tmp_path / "RegionA", "p-region")
        yield region
        region.close()
    else:
        yield MemoryRegionAdapter("master:RegionA", {}, "p-region")


@pytest.mark.parametrize("name", sorted(contract.CHECKS))
def test_the_fakes_keep_the_contract(adapter, name):
    contract.CHECKS[name](adapter, "contract-")
    contract.clean(adapter, "contract-")
    assert [i for i in adapter.list_images() if i.name.startswith("contract-")] == []
