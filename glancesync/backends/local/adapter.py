"""A local folder region behind the :class:`RegionAdapter` interface.

The region is a :class:`~glancesync.backends.local.store.LocalStore` (SQLite database
plus data folder, SPEC section 9), reached with one project's context, so
every GlanceSync operation works the same against a folder as against
Glance. The folder is created on first use, unless ``create`` is false: then
a folder without a store is an unknown region.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from glancesync.backends.base import RegionAdapter
from glancesync.backends.local.store import DB_NAME, LocalStore, RequestContext
from glancesync.errors import (ConflictError, GlanceSyncError, ImageNotFoundError,
                               RegionNotFoundError, ServiceError, UsageError)
from glancesync.image import (CORE_FIELDS, SIGNATURE_PROPERTIES, UPDATABLE_FIELDS,
                              VISIBILITIES, Image)

__all__ = ["LocalRegionAdapter", "DISK_FORMATS", "CONTAINER_FORMATS"]

#: Formats Glance accepts by default.
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi",
                "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")


def _api_time(value: str | None) -> str | None:
    """Store timestamps (microseconds) in Glance v2's API form ``...T..:..:..Z``."""
    return None if value is None else value[:19] + "Z"


def _check_property(key: Any, value: Any) -> None:
    """Glance refuses core fields and ``os_glance_*`` as properties, and non-strings."""
    if not isinstance(key, str) or not key:
        raise UsageError(f"invalid property name {key!r}")
    if key in CORE_FIELDS or key.startswith("os_glance_"):
        raise UsageError(f"{key!r} is reserved, it cannot be set as a property")
    if not isinstance(value, str):
        raise UsageError(f"property {key!r} must be a string, not {value!r}")


def _check_core(field: str, value: Any) -> None:
    """Light validation of the core fields a caller may set."""
    if field == "visibility" and value not in VISIBILITIES:
        raise UsageError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {value!r}")
    if field == "disk_format" and value is not None and value not in DISK_FORMATS:
        raise UsageError(f"unknown disk_format {value!r}; one of {', '.join(DISK_FORMATS)}")
    if (field == "container_format" and value is not None
            and value not in CONTAINER_FORMATS):
        raise UsageError(f"unknown container_format {value!r};"
                         f" one of {', '.join(CONTAINER_FORMATS)}")
    if field in ("min_ram", "min_disk") and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise UsageError(f"{field} must be an integer >= 0, not {value!r}")
    if field in ("protected", "os_hidden") and not isinstance(value, bool):
        raise UsageError(f"{field} must be a boolean, not {value!r}")
    if field == "tags" and (isinstance(value, str) or not all(
            isinstance(tag, str) and 0 < len(tag) <= 255 for tag in value)):
        raise UsageError(f"tags must be a list of strings of 1 to 255 characters,"
                         f" not {value!r}")
    if field == "name" and value is not None and (not isinstance(value, str) or len(value) > 255):
        raise UsageError(f"name must be a string of at most 255 characters, not {value!r}")


