"""A region backend that lives in the tests: regions in memory (``type = memory``).

It shows what adding a backend takes: one module declaring its options and
its settings, a :class:`~glancesync.backends.base.Target` and a
:class:`~glancesync.backends.base.RegionAdapter`, and one
:func:`glancesync.backends.register` call; nothing of the library changes.
The tests register it for their own duration (the ``memory_backend``
fixture of ``tests/unit/test_memory_backend.py``).

A *space* (option ``space``) is a named set of regions held by
:data:`SPACES`, shared by every target naming it, so that tests can put
images in a region before a run and look at them after. With
``space_import = true`` its regions copy images from each other
(``glance-download``) as Glance does, at once: the data, the formats and
the properties of :data:`COPIED_PREFIXES`; a missing or inactive source
fails the copy's task and leaves the image ``queued``.
"""
from __future__ import annotations

import dataclasses
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from glancesync.backends.base import Backend, ImportTask, RegionAdapter, Target, TargetSpec
from glancesync.errors import (ConflictError, ImageNotFoundError, TransferError,
                               UsageError)
from glancesync.image import UPDATABLE_FIELDS, Image
from glancesync.integrity import CHUNK_SIZE, HashingStream
from glancesync.options import Option, Section
from glancesync.regions import RegionRef

#: The options of a ``type = memory`` target.
OPTIONS = (
    Option("space", "string", "default", help="the in-memory set of regions to use"),
    Option("space_regions", "list", [], help="the regions of the target"),
    Option("space_project", "string", "memory-project", help="the project it acts as"),
    Option("token", "string", secret=True, help="a secret, to be masked in logs"),
    Option("space_import", "bool", False, help="regions copy images from each other"),
)
_SPACE, _REGIONS, _PROJECT, _TOKEN, _IMPORT = OPTIONS

#: Property prefixes a server-side copy takes from its source (Glance's default).
COPIED_PREFIXES = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")


@dataclasses.dataclass
class _Stored:
    image: Image
    data: bytes = b""
    tasks: list[ImportTask] = dataclasses.field(default_factory=list)


#: space name -> region name -> image id -> stored image.
SPACES: dict[str, dict[str, dict[str, _Stored]]] = {}
_LOCK = threading.Lock()


@dataclasses.dataclass
class MemorySettings:
    """What a memory target needs; the token is not shown by repr()."""

    space: str
    regions: list[str]
    project: str
    token: str | None = dataclasses.field(default=None, repr=False)
    default_region: str | None = None
    imports: bool = False

    def option_values(self) -> Mapping[str, Any]:
        return {"space": self.space, "space_regions": self.regions,
                "space_project": self.project, "token": self.token,
                "space_import": self.imports}


def read_settings(section: Section, env: Mapping[str, str]) -> MemorySettings:
    regions = section.read(_REGIONS)
    if not regions:
        raise section.error("space_regions", "missing: a memory target needs its regions")
    return MemorySettings(space=section.read(_SPACE), regions=regions,
                          project=section.read(_PROJECT), token=section.read(_TOKEN),
                          imports=section.read(_IMPORT))


