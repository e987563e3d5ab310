"""A real OpenStack on 127.0.0.1 for tests, benchmarks and users.

Two Keystones (``master`` with regions Master, RegionA, RegionB; ``other``
with RegionC), one glance-api per region, installed into their own
virtualenv. From the shell: ``python -m glancesync.testbed install|start|
stop|status|env``. From Python::

    bed = TestBed()
    bed.install()
    info = bed.start()          # TestBedInfo: URLs, regions, clouds
    ...
    bed.stop()
"""
from glancesync.testbed.bed import (
    KEYSTONE_REGIONS,
    PACKAGES,
    USERS,
    TestBed,
    TestBedError,
    TestBedInfo,
    default_home,
)

__all__ = ["TestBed", "TestBedInfo", "TestBedError", "KEYSTONE_REGIONS", "USERS",
           "PACKAGES", "default_home"]
