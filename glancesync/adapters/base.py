"""The one interface behind which every region backend hides.

The synchronisation engine, the reports and the facade talk only to
:class:`RegionAdapter`. :mod:`glancesync.adapters.glance` implements it on
Glance v2, :mod:`glancesync.adapters.local` on a local folder region.
Adapters translate their backend's errors into :mod:`glancesync.errors`.
"""
from __future__ import annotations

import abc
from typing import Any, Iterable, Iterator, Mapping

from glancesync.image import Image
from glancesync.integrity import CHUNK_SIZE

__all__ = ["CHUNK_SIZE", "RegionAdapter"]


class RegionAdapter(abc.ABC):
    """One region's image service, seen through one credential.

    ``name`` is the fully qualified region name (``target:Region``);
    ``project_id`` is the project of the credential: images created through
    the adapter are owned by it.
    """

    name: str
    project_id: str | None

    @abc.abstractmethod
    def list_images(self) -> list[Image]:
        """Every image the credential can see, all pages, deleted excluded.

        The caller filters by owner. Raises a :class:`ServiceError` if the
        listing takes longer than the adapter's listing timeout.
        """

    @abc.abstractmethod
    def get_image(self, image_id: str) -> Image:
        """One image; :class:`ImageNotFoundError` if absent."""

    @abc.abstractmethod
    def create_image(self, name: str, *, visibility: str = "private",
                     disk_format: str | None = None,
                     container_format: str | None = None,
                     min_ram: int = 0, min_disk: int = 0,
                     protected: bool = False,
                     properties: Mapping[str, str] | None = None,
                     image_id: str | None = None) -> Image:
        """Create an image record without data (status ``queued``)."""

    @abc.abstractmethod
    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        """Store the image's data from ``chunks``; return the image after.

        On failure the image may be left ``queued``; the caller decides
        whether to delete it.
        """

    @abc.abstractmethod
    def download_data(self, image_id: str) -> Iterator[bytes]:
        """The image's data as chunks of at most :data:`CHUNK_SIZE` bytes."""

    @abc.abstractmethod
    def update_image(self, image_id: str, changes: Mapping[str, Any],
                     remove: Iterable[str] = ()) -> Image:
        """Set core fields or properties, remove properties; return the image.

        ``changes`` may hold ``name``, ``visibility``, ``min_ram``,
        ``min_disk``, ``protected``, ``disk_format``, ``container_format``
        and any user property (string values). ``remove`` lists properties
        to delete.
        """

    @abc.abstractmethod
    def delete_image(self, image_id: str) -> None:
        """Delete the image (and its data). Protected images raise ConflictError."""

    def close(self) -> None:
        """Release connections; the adapter is not used afterwards."""

    def __enter__(self) -> "RegionAdapter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
