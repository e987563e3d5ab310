"""The executor: runs a region's plan, one handler per kind of operation.

:class:`Executor` builds the parts of a region's run (the choke point
:class:`~glancesync.executor.actions.RegionActions`, the
:class:`~glancesync.executor.stream.Stream` and
:class:`~glancesync.executor.servercopy.ServerSideCopy` of the upload path)
and hands each operation to its handler (:data:`HANDLERS`): uploads to
:mod:`glancesync.executor.upload`, the rest to
:mod:`glancesync.executor.steps`. One image failing does not stop the
others; the lifecycle's removal steps are taken only while the region's
run has had no failure (else postponed). Each operation gets its
:class:`~glancesync.executor.results.OperationOutcome`. A
:class:`~glancesync.stopping.StopRequest` set during the run interrupts the
operation under way (its half-made image deleted, as after a failure) and
starts no other: they are ``not started``.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Sequence

from glancesync.bandwidth import Bandwidth
from glancesync.backends.base import RegionAdapter
from glancesync.errors import (GlanceSyncError, ImageRefusedError, ProtectedImageError,
                               StoppedError)
from glancesync.executor import steps, upload
from glancesync.executor.actions import LOG, RegionActions, describe
from glancesync.executor.results import (DONE, FAILED, NOT_STARTED, POSTPONED, REFUSED, STOPPED,
                                         OperationOutcome, RegionResult, is_refusal)
from glancesync.executor.servercopy import ServerSideCopy
from glancesync.executor.stream import ImageSource, Stream
from glancesync.executor.validation import Validation, ValidationError
from glancesync.image import PROVENANCE_PREFIX, Image, is_user_property
from glancesync.plan.model import Operation, OperationKind, RegionPlan, Status, StatusCategory
from glancesync.retry import RetryingAdapter, RetryPolicy
from glancesync.serverside import CopySources
from glancesync.stopping import StopRequest

#: A handler: applies one operation of the executor's region, counts it in the result.
Handler = Callable[["Executor", Operation, RegionResult], None]

#: The handler of each kind of operation.
HANDLERS: dict[OperationKind, Handler] = {
    OperationKind.UPDATE_METADATA: steps.update,
    OperationKind.UPLOAD: upload.upload,
    OperationKind.REPLACE: upload.upload,
    OperationKind.RENAME: upload.upload,
    OperationKind.OBSOLETE_RENAME: steps.obsolete,
    OperationKind.OBSOLETE_UPDATE: steps.obsolete,
    OperationKind.CLEANUP: steps.cleanup,
    OperationKind.REACTIVATE: steps.reactivate,
    OperationKind.HIDE: steps.remove,
    OperationKind.DEACTIVATE: steps.remove,
    OperationKind.DELETE: steps.remove,
}


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
    seconds a server-side copy may take; ``saving_timeout`` the seconds an
    upload whose every byte was sent waits for its image to leave ``saving``.
    ``validation``: the region's ``validate_command``, run on every new copy
    before it is published. ``caps`` pace the bytes uploaded
    (:class:`~glancesync.bandwidth.Bandwidth`: the run's, the region's).
    ``stop`` (default: one never set) is checked before each operation and
    inside transfers and waits (the adapter's own too: an adapter with an
    ``import_stop`` attribute is given it).
    """

    def __init__(self, adapter: RegionAdapter, source: ImageSource, *,
                 dry_run: bool = False, retry: RetryPolicy | None = None,
                 progress: bool | None = None, sources: CopySources | None = None,
                 import_timeout: float = 1800.0, saving_timeout: float = 900.0,
                 validation: Validation | None = None,
                 caps: Sequence[Bandwidth] = (),
                 stop: StopRequest | None = None) -> None:
        self.validation = validation
        self.retry = retry if retry is not None else RetryPolicy()
        if not isinstance(adapter, RetryingAdapter):
            adapter = RetryingAdapter(adapter, self.retry)
        self.adapter = adapter
        self.source = source
        self.dry_run = dry_run
        self.stop = stop if stop is not None else StopRequest()
        # An adapter that waits by itself (a glance-direct import) obeys it too.
        inner = getattr(adapter, "inner", adapter)
        if hasattr(inner, "import_stop"):
            inner.import_stop = self.stop
        self.region = adapter.name
        self.actions = RegionActions(adapter, dry_run)
        self.sources = sources if sources is not None else CopySources()
        self.stream = Stream(self.actions, source, self.retry, progress, caps, self.stop,
                             saving_timeout=saving_timeout)
        self.server_copy = ServerSideCopy(self.stream, self.sources, import_timeout)
        #: Master name -> regional UUID of the image uploaded in this run.
        self.new_ids: dict[str, str] = {}

    # -- entry point -----------------------------------------------------
    def execute(self, plan: RegionPlan) -> RegionResult:
        """Run every operation of ``plan``; never stops at one image's error."""
        result = RegionResult(plan.region, dry_run=self.dry_run, plan=plan)
        counts = plan.counts()
        result.ok = sum(counts[s] for s in Status if s.category is StatusCategory.OK)
        result.needs_operator = len(plan.needs_operator)
        troubled = False  # a failure or refusal so far: no removal step
        for op in plan.operations:
            outcome = OperationOutcome(op.kind, op.name, DONE)
            result.outcomes.append(outcome)
            if self.stop.is_set():
                outcome.result, outcome.error = NOT_STARTED, self.stop.error().message
                result.not_done += 1
                continue
            if op.kind.removes and troubled:
                outcome.result = POSTPONED
                outcome.error = self._postpone(plan, op, result)
                continue
            self._run_measured(plan, op, result, outcome)
            # A refusal is one image's business (it needs an operator); only a
            # failure of the region holds back the removal steps.
            troubled = troubled or outcome.result == FAILED
        # Marked so that the scripts, which print every summary at the end,
        # do not show it twice on a terminal; log files keep it.
        LOG.info("%s", result.summary(), extra={"summary": True})
        return result

    def _run_measured(self, plan: RegionPlan, op: Operation, result: RegionResult,
                      outcome: OperationOutcome) -> None:
        """Run ``op``; its outcome: result, error, bytes and seconds."""
        started = time.monotonic()
        sent_before, copied_before = result.bytes_uploaded, result.bytes_server_side
        self.stream.seconds = 0.0
        try:
            self._run(op, result)
        except ValidationError as error:
            outcome.error = str(error)
            outcome.result = REFUSED
            self._validation_failed(plan, op, error, result)
        except StoppedError as error:
            outcome.result, outcome.error = STOPPED, error.message
            result.not_done += 1
            LOG.warning("%s: %s interrupted: %s", self.region, op.describe(), error.message)
        except GlanceSyncError as error:
            outcome.error = str(error)
            if isinstance(error, ProtectedImageError) or is_refusal(error):
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
        outcome.transfer_seconds = self.stream.seconds

    def _run(self, op: Operation, result: RegionResult) -> None:
        # Every kind has its handler (tests/unit/test_executor_faults.py checks it).
        HANDLERS[op.kind](self, op, result)

    def _refused(self, plan: RegionPlan, op: Operation, error: GlanceSyncError,
                 result: RegionResult) -> None:
        """A change refused for good (or one that would touch a protected image): the
        image's status needs an operator (``error_refused``, ``error_protected``),
        with who refused it and why; the rest of the region goes on.

        The region (its message), or GlanceSync itself: a master image its
        inspection refuses to hand to ``qemu-img`` (:class:`ImageRefusedError`,
        whose message names the inspection's finding).
        """
        wanted = Status.ERROR_REFUSED
        if isinstance(error, ProtectedImageError):
            wanted, reason = Status.ERROR_PROTECTED, error.message
        elif isinstance(error, ImageRefusedError):
            reason = (f"GlanceSync refused to convert the master image ({error.message});"
                      " the region was not asked; every run refuses it until an operator"
                      " replaces the master image")
        else:
            change = (f"a step of the {op.kind}" if op.uploads
                      else f"the change ({op.describe()})")
            reason = (f"the region refused {change}: {error.message}{quota_note(op, error)}; it"
                      " will refuse it at every run until an operator acts")
        status = plan.line_of(op)
        if status is not None:
            status.status = wanted
            status.reason = reason
        result.needs_operator += 1
        LOG.error("%s: image %s: %s", self.region, op.name, reason)

    def _validation_failed(self, plan: RegionPlan, op: Operation, error: ValidationError,
                           result: RegionResult) -> None:
        """``validate_command`` refused the new copy: ``error_validation``, its last lines."""
        status = plan.status_of(op.name)
        if status is not None:
            status.status = Status.ERROR_VALIDATION
            status.reason = error.message
        result.needs_operator += 1
        LOG.error("%s: image %s: %s", self.region, op.name, error.message)

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
        return self.actions.act("update", f"image {image.name} [{describe(changes, remove)}]{why}",
                                self.adapter.update_image, image.id, changes, tuple(remove))


