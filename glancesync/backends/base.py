"""What a region backend provides: a target, an adapter per region, its options.

The synchronisation engine, the reports and the facade talk only to
:class:`RegionAdapter` (one region's image service) and :class:`Target` (a
set of regions reached with one credential). A backend is described by a
:class:`Backend`: its ``type`` name, the options its target sections take,
how they become its settings, and how a target is made from them; it is
registered in :mod:`glancesync.backends`. Adapters translate their
backend's errors into :mod:`glancesync.errors`.

This module imports nothing of the engine, the configuration loader or the
facade: backends sit under them.
"""
from __future__ import annotations

import abc
import dataclasses
import datetime
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol

from glancesync.errors import UsageError
from glancesync.image import Image
from glancesync.integrity import CHUNK_SIZE
from glancesync.options import Option, Section
from glancesync.regions import RegionRef

__all__ = ["CHUNK_SIZE", "Backend", "ImportTask", "ProjectName", "RegionAdapter", "Settings",
           "Target", "TargetSpec"]


@dataclasses.dataclass(frozen=True)
class ProjectName:
    """A project as people name it: its name and its domain's name.

    Project ids differ between identity services; the name and the domain
    name are what an image's sharing is mapped by (``sync_members``).
    """

    name: str
    domain: str

    def __str__(self) -> str:
        return f"{self.name} (domain {self.domain})"


class Settings(Protocol):
    """What the core reads from a backend's settings (the backend's own class)."""

    #: A master region the settings name by themselves (the OpenStack
    #: backend: ``OS_REGION_NAME`` when its credentials came from the
    #: ``OS_*`` variables), used when ``[main]`` names none; or None.
    default_region: str | None

    def option_values(self) -> Mapping[str, Any]:
        """The effective value of each of the backend's options, by option name.

        After defaults, aliases, decoding and environment variables: what
        the target really uses. :meth:`Backend.secrets` reads the secret
        ones from it.
        """


class TargetSpec(Protocol):
    """What a backend reads of a target's configuration to make the target."""

    name: str  #: the section's name (``master``, ``other``...)
    settings: Any  #: what the backend's ``settings`` function returned
    list_images_timeout: float  #: seconds a whole listing may take


@dataclasses.dataclass(frozen=True)
class Backend:
    """One kind of region backend, as the configuration's ``type`` names it.

    ``options`` are the options its target sections take besides the
    common ones (:data:`glancesync.options.TARGET_OPTIONS`); ``settings``
    reads them from a :class:`~glancesync.options.Section` (``[DEFAULT]``
    applied) and the environment, and returns the backend's
    :class:`~glancesync.backends.base.Settings`, raising :class:`~glancesync.errors.ConfigError` for
    a mistake; ``make_target`` makes the :class:`Target` of a configured
    target. Which options are secret is said by the options themselves.
    """

    name: str
    options: tuple[Option, ...]
    settings: Callable[[Section, Mapping[str, str]], Settings]
    make_target: Callable[[TargetSpec], "Target"]
    description: str = ""

    @property
    def secret_options(self) -> frozenset[str]:
        """Names of the options whose value is a secret."""
        return frozenset(option.name for option in self.options if option.secret)

    def secrets(self, settings: Settings) -> list[str]:
        """The values of the secret options in ``settings`` (set ones only)."""
        values = settings.option_values()
        return [str(values[name]) for name in sorted(self.secret_options) if values.get(name)]


@dataclasses.dataclass(frozen=True)
class ImportTask:
    """The latest import task of an image, as its region reports it.

    ``status`` is ``pending``, ``processing``, ``success`` or ``failure``;
    ``message`` the region's text (Glance says only "Task failed due to
    Internal Error" on failure: the cause is in the region's log).
    """

    task_id: str
    status: str
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failure"


