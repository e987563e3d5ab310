"""The exceptions of GlanceSync and the exit statuses they map to.

Every error the library raises derives from :class:`GlanceSyncError`.
Errors of third-party libraries (glanceclient, keystoneauth1, sqlite3, OS
errors) are translated into these classes at the boundary where they occur,
so callers never need to import those libraries to handle failures.

Whether an error is worth another attempt is decided once, when it is made
(as keystoneauth's ``RetriableConnectionFailure`` does), and carried on it:
:attr:`GlanceSyncError.transient` and :attr:`GlanceSyncError.retry_after`.
:mod:`glancesync.retry` only reads them.
"""
from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Documented exit statuses of the command-line scripts."""

    OK = 0  #: done, or everything already in sync
    REGION_FAILED = 1  #: at least one region failed
    USAGE = 2  #: usage or configuration error
    PENDING = 3  #: (status / dry run) work is pending
    NEEDS_OPERATOR = 4  #: states an operator must resolve (the error_* statuses)
    LOCKED = 5  #: another run holds the lock of a region
    COORDINATION = 6  #: the coordination service (coordination_url) cannot be used
    INTERRUPTED = 130  #: stopped by SIGINT (Ctrl-C) or by a program (128 + SIGINT)
    TERMINATED = 143  #: stopped by SIGTERM (``systemctl stop``; 128 + SIGTERM)


class GlanceSyncError(Exception):
    """Root of every GlanceSync error.

    ``region`` and ``image`` name what the error is about when known;
    ``status_code`` keeps the HTTP status of a failed API call.
    ``transient`` says whether the failure may go away by itself (a new
    attempt may succeed); when not given, the class decides
    (:meth:`default_transient`). ``retry_after`` is the delay in seconds the
    server asked for before a new attempt (``Retry-After``), or None.
    """

    exit_status: ExitStatus = ExitStatus.REGION_FAILED

    def __init__(self, message: str, *, region: str | None = None,
                 image: str | None = None, status_code: int | None = None,
                 transient: bool | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.region = region
        self.image = image
        self.status_code = status_code
        self.transient = self.default_transient(status_code) if transient is None else transient
        self.retry_after = retry_after

    @classmethod
    def default_transient(cls, status_code: int | None) -> bool:
        """Whether an error of this class and HTTP status is transient: no."""
        return False

    def __str__(self) -> str:
        where = []
        if self.region:
            where.append(f"region {self.region}")
        if self.image:
            where.append(f"image {self.image}")
        prefix = f"{', '.join(where)}: " if where else ""
        return prefix + self.message


class ConfigError(GlanceSyncError):
    """The configuration is missing, unreadable or invalid.

    ``path``, ``section`` and ``option`` say where the mistake is.
    """

    exit_status = ExitStatus.USAGE

    def __init__(self, message: str, *, path: str | None = None,
                 section: str | None = None, option: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.section = section
        self.option = option

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(str(self.path))
        if self.section:
            where.append(f"[{self.section}]")
        if self.option:
            where.append(self.option)
        prefix = f"{' '.join(where)}: " if where else ""
        return prefix + self.message


class UsageError(GlanceSyncError):
    """A caller asked for something impossible (bad argument, bad value)."""

    exit_status = ExitStatus.USAGE


class RegionNotFoundError(UsageError):
    """A ``target:region`` name (or a target) does not exist.

    ``region`` holds the name asked for when known; the message names it
    already, so it is not repeated in front of the message.
    """

    def __str__(self) -> str:
        return self.message


class AuthenticationError(GlanceSyncError):
    """Keystone refused the credentials of a target."""

    exit_status = ExitStatus.USAGE


class ConnectionFailure(GlanceSyncError):
    """A service could not be reached (refused, reset, DNS, timeout): transient."""

    @classmethod
    def default_transient(cls, status_code: int | None) -> bool:
        return True


class TLSError(ConnectionFailure):
    """TLS failed (untrusted certificate...): a configuration matter (cacert).

    Not transient: the certificate does not change between attempts.
    """

    exit_status = ExitStatus.USAGE

    @classmethod
    def default_transient(cls, status_code: int | None) -> bool:
        return False


class ServiceError(GlanceSyncError):
    """An API call failed; ``status_code`` holds the HTTP status if any.

    Transient for server errors 500-599 except 501 (Not Implemented never
    changes) and for 429 Too Many Requests (a rate limit: RFC 6585, with the
    ``Retry-After`` to honour); other 4xx answers, including 409 conflicts,
    are permanent.
    """

    @classmethod
    def default_transient(cls, status_code: int | None) -> bool:
        if status_code == 429:
            return True
        return status_code is not None and 500 <= status_code <= 599 and status_code != 501


class SlowAnswerError(ServiceError):
    """An answer did not arrive whole within its request's time (a trickling server).

    Not transient: a new attempt from the start would meet the same server.
    """


class ImageNotFoundError(ServiceError):
    """The image does not exist in the region."""


class EndpointError(ServiceError):
    """A region's endpoint in its catalog does not lead to its service.

    For instance an image endpoint whose URL serves no Image API v2 (a
    wrong port or path prefix): the message names the URL and the catalog.
    """


class ConflictError(ServiceError):
    """The service refused the change because of the image's state (HTTP 409)."""


