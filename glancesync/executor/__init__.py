"""Apply a :class:`~glancesync.plan.model.RegionPlan` to a region.

:class:`Executor` is the one place that changes a region. Every change goes
through one choke point (:meth:`RegionActions.act
<glancesync.executor.actions.RegionActions.act>`), which logs it and, in a
dry run, does not call the adapter: a dry run changes nothing, anywhere.

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

The package, by concern:

=============================================  ==========================================
:mod:`~glancesync.executor.run`                 :class:`Executor`: one handler per kind
:mod:`~glancesync.executor.actions`             the choke point, honouring dry run
:mod:`~glancesync.executor.upload`              the upload path, stage by stage; verification
:mod:`~glancesync.executor.stream`              a new image; data streamed, restarted
:mod:`~glancesync.executor.servercopy`          server-side copies and their fall-back
:mod:`~glancesync.executor.steps`               metadata, sharing, obsolete, removal, clean-up
:mod:`~glancesync.executor.results`             :class:`RegionResult`, :class:`OperationOutcome`
=============================================  ==========================================
"""
from __future__ import annotations

from glancesync.executor.actions import VERBS as _VERBS
from glancesync.executor.results import (DONE, FAILED, MIB, NOT_STARTED, POSTPONED,
                                         REFUSALS, REFUSED, STOPPED, OperationOutcome, RegionResult, is_refusal)
from glancesync.executor.run import HANDLERS, Executor, Handler
from glancesync.executor.stream import SETTLE_POLL, SETTLE_TIME, ImageSource

#: The handler of each kind of operation (the name the tests know).
_HANDLERS = HANDLERS

__all__ = ["DONE", "FAILED", "HANDLERS", "MIB", "NOT_STARTED", "POSTPONED", "REFUSALS",
           "REFUSED", "STOPPED", "SETTLE_POLL", "SETTLE_TIME", "Executor", "Handler", "ImageSource",
           "OperationOutcome", "RegionResult", "is_refusal"]