class RegionAdapter(abc.ABC):
    """One region's image service, seen through one credential.

    ``name`` is the fully qualified region name (``target:Region``);
    ``project_id`` is the project of the credential: images created through
    the adapter are owned by it. Every method raises only
    :class:`~glancesync.errors.GlanceSyncError` subclasses, marked
    ``transient`` when a new attempt may succeed (see :mod:`glancesync.retry`).
    """

    name: str
    project_id: str | None

    @abc.abstractmethod
    def list_images(self) -> list[Image]:
        """Every image the credential can see, all pages, deleted excluded.

        The caller filters by owner.

        :raises ServiceError: the listing took longer than the adapter's
            listing timeout (seconds), or the service failed.
        :raises ConnectionFailure: the service cannot be reached.
        """

    @abc.abstractmethod
    def get_image(self, image_id: str) -> Image:
        """One image.

        :raises ImageNotFoundError: no such image (or not visible).
        """

    @abc.abstractmethod
    def create_image(self, name: str, *, visibility: str = "private",
                     disk_format: str | None = None,
                     container_format: str | None = None,
                     min_ram: int = 0, min_disk: int = 0,
                     protected: bool = False,
                     properties: Mapping[str, str] | None = None,
                     image_id: str | None = None) -> Image:
        """Create an image record without data (status ``queued``); return it.

        ``min_ram`` is in MiB, ``min_disk`` in GiB (Glance's units);
        ``properties`` are user properties (string values); ``image_id`` a
        UUID chosen by the caller, or None for one chosen by the service.

        :raises ConflictError: ``image_id`` exists or existed.
        :raises UsageError: a value the service's image schema refuses.
        """

    @abc.abstractmethod
    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        """Store the image's data from ``chunks``; return the image after.

        ``chunks`` may be a :class:`~glancesync.integrity.FileData` (a local
        file), which an adapter may send without reading it. ``size``
        (bytes), when known, is declared to the service and checked.
        On failure the image may be left ``queued`` (or ``saving``); the
        caller decides whether to delete it.

        :raises ConflictError: the image is not ``queued``.
        :raises TransferError: the data stream broke or does not have ``size`` bytes.
        """

    @abc.abstractmethod
    def download_data(self, image_id: str) -> Iterator[bytes]:
        """The image's data as chunks of at most :data:`~glancesync.integrity.CHUNK_SIZE` bytes.

        The request is made by the call (errors raise here); the data is
        read as the iterator is consumed, unverified: the caller hashes it.

        :raises ImageNotFoundError: no such image.
        :raises ServiceError: the image has no data.
        :raises TransferError: (while iterating) the stream broke.
        """

    @abc.abstractmethod
    def update_image(self, image_id: str, changes: Mapping[str, Any],
                     remove: Iterable[str] = ()) -> Image:
        """Set core fields or properties, remove properties; return the image.

        ``changes`` may hold ``name``, ``visibility``, ``min_ram``,
        ``min_disk``, ``protected``, ``disk_format``, ``container_format``,
        ``os_hidden`` (bool), ``tags`` (a list: the image's tags become
        exactly these) and any user property (string values). ``remove``
        lists properties to delete; one the image lacks is ignored.

        :raises ImageNotFoundError: no such image.
        :raises UsageError: a value the service's image schema refuses.
        """

    @abc.abstractmethod
    def delete_image(self, image_id: str) -> None:
        """Delete the image and its data.

        :raises ImageNotFoundError: no such image.
        :raises ConflictError: the image is protected.
        """

    # Optional abilities: a backend without them refuses them clearly (the
    # engine asks for them only when an image or an option needs them).

    def deactivate_image(self, image_id: str) -> Image:
        """Deactivate the image (its data cannot be downloaded); return it after.

        :raises ImageNotFoundError: no such image.
        :raises ServiceError: the credential may not (Glance's policy decides).
        :raises UsageError: the backend cannot deactivate images.
        """
        raise self._unsupported("deactivate images")

    def reactivate_image(self, image_id: str) -> Image:
        """Make a deactivated image ``active`` again; return it after.

        :raises ImageNotFoundError: no such image.
        :raises UsageError: the backend cannot reactivate images.
        """
        raise self._unsupported("reactivate images")

    def list_members(self, image_id: str) -> list[str]:
        """Ids of the projects the image is shared with (any member status).

        :raises ImageNotFoundError: no such image.
        :raises UsageError: the backend has no image members.
        """
        raise self._unsupported("share images")

    def add_member(self, image_id: str, project_id: str) -> None:
        """Share the image with ``project_id``; the member accepts it or not.

        :raises ConflictError: the project is a member already.
        :raises UsageError: the backend has no image members.
        """
        raise self._unsupported("share images")

    def remove_member(self, image_id: str, project_id: str) -> None:
        """Stop sharing the image with ``project_id``.

        :raises ImageNotFoundError: no such image or member.
        :raises UsageError: the backend has no image members.
        """
        raise self._unsupported("share images")

    def _unsupported(self, what: str) -> UsageError:
        return UsageError(f"the regions of this backend ({type(self).__name__}) cannot"
                          f" {what}", region=self.name)

    # Server-side copies (optional too: a backend without them offers no method).

    def import_methods(self) -> frozenset[str]:
        """The import methods the region offers (Glance: ``GET /v2/info/import``).

        None by default. ``glance-download`` means the region can copy an
        image from another region of its Keystone itself.
        """
        return frozenset()

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        """Ask the region to copy ``source_image_id`` of ``source_region`` into ``image_id``.

        ``image_id`` is a ``queued`` image of this region; ``source_region``
        a region of the same Keystone. Returns once the region has accepted:
        the copy goes on in the region (watch :meth:`get_image` and
        :meth:`import_task`).

        :raises ConflictError: the image is not ``queued`` or has an import under way.
        :raises ServiceError: the region refuses (method not offered, bad request).
        :raises UsageError: the backend cannot copy images server-side.
        """
        raise self._unsupported("copy images server-side")

    def import_task(self, image_id: str) -> ImportTask | None:
        """The latest import task of the image, or None (none, or not reported).

        :raises ImageNotFoundError: no such image.
        """
        return None

    def close(self) -> None:
        """Release connections; the adapter is not used afterwards."""

    def __enter__(self) -> "RegionAdapter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Target(abc.ABC):
    """One target of the configuration (``master``, ``other``, ...)."""

    name: str

    @abc.abstractmethod
    def region_names(self) -> list[str]:
        """Every region of the target that has an image service, catalog order.

        :raises AuthenticationError: the credentials are refused.
        :raises ConnectionFailure: the service holding the list cannot be reached.
        :raises ConfigError: the target's settings cannot be used.
        """

    @abc.abstractmethod
    def adapter(self, region: RegionRef) -> RegionAdapter:
        """The adapter of one region of this target, named ``str(region)``.

        The region was checked to exist when it was resolved
        (:func:`~glancesync.regions.resolve_regions`); it is not checked again.
        """

    def project_name(self, project_id: str) -> ProjectName | None:
        """The name and domain of project ``project_id``; None if there is none.

        :raises ServiceError: the identity service refused or failed the look-up.
        :raises UsageError: the backend has no projects to look up.
        """
        raise UsageError(f"target {self.name}: its backend cannot look up projects")

    def find_project(self, project: ProjectName) -> str | None:
        """The id of the project of this name and domain; None if there is none.

        :raises ServiceError: the identity service refused or failed the look-up.
        :raises UsageError: the backend has no projects to look up.
        """
        raise UsageError(f"target {self.name}: its backend cannot look up projects")

    def clock(self) -> datetime.datetime | None:
        """The time now by the target's servers (UTC), one clock that every host
        running GlanceSync shares; None when the target has none (its regions'
        times are this host's, as for a folder on this host).

        Lifecycle marks and their grace periods are measured on it, so that a
        host whose own clock is wrong cannot shorten them.
        """
        return None

    @property
    def location(self) -> str:
        """Where the target's regions live (a Keystone URL, a folder).

        Two configurations naming the same regions share it, whatever they
        call the target: region locks are keyed by it.
        """
        return self.name

    def close(self) -> None:
        """Release sessions and connections."""
