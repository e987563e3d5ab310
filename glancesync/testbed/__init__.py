"""A real OpenStack on 127.0.0.1 for tests, benchmarks and users.

Two Keystones (``master`` with regions Master, RegionA, RegionB; ``other``
with RegionC), one glance-api per region, installed into their own
virtualenv; on demand a RabbitMQ (the Master's notifications) and an etcd.
From the shell: ``python -m glancesync.testbed install|start|stop|status|
env|rabbitmq|etcd``. From Python::

    bed = TestBed()
    bed.install()
    info = bed.start()          # TestBedInfo: URLs, regions, clouds
    bed.start_rabbitmq()        # info.transport_url
    bed.start_etcd()            # info.coordination_url
    with bed.region_configured("RegionA", RegionSettings(policy={"upload_image": "!"})):
        ...
    bed.stop()
"""
from glancesync.testbed.bed import (
    KEYSTONE_REGIONS,
    NOTIFYING_REGION,
    PACKAGES,
    USERS,
    TestBed,
    TestBedInfo,
    default_home,
)
from glancesync.testbed.errors import TestBedError
from glancesync.testbed.switches import RegionSettings

__all__ = ["TestBed", "TestBedInfo", "TestBedError", "RegionSettings", "KEYSTONE_REGIONS",
           "NOTIFYING_REGION", "USERS", "PACKAGES", "default_home"]
