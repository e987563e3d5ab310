"""The test bed's one exception (a :class:`~glancesync.errors.GlanceSyncError`)."""
from __future__ import annotations

from glancesync.errors import GlanceSyncError


class TestBedError(GlanceSyncError):
    """The test bed could not be installed, started, reached or stopped."""

    __test__ = False
