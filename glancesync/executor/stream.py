"""The upload path, part one: a new image, and master data streamed into it from this host.

:class:`NewImage` is the image an upload fills (its id is chosen here, so
that a creation retried after a lost answer finds its image instead of
making a second one). :class:`Stream` gets the data ready (downloaded and
converted before anything is opened in the region), sends it, and restarts
a failed upload from the source's first byte under the run's
:class:`~glancesync.retry.RetryPolicy`: into the same image when Glance
put it back to ``queued`` (the client's connection broke), else into a new
image after deleting the stuck one (``saving`` after a dead Glance worker).
"""
from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any, Iterable, Iterator, Protocol, Sequence

from glancesync import progress as progress_mod
from glancesync.bandwidth import Bandwidth, throttled
from glancesync.backends.base import RegionAdapter
from glancesync.errors import (ConflictError, GlanceSyncError, ImageNotFoundError,
                               StillSavingError, StoppedError, TransferError,
                               UploadRestartError)
from glancesync.executor.actions import LOG, RegionActions
from glancesync.executor.results import MIB
from glancesync.image import Image, content_hash
from glancesync.integrity import FileData, HashingStream
from glancesync.plan.model import Operation
from glancesync.retry import RetryPolicy
from glancesync.stopping import StopRequest
from glancesync.strategy import Transfer

#: After a broken upload, how long (seconds) Glance may take to notice and
#: put the image back to ``queued`` before it is taken as stuck, and how
#: often it is looked at meanwhile.
SETTLE_TIME = 5.0
SETTLE_POLL = 0.25
#: How often (seconds) an image whose every byte was sent is looked at while
#: the store finalises it (``saving``), within ``saving_timeout``.
SAVING_POLL = 2.0


@dataclasses.dataclass
class Sent:
    """What one attempt handed to the adapter: bytes, and whether the data ran out."""

    bytes: int = 0
    complete: bool = False


class ImageSource(Protocol):
    """Where master image data comes from.

    A source may also offer (the executor uses them when present):
    ``prepare(image, disk_format=None) -> Image | None``: fetch the data now
    (converted to ``disk_format``), so that it is sent at once; returns the
    image whose hashes and size the bytes to send have (None: the
    master's). ``open(image, disk_format=None)``: a context manager giving
    those bytes as a :class:`~glancesync.integrity.FileData`.
    ``recheck(image)``: hash the local copies again before serving them
    next (a region received bytes that do not match). ``uncached(image)``:
    why the source does not keep that image (None when it does): its
    bytes are then read with :meth:`chunks` for each region.
    """

    def chunks(self, image: Image) -> Iterator[bytes]:
        """The master image's bytes, verified against its hashes by the source.

        Raises a :class:`~glancesync.errors.TransferError` (at the latest
        after the last chunk) when the data does not match. May be called
        again to restart the stream from the beginning.
        """


@dataclasses.dataclass
class NewImage:
    """The image an upload fills; its id changes if a stuck image is replaced.

    ``fields`` are the keyword arguments of its creation (``visibility``,
    formats, limits, ``properties``...).
    """

    name: str
    image_id: str
    fields: dict[str, Any]

    def create(self, adapter: RegionAdapter, image_id: str | None = None) -> None:
        """Create the image under ``image_id`` (``keep_image_id``: the master's), else
        a fresh id chosen here (a change: callers make it through
        :meth:`~glancesync.executor.actions.RegionActions.act`).

        With a caller-chosen id, a creation retried after a lost answer
        finds the image of the lost attempt (see
        :class:`~glancesync.retry.RetryingAdapter`).

        :raises ConflictError: the region refused ``image_id`` (taken, or used
            before: Glance never reuses an id).
        """
        image_id = image_id or str(uuid.uuid4())
        adapter.create_image(self.name, image_id=image_id, **self.fields)
        self.image_id = image_id