def quota_note(op: Operation, error: GlanceSyncError) -> str:
    """What of an image's properties and members GlanceSync's own change adds up to,
    for the message of a refusal over a quota (HTTP 413: a quota counts
    GlanceSync's ``glancesync.*`` records and marks like any property,
    ``image_property_quota``); empty for other refusals, or when nothing."""
    if error.status_code != 413:
        return ""
    if op.uploads:
        keys = set(op.changes.get("properties") or {}) | set(
            op.changes.get("late_properties") or {})
        if op.provenance is not None:
            keys |= set(op.provenance.stamped().as_properties())
    elif op.regional is not None:
        regional = op.regional
        keys = set(regional.properties) | set(regional.marks)
        if regional.provenance is not None:
            keys |= set(regional.provenance.as_properties())
        keys |= {k for k in op.changes if is_user_property(k) or k.startswith(PROVENANCE_PREFIX)}
        keys -= set(op.remove)
    else:
        return ""
    own = sorted(k for k in keys if k.startswith(PROVENANCE_PREFIX))
    note = ""
    if own:
        note = (f" (the image would carry {len(keys)} properties, {len(own)} of them"
                f" GlanceSync's own records and marks: {', '.join(own)}; they count in"
                " the region's image_property_quota)")
    if op.add_members:
        note += (f" (it would be shared with {len(op.add_members)} more project(s):"
                 " image_member_quota)")
    return note
