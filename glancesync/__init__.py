"""GlanceSync: keep Glance images synchronised from a master region."""
import logging

from glancesync.errors import ExitStatus, GlanceSyncError

__all__ = ["GlanceSync", "GlanceSyncError", "ExitStatus"]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str):
    # The facade imports every layer; load it only when asked for.
    if name == "GlanceSync":
        from glancesync.facade import GlanceSync
        return GlanceSync
    raise AttributeError(name)