class Stream:
    """Sends master data from ``source`` into new images of the region of ``actions``.

    ``progress`` draws a bar per upload (None: only when stderr is a
    terminal). ``caps`` pace the bytes sent (bandwidth limits of the run and
    of the region; none: as fast as it goes, by ``sendfile`` where the
    adapter can). :attr:`seconds` adds up the time spent sending data (a real
    sync only), which the executor reads per operation; :attr:`sent` keeps
    the hashes of the bytes sent of a master without checksum, by master id.
    ``stop`` is checked at every chunk (or ``sendfile`` step) sent but the
    last (its answer is awaited), before every new attempt and in every
    wait: a stop request aborts the upload with
    :class:`~glancesync.errors.StoppedError`. ``saving_timeout``: seconds an
    image whose every byte was sent may stay ``saving`` (:meth:`_await_saving`).
    """

    def __init__(self, actions: RegionActions, source: ImageSource, retry: RetryPolicy,
                 progress: bool | None, caps: Sequence[Bandwidth] = (),
                 stop: StopRequest | None = None, *, saving_timeout: float = 900.0) -> None:
        self.actions = actions
        self.caps = tuple(caps)
        self.stop = stop if stop is not None else StopRequest()
        self.source = source
        self.retry = retry
        self.progress = progress
        self.saving_timeout = saving_timeout
        self.seconds = 0.0
        self.sent: dict[str, HashingStream] = {}
        #: Ids of images whose every byte was sent and that the store may still be
        #: writing (``saving``): never deleted (see :meth:`_await_saving`).
        self.saving: set[str] = set()

    @property
    def region(self) -> str:
        return self.actions.region

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (the retry policy's sleep), then raise
        :class:`~glancesync.errors.StoppedError` if a stop was requested."""
        self.retry.sleep(seconds)
        self.stop.check(self.region)

    def prepare(self, master: Image, transfer: Transfer) -> Image:
        """Fetch (and convert) the data to stream now; the content it has.

        :raises TransferError: the data cannot be had, or the source cannot
            convert it.
        """
        prepare = getattr(self.source, "prepare", None)
        if self.actions.dry_run or prepare is None:
            if transfer.convert_from and not self.actions.dry_run:
                raise TransferError(f"the data source cannot convert to {transfer.disk_format}",
                                    region=self.region, image=master.name)
            return master
        if transfer.convert_from:
            return prepare(master, transfer.disk_format) or master
        return prepare(master) or master

    def stream(self, op: Operation, target: NewImage, transfer: Transfer,
               size: int | None) -> Image | None:
        """Upload the data (``size`` bytes) from this host (the choke point logs it)."""
        how = ", " + transfer.describe() if transfer.convert_from else ""
        size = op.size if size is None else size
        sending = time.monotonic()
        filled = self.actions.act("upload", f"image {op.name} ({size / MIB:.1f} MiB{how})",
                                  self._send_retrying, target, op.master, transfer)
        if not self.actions.dry_run:
            self.seconds += time.monotonic() - sending
        return filled

    def _send_retrying(self, target: NewImage, master: Image, transfer: Transfer) -> Image:
        """Upload the data, restarting from the first byte after transient failures.

        Before each new attempt the image is looked at (a ``saving`` one is
        given :data:`SETTLE_TIME` to be reverted): ``queued`` (the
        connection broke, Glance reverted it) is filled again; ``active``
        means the data arrived but the answer was lost (verification
        follows); anything else (``saving`` left by a dead worker, or a
        409 on the new attempt) is deleted and replaced by a new image. An
        :class:`~glancesync.errors.UploadRestartError` (the adapter switched
        to another way of sending) restarts once, not counted as a failure.
        Once every byte was sent, a transient failure (a gateway's time-out,
        the answer lost) is not a reason to send them again: the image is
        the store's (:meth:`_await_saving`), also when a stop was requested
        meanwhile (the wait then ends, the image left to the store).
        Returns the image as it is after the upload.
        """
        failures, restarted = 0, False
        while True:
            sent = Sent()
            try:
                return self._send(target.image_id, master, target.name, transfer, sent)
            except UploadRestartError as error:
                if restarted:
                    raise
                restarted, stuck = True, False  # a new way of sending: not a failure
                LOG.info("%s: %s; sending %s again from the start", self.region, error.message,
                         target.name)
            except GlanceSyncError as error:
                if sent.complete and error.transient:
                    # The store's first, even when a stop was requested meanwhile:
                    # the stop-aware wait leaves a saving image to it.
                    saved = self._await_saving(target, error)
                    if saved is not None:
                        return saved
                if not isinstance(error, StoppedError):  # a stop ends any failure
                    self.stop.check(self.region, target.name)
                stuck = isinstance(error, ConflictError) and failures > 0
                if not (self.retry.retriable(error) or stuck) or failures >= self.retry.retries:
                    raise
                failures += 1
                delay = self.retry.wait(failures, error)
                LOG.warning("%s: upload of %s failed (attempt %d of %d): %s; retrying "
                            "from the start in %.1f s", self.region, target.name, failures,
                            self.retry.attempts, error, delay)
                self.retry.sleep(delay)
                self.stop.check(self.region, target.name)
            arrived = self._prepare_retry(target, stuck)
            if arrived is not None:
                return arrived

    def _await_saving(self, target: NewImage, error: GlanceSyncError) -> Image | None:
        """Every byte was sent, then ``error``: wait while the image is ``saving``.

        Returns the image once ``active`` (verification follows); None when
        the region holds no data of it (``queued``: sending it is the only
        way). Never deletes it while the store may be writing it: until it
        leaves ``saving``, its id is in :attr:`saving`, and an upload that
        fails meanwhile (this time-out, a stop request, the region no longer
        answering) leaves it to the store. The wait is the stop-aware
        :meth:`pause`.

        :raises StillSavingError: still ``saving`` after ``saving_timeout``.
        :raises StoppedError: a stop was requested meanwhile.
        :raises TransferError: the image became anything else (gone, killed).
        """
        adapter = self.actions.adapter
        LOG.warning("%s: every byte of %s was sent, then: %s; waiting up to %g s for the"
                    " region to finish saving it (saving_timeout)", self.region,
                    target.name, error, self.saving_timeout)
        self.saving.add(target.image_id)
        deadline = time.monotonic() + self.saving_timeout
        while True:
            try:
                image = adapter.get_image(target.image_id)
            except ImageNotFoundError:
                self.saving.discard(target.image_id)
                raise TransferError(f"every byte was sent ({error.message}), then image"
                                    f" {target.image_id} was gone; not uploaded again in"
                                    " this run", region=self.region, image=target.name)
            if image.status != "saving":
                self.saving.discard(target.image_id)
            if image.status == "active":
                LOG.info("%s: image %s (%s) is active: the store finished saving it",
                         self.region, target.name, target.image_id)
                return image
            if image.status == "queued":
                return None
            if image.status != "saving":
                raise TransferError(f"every byte was sent ({error.message}), then image"
                                    f" {target.image_id} became {image.status}; not uploaded"
                                    " again in this run", region=self.region,
                                    image=target.name)
            left = deadline - time.monotonic()
            if left <= 0:
                raise StillSavingError(
                    f"every byte was sent, but image {target.image_id} is still saving"
                    f" after {self.saving_timeout:g} s (saving_timeout): left to the store,"
                    " which may still be writing it (a later run finds it active, or"
                    " cleans it after stalled_upload_age)", region=self.region,
                    image=target.name)
            self.pause(min(SAVING_POLL, left))

    def _prepare_retry(self, target: NewImage, stuck: bool) -> Image | None:
        """Make ``target`` ready for a new upload; the image if its data is already there."""
        adapter = self.actions.adapter
        try:
            image = adapter.get_image(target.image_id)
        except ImageNotFoundError:
            image = None
        polls = int(SETTLE_TIME / SETTLE_POLL)
        while image is not None and image.status == "saving" and not stuck and polls:
            polls -= 1
            self.retry.sleep(SETTLE_POLL)
            self.stop.check(self.region, target.name)
            image = adapter.get_image(target.image_id)
        if image is not None and not stuck:
            if image.status == "queued":
                LOG.info("%s: image %s (%s) is queued again: uploading into it",
                         self.region, target.name, target.image_id)
                return None
            if image.status == "active":
                LOG.info("%s: image %s (%s) became active: the data arrived",
                         self.region, target.name, target.image_id)
                return image
        if image is not None:
            self.actions.act("delete", f"stuck {image.status} upload {target.name} "
                             f"({target.image_id})", adapter.delete_image, target.image_id)
        target.create(adapter)  # within the upload the choke point let through
        LOG.info("%s: uploading %s into new image %s", self.region, target.name,
                 target.image_id)
        return None

    def _send(self, image_id: str, master: Image, name: str, transfer: Transfer,
              sent: Sent) -> Image:
        """Send the data into the image, keeping source errors.

        A source that can :meth:`open` its local file hands it to the
        adapter as a :class:`FileData` (sent without being read here where
        the adapter can); otherwise, for a master without checksum (never
        cached) and one the source does not cache (``uncached(image)``
        gives why), its chunks are streamed. Returns the image as
        ``upload_data`` gives it back; ``sent`` counts what was handed over.
        """
        opener = getattr(self.source, "open", None)
        uncached = getattr(self.source, "uncached", None)
        if (opener is not None and content_hash(master) is not None
                and (uncached is None or transfer.convert_from or uncached(master) is None)):
            args = (master, transfer.disk_format) if transfer.convert_from else (master,)
            with opener(*args) as data:
                bar = progress_mod.progress_bar(f"{self.region} {name}", data.size,
                                                self.progress)

                def step(count: int) -> None:
                    bar.update(count)
                    sent.bytes += count
                    sent.complete = sent.bytes >= data.size
                    if not sent.complete:  # the last byte sent: its answer is awaited
                        self.stop.check(self.region, name)  # aborts the upload under way

                self.stop.check(self.region, name)
                data.progress = step
                # A capped upload goes chunk by chunk (paced), not by sendfile.
                body: Iterable[bytes] | FileData = throttled(data, self.caps) if self.caps \
                    else data
                try:
                    return self.actions.adapter.upload_data(image_id, body, size=data.size)
                finally:
                    bar.close()
        return self._send_chunks(image_id, master, name, sent)

    def _send_chunks(self, image_id: str, master: Image, name: str, sent: Sent) -> Image:
        """Stream the source's chunks; an error of the source wins over the region's."""
        source_errors: list[GlanceSyncError] = []
        data: Iterable[bytes] = self.source.chunks(master)
        if content_hash(master) is None:
            # A master without checksum: its copy is verified by what is sent.
            data = self.sent[master.id] = HashingStream(data, "sha512", md5=True)

        def guarded() -> Iterator[bytes]:
            try:
                for chunk in data:
                    self.stop.check(self.region, name)  # aborts the upload under way
                    sent.bytes += len(chunk)
                    yield chunk
            except StoppedError:
                raise
            except GlanceSyncError as error:
                source_errors.append(error)
                raise
            sent.complete = True

        chunks = progress_mod.wrap_chunks(throttled(guarded(), self.caps),
                                          f"{self.region} {name}", master.size, self.progress)
        try:
            image = self.actions.adapter.upload_data(image_id, chunks, size=master.size)
        except GlanceSyncError:
            if source_errors:
                raise source_errors[0] from None
            raise
        if source_errors:
            raise source_errors[0]
        return image
