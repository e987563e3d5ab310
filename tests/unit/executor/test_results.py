"""glancesync.executor.results: the region's summary line, success, refusals (issue 27).

The summary is what an operator reads of each region at the end of a run:
its words and numbers are pinned whole.
"""
from __future__ import annotations

import pytest

from glancesync.errors import (ChecksumMismatchError, ConflictError, GlanceSyncError,
                               ServiceError, TransferError, UsageError)
from glancesync.executor.results import MIB, REFUSALS, RegionResult, is_refusal


def test_mib_is_a_mebibyte():
    assert MIB == 1048576


def test_the_summary_of_a_quiet_sync():
    assert RegionResult("t:R").summary() == (
        "t:R: sync done: 0 ok, 0 updated, 0 uploaded (0 replaced, 0 renamed), 0 obsoleted,"
        " 0 cleaned, 0 errors, 0 need an operator, 0.0 MiB transferred")


def test_the_summary_names_every_count():
    result = RegionResult("t:R", ok=1, updated=2, uploaded=3, replaced=4, renamed=5,
                          obsoleted=6, cleaned=7, uncleaned=8, errors=9, needs_operator=10,
                          bytes_uploaded=3 * MIB // 2, copied_server_side=11)
    assert result.summary() == (
        "t:R: sync done: 1 ok, 2 updated, 3 uploaded (4 replaced, 5 renamed, 11 copied"
        " server-side), 6 obsoleted, 7 cleaned (8 could not be), 9 errors, 10 need an"
        " operator, 1.5 MiB transferred")


def test_the_summary_of_a_dry_run_says_what_it_would_transfer():
    assert RegionResult("t:R", dry_run=True, bytes_uploaded=MIB).summary() == (
        "t:R: dry run done: 0 ok, 0 updated, 0 uploaded (0 replaced, 0 renamed), 0 obsoleted,"
        " 0 cleaned, 0 errors, 0 need an operator, 1.0 MiB to transfer")


def test_the_summary_of_a_stopped_run_says_so_twice():
    assert RegionResult("t:R", not_done=2).summary() == (
        "t:R: sync STOPPED: 0 ok, 0 updated, 0 uploaded (0 replaced, 0 renamed), 0 obsoleted,"
        " 0 cleaned, 0 errors, 0 need an operator, 0.0 MiB transferred;"
        " 2 operation(s) not done (stopped)")


@pytest.mark.parametrize("counts, text", [
    ({"retired": 1}, "; lifecycle: 1 retired, 0 deleted"),
    ({"deleted": 2}, "; lifecycle: 0 retired, 2 deleted"),
    ({"postponed": 3}, "; lifecycle: 0 retired, 0 deleted, 3 postponed"),
    ({"retired": 1, "deleted": 2, "postponed": 3},
     "; lifecycle: 1 retired, 2 deleted, 3 postponed"),
])
def test_the_lifecycle_part_of_the_summary(counts, text):
    summary = RegionResult("t:R", **counts).summary()
    assert summary.endswith("0.0 MiB transferred" + text)


@pytest.mark.parametrize("counts, success", [({}, True), ({"errors": 1}, False),
                                             ({"not_done": 1}, False),
                                             ({"needs_operator": 1}, True)])
def test_success_is_no_error_and_not_stopped(counts, success):
    assert RegionResult("t:R", **counts).success is success


def test_refusals_are_the_statuses_every_run_meets_again():
    assert REFUSALS == {400, 403, 413, 415}
    for code in (400, 403, 413, 415):
        assert is_refusal(GlanceSyncError("no", status_code=code))
    for code in (None, 401, 404, 409, 500, 503):
        assert not is_refusal(GlanceSyncError("no", status_code=code))
    assert is_refusal(UsageError("the schema refuses it"))
    assert not is_refusal(ServiceError("no", status_code=403, transient=True))
    assert not is_refusal(TransferError("broken", status_code=400))
    assert not is_refusal(ChecksumMismatchError("corrupt", status_code=400))
    assert not is_refusal(ConflictError("busy", status_code=409))