class MemoryRegionAdapter(RegionAdapter):
    """One in-memory region, seen through ``project_id`` (which sees everything)."""

    def __init__(self, name: str, images: dict[str, _Stored], project_id: str, *,
                 space: str | None = None, imports: bool = False) -> None:
        self.name = name
        self.project_id = project_id
        self._images = images
        self.space = space
        self.imports = imports

    def _stored(self, image_id: str) -> _Stored:
        try:
            return self._images[image_id]
        except KeyError:
            raise ImageNotFoundError("no such image", region=self.name, image=image_id,
                                     status_code=404) from None

    def list_images(self) -> list[Image]:
        with _LOCK:
            return [_public(s.image) for s in self._images.values()]

    def get_image(self, image_id: str) -> Image:
        with _LOCK:
            return _public(self._stored(image_id).image)

    def create_image(self, name: str, *, visibility: str = "private",
                     disk_format: str | None = None, container_format: str | None = None,
                     min_ram: int = 0, min_disk: int = 0, protected: bool = False,
                     properties: Mapping[str, str] | None = None,
                     image_id: str | None = None) -> Image:
        image_id = image_id or str(uuid.uuid4())
        with _LOCK:
            if image_id in self._images:
                raise ConflictError("the id is used", region=self.name, image=image_id,
                                    status_code=409)
            self._images[image_id] = _Stored(Image(
                id=image_id, name=name, status="queued", owner=self.project_id,
                visibility=visibility, disk_format=disk_format,
                container_format=container_format, min_ram=min_ram, min_disk=min_disk,
                protected=protected, properties=dict(properties or {})))
        return self.get_image(image_id)

    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        with _LOCK:
            if self._stored(image_id).image.status != "queued":
                raise ConflictError("the image is not queued", region=self.name,
                                    image=image_id, status_code=409)
        stream = HashingStream(chunks, "sha512")
        data = b"".join(stream)
        if size is not None and len(data) != size:
            raise TransferError(f"received {len(data)} bytes, not {size}",
                                region=self.name, image=image_id)
        with _LOCK:
            stored = self._stored(image_id)
            stored.data = data
            stored.image = dataclasses.replace(
                stored.image, status="active", size=len(data), checksum=stream.md5,
                os_hash_algo="sha512", os_hash_value=stream.os_hash)
        return self.get_image(image_id)

    def download_data(self, image_id: str) -> Iterator[bytes]:
        with _LOCK:
            stored = self._stored(image_id)
            if stored.image.status != "active":
                raise ConflictError("the image has no data", region=self.name,
                                    image=image_id, status_code=409)
            data = stored.data
        return iter([data[i:i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)])

    def update_image(self, image_id: str, changes: Mapping[str, Any],
                     remove: Iterable[str] = ()) -> Image:
        with _LOCK:
            stored = self._stored(image_id)
            fields = {k: v for k, v in changes.items() if k in UPDATABLE_FIELDS}
            properties = dict(stored.image.properties)
            for key, value in changes.items():
                if key not in UPDATABLE_FIELDS:
                    if not isinstance(value, str):
                        raise UsageError(f"property {key!r} must be a string")
                    properties[key] = value
            for key in remove:
                properties.pop(key, None)
            stored.image = dataclasses.replace(stored.image, properties=properties, **fields)
        return self.get_image(image_id)

    def delete_image(self, image_id: str) -> None:
        with _LOCK:
            if self._stored(image_id).image.protected:
                raise ConflictError("the image is protected", region=self.name,
                                    image=image_id, status_code=403)
            del self._images[image_id]

    # -- server-side copies, as Glance's glance-download -----------------------

    def import_methods(self) -> frozenset[str]:
        return frozenset({"glance-direct", "glance-download"} if self.imports else ())

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        if not self.imports:
            super().import_image(image_id, source_region=source_region,
                                 source_image_id=source_image_id)
        with _LOCK:
            stored = self._stored(image_id)
            if stored.image.status != "queued":
                raise ConflictError("Image needs to be in 'queued' state", region=self.name,
                                    image=image_id, status_code=409)
            task = ImportTask(f"task-{len(stored.tasks) + 1}", "processing")
            stored.tasks.append(task)
            source = SPACES.get(self.space or "", {}).get(source_region, {}).get(
                source_image_id)
            if source is None or source.image.status != "active":
                stored.tasks[-1] = dataclasses.replace(
                    task, status="failure", message="Task failed due to Internal Error")
                return
            copied = {k: v for k, v in source.image.properties.items()
                      if k.startswith(COPIED_PREFIXES)}
            stored.data = source.data
            stored.image = dataclasses.replace(
                stored.image, status="active", size=source.image.size,
                checksum=source.image.checksum, os_hash_algo=source.image.os_hash_algo,
                os_hash_value=source.image.os_hash_value,
                disk_format=source.image.disk_format,
                container_format=source.image.container_format,
                properties={**stored.image.properties, **copied})
            stored.tasks[-1] = dataclasses.replace(task, status="success", message="Copied")

    def import_task(self, image_id: str) -> ImportTask | None:
        with _LOCK:
            tasks = self._stored(image_id).tasks
            return tasks[-1] if tasks else None


def _public(stored: Image) -> Image:
    """A copy of a stored image as every adapter returns it: GlanceSync's records
    (``glancesync.*``) in ``provenance`` and ``marks``, not among the properties."""
    return Image.from_dict(stored.to_dict())


class MemoryTarget(Target):
    """The declared regions of one space."""

    def __init__(self, spec: TargetSpec) -> None:
        self.name = spec.name
        self.settings: MemorySettings = spec.settings

    @property
    def location(self) -> str:
        return f"memory:{self.settings.space}"

    def region_names(self) -> list[str]:
        return list(self.settings.regions)

    def adapter(self, region: RegionRef) -> RegionAdapter:
        with _LOCK:
            images = SPACES.setdefault(self.settings.space, {}).setdefault(region.name, {})
        return MemoryRegionAdapter(str(region), images, self.settings.project,
                                   space=self.settings.space, imports=self.settings.imports)


def config_text(folder: Path, extra: str = "", *, token: str = "t0p-s3cret-t0ken") -> str:
    """A configuration whose ``master`` is the memory space ``cloud1`` (Master, RegionA,
    RegionB); ``extra`` continues the ``[master]`` section, or adds sections."""
    return textwrap.dedent(f"""
        [main]
        master_region = Master
        cache_dir = {folder / 'cache'}
        [master]
        type = memory
        space = cloud1
        space_regions = Master, RegionA, RegionB
        token = {token}
    """) + textwrap.dedent(extra)


BACKEND = Backend(name="memory", options=OPTIONS, settings=read_settings,
                  make_target=MemoryTarget, description="regions in memory (tests only)")
