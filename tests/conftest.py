"""Shared pytest set-up: the ``integration`` marker and the ``testbed`` fixture.

The fixture boots the loopback OpenStack test bed once per session (or
attaches to a running one named by ``GLANCESYNC_TESTBED_DIR``, which it then
never stops). If the bed cannot start the tests error out: they never skip.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from glancesync.testbed import TestBed

_TESTS = Path(__file__).resolve().parent
_INTEGRATION = _TESTS / "integration"
_ROOT = _TESTS.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as ``integration``."""
    for item in items:
        if _INTEGRATION in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def _report(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():  # fixtures run under capture
        reporter.write_line(line)


def _raise_interrupt(signum: int, frame: object) -> None:
    # pytest turns KeyboardInterrupt into an orderly session end, which runs
    # the fixture finalizers, so SIGTERM stops the bed like Ctrl-C does.
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo federation (:mod:`glancesync.demo`), built once: copy it, never change it."""
    from glancesync import demo
    folder = tmp_path_factory.mktemp("demo")
    demo.build_federation(folder)
    return folder


@pytest.fixture(scope="session")
def testbed(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestBed]:
    """A running test bed (``.info`` has its URLs, regions and clouds)."""
    attach_dir = os.environ.get("GLANCESYNC_TESTBED_DIR")
    if attach_dir:
        candidate = TestBed(attach_dir)
        if candidate.is_running():
            _report(request.config, f"test bed: using the running bed in {candidate.run_dir}")
            yield TestBed.load(attach_dir)
            return
        _report(request.config, f"test bed: nothing runs in {attach_dir}; starting one")

    home = os.environ.get("GLANCESYNC_TESTBED_HOME") or _ROOT / ".testbed"
    bed = TestBed(tmp_path_factory.mktemp("testbed"), home=home)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if bed.install():
            _report(request.config, f"test bed: installed into {bed.venv}")
        info = bed.start()
        _report(request.config,
                f"test bed: up in {info.boot_seconds:.1f} s, run dir {info.run_dir}")
        yield bed
    finally:
        bed.stop()
        signal.signal(signal.SIGTERM, previous)
