"""Real local regions for the tests of the executor's parts (nothing of ours patched)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.image import Image

PROJECT = "p-region"


class Recording(LocalRegionAdapter):
    """A local region that records the calls that change it, in order."""

    def __init__(self, name: str, path: Path, project_id: str = PROJECT) -> None:
        super().__init__(name, path, project_id)
        self.changes: list[tuple[str, Any]] = []

    def create_image(self, name: str, **kwargs: Any) -> Image:
        self.changes.append(("create", name))
        return super().create_image(name, **kwargs)

    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        self.changes.append(("upload", image_id))
        return super().upload_data(image_id, chunks, size)

    def update_image(self, image_id: str, changes: Mapping[str, Any],
                     remove: Iterable[str] = ()) -> Image:
        self.changes.append(("update", dict(changes)))
        return super().update_image(image_id, changes, remove)

    def delete_image(self, image_id: str) -> None:
        self.changes.append(("delete", image_id))
        super().delete_image(image_id)
