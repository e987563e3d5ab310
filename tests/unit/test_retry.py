"""The retry policy: what is transient, how often, how long between."""
from __future__ import annotations

import logging

import pytest

from glancesync.errors import (AuthenticationError, ConflictError, ConnectionFailure,
                               ImageNotFoundError, ServiceError)
from glancesync.retry import is_transient, retrying


class Flaky:
    """Fails with the given errors in turn, then returns ``result``."""

    def __init__(self, errors, result="done"):
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


@pytest.mark.parametrize("exc, transient", [
    (ConnectionFailure("reset"), True),
    (ServiceError("unavailable", status_code=503), True),
    (ServiceError("internal", status_code=500), True),
    (ServiceError("gateway timeout", status_code=504), True),
    (ServiceError("not implemented", status_code=501), False),
    (ConflictError("image not in queued state", status_code=409), False),
    (ImageNotFoundError("gone", status_code=404), False),
    (ServiceError("no status"), False),
    (AuthenticationError("bad password"), False),
    (ValueError("bug"), False),
])
def test_is_transient(exc, transient):
    assert is_transient(exc) is transient


def test_transient_errors_are_retried_with_exponential_backoff(caplog):
    delays = []
    fn = Flaky([ConnectionFailure("reset"), ServiceError("busy", status_code=503),
                ConnectionFailure("reset")])
    with caplog.at_level(logging.WARNING, logger="glancesync.retry"):
        assert retrying(fn, attempts=4, what="upload of cirros", initial_wait=1,
                        sleep=delays.append) == "done"
    assert fn.calls == 4
    assert delays == [1, 2, 4]
    assert caplog.text.count("upload of cirros failed") == 3
    assert "attempt 1 of 4" in caplog.text


def test_waits_are_capped():
    delays = []
    fn = Flaky([ConnectionFailure("x")] * 5)
    retrying(fn, attempts=6, initial_wait=2, max_wait=5, sleep=delays.append)
    assert delays == [2, 4, 5, 5, 5]


def test_gives_up_after_attempts_and_raises_the_last_error():
    last = ServiceError("still down", status_code=503)
    fn = Flaky([ConnectionFailure("a"), ConnectionFailure("b"), last, ConnectionFailure("d")])
    with pytest.raises(ServiceError) as info:
        retrying(fn, attempts=3, sleep=lambda _: None)
    assert info.value is last
    assert fn.calls == 3


def test_permanent_errors_are_raised_at_once():
    conflict = ConflictError("image not in queued state", status_code=409)
    fn = Flaky([conflict])
    delays = []
    with pytest.raises(ConflictError) as info:
        retrying(fn, sleep=delays.append)
    assert info.value is conflict
    assert fn.calls == 1 and delays == []


def test_success_first_time_does_not_wait():
    delays = []
    assert retrying(Flaky([], result=42), sleep=delays.append) == 42
    assert delays == []


def test_attempts_must_be_positive():
    with pytest.raises(ValueError):
        retrying(Flaky([]), attempts=0)