class LocalRegionAdapter(RegionAdapter):
    """One local folder region, seen through ``project_id``.

    ``is_admin`` (the default) sees every project's images, like an admin
    credential on Glance; ``list_timeout`` bounds :meth:`list_images`;
    ``page_size`` is the number of images per listing page; ``create``
    false makes a folder without a store an unknown region instead of a new,
    empty one (a mistyped region name must not make a folder).
    """

    def __init__(self, name: str, path: Path | str, project_id: str, *,
                 is_admin: bool = True, list_timeout: float = 30,
                 page_size: int = 100, create: bool = True) -> None:
        if page_size < 1:
            raise UsageError(f"page_size must be >= 1, not {page_size}")
        self.name = name
        self.path = Path(path)
        self.project_id = project_id
        self.context = RequestContext(project_id, is_admin)
        self.list_timeout = list_timeout
        self.page_size = page_size
        self.create = create
        self._store: LocalStore | None = None  # writable
        self._reader: LocalStore | None = None  # read-only, until a change is made
        self._lock = threading.Lock()

    @property
    def store(self) -> LocalStore:
        """The region's store for reading: opened read-only unless already writable.

        Reading creates nothing: a region read only (the master region, an
        offline mirror on read-only media, a status) is opened read-only.
        """
        with self._lock:
            if self._store is not None:
                return self._store
            if self._reader is None:
                if not (self.path / DB_NAME).is_file():
                    return self._open_writable()  # raises RegionNotFoundError, or creates
                with self._errors():
                    self._reader = LocalStore(self.path, readonly=True)
            return self._reader

    @property
    def writable_store(self) -> LocalStore:
        """The region's store for changes (its folder created on first use)."""
        with self._lock:
            if self._store is None:
                self._open_writable()
            assert self._store is not None
            return self._store

    def _open_writable(self) -> LocalStore:
        if not self.create and not (self.path / DB_NAME).is_file():
            raise RegionNotFoundError(
                f"region {self.name}: {self.path} holds no local region"
                f" (no {DB_NAME});"
                " declare it in its target's regions to create it",
                region=self.name)
        if self.path.is_dir() and not os.access(self.path, os.W_OK):
            raise ServiceError(f"{self.path} is not writable (read-only media?): the"
                               " region can be read, not changed", region=self.name)
        with self._errors():
            self._store = LocalStore(self.path)
        return self._store

    def ensure_exists(self) -> LocalStore:
        """Create the region's folder and database now: an empty region."""
        return self.writable_store

    @contextlib.contextmanager
    def _errors(self, image_id: str | None = None) -> Iterator[None]:
        """Name this region (and the image) in every error raised inside."""
        try:
            yield
        except GlanceSyncError as exc:
            exc.region = exc.region or self.name
            exc.image = exc.image or image_id
            raise

    def _image(self, data: Mapping[str, Any]) -> Image:
        flat = {key: data[key] for key in CORE_FIELDS if key in data}
        flat["created_at"] = _api_time(data["created_at"])
        flat["updated_at"] = _api_time(data["updated_at"])
        flat["tags"] = data.get("tags") or []
        flat["properties"] = data["properties"]
        return Image.from_dict(flat)

    def list_images(self) -> list[Image]:
        """Every visible, non-deleted image, newest first, all pages.

        A region not created yet lists nothing and is not created: reading
        (a status, a dry run) changes nothing on disk.
        """
        if (self._store is None and self._reader is None
                and not (self.path / DB_NAME).is_file()):
            if not self.create:
                return self.store.image_get_all(self.context)  # raises RegionNotFoundError
            return []
        deadline = time.monotonic() + self.list_timeout
        images: list[Image] = []
        marker = None
        with self._errors():
            while True:
                page = self.store.image_get_all(self.context, marker=marker,
                                                limit=self.page_size, return_tag=True)
                images.extend(self._image(data) for data in page)
                if len(page) < self.page_size:
                    return images
                if time.monotonic() > deadline:
                    raise ServiceError(f"listing images took more than {self.list_timeout} s")
                marker = page[-1]["id"]

    def get_image(self, image_id: str) -> Image:
        with self._errors(image_id):
            return self._image(self.store.image_get(self.context, image_id))

    def create_image(self, name: str, *, visibility: str = "private",
                     disk_format: str | None = None,
                     container_format: str | None = None,
                     min_ram: int = 0, min_disk: int = 0,
                     protected: bool = False,
                     properties: Mapping[str, str] | None = None,
                     image_id: str | None = None) -> Image:
        """Create a ``queued`` image owned by the adapter's project.

        ``image_id`` must be a UUID; one that exists or existed (even
        deleted) raises :class:`ConflictError`, as in Glance.
        """
        with self._errors(image_id):
            core = {"name": name, "visibility": visibility, "disk_format": disk_format,
                    "container_format": container_format, "min_ram": min_ram,
                    "min_disk": min_disk, "protected": protected}
            for field, value in core.items():
                _check_core(field, value)
            props = dict(properties or {})
            for key, value in props.items():
                _check_property(key, value)
            if image_id is None:
                image_id = str(uuid.uuid4())
            else:
                try:
                    uuid.UUID(image_id)
                except (ValueError, TypeError, AttributeError) as exc:
                    raise UsageError(f"image id {image_id!r} is not a UUID") from exc
            values = {**core, "id": image_id, "owner": self.project_id, "status": "queued",
                      "properties": props}
            return self._image(self.writable_store.image_create(self.context, values))

    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        """Store the data (hashed while streaming); the image becomes ``active``.

        A ``size`` that does not match the bytes received raises
        :class:`TransferError` and leaves the image ``queued``. Like Glance,
        an image without ``disk_format`` and ``container_format`` takes no
        data: a local master image must be synchronisable to a cloud. An
        image carrying the four signature properties is refused (HTTP 400),
        as Glance refuses one whose certificate its key manager lacks: a
        local region has no key manager.
        """
        with self._errors(image_id):
            image = self.writable_store.image_get(self.context, image_id)
            if not image.get("disk_format") or not image.get("container_format"):
                raise UsageError("disk_format and container_format must be set before "
                                 "the image takes data (Glance refuses it too)")
            if all(image["properties"].get(key) for key in SIGNATURE_PROPERTIES):
                certificate = image["properties"]["img_signature_certificate_uuid"]
                raise ServiceError(
                    "signature verification failed: a local region has no key manager to"
                    f" retrieve certificate {certificate} from (Glance refuses such data"
                    " too when its key manager lacks the certificate)", status_code=400)
            return self._image(self.writable_store.write_data(self.context, image_id, chunks,
                                                     expected_size=size))

    def download_data(self, image_id: str) -> Iterator[bytes]:
        with self._errors(image_id):
            return self.store.read_data(self.context, image_id)

    def update_image(self, image_id: str, changes: Mapping[str, Any],
                     remove: Iterable[str] = ()) -> Image:
        """Set core fields and properties, delete the properties in ``remove``.

        Removing a property the image lacks is not an error (like
        python-glanceclient, which only patches what exists).
        """
        with self._errors(image_id):
            core: dict[str, Any] = {}
            props: dict[str, str] = {}
            tags = None
            for key, value in changes.items():
                if key == "tags":
                    _check_core(key, value)
                    tags = list(value)
                elif key in UPDATABLE_FIELDS:
                    _check_core(key, value)
                    core[key] = value
                else:
                    _check_property(key, value)
                    props[key] = value
            remove = [key for key in remove if key not in props]
            for key in remove:
                if key in CORE_FIELDS:
                    raise UsageError(f"{key!r} is a core field, it cannot be removed")
            store = self.writable_store
            data = store.image_update(self.context, image_id, {**core, "properties": props})
            for key in remove:
                if key in data["properties"]:
                    store.image_property_delete(self.context, key, image_id)
            if tags is not None:
                store.image_tag_set_all(self.context, image_id, tags)
            if remove or tags is not None:
                data = store.image_get(self.context, image_id)
            return self._image(data)

    def deactivate_image(self, image_id: str) -> Image:
        """``active`` to ``deactivated`` (a deactivated image stays so), as in Glance."""
        return self._set_state(image_id, "deactivated", "active")

    def reactivate_image(self, image_id: str) -> Image:
        """``deactivated`` to ``active`` (an active image stays so), as in Glance."""
        return self._set_state(image_id, "active", "deactivated")

    def _set_state(self, image_id: str, wanted: str, source: str) -> Image:
        with self._errors(image_id):
            store = self.writable_store
            data = store.image_get(self.context, image_id)
            if data["status"] == wanted:
                return self._image(data)
            if data["status"] != source:
                raise ConflictError(f"image is {data['status']}: only an {source} image"
                                    f" can become {wanted}", status_code=400)
            return self._image(store.image_update(self.context, image_id, {"status": wanted},
                                                  from_state=source))

    def list_members(self, image_id: str) -> list[str]:
        with self._errors(image_id):
            self.store.image_get(self.context, image_id)
            return [m["member"] for m in self.store.image_member_find(self.context,
                                                                      image_id=image_id)]

    def add_member(self, image_id: str, project_id: str) -> None:
        """Share the image (``pending`` until the member accepts); shared images only."""
        with self._errors(image_id):
            store = self.writable_store
            data = store.image_get(self.context, image_id)
            if data["visibility"] != "shared":
                raise ConflictError(f"only shared images have members (this one is"
                                    f" {data['visibility']})", status_code=403)
            store.image_member_create(self.context, {"image_id": image_id,
                                                     "member": project_id})

    def remove_member(self, image_id: str, project_id: str) -> None:
        with self._errors(image_id):
            store = self.writable_store
            found = store.image_member_find(self.context, image_id=image_id,
                                            member=project_id)
            if not found:
                raise ImageNotFoundError(f"project {project_id} is not a member",
                                         status_code=404)
            store.image_member_delete(self.context, found[0]["id"])

    def delete_image(self, image_id: str) -> None:
        """Soft delete the image and remove its data; protected ones refuse."""
        with self._errors(image_id):
            store = self.writable_store
            data = store.image_get(self.context, image_id)
            if data["protected"]:
                raise ConflictError("image is protected; unprotect it before deleting it",
                                    status_code=403)
            store.image_destroy(self.context, image_id)

    def close(self) -> None:
        with self._lock:
            stores = (self._store, self._reader)
            self._store = self._reader = None
        for store in stores:
            if store is not None:
                store.close()
