"""Fixtures of the integration tests beside ``testbed``: RabbitMQ and etcd on demand.

The ``testbed`` fixture (tests/conftest.py) boots Keystone and Glance only,
so the suite pays for RabbitMQ (about 20 s of boot on two busy cores) and
etcd only when a test asks for them: the first test that names
``rabbitmq`` (or ``etcd``) starts it in the session's bed, later tests find
it running. A test that stops one of them (a bus or a coordination service
going down) starts it again before it ends; if it could not, the next
test's fixture does.
"""
from __future__ import annotations

import time

import pytest

from glancesync.testbed import TestBed, TestBedInfo


def _report(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture
def rabbitmq(request: pytest.FixtureRequest, testbed: TestBed) -> TestBedInfo:
    """The session's bed with its RabbitMQ running.

    ``.transport_url``, ``.notification_exchange`` (``glance``) and
    ``.notification_topic`` (``notifications``) say where the
    ``notifying_region``'s Glance publishes.
    """
    if not testbed.rabbitmq_running():
        began = time.monotonic()
        testbed.start_rabbitmq()
        _report(request.config,
                f"test bed: RabbitMQ up in {time.monotonic() - began:.1f} s")
    return testbed.info


@pytest.fixture
def etcd(request: pytest.FixtureRequest, testbed: TestBed) -> TestBedInfo:
    """The session's bed with its etcd running (``.coordination_url`` for tooz)."""
    if not testbed.etcd_running():
        began = time.monotonic()
        testbed.start_etcd()
        _report(request.config, f"test bed: etcd up in {time.monotonic() - began:.1f} s")
    return testbed.info
