"""Retry transient failures with exponential backoff (tenacity).

Links fail: a connection is reset, a Glance worker restarts and answers 503.
Such errors are worth a few more attempts; a refused credential, a missing
image or a conflict (409, e.g. "image not in queued state") is not, and is
raised at once. The caller passes a function that redoes the whole step:
an upload retry must restart its data stream from the beginning.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, TypeVar

import tenacity

from glancesync.errors import ConnectionFailure, ServiceError

__all__ = ["RetryPolicy", "is_transient", "retrying"]

LOG = logging.getLogger(__name__)

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """True for failures that may go away by themselves.

    Connection failures (refused, reset, timeout) and server errors 500-599
    except 501 (Not Implemented never changes). Everything else, including
    409 conflicts, is permanent.
    """
    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, ServiceError) and exc.status_code is not None:
        return 500 <= exc.status_code <= 599 and exc.status_code != 501
    return False


def retrying(fn: Callable[[], T], *, attempts: int = 4, what: str = "operation",
             initial_wait: float = 1.0, max_wait: float = 30.0,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``fn()`` until it succeeds, at most ``attempts`` times.

    Only :func:`is_transient` errors are retried, after waits of
    ``initial_wait`` doubled each time (capped at ``max_wait``); each retry
    is logged as a warning naming ``what``. The last error (or any
    permanent one) is raised unchanged.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")

    def log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        LOG.warning("%s failed (attempt %d of %d): %s; retrying in %.1f s",
                    what, state.attempt_number, attempts, exc, delay)

    controller = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=initial_wait, max=max_wait),
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=log_retry,
        sleep=sleep,
        reraise=True,
    )
    return controller(fn)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried.

    ``retries`` is the number of attempts after the first one (0: never
    retry); the first wait is ``initial_wait`` seconds, doubled after each
    failure up to ``max_wait``. ``sleep`` is injectable so tests stay fast.
    """

    retries: int = 3
    initial_wait: float = 1.0
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")

    @property
    def attempts(self) -> int:
        """Attempts in all, the first one included."""
        return self.retries + 1

    def wait(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure."""
        return min(self.max_wait, self.initial_wait * 2 ** (failures - 1))

    def call(self, fn: Callable[[], T], what: str) -> T:
        """:func:`retrying` with this policy."""
        return retrying(fn, attempts=self.attempts, what=what,
                        initial_wait=self.initial_wait, max_wait=self.max_wait,
                        sleep=self.sleep)
