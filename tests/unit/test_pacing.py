"""glancesync.pacing: requests spaced to stay under a per-second limit (issue 23 case 4)."""
from __future__ import annotations

import threading

from glancesync.errors import ServiceError
from glancesync.pacing import RatePacer
from glancesync.retry import RetryPolicy


class FakeClock:
    """A monotonic clock that only moves when slept on."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)


def test_requests_are_spaced_evenly_without_burst():
    clock = FakeClock()
    pacer = RatePacer(4.0, clock=clock, sleep=clock.sleep)
    waits = [pacer.wait() for _ in range(4)]
    assert waits == [0.0, 0.25, 0.5, 0.75]
    clock.now += 10  # a quiet while: no credit saved up for a burst
    assert pacer.wait() == 0.0 and pacer.wait() == 0.25


def test_no_limit_never_waits():
    clock = FakeClock()
    pacer = RatePacer(0.0, clock=clock, sleep=clock.sleep)
    assert [pacer.wait() for _ in range(100)] == [0.0] * 100 and clock.slept == []


def test_threads_share_the_pace():
    clock = FakeClock()
    pacer = RatePacer(2.0, clock=clock, sleep=clock.sleep)
    threads = [threading.Thread(target=pacer.wait) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(clock.slept) == [0.5, 1.0, 1.5, 2.0, 2.5]


def test_429_is_transient_and_its_retry_after_is_honoured_within_the_budget():
    policy = RetryPolicy(retries=3, initial_wait=1.0, max_wait=30.0)
    limited = ServiceError("too many requests", status_code=429, retry_after=7)
    assert limited.transient and policy.retriable(limited)
    assert policy.wait(1, limited) == 7
    beyond = ServiceError("too many requests", status_code=429, retry_after=3600)
    assert not policy.retriable(beyond)
    assert not ServiceError("too large", status_code=413).transient


def test_requests_per_second_paces_every_request_of_a_keystone_target():
    """The option of a ``keystone`` target makes the pacer of its session's guard."""
    import io

    from glancesync import backends
    from glancesync.config import load_config
    text = ("[main]\nmaster_region = M\n[master]\nauth_url = http://127.0.0.1:1/v3\n"
            "username = u\npassword = p\nproject_name = p\nrequests_per_second = 2.5\n")
    config = load_config(io.StringIO(text), environ={})
    target = backends.get_backend("keystone").make_target(config.target("master"))
    assert target.pacer.rate == 2.5
    guard = target.session.session.get_adapter("http://127.0.0.1:1/v3")
    assert guard.pacer is target.pacer


def test_a_pace_that_would_hold_a_run_for_ever_is_refused():
    import io

    import pytest

    from glancesync.config import load_config
    from glancesync.errors import ConfigError
    text = ("[main]\nmaster_region = M\n[master]\nauth_url = http://127.0.0.1:1/v3\n"
            "username = u\npassword = p\nproject_name = p\nrequests_per_second = 0.001\n")
    with pytest.raises(ConfigError, match="requests_per_second.*at least"):
        load_config(io.StringIO(text), environ={})
