"""Bandwidth caps of uploads: per run and per region (issue 25)."""
from __future__ import annotations

import io
import time

import pytest

from glancesync.bandwidth import Bandwidth, throttled
from glancesync.demo import build_federation
from glancesync.errors import ConfigError
from glancesync.facade import GlanceSync

MIB = 1024 * 1024


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_chunks_leave_at_the_rate():
    fake = FakeTime()
    cap = Bandwidth(MIB, clock=fake.clock, sleep=fake.sleep)
    sent = list(throttled([b"x" * (MIB // 4)] * 8, [cap]))  # 2 MiB at 1 MiB/s
    assert len(sent) == 8
    # The first chunk leaves at once, each next one a quarter of a second later.
    assert fake.now - 100.0 == pytest.approx(1.75)
    assert all(s == pytest.approx(0.25) for s in fake.slept)


def test_a_cap_is_shared_by_its_takers():
    fake = FakeTime()
    cap = Bandwidth(1000, clock=fake.clock, sleep=fake.sleep)
    for _ in range(10):  # two regions' uploads taking turns on one run's cap
        cap.take(100)
        cap.take(100)
    assert fake.now - 100.0 == pytest.approx(1.9)


def test_an_idle_cap_gives_no_credit_beyond_one_chunk():
    fake = FakeTime()
    cap = Bandwidth(1000, clock=fake.clock, sleep=fake.sleep)
    cap.take(1000)
    fake.now += 60  # a minute with nothing to send
    cap.take(1000)
    cap.take(1000)
    assert fake.slept == [pytest.approx(1.0)]


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError):
        Bandwidth(0)


@pytest.fixture
def config(tmp_path):
    return build_federation(tmp_path / "demo")


@pytest.mark.parametrize("where, line", [
    ("[main]\n", "bandwidth_limit = fast\n"),
    ("[main]\n", "bandwidth_limit = -1M\n"),
    ("[DEFAULT]\n", "region_bandwidth_limit = 1 MiB/s\n")])
def test_a_cap_that_is_no_size_is_a_configuration_error(config, where, line):
    text = config.read_text()
    if where not in text:
        text = where + text
    text = text.replace(where, where + line, 1)
    with pytest.raises(ConfigError) as raised:
        GlanceSync(io.StringIO(text))
    assert line.split(" =")[0] in str(raised.value)


@pytest.mark.parametrize("option", ["[main]\nbandwidth_limit = 2M",
                                    "[master:RegionA]\nregion_bandwidth_limit = 2M"])
def test_a_capped_sync_takes_at_least_its_bytes_over_the_rate(config, option):
    text = config.read_text()
    section, line = option.split("\n")
    text = text.replace(f"{section}\n", f"{section}\n{line}\n", 1) if section in text \
        else f"{text}\n{option}\n"
    with GlanceSync(io.StringIO(text), progress=False) as gs:
        began = time.monotonic()
        result = gs.sync(["RegionA"])
        seconds = time.monotonic() - began
    sent = sum(o.bytes for o in result.results["master:RegionA"].outcomes)
    assert sent > 4 * MIB
    # Paced: every chunk but the first waits for its predecessors at 2 MiB/s.
    assert seconds >= (sent - MIB) / (2 * MIB)
