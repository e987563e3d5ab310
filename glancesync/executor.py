"""Apply a :class:`~glancesync.plan.RegionPlan` to a region.

:class:`Executor` is the one place that changes a region. Every change goes
through :meth:`Executor._act`, which logs it and, in a dry run, does not
call the adapter: a dry run changes nothing, anywhere.

Safety rules: a new image is created private and unprotected, filled,
verified (``active`` and same hash as the master) and only then given its
visibility and protection; an old image is deleted or renamed only after
its replacement is verified; a failed upload deletes what it created. One
image failing does not stop the others.

Faults: the adapter retries its idempotent calls itself (a
:class:`~glancesync.retry.RetryingAdapter`, which the executor puts around
any adapter that is not one already). What stays here
is the upload restart, under the same :class:`~glancesync.retry.RetryPolicy`:
a failed upload is restarted from the source's first byte, into the same
image when Glance put it back to ``queued`` (the client's connection
broke), else into a new image after deleting the stuck one (``saving``
after a dead Glance worker). New images get their id here, so a creation
retried after a lost answer finds its image instead of making a second one.
"""
from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from typing import Any, Callable, Iterable, Iterator, Protocol

from glancesync import progress as progress_mod
from glancesync.backends.base import RegionAdapter
from glancesync.errors import (ChecksumMismatchError, ConflictError, GlanceSyncError,
                               ImageNotFoundError, TransferError, UsageError)
from glancesync.image import PROVENANCE_HASH, Image, content_hash
from glancesync.integrity import HashingStream
from glancesync.plan import (OLD_SUFFIX, Operation, OperationKind, RegionPlan, Status,
                             StatusCategory)
from glancesync.retry import RetryingAdapter, RetryPolicy

LOG = logging.getLogger(__name__)

MIB = 1024 * 1024


class ImageSource(Protocol):
    """Where master image data comes from."""

    # A source may also offer ``prepare(image)``: fetch the data now, so that
    # ``chunks`` then streams it at once (the executor calls it before
    # creating the regional image).

    def chunks(self, image: Image) -> Iterator[bytes]:
        """The master image's bytes, verified against its hashes by the source.

        Raises a :class:`~glancesync.errors.TransferError` (at the latest
        after the last chunk) when the data does not match. May be called
        again to restart the stream from the beginning.
        """


#: Results of one operation (:attr:`OperationOutcome.result`).
DONE = "done"  #: applied (a dry run: would be applied)
FAILED = "failed"  #: failed; ``error`` says why
REFUSED = "refused"  #: refused by the region for good: the image needs an operator


@dataclasses.dataclass
class OperationOutcome:
    """What became of one operation of a plan (the run report's ``operations``).

    ``bytes``: image data sent to the region (0 but for uploads; a dry run
    counts what it would send). ``seconds``: how long the operation took
    (wall clock); ``transfer_seconds``: of which sending the data (uploads
    of a real sync, else 0), what throughput estimates are measured on.
    """

    kind: OperationKind
    name: str
    result: str
    bytes: int = 0
    seconds: float = 0.0
    transfer_seconds: float = 0.0
    error: str = ""


@dataclasses.dataclass
class RegionResult:
    """What a sync (or dry run) of one region did.

    ``outcomes``: one :class:`OperationOutcome` per operation of the plan,
    in the order they ran.
    """

    region: str
    dry_run: bool = False
    ok: int = 0
    updated: int = 0
    uploaded: int = 0
    replaced: int = 0
    renamed: int = 0
    obsoleted: int = 0
    cleaned: int = 0
    uncleaned: int = 0  #: leftovers that could not be deleted (a warning each)
    errors: int = 0
    needs_operator: int = 0
    bytes_uploaded: int = 0
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    plan: RegionPlan | None = None
    outcomes: list[OperationOutcome] = dataclasses.field(default_factory=list)

    @property
    def success(self) -> bool:
        """True when no operation failed (operator statuses aside)."""
        return self.errors == 0

    def summary(self) -> str:
        """The one-line summary logged per region."""
        verb = "dry run" if self.dry_run else "sync"
        return (f"{self.region}: {verb} done: {self.ok} ok, {self.updated} updated, "
                f"{self.uploaded} uploaded ({self.replaced} replaced, {self.renamed} "
                f"renamed), {self.obsoleted} obsoleted, {self.cleaned} cleaned"
                + (f" ({self.uncleaned} could not be)" if self.uncleaned else "") +
                f", {self.errors} errors, {self.needs_operator} need an operator, "
                f"{self.bytes_uploaded / MIB:.1f} MiB transferred")