class UploadRestartError(ServiceError):
    """The region refused this way of sending image data, and its adapter switched
    to another (a direct upload forbidden by the region's policy: the import
    API's ``glance-direct`` next). Send the data again from its first byte,
    into the same image: not a failure of the region. Not transient.
    """


class TransferError(GlanceSyncError):
    """Image data could not be moved."""


class StillSavingError(TransferError):
    """Every byte of an upload was sent, but its image is still ``saving`` after
    ``saving_timeout``: the store may still be writing it, so it is left alone
    (never deleted, never uploaded again in the same run). Not transient."""


class ChecksumMismatchError(TransferError):
    """Data read or written does not hash to the expected value."""


class ImageRefusedError(UsageError):
    """Master image data GlanceSync refuses to hand to ``qemu-img``, for good.

    The inspection before a conversion found that the image names another
    file or device (a backing file, an external data file, a VMDK extent or
    parent), is not of its declared format, fails a safety check of
    ``oslo.utils``' format inspector, or exceeds the conversion's limits
    (``convert_max_virtual_size``, ``convert_timeout``). Every run meets it
    again: the image's status is ``error_refused`` and an operator looks at
    the master image. Not transient.
    """

    exit_status = ExitStatus.NEEDS_OPERATOR


class ProtectedImageError(GlanceSyncError):
    """A change would unprotect or remove a protected regional image: never made.

    GlanceSync never unprotects nor deletes a protected image, whatever
    the conflict rule; the image's status is ``error_protected`` and an
    operator decides. Not transient.
    """

    exit_status = ExitStatus.NEEDS_OPERATOR


class UnsafeFileError(GlanceSyncError):
    """A file or folder GlanceSync reads back cannot be trusted.

    Another user could have written it (its owner, or its or its folder's
    mode), or it is not a regular file (a FIFO, a device, a link), or it
    is larger than it can be. ``path`` names it. Not transient.
    """

    def __init__(self, message: str, *, path: str | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.path = path


class UnsafeNameError(GlanceSyncError):
    """A name from a region, a catalog or a file would make a path outside its folder.

    An image id like ``../../etc/passwd`` in a local region's database, a
    data file that is a link to elsewhere: refused, never acted upon.
    """


class LockedError(GlanceSyncError):
    """Another run holds the lock of the region; ``holder`` names it when known."""

    exit_status = ExitStatus.LOCKED

    def __init__(self, message: str, *, holder: str | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.holder = holder


class CoordinationError(GlanceSyncError):
    """The coordination service of several hosts (``coordination_url``) cannot be used:
    unreachable, timed out, or a lock lost. The region it was about is not changed."""

    exit_status = ExitStatus.COORDINATION


class StoppedError(GlanceSyncError):
    """The run was asked to stop (a signal, or :meth:`~glancesync.GlanceSync.stop`).

    Raised where work is interrupted (between operations, inside a transfer,
    while waiting); what was half made is cleaned up on the way out.
    ``exit_status`` is :attr:`ExitStatus.TERMINATED` for SIGTERM, else
    :attr:`ExitStatus.INTERRUPTED`. Not transient: never retried.
    """

    exit_status = ExitStatus.INTERRUPTED

    def __init__(self, message: str, *, exit_status: ExitStatus = ExitStatus.INTERRUPTED,
                 **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.exit_status = exit_status


class NothingToSyncError(ConfigError):
    """A run that can do nothing: its configuration does not do what was meant.

    The master region shows the master project no image that the selection
    rules synchronise to the regions of the run (credentials of another
    project, a user who cannot see the images, ``metadata_condition`` or
    ``metadata_set`` excluding everything), or the run has no region at
    all. Such a run is not a success: exit status 2.
    """
