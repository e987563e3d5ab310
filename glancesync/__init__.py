"""GlanceSync: keep Glance images synchronised from a master region.

The public API, declared once: the facade :class:`GlanceSync`, what its
methods return, the image model, region references and every error class
with the exit statuses they map to. Everything else is reachable from its
module, without promise. Names are loaded on first use, so that importing
the package stays cheap.
"""
import importlib
import logging

from glancesync.errors import (AuthenticationError, ChecksumMismatchError, ConfigError,
                               ConflictError, ConnectionFailure, CoordinationError,
                               EndpointError, ExitStatus, GlanceSyncError, ImageNotFoundError,
                               ImageRefusedError, LockedError, RegionNotFoundError,
                               ServiceError, StoppedError, TLSError,
                               TransferError, UnsafeFileError, UnsafeNameError, UsageError)

#: Public name -> the module defining it (loaded on first use).
_LAZY = {
    "GlanceSync": "glancesync.facade",
    "RunResult": "glancesync.facade",
    "StatusReport": "glancesync.facade",
    "RegionResult": "glancesync.executor",
    "Status": "glancesync.plan",
    "ImageStatus": "glancesync.plan",
    "RegionPlan": "glancesync.plan",
    "Operation": "glancesync.plan",
    "OperationKind": "glancesync.plan",
    "Image": "glancesync.image",
    "RegionRef": "glancesync.regions",
    "StopRequest": "glancesync.stopping",
}

__all__ = [
    *_LAZY,
    "ExitStatus", "GlanceSyncError", "AuthenticationError", "ChecksumMismatchError",
    "ConfigError", "ConflictError", "ConnectionFailure", "EndpointError", "ImageNotFoundError",
    "ImageRefusedError", "LockedError", "CoordinationError", "RegionNotFoundError",
    "ServiceError", "StoppedError", "TLSError",
    "TransferError", "UnsafeFileError", "UnsafeNameError", "UsageError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str):
    # The facade imports every layer; load it only when asked for.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
