"""The one retry layer: transient failures retried with backoff (tenacity).

Links fail: a connection is reset, a Glance worker restarts and answers 503.
Such errors are worth a few more attempts; a refused credential, a missing
image or a conflict (409, e.g. "image not in queued state") is not, and is
raised at once. Whether an error is transient, and how long the server asked
to wait (``Retry-After``), is decided when the error is translated
(:attr:`~glancesync.errors.GlanceSyncError.transient`,
:attr:`~glancesync.errors.GlanceSyncError.retry_after`); this module only
decides how often and how patiently.

* :class:`RetryPolicy`: the policy (attempts, waits), and :meth:`RetryPolicy.call`
  to run any step under it.
* :class:`RetryingAdapter`: wraps any region adapter and retries its
  idempotent calls (as restic's retry backend wraps any backend). The
  facade wraps every adapter it builds, so syncs, reports, backups and
  ``printimages`` all retry the same way.
* :class:`RetryingTarget`: the same for a target's calls (authentication,
  the regions of the catalog, a region's adapter, project look-ups), all of
  which only read: every command retries a refused Keystone as it retries
  a refused Glance.

Uploads are not retried here: their data stream must restart from the
first byte, and what to do with the half-made image depends on its state.
The executor does that, taking its decisions and delays from the same
:class:`RetryPolicy`.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

import tenacity

from glancesync.backends.base import ImportTask, ProjectName, RegionAdapter, Target
from glancesync.errors import ConflictError, GlanceSyncError, ImageNotFoundError
from glancesync.image import Image

__all__ = ["RetryPolicy", "RetryingAdapter", "RetryingTarget"]

LOG = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried.

    ``retries`` is the number of attempts after the first one (0: never
    retry); the first wait is ``initial_wait`` seconds, doubled after each
    failure up to ``max_wait`` seconds. A server's ``Retry-After`` lengthens
    a wait; one longer than ``max_wait`` ends the retries at once (the next
    run tries again). ``sleep`` is injectable so tests stay fast.
    """

    retries: int = 3
    initial_wait: float = 1.0
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")

    @property
    def attempts(self) -> int:
        """Attempts in all, the first one included."""
        return self.retries + 1

    def retriable(self, error: BaseException) -> bool:
        """True when ``error`` is worth another attempt (attempts left aside).

        Only :class:`~glancesync.errors.GlanceSyncError` marked ``transient``
        whose ``retry_after`` (if any) is at most ``max_wait``.
        """
        if not isinstance(error, GlanceSyncError) or not error.transient:
            return False
        return error.retry_after is None or error.retry_after <= self.max_wait

    def wait(self, failures: int, error: BaseException | None = None) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure.

        ``initial_wait * 2 ** (failures - 1)`` capped at ``max_wait``, or the
        ``retry_after`` of ``error`` when that is longer.
        """
        backoff = min(self.max_wait, self.initial_wait * 2 ** (failures - 1))
        asked = getattr(error, "retry_after", None)
        return max(backoff, asked) if asked else backoff

    def call(self, fn: Callable[[], T], what: str) -> T:
        """Call ``fn()`` until it succeeds, at most :attr:`attempts` times.

        Each retry is logged as a warning naming ``what``. The last error
        (or any error :meth:`retriable` refuses) is raised unchanged.
        """

        def log_retry(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            LOG.warning("%s failed (attempt %d of %d): %s; retrying in %.1f s",
                        what, state.attempt_number, self.attempts, exc, delay)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait(state.attempt_number, exc)

        controller = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(self.retriable),
            before_sleep=log_retry,
            sleep=self.sleep,
            reraise=True,
        )
        return controller(fn)


class RetryingAdapter(RegionAdapter):
    """A region adapter whose idempotent calls are retried under ``policy``.

    Retried: :meth:`list_images`, :meth:`get_image`, :meth:`update_image`,
    :meth:`delete_image` (an image gone after a failed attempt was deleted
    by it: done), :meth:`deactivate_image`, :meth:`reactivate_image`,
    :meth:`list_members`, :meth:`add_member` and :meth:`remove_member` (a
    member present, or gone, after a failed attempt: done), the request of
    :meth:`download_data` (not the stream),
    and :meth:`create_image` with a caller-chosen ``image_id`` (a conflict
    after a failed attempt is the lost attempt's image, used if it is still
    ``queued`` and owned by the adapter's project), :meth:`import_methods`
    and :meth:`import_task`. A creation without ``image_id``,
    :meth:`upload_data` and :meth:`import_image` are called once: they
    cannot be repeated safely (the executor decides what a failure means).
    """

    def __init__(self, adapter: RegionAdapter, policy: RetryPolicy) -> None:
        self.inner = adapter
        self.policy = policy

    @property
    def name(self) -> str:  # type: ignore[override]
        """The wrapped adapter's ``target:Region`` name."""
        return self.inner.name

    @property
    def project_id(self) -> str | None:  # type: ignore[override]
        """The wrapped adapter's project."""
        return self.inner.project_id

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self.policy.call(fn, f"{self.name}: {what}")

    def list_images(self) -> list[Image]:
        return self._call("listing images", self.inner.list_images)

    def get_image(self, image_id: str) -> Image:
        return self._call(f"getting image {image_id}", lambda: self.inner.get_image(image_id))

    def create_image(self, name: str, *, image_id: str | None = None,
                     **fields: Any) -> Image:
        """Create the image; retried only when ``image_id`` is given (see the class)."""
        if image_id is None:
            return self.inner.create_image(name, **fields)
        failed = False

        def attempt() -> Image:
            nonlocal failed
            try:
                return self.inner.create_image(name, image_id=image_id, **fields)
            except ConflictError:
                if not failed:
                    raise
                found = self.get_image(image_id)
                if found.status != "queued" or found.owner != self.project_id:
                    raise
                LOG.info("%s: image %s (%s) was created by the failed attempt",
                         self.name, name, image_id)
                return found
            except GlanceSyncError as error:
                failed = failed or error.transient
                raise

        return self._call(f"creating image {name}", attempt)

    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        """Called once: the caller restarts its stream if it wants a new attempt."""
        return self.inner.upload_data(image_id, chunks, size)

    def download_data(self, image_id: str) -> Iterator[bytes]:
        """The request is retried; a stream that breaks later is not."""
        return self._call(f"downloading image {image_id}",
                          lambda: self.inner.download_data(image_id))

    def update_image(self, image_id: str, changes: Mapping[str, Any],
                     remove: Iterable[str] = ()) -> Image:
        remove = tuple(remove)
        return self._call(f"updating image {image_id}",
                          lambda: self.inner.update_image(image_id, changes, remove))

    def delete_image(self, image_id: str) -> None:
        self._call(f"deleting image {image_id}", self._once_after_failure(
            lambda: self.inner.delete_image(image_id), ImageNotFoundError))

    def deactivate_image(self, image_id: str) -> Image:
        return self._call(f"deactivating image {image_id}",
                          lambda: self.inner.deactivate_image(image_id))

    def reactivate_image(self, image_id: str) -> Image:
        return self._call(f"reactivating image {image_id}",
                          lambda: self.inner.reactivate_image(image_id))

    def list_members(self, image_id: str) -> list[str]:
        return self._call(f"listing the members of image {image_id}",
                          lambda: self.inner.list_members(image_id))

    def add_member(self, image_id: str, project_id: str) -> None:
        """Retried: a conflict after a failed attempt is the member that attempt added."""
        self._call(f"sharing image {image_id} with {project_id}", self._once_after_failure(
            lambda: self.inner.add_member(image_id, project_id), ConflictError))

    def remove_member(self, image_id: str, project_id: str) -> None:
        """Retried: a missing member after a failed attempt was removed by it."""
        self._call(f"unsharing image {image_id} from {project_id}", self._once_after_failure(
            lambda: self.inner.remove_member(image_id, project_id), ImageNotFoundError))

    @staticmethod
    def _once_after_failure(fn: Callable[[], None],
                            done: type[GlanceSyncError]) -> Callable[[], None]:
        """``fn`` for :meth:`_call`, where ``done`` after a transient failure means success."""
        failed = False

        def attempt() -> None:
            nonlocal failed
            try:
                fn()
            except done:
                if not failed:
                    raise
            except GlanceSyncError as error:
                failed = failed or error.transient
                raise

        return attempt

    def import_methods(self) -> frozenset[str]:
        return self._call("asking the import methods", self.inner.import_methods)

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        """Called once: a second request for the same image is refused (409)."""
        self.inner.import_image(image_id, source_region=source_region,
                                source_image_id=source_image_id)

    def import_task(self, image_id: str) -> ImportTask | None:
        return self._call(f"reading the import task of image {image_id}",
                          lambda: self.inner.import_task(image_id))

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"<RetryingAdapter {self.inner!r}>"


class RetryingTarget(Target):
    """A target whose calls are retried under ``policy``; they all only read.

    :meth:`region_names` (authentication and the catalog), :meth:`adapter`
    (which may authenticate, or discover the region's API),
    :meth:`project_name`, :meth:`find_project` and :meth:`clock`. Any other attribute is
    the wrapped target's.
    """

    def __init__(self, target: Target, policy: RetryPolicy) -> None:
        self.inner = target
        self.policy = policy
        self.name = target.name

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self.policy.call(fn, f"target {self.name}: {what}")

    def region_names(self) -> list[str]:
        return self._call("listing its regions", self.inner.region_names)

    def adapter(self, region: Any) -> RegionAdapter:
        return self._call(f"opening region {region}", lambda: self.inner.adapter(region))

    def project_name(self, project_id: str) -> ProjectName | None:
        return self._call(f"looking up project {project_id}",
                          lambda: self.inner.project_name(project_id))

    def find_project(self, project: ProjectName) -> str | None:
        return self._call(f"looking up project {project}",
                          lambda: self.inner.find_project(project))

    def clock(self) -> datetime.datetime | None:
        """The wrapped target's clock (it may authenticate first)."""
        return self._call("reading its clock", self.inner.clock)

    @property
    def location(self) -> str:
        """The wrapped target's location (what locks are keyed by)."""
        return self.inner.location

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # Backend-specific attributes (a Keystone target's session...).
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"<RetryingTarget {self.inner!r}>"
