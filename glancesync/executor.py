"""Apply a :class:`~glancesync.plan.RegionPlan` to a region.

:class:`Executor` is the one place that changes a region. Every change goes
through :meth:`Executor._act`, which logs it and, in a dry run, does not
call the adapter: a dry run changes nothing, anywhere.

Safety rules: a new image is created private and unprotected, filled,
verified (``active`` and same hash as the master) and only then given its
visibility and protection; an old image is deleted or renamed only after
its replacement is verified; a failed upload deletes what it created. One
image failing does not stop the others. The lifecycle's removal steps
(hide, deactivate, delete) come last, are taken only while the region's run
has had no error, and only on an image still as it was planned.

Faults: the adapter retries its idempotent calls itself (a
:class:`~glancesync.retry.RetryingAdapter`, which the executor puts around
any adapter that is not one already). What stays here
is the upload restart, under the same :class:`~glancesync.retry.RetryPolicy`:
a failed upload is restarted from the source's first byte, into the same
image when Glance put it back to ``queued`` (the client's connection
broke), else into a new image after deleting the stuck one (``saving``
after a dead Glance worker). New images get their id here, so a creation
retried after a lost answer finds its image instead of making a second one.

Server-side copies: an upload whose :class:`~glancesync.strategy.Transfer`
is ``glance-download`` asks the region to copy the image from a source of
:class:`~glancesync.serverside.CopySources` (the master or a region of the
same target holding a verified copy), watches it, completes the metadata
Glance did not copy and verifies it like an upload. When the copy is
refused, fails or stalls, the image is streamed instead: into the same
image if it is ``queued`` again, else into a new one after deleting it.
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
from glancesync.image import (MARK_RENAMED, PROVENANCE_HASH, PROVENANCE_PREFIX, Image,
                              Provenance, content_hash, metadata_diff, utc_stamp)
from glancesync.integrity import FileData, HashingStream
from glancesync.plan.model import (OLD_SUFFIX, Operation, OperationKind, RegionPlan,
                                   Status, StatusCategory)
from glancesync.regions import RegionRef
from glancesync.retry import RetryingAdapter, RetryPolicy
from glancesync.serverside import CopySources, ImportOutcome, Outcome, Source, watch_import
from glancesync.strategy import Strategy, Transfer

LOG = logging.getLogger(__name__)

MIB = 1024 * 1024


class ImageSource(Protocol):
    """Where master image data comes from.

    A source may also offer (the executor uses them when present):
    ``prepare(image, disk_format=None) -> Image | None``: fetch the data now
    (converted to ``disk_format``), so that it is sent at once; returns the
    image whose hashes and size the bytes to send have (None: the
    master's). ``open(image, disk_format=None)``: a context manager giving
    those bytes as a :class:`~glancesync.integrity.FileData`.
    ``recheck(image)``: hash the local copies again before serving them
    next (a region received bytes that do not match).
    """

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
POSTPONED = "postponed"  #: a removal step not taken: the region's run had a failure


@dataclasses.dataclass
class OperationOutcome:
    """What became of one operation of a plan (the run report's ``operations``).

    ``bytes``: image data sent to the region from this host (0 but for
    uploads; a dry run counts what it would send); ``bytes_server_side``:
    data the region copied itself (a server-side copy). ``seconds``: how
    long the operation took (wall clock); ``transfer_seconds``: of which
    sending the data (streamed uploads of a real sync, else 0), what
    throughput estimates are measured on. ``error``: why it failed, was
    refused or postponed.
    """

    kind: OperationKind
    name: str
    result: str
    bytes: int = 0
    bytes_server_side: int = 0
    seconds: float = 0.0
    transfer_seconds: float = 0.0
    error: str = ""


@dataclasses.dataclass
class RegionResult:
    """What a sync (or dry run) of one region did.

    ``outcomes``: one :class:`~glancesync.executor.OperationOutcome` per operation of the plan,
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
    retired: int = 0  #: copies hidden or deactivated by removal_policy
    deleted: int = 0  #: copies deleted by removal_policy
    postponed: int = 0  #: removal steps not taken: the region's run had errors
    errors: int = 0
    needs_operator: int = 0
    bytes_uploaded: int = 0
    #: New copies the region made itself (server-side, counted in ``uploaded``)
    #: and their bytes (not in ``bytes_uploaded``: they did not pass here).
    copied_server_side: int = 0
    bytes_server_side: int = 0
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
        server_side = (f", {self.copied_server_side} copied server-side"
                       if self.copied_server_side else "")
        return (f"{self.region}: {verb} done: {self.ok} ok, {self.updated} updated, "
                f"{self.uploaded} uploaded ({self.replaced} replaced, {self.renamed} "
                f"renamed{server_side}), {self.obsoleted} obsoleted, {self.cleaned} cleaned"
                + (f" ({self.uncleaned} could not be)" if self.uncleaned else "") +
                f", {self.errors} errors, {self.needs_operator} need an operator, "
                f"{self.bytes_uploaded / MIB:.1f} MiB "
                + ("to transfer" if self.dry_run else "transferred")) + self._lifecycle()

    def _lifecycle(self) -> str:
        """The lifecycle's part of the summary (empty when it did nothing)."""
        if not (self.retired or self.deleted or self.postponed):
            return ""
        text = f"; lifecycle: {self.retired} retired, {self.deleted} deleted"
        return text + (f", {self.postponed} postponed" if self.postponed else "")


#: Verbs of the changes: (progressive form, base form for dry runs, log level).
#: Creating and publishing are the two halves of an upload: logged at debug
#: level so that an upload reads as one line.
_VERBS = {
    "create": ("creating", "create", logging.DEBUG),
    "upload": ("uploading", "upload", logging.INFO),
    "import": ("importing", "import", logging.INFO),
    "update": ("updating", "update", logging.INFO),
    "publish": ("publishing", "publish", logging.DEBUG),
    "rename": ("renaming", "rename", logging.INFO),
    "unprotect": ("unprotecting", "unprotect", logging.INFO),
    "delete": ("deleting", "delete", logging.INFO),
    "reactivate": ("reactivating", "reactivate", logging.INFO),
    "hide": ("hiding", "hide", logging.INFO),
    "deactivate": ("deactivating", "deactivate", logging.INFO),
    "mark": ("marking", "mark", logging.DEBUG),
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
    a terminal). ``sources`` is the run's :class:`CopySources` (shared by
    the regions of a run: their copies may serve each other); by default
    server-side copies come from the master only. ``import_timeout`` is the
    seconds a server-side copy may take.
    """

    def __init__(self, adapter: RegionAdapter, source: ImageSource, *,
                 dry_run: bool = False, retry: RetryPolicy | None = None,
                 progress: bool | None = None, sources: CopySources | None = None,
                 import_timeout: float = 1800.0) -> None:
        self.retry = retry if retry is not None else RetryPolicy()
        if not isinstance(adapter, RetryingAdapter):
            adapter = RetryingAdapter(adapter, self.retry)
        self.adapter = adapter
        self.source = source
        self.dry_run = dry_run
        self.progress = progress
        self.region = adapter.name
        self.sources = sources if sources is not None else CopySources()
        self.import_timeout = import_timeout
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
        troubled = False  # a failure or refusal so far: no removal step
        for op in plan.operations:
            started = time.monotonic()
            sent_before, copied_before = result.bytes_uploaded, result.bytes_server_side
            self._transfer_seconds = 0.0
            outcome = OperationOutcome(op.kind, op.name, DONE)
            result.outcomes.append(outcome)
            if op.kind.removes and troubled:
                outcome.result = POSTPONED
                outcome.error = self._postpone(plan, op, result)
                continue
            try:
                self._run(op, result)
            except GlanceSyncError as error:
                troubled = True
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
            outcome.bytes_server_side = result.bytes_server_side - copied_before
            outcome.seconds = time.monotonic() - started
            outcome.transfer_seconds = self._transfer_seconds
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

    def _postpone(self, plan: RegionPlan, op: Operation, result: RegionResult) -> str:
        """A removal step not taken: something failed earlier in this region's run.

        Returns the note that says why (the outcome's ``error``).
        """
        note = ("postponed: this region's run had an error (the next run without one"
                " takes it)")
        status = plan.removal_status(op)
        if status is not None:
            status.reason = f"{status.reason}; {note}"
        result.postponed += 1
        LOG.warning("%s: %s of image %s (%s) %s", self.region, op.kind, op.name,
                    op.regional.id, note)
        return note

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
            why = f": {op.reason}" if op.reason else ""
            self._act("update", f"image {op.name} ({self._keys(changes, op.remove)}){why}",
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

    def _remove(self, op: Operation, result: RegionResult) -> None:
        """A removal step of the lifecycle, on a copy still as it was planned.

        The copy is read again first (a sync may run long): one that is
        gone, protected, renamed or given to another project since the plan
        is left alone. Deactivating records its mark first, so that a copy
        whose master image comes back is reactivated by a later sync.
        """
        planned = op.regional
        what = f"image {op.name} ({planned.id}): {op.reason}"
        try:
            current = self.adapter.get_image(planned.id)
        except ImageNotFoundError:
            LOG.info("%s: image %s (%s) is already gone", self.region, op.name, planned.id)
            return
        changed = [field for field in ("name", "owner", "protected")
                   if getattr(current, field) != getattr(planned, field)]
        if changed:
            LOG.warning("%s: image %s (%s) changed since it was listed (%s): left alone",
                        self.region, op.name, planned.id, ", ".join(changed))
            return
        if op.kind is OperationKind.HIDE:
            self._act("hide", what, self.adapter.update_image, planned.id, op.changes)
            result.retired += 1
        elif op.kind is OperationKind.DEACTIVATE:
            self._act("mark", f"image {op.name} ({self._keys(op.changes, ())})",
                      self.adapter.update_image, planned.id, op.changes)
            self._act("deactivate", what, self.adapter.deactivate_image, planned.id)
            result.retired += 1
        else:
            self._act("delete", what, self.adapter.delete_image, planned.id)
            result.deleted += 1

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
        transfer = op.transfer or Transfer(Strategy.STREAM, master.disk_format)
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
        expected = master
        if not transfer.server_side:
            # Have the data at hand before opening anything in the region: an
            # upload connection never idles while the master is downloaded,
            # and a failed download creates nothing.
            expected = self._prepare(master, transfer)
        self._act("create", f"image {op.name}", self._create, target)
        try:
            if transfer.server_side:
                filled, expected, streamed = self._copy_server_side(op, target, transfer)
            else:
                filled, streamed = self._stream(op, target, transfer, expected.size), True
            final: dict[str, Any] = {}
            if not self.dry_run:
                sent = self._verify(filled, expected, op.name, transfer)
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
        if not self.dry_run and transfer.convert_from is None and content_hash(master):
            # A verified copy of the master's bytes: later server-side copies
            # of the same target may take them from here.
            ref = RegionRef.parse(self.region)
            self.sources.add(ref.target, ref.name, master.id, new_id)
        result.uploaded += 1
        if streamed:
            result.bytes_uploaded += expected.size if expected.size is not None else op.size
        else:
            result.copied_server_side += 1
            result.bytes_server_side += op.size
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
                      {"name": old_name, "visibility": "private",
                       MARK_RENAMED: utc_stamp()})
            result.renamed += 1

    def _prepare(self, master: Image, transfer: Transfer) -> Image:
        """Fetch (and convert) the data to stream now; the content it has.

        :raises TransferError: the data cannot be had, or the source cannot
            convert it.
        """
        prepare = getattr(self.source, "prepare", None)
        if self.dry_run or prepare is None:
            if transfer.convert_from and not self.dry_run:
                raise TransferError(f"the data source cannot convert to {transfer.disk_format}",
                                    region=self.region, image=master.name)
            return master
        if transfer.convert_from:
            return prepare(master, transfer.disk_format) or master
        return prepare(master) or master

    def _stream(self, op: Operation, target: _NewImage, transfer: Transfer,
                size: int | None) -> Image | None:
        """Upload the data (``size`` bytes) from this host (the choke point logs it)."""
        how = ", " + transfer.describe() if transfer.convert_from else ""
        size = op.size if size is None else size
        sending = time.monotonic()
        filled = self._act("upload", f"image {op.name} ({size / MIB:.1f} MiB{how})",
                           self._send_retrying, target, op.master, transfer)
        if not self.dry_run:
            self._transfer_seconds += time.monotonic() - sending
        return filled

    # -- server-side copies --------------------------------------------------
    def _copy_server_side(self, op: Operation, target: _NewImage, transfer: Transfer
                          ) -> tuple[Image | None, Image, bool]:
        """Have the region copy the image itself; stream it when that fails.

        Returns the filled image, the content it must have, and whether it
        was streamed after all.
        """
        master = op.master
        ref = RegionRef.parse(self.region)
        source = self.sources.choose(ref.target, ref.name, transfer.source_region or "",
                                     master.id)
        what = (f"image {op.name} ({op.size / MIB:.1f} MiB) from {source.region} "
                f"({transfer.strategy})")
        try:
            self._act("import", what, self.adapter.import_image, target.image_id,
                      source_region=source.region, source_image_id=source.image_id)
        except GlanceSyncError as error:
            return self._fall_back(op, target, transfer, source, f"refused: {error}")
        if self.dry_run:
            return None, master, False
        seen = watch_import(self.adapter, target.image_id, self.import_timeout,
                            sleep=self.retry.sleep)
        if seen.outcome is Outcome.ACTIVE:
            return self._complete(seen.image, target), master, False
        return self._fall_back(op, target, transfer, source, seen.message, seen)

    def _fall_back(self, op: Operation, target: _NewImage, transfer: Transfer,
                   source: Source, why: str, seen: ImportOutcome | None = None
                   ) -> tuple[Image | None, Image, bool]:
        """Clean up after a failed server-side copy, then stream the image.

        A ``queued`` image whose copy failed or never started is filled by
        an upload, keeping its id (even with Glance's stale lock of a failed
        copy, "Image has active task", an upload is accepted); an image still
        copying (``importing``, or ``queued`` with a task under way: a request
        whose answer was lost) is deleted, which cancels the copy, and a new
        one created; one that became ``active`` after all is kept.
        """
        LOG.warning("%s: server-side copy of %s from %s failed (%s); streaming it instead",
                    self.region, op.name, source.region, why)
        if source.relay:
            ref = RegionRef.parse(self.region)
            self.sources.discard(ref.target, source.region, op.master.id)
        try:
            image = self.adapter.get_image(target.image_id)
        except ImageNotFoundError:
            image = None
        if image is not None and image.status == "active":
            LOG.info("%s: the server-side copy of %s ended after all", self.region, op.name)
            return self._complete(image, target), op.master, False
        expected = self._prepare(op.master, transfer)
        if image is None or image.status != "queued" or self._copy_running(image.id):
            if image is not None:
                self._act("delete", f"unfinished server-side copy {op.name} "
                          f"({image.id}, {image.status})", self.adapter.delete_image, image.id)
            self._act("create", f"image {op.name} again", self._create, target)
        return self._stream(op, target, transfer, expected.size), expected, True

    def _copy_running(self, image_id: str) -> bool:
        """True when the image's latest import task is (or may be) still going on."""
        try:
            task = self.adapter.import_task(image_id)
        except GlanceSyncError:
            return True
        return task is not None and task.status in ("pending", "processing")

    def _complete(self, image: Image, target: _NewImage) -> Image:
        """Set again what a server-side copy did not keep: name, limits, properties.

        Glance copies only an allow-list of properties, over the image's
        own, and the source's formats: whatever differs from what the image
        was created with is set again. Returns the image as it is after.
        """
        fields = {key: target.fields.get(key) for key in ("min_ram", "min_disk")}
        fields["name"] = target.name
        wanted = target.fields.get("properties") or {}
        properties = {k: v for k, v in wanted.items() if not k.startswith(PROVENANCE_PREFIX)}
        changes, remove = metadata_diff(image, fields, properties)
        record = {k: v for k, v in wanted.items() if k.startswith(PROVENANCE_PREFIX)}
        if record and Provenance.from_properties(record) != image.provenance:
            changes.update(record)
        if not changes and not remove:
            return image
        updated = self._act("update", f"image {target.name} after its server-side copy "
                            f"({self._keys(changes, remove)})", self.adapter.update_image,
                            target.image_id, changes, remove)
        return updated if updated is not None else image

    def _create(self, target: _NewImage) -> None:
        """Create ``target``'s image under a fresh id chosen here.

        With a caller-chosen id, a creation retried after a lost answer
        finds the image of the lost attempt (see
        :class:`~glancesync.retry.RetryingAdapter`).
        """
        image_id = str(uuid.uuid4())
        self.adapter.create_image(target.name, image_id=image_id, **target.fields)
        target.image_id = image_id

    def _send_retrying(self, target: _NewImage, master: Image, transfer: Transfer) -> Image:
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
                return self._send(target.image_id, master, target.name, transfer)
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

    def _send(self, image_id: str, master: Image, name: str, transfer: Transfer) -> Image:
        """Send the data into the image, keeping source errors.

        A source that can :meth:`open` its local file hands it to the
        adapter as a :class:`FileData` (sent without being read here where
        the adapter can); otherwise, and for a master without checksum
        (never cached), its chunks are streamed. Returns the image as
        ``upload_data`` gives it back.
        """
        opener = getattr(self.source, "open", None)
        if opener is not None and content_hash(master) is not None:
            args = (master, transfer.disk_format) if transfer.convert_from else (master,)
            with opener(*args) as data:
                bar = progress_mod.progress_bar(f"{self.region} {name}", data.size,
                                                self.progress)
                data.progress = bar.update
                try:
                    return self.adapter.upload_data(image_id, data, size=data.size)
                finally:
                    bar.close()
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

    def _verify(self, image: Image, expected: Image, name: str,
                transfer: Transfer) -> str | None:
        """The new image must be ``active`` with the hashes of the bytes sent.

        ``expected`` is the master, or the converted file's description. On
        a mismatch the source is asked (if it can) to check its copy again
        before it serves it next: the bad bytes may come from it. A master
        without checksum (``sync_without_checksum``): the region's hash of
        the copy must be that of the bytes sent, and its size the master's;
        returns that hash (``"sha512:<hex>"``), for the copy's provenance.
        Otherwise returns None.
        """
        image_id = image.id
        if image.status != "active":
            raise TransferError(f"new image {image_id} is {image.status}, not active",
                                region=self.region, image=name)
        if content_hash(expected) is None:
            return self._verify_sent(image, expected, name)
        if not expected.same_content(image):
            recheck = getattr(self.source, "recheck", None)
            if recheck is not None and not transfer.server_side:
                recheck(expected)
            raise TransferError(
                f"new image {image_id} has checksum {image.checksum}, size {image.size}; "
                f"expected {expected.checksum or expected.os_hash_value}, size "
                f"{expected.size}", region=self.region, image=name)

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
    OperationKind.HIDE: Executor._remove,
    OperationKind.DEACTIVATE: Executor._remove,
    OperationKind.DELETE: Executor._remove,
}
