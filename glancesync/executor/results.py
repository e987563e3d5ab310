"""What the execution of a plan did: per operation, per region.

:class:`OperationOutcome` (one operation: its result, bytes, seconds) and
:class:`RegionResult` (one region: counters, failures, the plan, the
outcomes in the order they ran); the results an operation can have
(:data:`DONE`, :data:`FAILED`, :data:`REFUSED`, :data:`POSTPONED`,
:data:`STOPPED`, :data:`NOT_STARTED`) and
which errors are a region's refusal for good (:func:`is_refusal`).
"""
from __future__ import annotations

import dataclasses

from glancesync.errors import GlanceSyncError, TransferError, UsageError
from glancesync.plan.model import OperationKind, RegionPlan

MIB = 1024 * 1024


#: Results of one operation (:attr:`OperationOutcome.result`).
DONE = "done"  #: applied (a dry run: would be applied)
FAILED = "failed"  #: failed; ``error`` says why
REFUSED = "refused"  #: refused by the region for good: the image needs an operator
POSTPONED = "postponed"  #: a removal step not taken: the region's run had a failure
STOPPED = "stopped"  #: interrupted by a stop request; what it had made was deleted
NOT_STARTED = "not started"  #: not begun: the run was asked to stop before it


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
    #: Operations interrupted or not started because the run was asked to stop.
    not_done: int = 0
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
        """True when no operation failed (operator statuses aside) and the run was
        not stopped before the end of the plan."""
        return self.errors == 0 and self.not_done == 0

    def summary(self) -> str:
        """The one-line summary logged per region."""
        verb = "dry run" if self.dry_run else "sync"
        server_side = (f", {self.copied_server_side} copied server-side"
                       if self.copied_server_side else "")
        ended = "STOPPED" if self.not_done else "done"
        return (f"{self.region}: {verb} {ended}: {self.ok} ok, {self.updated} updated, "
                f"{self.uploaded} uploaded ({self.replaced} replaced, {self.renamed} "
                f"renamed{server_side}), {self.obsoleted} obsoleted, {self.cleaned} cleaned"
                + (f" ({self.uncleaned} could not be)" if self.uncleaned else "") +
                f", {self.errors} errors, {self.needs_operator} need an operator, "
                f"{self.bytes_uploaded / MIB:.1f} MiB "
                + ("to transfer" if self.dry_run else "transferred") + self._lifecycle()
                + (f"; {self.not_done} operation(s) not done (stopped)" if self.not_done
                   else ""))

    def _lifecycle(self) -> str:
        """The lifecycle's part of the summary (empty when it did nothing)."""
        if not (self.retired or self.deleted or self.postponed):
            return ""
        text = f"; lifecycle: {self.retired} retired, {self.deleted} deleted"
        return text + (f", {self.postponed} postponed" if self.postponed else "")


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