#: Verbs of the changes: (progressive form, base form for dry runs, log level).
#: Creating and publishing are the two halves of an upload: logged at debug
#: level so that an upload reads as one line.
_VERBS = {
    "create": ("creating", "create", logging.DEBUG),
    "upload": ("uploading", "upload", logging.INFO),
    "update": ("updating", "update", logging.INFO),
    "publish": ("publishing", "publish", logging.DEBUG),
    "rename": ("renaming", "rename", logging.INFO),
    "unprotect": ("unprotecting", "unprotect", logging.INFO),
    "delete": ("deleting", "delete", logging.INFO),
    "reactivate": ("reactivating", "reactivate", logging.INFO),
    "share": ("sharing", "share", logging.INFO),
    "unshare": ("unsharing", "unshare", logging.INFO),
}

#: HTTP statuses of a region's refusal that a new run meets again (bad
#: request, forbidden, too large for a quota, data not of the declared
#: format): the image needs an operator (``error_refused``), not new runs.
REFUSALS = frozenset({400, 403, 413, 415})


def is_refusal(error: GlanceSyncError) -> bool:
    """True when the region refused a change for a reason every run meets again.

    A permanent error with a status of :data:`REFUSALS`, or a value the
    region's image schema refuses (:class:`~glancesync.errors.UsageError`);
    never a transient error, a conflict of states (409) nor a broken or
    corrupt transfer.
    """
    if error.transient or isinstance(error, TransferError):
        return False
    return isinstance(error, UsageError) or error.status_code in REFUSALS


#: After a broken upload, how long (seconds) Glance may take to notice and
#: put the image back to ``queued`` before it is taken as stuck, and how
#: often it is looked at meanwhile.
SETTLE_TIME = 5.0
SETTLE_POLL = 0.25

class _Failed(GlanceSyncError):
    """An operation cannot run because an earlier one failed."""


@dataclasses.dataclass
class _NewImage:
    """The image an upload fills; its id changes if a stuck image is replaced."""

    name: str
    image_id: str
    fields: dict[str, Any]


