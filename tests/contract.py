"""What our fakes of Glance assume of it, checked on any adapter (issue 27).

The unit tests inject faults through subclasses of the local adapter
(tests/unit/test_executor_faults.py) and an in-memory backend
(tests/memory_backend.py): what those fakes do after a fault is our model
of Glance. Each check here pins one such assumption on a real adapter; the
unit suite runs them on the local and in-memory regions
(tests/unit/test_contract.py), the integration suite on the test bed's
Glance (tests/integration/test_contract_testbed.py), so that the model and
Glance cannot drift apart unnoticed. The table of faults and where each is
shown on the bed is in docs/testing.rst.
"""
from __future__ import annotations

import time
import uuid
from typing import Callable, Iterator

import pytest

from glancesync.backends.base import RegionAdapter
from glancesync.errors import (ConflictError, ConnectionFailure, GlanceSyncError,
                               ImageNotFoundError)

DATA = b"contract" * 512

#: Seconds an image may stay ``saving`` after a broken upload (a hang guard: a
#: loaded machine is slow; the executor itself waits SETTLE_TIME, then starts anew).
SETTLE_BOUND = 120

#: A check: (an adapter, a unique name prefix) -> None; raises AssertionError.
Check = Callable[[RegionAdapter, str], None]


def _new(adapter: RegionAdapter, prefix: str, name: str, **kwargs) -> str:
    return adapter.create_image(prefix + name, disk_format="raw", container_format="bare",
                                **kwargs).id


def _broken() -> Iterator[bytes]:
    yield DATA[:1024]
    raise ConnectionFailure("connection reset by peer (contract test)")


def interrupted_upload_leaves_the_image_queued(adapter: RegionAdapter, prefix: str) -> None:
    """A connection broken mid-upload: the image is ``queued`` again and takes a new
    upload (the fault "reset" of the Faulty adapter; the executor's retry into the
    same image).

    Glance, unlike the fakes, may refuse the new upload for a moment (409 "status
    transition from saving to saving", seen on the bed for about half a second)
    while its worker finishes the broken request: the executor takes a 409 on a
    new attempt for a stuck image and uploads into a new one. This check waits
    for the new upload to be accepted, with a generous bound.
    """
    image_id = _new(adapter, prefix, "reset")
    with pytest.raises(GlanceSyncError):
        adapter.upload_data(image_id, _broken(), size=len(DATA))
    deadline = time.monotonic() + SETTLE_BOUND
    while True:
        assert adapter.get_image(image_id).status in ("queued", "saving")
        try:
            filled = adapter.upload_data(image_id, iter([DATA]), size=len(DATA))
            break
        except ConflictError:
            assert time.monotonic() < deadline, "the image never took a new upload"
            time.sleep(0.2)
    assert filled.status == "active" and filled.size == len(DATA)


def a_used_id_cannot_be_created_again(adapter: RegionAdapter, prefix: str) -> None:
    """Creating an image under an id that exists is a conflict (the fault "lost" of
    create: the executor creates again under the id it chose, and a conflict means the
    first creation was done)."""
    image_id = str(uuid.uuid4())
    _new(adapter, prefix, "same-id", image_id=image_id)
    with pytest.raises(ConflictError):
        _new(adapter, prefix, "same-id", image_id=image_id)
    assert [image.id for image in adapter.list_images()].count(image_id) == 1


def a_deleted_image_is_not_found(adapter: RegionAdapter, prefix: str) -> None:
    """Deleting twice: the second is "not found" (the fault "lost" of delete, counted
    as done), and so is reading it."""
    image_id = _new(adapter, prefix, "twice")
    adapter.delete_image(image_id)
    with pytest.raises(ImageNotFoundError):
        adapter.delete_image(image_id)
    with pytest.raises(ImageNotFoundError):
        adapter.get_image(image_id)


def a_protected_image_is_not_deleted(adapter: RegionAdapter, prefix: str) -> None:
    """Deleting a protected image is refused and the image stays (the fault "403" of
    delete: a protected leftover is a warning, tried again next run)."""
    image_id = _new(adapter, prefix, "protected", protected=True)
    try:
        with pytest.raises(GlanceSyncError):
            adapter.delete_image(image_id)
        assert adapter.get_image(image_id).protected is True
    finally:
        adapter.update_image(image_id, {"protected": False})
        adapter.delete_image(image_id)


def an_active_image_takes_no_upload(adapter: RegionAdapter, prefix: str) -> None:
    """An upload into an image that has data is a conflict: nothing is overwritten."""
    image_id = _new(adapter, prefix, "active")
    adapter.upload_data(image_id, iter([DATA]), size=len(DATA))
    with pytest.raises(ConflictError):
        adapter.upload_data(image_id, iter([b"other"]), size=5)
    assert adapter.get_image(image_id).size == len(DATA)


def a_wrong_size_is_refused_and_the_image_queued(adapter: RegionAdapter, prefix: str) -> None:
    """Fewer bytes than declared: refused, the image ``queued`` again (a truncated
    stream is never made ``active``)."""
    image_id = _new(adapter, prefix, "short")
    with pytest.raises(GlanceSyncError):
        adapter.upload_data(image_id, iter([DATA[:-1]]), size=len(DATA))
    assert adapter.get_image(image_id).status == "queued"


#: Every check, by name.
CHECKS: dict[str, Check] = {check.__name__: check for check in (
    interrupted_upload_leaves_the_image_queued, a_used_id_cannot_be_created_again,
    a_deleted_image_is_not_found, a_protected_image_is_not_deleted,
    an_active_image_takes_no_upload, a_wrong_size_is_refused_and_the_image_queued)}


def clean(adapter: RegionAdapter, prefix: str) -> None:
    """Delete what the checks left under ``prefix``."""
    for image in adapter.list_images():
        if (image.name or "").startswith(prefix):
            if image.protected:
                adapter.update_image(image.id, {"protected": False})
            adapter.delete_image(image.id)