class Executor:
    """Runs the operations of plans against one region adapter.

    ``retry`` (default :class:`RetryPolicy()`) bounds the restarts of
    failed uploads; an ``adapter`` that is not a
    :class:`~glancesync.retry.RetryingAdapter` already (the facade's are) is
    wrapped in one with the same policy, so the executor's calls are always
    retried. ``progress`` draws a bar per upload (None: only when stderr is
    a terminal).
    """

    def __init__(self, adapter: RegionAdapter, source: ImageSource, *,
                 dry_run: bool = False, retry: RetryPolicy | None = None,
                 progress: bool | None = None) -> None:
        self.retry = retry if retry is not None else RetryPolicy()
        if not isinstance(adapter, RetryingAdapter):
            adapter = RetryingAdapter(adapter, self.retry)
        self.adapter = adapter
        self.source = source
        self.dry_run = dry_run
        self.progress = progress
        self.region = adapter.name
        # master name -> regional UUID of the image uploaded in this run
        self._new_ids: dict[str, str] = {}
        # master id -> the hashes of the bytes sent last (masters without checksum)
        self._sent: dict[str, HashingStream] = {}
        # seconds the current operation spent sending image data
        self._transfer_seconds = 0.0

    # -- the choke point -------------------------------------------------
    def _act(self, verb: str, what: str, call: Callable[..., Any], *args: Any,
             **kwargs: Any) -> Any:
        """Log one change and make it (or only log it, in a dry run).

        ``verb`` is a key of :data:`_VERBS`; ``what`` completes the sentence.
        """
        doing, do, level = _VERBS[verb]
        if self.dry_run:
            LOG.log(level, "%s: would %s %s", self.region, do, what)
            return None
        LOG.log(level, "%s: %s %s", self.region, doing, what)
        return call(*args, **kwargs)

    # -- entry point -----------------------------------------------------
    def execute(self, plan: RegionPlan) -> RegionResult:
        """Run every operation of ``plan``; never stops at one image's error."""
        result = RegionResult(plan.region, dry_run=self.dry_run, plan=plan)
        counts = plan.counts()
        result.ok = sum(counts[s] for s in Status if s.category is StatusCategory.OK)
        result.needs_operator = len(plan.needs_operator)
        for op in plan.operations:
            started, sent_before = time.monotonic(), result.bytes_uploaded
            self._transfer_seconds = 0.0
            outcome = OperationOutcome(op.kind, op.name, DONE)
            try:
                self._run(op, result)
            except GlanceSyncError as error:
                outcome.error = str(error)
                if op.uploads and is_refusal(error):
                    outcome.result = REFUSED
                    self._refused(plan, op, error, result)
                else:
                    outcome.result = FAILED
                    result.errors += 1
                    result.failed[op.name] = str(error)
                    LOG.error("%s: %s failed: %s", self.region, op.describe(), error)
            outcome.bytes = result.bytes_uploaded - sent_before
            outcome.seconds = time.monotonic() - started
            outcome.transfer_seconds = self._transfer_seconds
            result.outcomes.append(outcome)
        # Marked so that the scripts, which print every summary at the end,
        # do not show it twice on a terminal; log files keep it.
        LOG.info("%s", result.summary(), extra={"summary": True})
        return result

    def _refused(self, plan: RegionPlan, op: Operation, error: GlanceSyncError,
                 result: RegionResult) -> None:
        """The region refused an upload for good: ``error_refused``, with its message."""
        reason = (f"the region refused the upload ({error.message}); it will refuse it"
                  " at every run until an operator acts")
        status = plan.status_of(op.name)
        if status is not None:
            status.status = Status.ERROR_REFUSED
            status.reason = reason
        result.needs_operator += 1
        LOG.error("%s: image %s: %s", self.region, op.name, reason)

    def update_metadata(self, image: Image, changes: dict[str, Any],
                        remove: Iterable[str] = (), *, reason: str = "") -> Image | None:
        """One metadata change outside a plan (restoring a backup, for instance)."""
        why = f" ({reason})" if reason else ""
        return self._act("update", f"image {image.name} [{self._keys(changes, remove)}]{why}",
                         self.adapter.update_image, image.id, changes, tuple(remove))

    def _run(self, op: Operation, result: RegionResult) -> None:
        handler = _HANDLERS.get(op.kind)
        if handler is None:
            raise GlanceSyncError(f"unknown operation {op.kind!r}", region=self.region,
                                  image=op.name)
        handler(self, op, result)

    def _update(self, op: Operation, result: RegionResult) -> None:
        changes = dict(op.changes)
        changes.update(self._resolve_refs(op))
        if changes or op.remove:
            self._act("update", f"image {op.name} ({self._keys(changes, op.remove)})",
                      self.adapter.update_image, op.regional.id, changes, op.remove)
        self._share(op.name, op.regional.id, op.add_members, op.remove_members)
        result.updated += 1

    def _reactivate(self, op: Operation, result: RegionResult) -> None:
        """Reactivate a deactivated copy, then bring its metadata in step."""
        self._act("reactivate", f"image {op.name} ({op.regional.id})",
                  self.adapter.reactivate_image, op.regional.id)
        self._update(op, result)

    def _share(self, name: str, image_id: str, add: Iterable[str],
               remove: Iterable[str]) -> None:
        """Share the image with the projects of ``add``, stop with those of ``remove``."""
        for project in add:
            self._act("share", f"image {name} with project {project}",
                      self.adapter.add_member, image_id, project)
        for project in remove:
            self._act("unshare", f"image {name} from project {project}",
                      self.adapter.remove_member, image_id, project)

    def _obsolete(self, op: Operation, result: RegionResult) -> None:
        verb, what = (("rename", f"image {op.regional.name} to {op.name}")
                      if op.kind is OperationKind.OBSOLETE_RENAME else
                      ("update", f"obsolete image {op.name}"))
        self._act(verb, f"{what} ({self._keys(op.changes, ())})",
                  self.adapter.update_image, op.regional.id, op.changes)
        result.obsoleted += 1

    def _cleanup(self, op: Operation, result: RegionResult) -> None:
        """Delete a leftover of an interrupted upload, if it is still as planned.

        The image is looked at again first: one that changed since it was
        listed (an upload resumed, a status changed) is left alone. A
        leftover that cannot be deleted (protected, forbidden, the region
        unwell) is a warning, not a failure: the next run tries again.
        """
        leftover = op.regional
        what = f"leftover {leftover.status} image {op.name} ({leftover.id})"
        try:
            current = self.adapter.get_image(leftover.id)
            if (current.status, current.updated_at) != (leftover.status,
                                                        leftover.updated_at):
                LOG.info("%s: %s changed since it was listed (now %s): left alone",
                         self.region, what, current.status)
                return
            self._act("delete", what, self.adapter.delete_image, leftover.id)
        except ImageNotFoundError:
            LOG.info("%s: %s is already gone", self.region, what)
            return
        except GlanceSyncError as error:
            result.uncleaned += 1
            LOG.warning("%s: could not delete %s: %s; it is left for the next run",
                        self.region, what, error)
            return
        result.cleaned += 1

    # -- uploads ---------------------------------------------------------
    def _upload(self, op: Operation, result: RegionResult) -> None:
        master = op.master
        fields = op.changes
        properties = dict(fields.get("properties") or {})
        properties.update(self._resolve_refs(op))
        if op.provenance is not None:
            properties.update(op.provenance.stamped().as_properties())
        target = _NewImage(op.name, f"<new {op.name}>", dict(
            visibility="private", disk_format=fields.get("disk_format"),
            container_format=fields.get("container_format"),
            min_ram=fields.get("min_ram", 0), min_disk=fields.get("min_disk", 0),
            protected=False, properties=properties))
        prepare = getattr(self.source, "prepare", None)
        if prepare is not None and not self.dry_run:
            # Have the data at hand before opening anything in the region: an
            # upload connection never idles while the master is downloaded,
            # and a failed download creates nothing.
            prepare(master)
        self._act("create", f"image {op.name}", self._create, target)
        try:
            sending = time.monotonic()
            uploaded = self._act("upload", f"image {op.name} ({op.size / MIB:.1f} MiB)",
                                 self._send_retrying, target, master)
            if not self.dry_run:
                self._transfer_seconds = time.monotonic() - sending
            final: dict[str, Any] = {}
            if not self.dry_run:
                sent = self._verify(uploaded, master, op.name)
                if sent is not None:
                    final[PROVENANCE_HASH] = sent
            if fields.get("visibility", "private") != "private":
                final["visibility"] = fields["visibility"]
            if fields.get("protected"):
                final["protected"] = True
            if fields.get("os_hidden"):
                final["os_hidden"] = True
            if fields.get("tags"):
                final["tags"] = list(fields["tags"])
            final.update(fields.get("late_properties") or {})
            if final:
                self._act("publish", f"image {op.name} ({self._keys(final, ())})",
                          self.adapter.update_image, target.image_id, final)
            self._share(op.name, target.image_id, op.add_members, ())
        except GlanceSyncError:
            self._discard(target.image_id, op.name)
            raise
        new_id = target.image_id
        self._new_ids[op.name] = new_id
        result.uploaded += 1
        result.bytes_uploaded += op.size
        old = op.regional
        if op.kind is OperationKind.REPLACE:
            if old.protected:
                self._act("unprotect", f"old image {op.name} ({old.id})",
                          self.adapter.update_image, old.id, {"protected": False})
            self._act("delete", f"old image {op.name} ({old.id}), replaced by {new_id}",
                      self.adapter.delete_image, old.id)
            result.replaced += 1
        elif op.kind is OperationKind.RENAME:
            old_name = op.name + OLD_SUFFIX
            self._act("rename", f"{op.name} ({old.id}) to {old_name}, made private",
                      self.adapter.update_image, old.id,
                      {"name": old_name, "visibility": "private"})
            result.renamed += 1

    def _create(self, target: _NewImage) -> None:
        """Create ``target``'s image under a fresh id chosen here.

        With a caller-chosen id, a creation retried after a lost answer
        finds the image of the lost attempt (see
        :class:`~glancesync.retry.RetryingAdapter`).
        """
        image_id = str(uuid.uuid4())
        self.adapter.create_image(target.name, image_id=image_id, **target.fields)
        target.image_id = image_id

    def _send_retrying(self, target: _NewImage, master: Image) -> Image:
        """Upload the data, restarting from the first byte after transient failures.

        Before each new attempt the image is looked at (a ``saving`` one is
        given :data:`SETTLE_TIME` to be reverted): ``queued`` (the
        connection broke, Glance reverted it) is filled again; ``active``
        means the data arrived but the answer was lost (verification
        follows); anything else (``saving`` left by a dead worker, or a
        409 on the new attempt) is deleted and replaced by a new image.
        Returns the image as it is after the upload.
        """
        failures = 0
        while True:
            try:
                return self._send(target.image_id, master, target.name)
            except GlanceSyncError as error:
                stuck = isinstance(error, ConflictError) and failures > 0
                if not (self.retry.retriable(error) or stuck) or failures >= self.retry.retries:
                    raise
                failures += 1
                delay = self.retry.wait(failures, error)
                LOG.warning("%s: upload of %s failed (attempt %d of %d): %s; retrying "
                            "from the start in %.1f s", self.region, target.name, failures,
                            self.retry.attempts, error, delay)
                self.retry.sleep(delay)
            arrived = self._prepare_retry(target, stuck)
            if arrived is not None:
                return arrived

    def _prepare_retry(self, target: _NewImage, stuck: bool) -> Image | None:
        """Make ``target`` ready for a new upload; the image if its data is already there."""
        try:
            image = self.adapter.get_image(target.image_id)
        except ImageNotFoundError:
            image = None
        polls = int(SETTLE_TIME / SETTLE_POLL)
        while image is not None and image.status == "saving" and not stuck and polls:
            polls -= 1
            self.retry.sleep(SETTLE_POLL)
            image = self.adapter.get_image(target.image_id)
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
            self._act("delete", f"stuck {image.status} upload {target.name} "
                      f"({target.image_id})", self.adapter.delete_image, target.image_id)
        self._create(target)
        LOG.info("%s: uploading %s into new image %s", self.region, target.name,
                 target.image_id)
        return None

    def _send(self, image_id: str, master: Image, name: str) -> Image:
        """Stream the master data into the image, keeping source errors.

        Returns the image as ``upload_data`` gives it back.
        """
        source_errors: list[GlanceSyncError] = []
        data: Iterable[bytes] = self.source.chunks(master)
        if content_hash(master) is None:
            # A master without checksum: its copy is verified by what is sent.
            data = self._sent[master.id] = HashingStream(data, "sha512", md5=True)

        def guarded() -> Iterator[bytes]:
            try:
                yield from data
            except GlanceSyncError as error:
                source_errors.append(error)
                raise

        chunks = progress_mod.wrap_chunks(guarded(), f"{self.region} {name}", master.size,
                                          self.progress)
        try:
            image = self.adapter.upload_data(image_id, chunks, size=master.size)
        except GlanceSyncError:
            if source_errors:
                raise source_errors[0] from None
            raise
        if source_errors:
            raise source_errors[0]
        return image

    def _verify(self, image: Image, master: Image, name: str) -> str | None:
        """The new image (as the upload returned it) must be ``active`` with the master's hash.

        On a mismatch the source is asked (if it can) to check its copy
        again before it serves it next: the bad bytes may come from it. A
        master without checksum (``sync_without_checksum``): the region's
        hash of the copy must be that of the bytes sent, and its size the
        master's; returns that hash (``"sha512:<hex>"``), for the copy's
        provenance. Otherwise returns None.
        """
        image_id = image.id
        if image.status != "active":
            raise TransferError(f"uploaded image {image_id} is {image.status}, not active",
                                region=self.region, image=name)
        if content_hash(master) is None:
            return self._verify_sent(image, master, name)
        if not master.same_content(image):
            recheck = getattr(self.source, "recheck", None)
            if recheck is not None:
                recheck(master)
            raise TransferError(
                f"uploaded image {image_id} has checksum {image.checksum}, "
                f"master has {master.checksum}", region=self.region, image=name)

    def _verify_sent(self, image: Image, master: Image, name: str) -> str:
        """Check a copy of a master without checksum against the bytes sent."""
        sent = self._sent.pop(master.id)
        if master.size is not None and sent.size != master.size:
            raise ChecksumMismatchError(f"sent {sent.size} bytes, the master image has"
                                        f" {master.size}", region=self.region, image=name)
        if image.os_hash_algo == "sha512" and image.os_hash_value:
            algorithm, value, computed = "sha512", image.os_hash_value, sent.os_hash
        elif image.checksum:  # a region hashing with another algorithm: md5
            algorithm, value, computed = "md5", image.checksum, sent.md5
        else:
            algorithm, value, computed = "none", None, sent.os_hash
        if value is None or value.lower() != computed:
            raise ChecksumMismatchError(
                f"uploaded image {image.id} has {algorithm} hash {value}, the bytes sent"
                f" have {computed}", region=self.region, image=name)
        return f"{algorithm}:{computed}"

    def _discard(self, image_id: str, name: str) -> None:
        """Delete a half-made image; a failure here is logged, not raised."""
        try:
            self._act("delete", f"failed upload {name} ({image_id})",
                      self.adapter.delete_image, image_id)
        except GlanceSyncError as error:
            LOG.error("%s: could not delete failed upload %s (%s): %s",
                      self.region, name, image_id, error)

    # -- helpers -----------------------------------------------------------
    def _resolve_refs(self, op: Operation) -> dict[str, str]:
        """Regional UUIDs of the kernels/ramdisks uploaded earlier in the run."""
        resolved = {}
        for key, used in op.ami_refs.items():
            if used not in self._new_ids:
                raise _Failed(f"{key} image {used} was not synchronised in this run",
                              region=self.region, image=op.name)
            resolved[key] = self._new_ids[used]
        return resolved

    @staticmethod
    def _keys(changes: dict[str, Any], remove: Iterable[str]) -> str:
        parts = [f"{k}={v}" for k, v in sorted(changes.items())]
        parts += [f"-{k}" for k in remove]
        return ", ".join(parts)


#: The handler of each kind of operation.
_HANDLERS: dict[OperationKind, Callable[[Executor, Operation, RegionResult], None]] = {
    OperationKind.UPDATE_METADATA: Executor._update,
    OperationKind.UPLOAD: Executor._upload,
    OperationKind.REPLACE: Executor._upload,
    OperationKind.RENAME: Executor._upload,
    OperationKind.OBSOLETE_RENAME: Executor._obsolete,
    OperationKind.OBSOLETE_UPDATE: Executor._obsolete,
    OperationKind.CLEANUP: Executor._cleanup,
    OperationKind.REACTIVATE: Executor._reactivate,
}
