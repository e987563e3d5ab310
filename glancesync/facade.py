"""The ``GlanceSync`` class: the programmer's entry point.

A small facade: it loads the configuration, resolves ``target:region``
names, builds one adapter per region (lazily, cached for the object's life)
and delegates the work to the engine (:mod:`glancesync.plan`,
:mod:`glancesync.executor`), the data path (:mod:`glancesync.transfer`) and
the reports (:mod:`glancesync.report`).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence,
                    TextIO)

from glancesync import backends, backups, convert, listing, lock, report, scope, sharing
from glancesync.backends.base import RegionAdapter, Target
from glancesync.bandwidth import Bandwidth
from glancesync.config import ALWAYS_SHOWN, MASTER, Config, TargetConfig, load_config
from glancesync.errors import (ConfigError, CoordinationError, ExitStatus, GlanceSyncError,
                               LockedError, StoppedError, UsageError)
from glancesync.executor import Executor, RegionResult
from glancesync.executor.validation import Validation, cloud_environment
from glancesync.image import READ_ONLY_FIELDS, UPDATABLE_FIELDS, Image, metadata_diff
from glancesync.plan import (REMOVAL_STEPS, ImageStatus, RegionPlan, Status, Waves,
                             hold_removals, hold_waves, keep_promised_ids, make_plan)
from glancesync.plan.lifecycle import CLOCK_TOLERANCE
from glancesync.progress import ask
from glancesync.redaction import REDACTOR
from glancesync.regions import RegionRef, check_master_region, resolve_regions
from glancesync.retry import RetryingAdapter, RetryingTarget, RetryPolicy
from glancesync.runlog import RunLogs, default_run_dir, prune_runs, region_context
from glancesync.scope import Scope
from glancesync.selection import MasterSelection, select_master
from glancesync.serverside import CopySources
from glancesync.stopping import StopRequest
from glancesync.strategy import RegionTransfer
from glancesync.throughput import FILE_NAME as THROUGHPUT_FILE
from glancesync.throughput import Estimate, ThroughputLog, estimates
from glancesync.transfer import ImageCache, MasterImageSource

if TYPE_CHECKING:
    from glancesync.watch import Leadership, WatchMetrics, Watcher

LOG = logging.getLogger(__name__)



@dataclasses.dataclass
class _RegionsRun:
    """What every run over several regions records (status, dry run, sync).

    ``started`` and ``finished``: the run's times (seconds since the epoch);
    ``images``: the ``--image`` patterns it was limited to (none: every
    image); ``image_ids``: the master images it was limited to, by id
    (:meth:`GlanceSync.sync_images`; none: every image); ``estimates``: per
    region, what the pending work moves
    (:class:`~glancesync.throughput.Estimate`); ``stopped``: why the run
    was stopped before its end (a :class:`~glancesync.StoppedError`; the
    regions it did not reach are in ``failures`` with it), or None.
    """

    #: Per region name: its plan (a region that failed to plan has none).
    plans: dict[str, RegionPlan] = dataclasses.field(default_factory=dict)
    #: Per region name: the error that stopped the region as a whole.
    failures: dict[str, GlanceSyncError] = dataclasses.field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0
    images: tuple[str, ...] = ()
    estimates: dict[str, Estimate] = dataclasses.field(default_factory=dict)
    image_ids: tuple[str, ...] = ()
    stopped: StoppedError | None = None


@dataclasses.dataclass
class RunResult(_RegionsRun):
    """What a run over several regions did: per region, a result or an error.

    ``plans``, ``failures``, ``started``, ``finished`` (seconds since the
    epoch), ``images`` (the ``--image`` patterns; none: every image) and
    ``estimates`` (per region, what the pending work of a dry run moves).
    """

    #: Per region name: what its execution did.
    results: dict[str, RegionResult] = dataclasses.field(default_factory=dict)
    #: Whether nothing was changed (a dry run).
    dry_run: bool = False
    #: Bytes of master data downloaded by this run.
    bytes_downloaded: int = 0
    #: The folder of per-region logs of a ``parallel`` run.
    log_folder: Path | None = None
    #: With ``coordination_url``: the regions this host synchronised under its lock.
    done_here: list[str] = dataclasses.field(default_factory=list)
    #: With ``coordination_url``: per region found locked by another host (or run)
    #: when first tried, who held it (``"another host"`` when unknown). This host
    #: came back to it once free: usually to find it in sync (a no-op).
    held_elsewhere: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def failed_regions(self) -> list[str]:
        """Regions that failed: as a whole (``failures``) or in an operation."""
        return sorted(set(self.failures) |
                      {region for region, outcome in self.results.items()
                       if not outcome.success})

    @property
    def done_regions(self) -> list[str]:
        """Regions whose every operation succeeded."""
        failed = set(self.failed_regions)
        return sorted(region for region in self.results if region not in failed)

    def totals(self) -> str:
        """The run's counts, the one wording of the summary and of the log.

        ``"sync of 3 region(s): 2 done, 1 failed, 0 image(s) need an operator"``
        (``dry run of ...`` for a dry run).
        """
        verb = "dry run" if self.dry_run else "sync"
        done, failed = len(self.done_regions), len(self.failed_regions)
        operator = sum(outcome.needs_operator for outcome in self.results.values())
        return (f"{verb} of {done + failed} region(s): {done} done, {failed} failed, "
                f"{operator} image(s) need an operator")

    @property
    def exit_status(self) -> ExitStatus:
        """The script's exit status for this run (see :class:`~glancesync.ExitStatus`)."""
        if self.stopped is not None:
            return self.stopped.exit_status
        if self.failures:
            if any(e.exit_status == ExitStatus.USAGE for e in self.failures.values()):
                return ExitStatus.USAGE  # a configuration mistake (metadata_condition...)
            if all(isinstance(e, LockedError) for e in self.failures.values()):
                return ExitStatus.LOCKED
            if all(isinstance(e, (LockedError, CoordinationError))
                   for e in self.failures.values()):
                return ExitStatus.COORDINATION
            return ExitStatus.REGION_FAILED
        if any(not r.success for r in self.results.values()):
            return ExitStatus.REGION_FAILED
        if any(p.needs_operator for p in self.plans.values()):
            return ExitStatus.NEEDS_OPERATOR
        if self.dry_run and any(not p.in_sync for p in self.plans.values()):
            return ExitStatus.PENDING
        return ExitStatus.OK


@dataclasses.dataclass
class StatusReport(_RegionsRun):
    """Status of several regions: one :class:`~glancesync.ImageStatus` per image and region.

    ``plans``, ``failures``, ``started``, ``finished``, ``images`` and
    ``estimates`` as in :class:`~glancesync.RunResult`.
    """

    @property
    def statuses(self) -> list[ImageStatus]:
        return [s for plan in self.plans.values() for s in plan.statuses]

    @property
    def exit_status(self) -> ExitStatus:
        if self.stopped is not None:
            return self.stopped.exit_status
        if self.failures:
            if any(e.exit_status == ExitStatus.USAGE for e in self.failures.values()):
                return ExitStatus.USAGE
            return ExitStatus.REGION_FAILED
        if any(p.needs_operator for p in self.plans.values()):
            return ExitStatus.NEEDS_OPERATOR
        if any(not p.in_sync for p in self.plans.values()):
            return ExitStatus.PENDING
        return ExitStatus.OK


@dataclasses.dataclass
class _Round:
    """What a run shared between hosts needs to plan a region again under its lock."""

    master: MasterSelection
    scope: Scope
    result: RunResult
    sources: CopySources


def _each(pool: concurrent.futures.Executor,
          calls: Sequence[tuple[Any, ...]]) -> None:
    """Run ``(function, *args)`` calls in ``pool``; wait for all of them."""
    futures = [pool.submit(*call) for call in calls]
    for future in concurrent.futures.as_completed(futures):
        future.result()  # a bug in a worker must not pass silently


class GlanceSync:
    """Synchronise the images of Glance regions with the master region.

    ``config_parameters`` is the path of the configuration file (``str`` or
    :class:`os.PathLike`), a stream with the configuration (a file object
    or ``io.StringIO``), or an already loaded :class:`~glancesync.config.Config`;
    ``None`` reads ``$GLANCESYNC_CONFIG``, then ``/etc/glancesync.conf``,
    then the ``OS_*`` environment variables. ``overrides`` are
    ``section.key=value`` strings. ``progress`` shows progress bars (None:
    only when stderr is a terminal).

    ``stop``: the :class:`~glancesync.StopRequest` its runs obey (default: a
    new one; :meth:`stop` sets it). ``wait_lock``: seconds a sync waits for
    the lock of a region that another run holds (0, the default: fail at
    once with :class:`~glancesync.LockedError`; None: as long as it takes).

    :raises ConfigError: the configuration is missing, unreadable or invalid.
    :raises UsageError: ``wait_lock`` is negative or not a number.
    """

    def __init__(self, config_parameters: str | os.PathLike[str] | TextIO | Config | None = None,
                 *,
                 overrides: Sequence[str] = (), environ: Mapping[str, str] | None = None,
                 progress: bool | None = None, stop: StopRequest | None = None,
                 wait_lock: float | None = 0.0) -> None:
        if isinstance(config_parameters, Config):
            self.config = config_parameters
        else:
            self.config = load_config(config_parameters, overrides, environ)
        self.progress = progress
        if wait_lock is not None and not 0 <= wait_lock < float("inf"):
            raise UsageError(f"wait_lock must be 0 or more seconds (or None), not {wait_lock!r}")
        self.stop_request = stop if stop is not None else StopRequest()
        self.wait_lock = wait_lock
        self._targets: dict[str, Target] = {}
        self._adapters: dict[RegionRef, RegionAdapter] = {}
        self._guard = threading.RLock()
        self._region_sets: dict[str, frozenset[str]] = {}
        self._source: MasterImageSource | None = None
        self._warned: set[str] = set()
        self._projects: sharing.ProjectMapper | None = None
        self._bandwidth: Bandwidth | None = None  # bandwidth_limit's, once needed
        REDACTOR.add_secrets(self.config.secrets())

    # --- life cycle ----------------------------------------------------------

    def close(self) -> None:
        """Close every adapter and session opened by this object."""
        with self._guard:
            for adapter in self._adapters.values():
                adapter.close()
            for target in self._targets.values():
                target.close()
            self._adapters.clear()
            self._targets.clear()

    def stop(self, reason: str = "a stop was requested") -> None:
        """Stop the run under way, from any thread (a signal handler too).

        Nothing new starts (no region, no operation, no new image); a
        transfer under way is aborted at its next chunk, a wait (retry,
        server-side copy, lock) ends; the images the run created and did not
        finish are deleted and its locks released, as after a failed
        upload. The run then returns normally, its ``stopped`` set, with
        ``not started``/``stopped`` outcomes and the regions it did not reach
        in ``failures``. The request stays: later runs of this object stop
        at once (make a new object, or pass a new ``stop``).
        """
        self.stop_request.set(reason)

    def __enter__(self) -> "GlanceSync":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- regions -------------------------------------------------------------

    @property
    def master_region(self) -> str:
        """The fully qualified name of the master region."""
        return str(self._master_ref)

    @property
    def _master_ref(self) -> RegionRef:
        return RegionRef(MASTER, self.config.main.master_region)

    def target(self, name: str) -> Target:
        """The target called ``name`` (built on first use).

        :raises RegionNotFoundError: no target of that name.
        """
        with self._guard:
            if name not in self._targets:
                config = self.config.target(name)
                self._targets[name] = RetryingTarget(
                    backends.get_backend(config.backend).make_target(config),
                    self._retry_policy())
            return self._targets[name]

    def get_regions(self, omit_master_region: bool = True,
                    target: str = "master") -> list[str]:
        """The regions of ``target``, ordered by ``preferable_order``.

        Regions of ``master`` are bare names; others are ``target:Region``,
        so every returned name can be passed back to the other methods.

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        :raises GlanceSyncError: the target's regions cannot be listed (authentication,
            connection).
        """
        refs = self._resolve([f"{target}:"])
        if target == MASTER and not omit_master_region:
            refs.insert(0, self._master_ref)
        return [ref.name if ref.target == MASTER else str(ref) for ref in refs]

    def resolve_regions(self, regions: Sequence[str]) -> list[str]:
        """Fully qualified names for region arguments (``Region``, ``target:Region``, ``target:``).

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        """
        return [str(ref) for ref in self._resolve(regions)]

    def region_refs(self, regions: Sequence[str | RegionRef]) -> list[RegionRef]:
        """:class:`~glancesync.RegionRef` objects for region arguments (as
        :meth:`resolve_regions` checks them).

        Pass these on rather than their strings: a region name the catalog
        spells with a blank at its end keeps it (a string is read again,
        its outer blanks dropped).

        :raises RegionNotFoundError: an unknown target or region.
        :raises UsageError: an argument that is not a region name.
        """
        return self._resolve(regions)

    def _resolve(self, regions: Sequence[str | RegionRef]) -> list[RegionRef]:
        return resolve_regions(regions, self.config, lambda t: self.target(t).region_names(),
                               warn=self._warn_once)

    def _known_regions(self, target: str) -> frozenset[str]:
        """The region names of ``target``, listed once per object (a catalog can be huge)."""
        with self._guard:
            known = self._region_sets.get(target)
            if known is None:
                known = self._region_sets[target] = frozenset(
                    self.target(target).region_names())
            return known

    def _warn_once(self, message: str) -> None:
        """Log a warning about the configuration once in this object's life (a run)."""
        with self._guard:
            if message in self._warned:
                return
            self._warned.add(message)
        # It means "the configuration does not do what you think": shown on
        # every run, also under --quiet and cron (ALWAYS_SHOWN).
        LOG.warning("%s", message, extra={ALWAYS_SHOWN: True})

    def adapter(self, region: str | RegionRef) -> RegionAdapter:
        """The adapter of ``region`` (``target:Region``); checked to exist.

        Its idempotent calls are retried after transient failures
        (:class:`~glancesync.retry.RetryingAdapter`, ``retries`` and
        ``retry_wait`` of ``[main]``).

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        """
        ref = RegionRef.parse(region)
        with self._guard:
            if ref not in self._adapters:
                if ref == self._master_ref:
                    check_master_region(self.config, self.target(MASTER).region_names())
                elif ref.name not in self._known_regions(ref.target):
                    self._resolve([ref])  # raises the error naming the regions
                self._adapters[ref] = RetryingAdapter(
                    self.target(ref.target).adapter(ref), self._retry_policy())
            return self._adapters[ref]

    # --- reading ---------------------------------------------------------------

    def _master(self) -> MasterSelection:
        """The master selection of this run (members read if a target syncs them)."""
        master = self.adapter(self._master_ref)
        images = master.list_images()
        selection = select_master(images, master.project_id, self.config.main.master_region)
        listed = {image.id for image in images}
        for name, target in self.config.targets.items():
            for image_id in sorted(target.forcesyncs - set(selection.by_id())):
                why = ("is not synchronised: not an active image of the master project"
                       " with a name of its own" if image_id in listed
                       else "matches no image of the master region")
                self._warn_once(f"forcesyncs of target {name}: {image_id} {why}")
        if any(target.sync_members for target in self.config.targets.values()):
            selection = sharing.with_master_members(master, selection)
            with self._guard:
                self._projects = sharing.ProjectMapper(self.target(MASTER))
        return selection

    def _retry_policy(self) -> RetryPolicy:
        """Retries of transient failures, from ``retries`` and ``retry_wait``."""
        main = self.config.main
        # A stop request ends a wait between attempts at once.
        return RetryPolicy(retries=main.retries, initial_wait=main.retry_wait,
                           sleep=self.stop_request.wait)

    def get_images_region(self, region: str) -> list[dict[str, Any]]:
        """The project's images and the public images of ``region``, as dicts.

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        :raises GlanceSyncError: the region cannot be listed.
        """
        adapter = self.adapter(region)
        return [image.to_dict()
                for image in report.visible_images(adapter.list_images(), adapter.project_id)]

    def plan_region(self, region: str | RegionRef, master: MasterSelection | None = None,
                    images: Sequence[str] = (), *,
                    image_ids: Iterable[str] = ()) -> RegionPlan:
        """The plan of ``region``: per image status and the operations of a sync.

        ``images``: shell-style patterns of master image names; only those
        images (and the kernels and ramdisks they need) are in the plan
        (:func:`glancesync.scope.restrict`). ``image_ids``: only the master
        images of these ids, whatever became of them (see
        :meth:`sync_images`). Neither: every image.

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        :raises GlanceSyncError: the master or the region cannot be listed.
        """
        ref = RegionRef.parse(region)
        master = master or self._master()
        adapter = self.adapter(ref)
        target = self.config.target(ref.target).for_region(ref.name)
        regional = adapter.list_images()
        members = None
        if target.sync_members:
            with self._guard:
                projects = self._projects or sharing.ProjectMapper(self.target(MASTER))
                self._projects = projects
            regional, members = sharing.region_inputs(master, target, adapter, regional,
                                                      projects, self.target(ref.target))
        plan = make_plan(str(ref), master, regional, adapter.project_id, target,
                         now=self._clock(ref.target),
                         stalled_upload_age=self.config.main.stalled_upload_age,
                         members=members, transfer=self._region_transfer(ref))
        self._note_uncached(plan)
        return Scope.of(images, image_ids).restrict(plan, master)

    def _clock(self, target: str) -> datetime.datetime | None:
        """The time now by ``target``'s clock (None: this host's), on which marks and
        grace periods are measured, shared by every host; a host clock that
        differs from it by more than :data:`~glancesync.plan.lifecycle.CLOCK_TOLERANCE`
        is warned about (once)."""
        now = self.target(target).clock()
        if now is not None:
            host = datetime.datetime.now(datetime.timezone.utc)
            off = (host - now).total_seconds()
            if abs(off) > CLOCK_TOLERANCE:
                self._warn_once(f"this host's clock is {abs(off) / 3600:.1f} h"
                                f" {'ahead of' if off > 0 else 'behind'} the clock of target"
                                f" {target} (its Keystone): lifecycle marks and grace periods"
                                " use the target's; fix this host's time (NTP)")
        return now

    def _note_uncached(self, plan: RegionPlan) -> None:
        """Say in the status of each streamed upload whose image the cache cannot hold
        that it is streamed from the master for this region without caching."""
        for op in plan.operations:
            if (not op.uploads or op.master is None
                    or (op.transfer is not None and op.transfer.server_side)):
                continue
            why = self.source().uncached(op.master)
            status = plan.status_of(op.name) if why is not None else None
            if status is not None and status.status.is_pending:
                status.reason += (f"; streamed from the master for this region without"
                                  f" caching: {why}")

    def _region_transfer(self, region: str | RegionRef) -> RegionTransfer:
        """How copies may reach ``region``: its ``transfer`` and ``convert_to``, and
        what it offers for server-side copies.

        Only a region whose ``transfer`` is not ``stream`` and that is in the
        master's Keystone is asked for its import methods (once per adapter).

        :raises RegionNotFoundError: an unknown target or region.
        """
        ref = RegionRef.parse(region)
        config = self.config.target(ref.target).for_region(ref.name)
        transfer = RegionTransfer(config.transfer, config.convert_to, region=ref.name,
                                  master_region=self.config.main.master_region)
        if config.transfer == "stream":
            return transfer
        same_keystone = self.target(ref.target).location == self.target(MASTER).location
        adapter = self.adapter(ref)
        methods: frozenset[str] = frozenset()
        if same_keystone:
            try:
                methods = adapter.import_methods()
            except GlanceSyncError as error:
                LOG.warning("%s: cannot learn the import methods it offers (%s); "
                            "streaming", ref, error)
        return dataclasses.replace(transfer, same_keystone=same_keystone,
                                   same_credential=ref.target == MASTER,
                                   project_id=adapter.project_id, import_methods=methods)

    def get_status(self, region: str) -> list[ImageStatus]:
        """Structured status of every synchronised image in ``region``.

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        :raises GlanceSyncError: the master or the region cannot be listed.
        """
        master = self._master()
        plan = self.plan_region(region, master)
        self._hold_removals([plan], master)
        self._hold_waves({plan.region: plan})
        return plan.statuses

    def status(self, regions: Sequence[str] = (), images: Sequence[str] = (), *,
               image_ids: Iterable[str] = ()) -> StatusReport:
        """Status of several regions (``--show-status``); failures per region.

        ``images``: only the master images matching these shell-style
        patterns; ``image_ids``: only the master images of these ids (see
        :meth:`plan_region`).

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        :raises GlanceSyncError: the master region cannot be listed (a region that
            cannot is in ``failures``).
        """
        result = StatusReport(started=time.time(), images=tuple(images),
                              image_ids=tuple(sorted(set(image_ids))))
        refs = self._resolve(regions)
        self.stop_request.check()
        master = self._master()
        for ref in refs:
            try:
                self._not_stopped(ref)
                result.plans[str(ref)] = self.plan_region(ref, master, images,
                                                          image_ids=result.image_ids)
            except StoppedError as error:
                self._region_failed(str(ref), error, result)
            except GlanceSyncError as error:
                LOG.error("%s: cannot get the status: %s", ref, error)
                result.failures[str(ref)] = error
        if self.stop_request.is_set():
            result.stopped = self.stop_request.error()
        self._hold_removals(result.plans.values(), master)
        self._hold_waves(result.plans)
        result.estimates = estimates(self._throughput(), result.plans)
        result.finished = time.time()
        return result

    def _throughput(self) -> ThroughputLog:
        """The throughput measured by earlier syncs (``throughput.json`` in ``run_dir``)."""
        return ThroughputLog(self._run_dir() / THROUGHPUT_FILE)

    def _hold_removals(self, plans: Iterable[RegionPlan], master: MasterSelection | None = None,
                       *, record: bool = False) -> None:
        """The guards of removal steps over the plans of one run: the master listing
        compared with the last run's (``max_master_shrink``, :mod:`glancesync.listing`;
        with ``master``; ``record``: a sync that is no dry run), then ``max_deletes``
        (:func:`~glancesync.plan.hold_removals`), after the copies whose
        ``uuid_validity`` promises their id are hidden, not deleted."""
        plans = list(plans)
        if master is not None:
            removing = any(target.removal_policy in REMOVAL_STEPS
                           for target in self.config.targets.values())
            listing.guard(listing.ListingLog(self._run_dir() / listing.FILE_NAME),
                          self.lock_name(self._master_ref), len(master.listed_ids),
                          self.config.main.max_master_shrink, plans, record=record,
                          removing=removing)
        if any(plan.removals for plan in plans):
            keep_promised_ids(plans, (master or self._master()).by_id(),
                              datetime.datetime.now(datetime.timezone.utc))
        limit = self.config.main.max_deletes
        steps = hold_removals(plans, limit)
        if steps > limit:
            LOG.error("this run would take %d removal steps (hide, deactivate, delete), more"
                      " than max_deletes = %d: it takes none of them (statuses"
                      " error_max_deletes); check them, then allow them once with --config"
                      " max_deletes=%d", steps, limit, steps)

    def _hold_waves(self, plans: Mapping[str, RegionPlan]) -> None:
        """``rollout_waves`` over the plans of one run (:func:`~glancesync.plan.hold_waves`):
        the regions of earlier waves are listed (a region that cannot be is not ready)."""
        main = self.config.main
        if not main.rollout_waves:
            return
        waves = Waves(main.rollout_waves, main.wave_soak_hours, main.master_region)
        needed = sorted({previous for region, plan in plans.items()
                         if any(op.uploads for op in plan.operations)
                         for previous in waves.previous(region)})
        copies: dict[str, list[Image] | None] = {}
        for region in needed:
            try:
                adapter = self.adapter(region)
                # Only the project's own copies: another tenant's image carrying a
                # provenance record proves nothing.
                copies[region] = [image for image in adapter.list_images()
                                  if image.owner == adapter.project_id]
            except GlanceSyncError as error:
                LOG.warning("%s (rollout_waves): cannot be listed, its next wave waits: %s",
                            region, error)
                copies[region] = None
        held = hold_waves(plans, waves, copies, datetime.datetime.now(datetime.timezone.utc))
        if held:
            LOG.info("rollout_waves: %d new copies wait for their wave", held)

    # --- synchronising ---------------------------------------------------------

    def source(self) -> MasterImageSource:
        """The master image data source shared by every region of this object."""
        with self._guard:
            if self._source is None:
                main = self.config.main
                cache = ImageCache(main.cache_dir, main.cache_max_size)
                limits = convert.Limits(main.convert_max_virtual_size, main.convert_timeout)
                self._source = MasterImageSource(self.adapter(self._master_ref), cache,
                                                 main.images_dir, progress=self.progress,
                                                 limits=limits, stop=self.stop_request)
            return self._source

    def sync_region(self, region: str | RegionRef, dry_run: bool = False) -> RegionResult:
        """Synchronise one region with the master region.

        With ``dry_run`` nothing is changed anywhere: the actions that a sync
        would do are logged and returned. ``max_deletes`` bounds the removal
        steps of this region. Raises :class:`~glancesync.GlanceSyncError`
        when the region cannot be synchronised at all; per-image failures
        are in the result.

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        :raises LockedError: another run holds the region's lock.
        :raises ConfigError: the region converts disk formats and qemu-img is missing.
        :raises GlanceSyncError: the region cannot be synchronised at all.
        """
        ref = RegionRef.parse(region)
        self._check_conversion_tool([ref])
        return self._sync_one(ref, self._master(), dry_run)

    def sync(self, regions: Sequence[str] = (), *, dry_run: bool = False,
             parallel: bool = False, images: Sequence[str] = ()) -> RunResult:
        """Synchronise several regions (default: every region of ``master:``).

        ``images``: only the master images matching these shell-style
        patterns (see :meth:`plan_region`); every other image is left alone.
        A sync records the throughput of its uploads per region, which later
        dry runs and status reports turn into estimates (``estimates``).

        Master data is downloaded once whatever the number of regions. With
        ``parallel``, up to ``max_children`` regions are synchronised at once,
        each with its own log file in the run folder. A failing region does
        not stop the others: see :attr:`~glancesync.RunResult.failures`. Every region is
        planned before any is changed: ``max_deletes`` bounds the removal
        steps of the whole run.

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        :raises ConfigError: a region converts disk formats and qemu-img is missing.
        :raises GlanceSyncError: the master region cannot be listed (a failing region is
            in ``failures``).
        """
        return self._sync_scoped(regions, Scope.of(images), dry_run, parallel)

    def sync_images(self, image_ids: Iterable[str], regions: Sequence[str] = (), *,
                    dry_run: bool = False, parallel: bool = False) -> RunResult:
        """Synchronise the master images ``image_ids`` (master UUIDs) to several regions
        (default: every region of ``master:``), with the whole machinery of
        :meth:`sync`: selection, conflicts, the lifecycle and its guards,
        locks, verification.

        Whatever became of each image in the master region: a new or
        changed image is uploaded or updated where it is selected; an image
        deleted or no longer selected has its copies go through the
        lifecycle (``removal_policy``, grace, ``max_deletes`` counting only
        these images' steps; recognised by their provenance); an image that
        is not selected and has no copy is left alone. Its leftovers, the
        ``error_duplicate`` line of its name and the ``NAME.old`` copies of
        its name go with it; every other image is left alone and not
        reported. What an event of the master region names (see the
        ``watch`` of issue 24): one id, every covered region.

        :raises UsageError: no image id (a sync of every image is :meth:`sync`).
        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises ConfigError: a region converts disk formats and qemu-img is missing.
        :raises GlanceSyncError: the master region cannot be listed (a failing region is
            in ``failures``).
        """
        ids = frozenset(image_id for image_id in image_ids if image_id)
        if not ids:
            raise UsageError("sync_images needs the id of at least one master image"
                             " (sync synchronises every image)")
        return self._sync_scoped(regions, Scope(image_ids=ids), dry_run, parallel)

    def _sync_scoped(self, regions: Sequence[str], scope: Scope, dry_run: bool,
                     parallel: bool) -> RunResult:
        """A sync of ``regions`` limited to ``scope``: every region planned, then
        ``max_deletes`` over the plans, then every region executed."""
        result = RunResult(dry_run=dry_run, started=time.time(), images=scope.patterns,
                           image_ids=tuple(sorted(scope.image_ids)))
        refs = self._resolve(regions)
        self._check_conversion_tool(refs)
        self.stop_request.check()
        if self.config.main.coordination_url and not dry_run:
            # Unreachable: one clear error before anything is read or changed.
            self._coordination().coordinator()
        master = self._master()
        # The source lives as long as this object: count this run's bytes only.
        downloaded_before = self._source.bytes_downloaded if self._source else 0
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            pool = self._workers(stack, refs, result, parallel)
            with self._stopping_on_interrupt():
                self._plan_and_execute(pool, refs, master, result, scope)
        if self.stop_request.is_set():
            result.stopped = self.stop_request.error()
        if self._source is not None:
            result.bytes_downloaded = self._source.bytes_downloaded - downloaded_before
        self._measure(result)
        result.finished = time.time()
        # The scripts print the same totals at the end (cli.summary_lines): the
        # console leaves this record out, log files keep it.
        LOG.info("%s; %.1f s", result.totals(), time.monotonic() - started,
                 extra={"summary": True})
        return result

    def _plan_and_execute(self, pool: concurrent.futures.Executor, refs: Sequence[RegionRef],
                          master: MasterSelection, result: RunResult, scope: Scope) -> None:
        """Plan every region, then ``max_deletes`` over the plans, then execute them."""
        dry_run = result.dry_run
        _each(pool, [(self._plan_guarded, ref, master, result, scope) for ref in refs])
        self._hold_removals(result.plans.values(), master, record=not dry_run)
        self._hold_waves(result.plans)
        self._report_unknown_ids(scope, result)
        sources = CopySources()
        for ref in refs:  # every plan is known: offer its verified copies as sources
            if str(ref) in result.plans:
                self._offer_copies(ref, result.plans[str(ref)], master, sources)
        planned = [ref for ref in refs if str(ref) in result.plans]
        if dry_run or not self.config.main.coordination_url:
            _each(pool, [(self._execute_guarded, ref, dry_run, result, sources)
                         for ref in planned])
        else:
            self._execute_shared(pool, planned, _Round(master, scope, result, sources))

    @contextlib.contextmanager
    def _stopping_on_interrupt(self) -> Iterator[None]:
        """A ``KeyboardInterrupt`` (or ``SystemExit``) in the caller's thread while the
        workers run sets the stop request: they end as a stopped run does
        (half-made images deleted, locks released) before it goes on. (Any
        other exception is a bug: the workers finish their regions, as before.)"""
        try:
            yield
        except (KeyboardInterrupt, SystemExit) as error:
            self.stop_request.set(f"interrupted ({type(error).__name__})")
            raise

    def _workers(self, stack: contextlib.ExitStack, refs: Sequence[RegionRef],
                 result: RunResult, parallel: bool) -> concurrent.futures.Executor:
        """The workers of a run: one; or, ``parallel``, up to ``max_children`` with a
        log file per region in a new run folder (the oldest ones pruned)."""
        workers = max(1, self.config.main.max_children) if parallel else 1
        if parallel:
            names = [str(ref) for ref in refs]
            run_dir = self._run_dir()
            if self.config.main.keep_runs:  # this run's folder is one of them
                prune_runs(run_dir, self.config.main.keep_runs - 1)
            result.log_folder = stack.enter_context(RunLogs(run_dir, names)).folder
        return stack.enter_context(concurrent.futures.ThreadPoolExecutor(workers))

    def _measure(self, result: RunResult) -> None:
        """A dry run's estimates; the upload throughput a sync measured, recorded."""
        measured = self._throughput()
        if result.dry_run:
            result.estimates = estimates(measured, result.plans)
            return
        added = [measured.record(region, [(o.bytes, o.transfer_seconds)
                                          for o in outcome.outcomes])
                 for region, outcome in sorted(result.results.items())]
        if any(added):
            measured.save()

    @staticmethod
    def _report_unknown_ids(scope: Scope, result: RunResult) -> None:
        """Log the master image ids of a named sync that no region has anything about."""
        seen = {s.master_id for plan in result.plans.values() for s in plan.statuses}
        for image_id in sorted(scope.image_ids - seen):
            LOG.info("image %s: nothing to do in %d region(s) (not selected, or unknown,"
                     " and no copy)", image_id, len(result.plans))

    def _plan_guarded(self, ref: RegionRef, master: MasterSelection,
                      result: RunResult, scope: Scope = Scope()) -> None:
        name = str(ref)
        with region_context(name):
            try:
                self._not_stopped(ref)
                result.plans[name] = self.plan_region(ref, master, scope.patterns,
                                                      image_ids=scope.image_ids)
            except GlanceSyncError as error:
                self._region_failed(name, error, result)

    def _execute_guarded(self, ref: RegionRef, dry_run: bool, result: RunResult,
                         sources: CopySources) -> None:
        name = str(ref)
        with region_context(name):
            try:
                self._not_stopped(ref)
                result.results[name] = self._execute(ref, result.plans[name], dry_run, sources)
            except GlanceSyncError as error:
                self._region_failed(name, error, result)

    def _not_stopped(self, ref: RegionRef) -> None:
        """Start nothing in ``ref`` once a stop was requested (a ``StoppedError`` saying
        the region was not reached)."""
        if self.stop_request.is_set():
            error = self.stop_request.error(str(ref))
            error.message = f"not synchronised: {error.message}"
            raise error

    @staticmethod
    def _region_failed(name: str, error: GlanceSyncError, result: _RegionsRun) -> None:
        """Record that region ``name`` failed (or was not reached: stopped) as a whole."""
        # The scripts' summary has a line for it: the console leaves this
        # record out, log files keep it.
        if isinstance(error, StoppedError):
            LOG.warning("%s: %s", name, error.message, extra={"summary": True})
        else:
            LOG.error("%s: synchronisation failed: %s", name, error, extra={"summary": True})
        result.failures[name] = error

    def _coordination(self) -> lock.Coordination:
        """This process's session with ``coordination_url``."""
        main = self.config.main
        return lock.coordination(main.coordination_url or "", main.lock_ttl)

    def _execute_shared(self, pool: concurrent.futures.Executor, refs: Sequence[RegionRef],
                        round_: _Round) -> None:
        """Execute ``refs`` as one of several hosts sharing them (``coordination_url``).

        First the regions nobody holds (a region held elsewhere is noted in
        ``held_elsewhere`` and skipped), then the skipped ones, each waited
        for until free. Every region is planned again once its lock is held:
        another host may have synchronised it meanwhile (then nothing is
        left to do), or died half-way (then this host finishes it).
        """
        _each(pool, [(self._execute_round, ref, round_, False) for ref in refs])
        _each(pool, [(self._execute_round, ref, round_, True) for ref in refs
                     if str(ref) in round_.result.held_elsewhere])

    def _execute_round(self, ref: RegionRef, round_: _Round, wait: bool) -> None:
        """One region of a shared round: its lock (now, or ``wait`` until free), a new
        plan under the lock, the execution; a failure is recorded, not raised."""
        name, result = str(ref), round_.result
        with region_context(name):
            try:
                stop = self.stop_request.scoped()  # a lock lost stops this region only
                with lock.hold(self.region_lock(ref), None if wait else 0.0, stop):
                    plan = self._replan(ref, round_)
                    result.results[name] = self._execute(ref, plan, False, round_.sources,
                                                         locked=stop)
                result.done_here.append(name)  # not if the lock was lost meanwhile
            except LockedError as error:
                if wait:  # a wait without end: only a broken lock gives up
                    result.failures[name] = error
                    return
                result.held_elsewhere[name] = error.holder or "another host"
                LOG.info("%s: held by %s: coming back to it once free", name,
                         result.held_elsewhere[name])
            except GlanceSyncError as error:
                LOG.error("%s: synchronisation failed: %s", name, error,
                          extra={"summary": True})
                result.failures[name] = error
                result.results.pop(name, None)

    def _replan(self, ref: RegionRef, round_: _Round) -> RegionPlan:
        """``ref``'s plan made again under its lock, within the run's ``max_deletes``:
        none of its removals if the first plan's were held, else what the other
        regions' plans leave."""
        name, result = str(ref), round_.result
        first = result.plans[name]
        plan = self.plan_region(ref, round_.master, round_.scope.patterns,
                                image_ids=round_.scope.image_ids)
        held = any(s.status is Status.ERROR_MAX_DELETES for s in first.statuses)
        others = sum(len(p.removals) for n, p in result.plans.items() if n != name)
        hold_removals([plan], 0 if held else max(0, self.config.main.max_deletes - others))
        result.plans[name] = plan
        return plan

    def _sync_one(self, ref: RegionRef, master: MasterSelection, dry_run: bool) -> RegionResult:
        with region_context(str(ref)):
            plan = self.plan_region(ref, master)
            self._hold_removals([plan], master, record=not dry_run)
            self._hold_waves({plan.region: plan})
            return self._execute(ref, plan, dry_run)

    def _check_conversion_tool(self, refs: Sequence[RegionRef]) -> None:
        """Stop before any work when a region converts and qemu-img is missing."""
        for ref in refs:
            wanted = self.config.target(ref.target).for_region(ref.name).convert_to
            if wanted:
                convert.require_qemu_img(f"convert_to = {wanted} of region {ref}")
                return

    def _offer_copies(self, ref: RegionRef, plan: RegionPlan, master: MasterSelection,
                      sources: CopySources) -> None:
        """Offer the region's copies of master content as sources of server-side copies:
        only GlanceSync's own verified copies (``plan.relays``), never another
        project's image, whose properties Glance would copy."""
        transfer = self._region_transfer(ref)
        for status in plan.statuses:
            image = master.candidates.get(status.name)
            if (status.status in (Status.OK, Status.PENDING_METADATA) and status.regional_id
                    and image is not None and image.id == status.master_id
                    and plan.relays.get(image.id) == status.regional_id
                    and not transfer.converts(image)):
                sources.add(ref.target, ref.name, image.id, status.regional_id)

    def _execute(self, ref: RegionRef, plan: RegionPlan, dry_run: bool,
                 sources: CopySources | None = None,
                 locked: StopRequest | None = None) -> RegionResult:
        """Execute ``plan`` under the region's lock; ``locked``: the caller holds it,
        and this is the stop request of the work under it.

        :raises CoordinationError: the lock was lost during the execution (its work
            stopped: the transfer under way aborted, what it half made deleted).
        """
        adapter = self.adapter(ref)
        config = self.config.target(ref.target).for_region(ref.name)
        # The region's own request: the run's stop, or its lock lost (lock.hold).
        stop = locked if locked is not None else self.stop_request.scoped()
        options = {"retry": self._retry_policy(), "progress": self.progress,
                   "sources": sources, "import_timeout": config.import_timeout,
                   "saving_timeout": config.saving_timeout,
                   "validation": self._validation(ref),
                   "caps": self._caps(config), "stop": stop}
        if dry_run or locked is not None:  # nothing to lock, or the caller holds it
            return Executor(adapter, self.source(), dry_run=dry_run, **options).execute(plan)
        with lock.hold(self.region_lock(ref), self.wait_lock, stop):
            return Executor(adapter, self.source(), dry_run=False, **options).execute(plan)

    def _validation(self, ref: RegionRef) -> Validation | None:
        """The region's ``validate_command`` with its time limit and cloud, or None."""
        config = self.config.target(ref.target).for_region(ref.name)
        if not config.validate_command:
            return None
        return Validation.of(config.validate_command, config.validate_timeout,
                             cloud_environment(config.settings, ref.name))

    def _caps(self, config: TargetConfig) -> list[Bandwidth]:
        """The bandwidth caps of an execution: this object's (``bandwidth_limit``,
        shared by every region it synchronises) and the region's own
        (``region_bandwidth_limit``, new for each execution)."""
        caps = []
        with self._guard:
            if self.config.main.bandwidth_limit and self._bandwidth is None:
                self._bandwidth = Bandwidth(self.config.main.bandwidth_limit)
            if self._bandwidth is not None:
                caps.append(self._bandwidth)
        if config.region_bandwidth_limit:
            caps.append(Bandwidth(config.region_bandwidth_limit))
        return caps

    def _run_dir(self) -> Path:
        if self.config.main.run_dir:
            return self.config.main.run_dir
        return default_run_dir(self.lock_name(self._master_ref))

    def lock_name(self, region: str | RegionRef) -> str:
        """The name of ``region``'s lock: ``Region@<Keystone URL or folder>``.

        Keyed by where the region lives, not by the configuration's target
        names, so runs of different configurations on the same region
        exclude each other and unrelated federations never do.

        :raises UsageError: ``region`` is not one region's name.
        """
        ref = RegionRef.parse(region)
        return f"{ref.name}@{self.target(ref.target).location}"

    def region_lock(self, region: str | RegionRef) -> lock.Lock:
        """The lock a sync of ``region`` holds, of the kind the configuration asks for
        (:func:`glancesync.lock.make_lock`: a file lock in ``$GLANCESYNC_LOCK_DIR``,
        ``lock_dir`` or the machine-wide folder), not taken yet.

        :raises UsageError: ``region`` is not one region's name.
        """
        return lock.make_lock(self.lock_name(region), self.config.main)

    # --- continuous propagation ----------------------------------------------------

    def watch(self, regions: Sequence[str] = (), *, stop: threading.Event | None = None,
              leadership: Leadership | None = None,
              metrics: WatchMetrics | None = None, pool: str | None = None,
              started: Callable[[Watcher], None] | None = None) -> None:
        """Keep ``regions`` (default: every region of ``master:``) in sync from the master
        Glance's notifications until ``stop`` is set (from any thread; a signal
        handler may set it): each event has its image synchronised with
        :meth:`sync_images`, bursts coalesced; a whole :meth:`sync` runs at start,
        every ``reconcile_interval`` seconds and when the bus comes back. Setting
        ``stop`` also stops the sync in progress (:meth:`stop`: transfers aborted,
        the images it did not finish deleted); this object's later runs stop at
        once. ``leadership``: an object
        with ``is_leader() -> bool`` (and optionally ``close()``) telling whether
        this watcher acts (default: with ``coordination_url``, the leader election
        of :meth:`watch_group` through that service, resigned when the watcher
        stops; else always; see :mod:`glancesync.watch`).
        ``started(watcher)`` is called once the endpoint is bound and the
        listener started (its ``address``: the bound ``(host, port)``).
        ``[main]`` options: ``notifications_url``, ``notifications_topic``,
        ``reconcile_interval``, ``watch_listen``.

        :raises ConfigError: ``notifications_url`` is missing or not a transport URL.
        :raises UsageError: ``watch_listen`` is not a free loopback ``HOST:PORT``;
            an argument that is not a region name.
        :raises RegionNotFoundError: an unknown target or region.
        """
        watcher = self.watcher(regions, stop=stop, leadership=leadership, metrics=metrics,
                               pool=pool)
        if started is not None:
            watcher.on_started = started
        watcher.run()

    def watcher(self, regions: Sequence[str] = (), *, stop: threading.Event | None = None,
                leadership: Leadership | None = None,
                metrics: WatchMetrics | None = None,
                pool: str | None = None) -> Watcher:
        """The :class:`~glancesync.watch.Watcher` that :meth:`watch` runs, not started
        (its ``stop()`` and ``health()`` for a program that runs it in a thread).
        ``pool``: the name of its listener pool, its queue on the bus (default:
        :func:`~glancesync.watch.pool_name`, the same after a restart on this host
        for these regions, so events sent meanwhile wait in the queue).

        :raises ConfigError: ``notifications_url`` is missing.
        :raises RegionNotFoundError: an unknown target or region (when the catalog
            answers; a catalog down now is retried by the watcher).
        """
        # Imported on first use: oslo.messaging is heavy, and only the watcher needs it.
        # (Call this first from the main thread: see glancesync.watch.bus.)
        from glancesync import watch
        main = self.config.main
        if not main.notifications_url:
            raise ConfigError("missing: the oslo.messaging transport URL of the master"
                              " Glance's notifications (e.g. rabbit://USER:PASS@HOST:5672/)"
                              " is needed to watch", section="main",
                              option="notifications_url")
        try:
            self.resolve_regions(regions)
        except GlanceSyncError as error:
            if isinstance(error, UsageError):
                raise
            # A catalog down now: the watcher's syncs retry.
            LOG.warning("cannot check the regions now (%s); watching all the same", error)
        listen = main.watch_listen
        settings = watch.WatchSettings(
            notifications_url=main.notifications_url, topic=main.notifications_topic,
            reconcile_interval=main.reconcile_interval,
            listen=None if (listen or "").lower() in ("", "none", "off") else listen,
            pool=pool or watch.pool_name(self.lock_name(self._master_ref), regions),
            retry_wait=max(main.retry_wait, 1.0) * 5)
        if leadership is None:
            leadership = lock.make_leadership(main, group=self.watch_group(regions))
        return watch.Watcher(self, list(regions), settings, leadership=leadership, stop=stop,
                             metrics=metrics)

    def watch_group(self, regions: Sequence[str] = ()) -> str:
        """The name of the leader election of the watchers of ``regions`` (region
        arguments, as :meth:`watch` takes them) with ``coordination_url``:
        ``glancesync-watch`` followed by the master region's lock name
        (:meth:`lock_name`: where it lives, not what the configuration calls
        it) and the region arguments, sorted. Watchers of one federation and the
        same regions elect one leader; those of another federation sharing the
        same coordination service (or of other regions) elect their own.
        """
        return "\n".join(["glancesync-watch", self.lock_name(self._master_ref),
                          *sorted(set(regions))])

    # --- reports -----------------------------------------------------------------

    def print_images_master_region(self, file: TextIO | None = None) -> None:
        """Print the master images that are synchronised to the other regions."""
        out = file or sys.stdout
        selection = self._master()
        target = self.config.target(MASTER)
        images = sorted(selection.synchronised(target).values(), key=lambda i: i.name or "")
        for line in report.master_report(self.config.main.master_region, images):
            print(line, file=out)

    def print_images(self, region: str | RegionRef, file: TextIO | None = None) -> None:
        """Print a report of ``region``'s images, marking anomalies (see legend).

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        """
        out = file or sys.stdout
        ref = RegionRef.parse(region)
        adapter = self.adapter(ref)
        master = self._master()
        images = report.visible_images(adapter.list_images(), adapter.project_id)
        target = self.config.target(ref.target)
        for line in report.region_report(str(ref), images, master.candidates,
                                         target.metadata_set):
            print(line, file=out)

    def backup_glancemetadata_region(self, region: str | RegionRef,
                                     path: str | Path | None = None,
                                     folder: Path | None = None) -> Path:
        """Save the metadata of ``region``'s images (project's and public).

        The file is written in ``folder``, else in a new
        ``backup_glance_<timestamp>/`` under ``path`` (default: the current
        directory); its path is returned. It holds the whole image model
        the sync keeps: fields, user
        properties, tags, ``os_hidden``, members by project name and
        domain, GlanceSync's ``glancesync.*`` marks.

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        :raises UsageError: the backup folder cannot be created.
        """
        ref = RegionRef.parse(region)
        adapter = self.adapter(ref)
        folder = folder or report.backup_folder(Path(path) if path else Path.cwd())
        return backups.save(adapter, self.target(ref.target), folder, ref)

    def backup(self, regions: Sequence[str] = (), path: str | Path | None = None) -> list[Path]:
        """Back up several regions into one ``backup_glance_<timestamp>`` folder.

        :raises RegionNotFoundError: an unknown target or region (the message lists
            those that exist).
        :raises UsageError: an argument that is not a region name.
        :raises UsageError: the backup folder cannot be created.
        :raises StoppedError: a stop was requested before the last region.
        """
        refs = self._resolve(regions)
        folder = report.backup_folder(Path(path) if path else Path.cwd())
        paths = []
        for ref in refs:
            self.stop_request.check(str(ref))  # the files written so far are kept
            paths.append(self.backup_glancemetadata_region(ref, folder=folder))
        return paths

    # --- changing one image ------------------------------------------------------

    def delete_image(self, region: str, uuid: str, confirm: bool = True) -> bool:
        """Delete image ``uuid`` from ``region``; this cannot be undone.

        With ``confirm`` (the default) the user is asked on the terminal (the
        question on stderr, the answer from stdin);
        without a terminal the deletion is refused. Returns True if deleted.

        :raises ImageNotFoundError: no such image in the region.
        :raises ConflictError: the image is protected.
        :raises UsageError: ``confirm`` without a terminal to ask on.
        """
        adapter = self.adapter(region)
        image = adapter.get_image(uuid)
        if confirm:
            if not sys.stdin.isatty():
                raise UsageError("deleting an image needs a confirmation; no terminal "
                                 "to ask on: call delete_image(..., confirm=False)")
            answer = ask(f"Delete image {image.name} ({uuid}) from {region}? "
                         "This cannot be undone [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                LOG.info("%s: deletion of %s cancelled", region, uuid)
                return False
        adapter.delete_image(uuid)
        LOG.info("%s: deleted image %s (%s)", region, image.name, uuid)
        return True

    def update_metadata_image(self, region: str, image: Image | Mapping[str, Any]) -> Image:
        """Update an image's metadata in ``region`` from ``image``.

        ``image`` is an :class:`~glancesync.Image` or a dict as returned by
        :meth:`get_images_region`; its ``id`` names the image (it cannot be
        changed). ``name``, ``visibility`` (or ``is_public``: whichever of the
        two differs from the image; ``visibility`` if both do), ``min_ram``,
        ``min_disk``, ``protected`` and user properties are set; a property
        whose value is ``None`` is removed. Other read-only fields are ignored.

        :raises UsageError: the image has no ``id``, or a value the service refuses.
        :raises ImageNotFoundError: no such image in the region.
        """
        data = image.to_dict() if isinstance(image, Image) else dict(image)
        if isinstance(image, Image):
            data = {**data, **image.properties}
        uuid = data.get("id")
        if not uuid:
            raise UsageError("the image to update has no 'id'")
        adapter = self.adapter(region)
        current = adapter.get_image(uuid)
        if "is_public" in data:
            # A dict of get_images_region holds both fields: the one the caller
            # changed wins; visibility when both were changed.
            wanted = bool(data.pop("is_public"))
            if (data.get("visibility") in (None, current.visibility)
                    and wanted != current.is_public):
                data["visibility"] = "public" if wanted else "private"
        fields = {k: v for k, v in data.items() if k in UPDATABLE_FIELDS}
        properties = {k: None if v is None else str(v) for k, v in data.items()
                      if k not in UPDATABLE_FIELDS and k not in READ_ONLY_FIELDS}
        changes, remove = metadata_diff(current, fields, properties)
        if not changes and not remove:
            LOG.info("%s: image %s already up to date", region, uuid)
            return current
        updated = adapter.update_image(uuid, changes, remove)
        LOG.info("%s: updated image %s: set %s, removed %s", region, uuid,
                 ", ".join(sorted(changes)) or "nothing", ", ".join(remove) or "nothing")
        return updated


    def restore_backup(self, region: str | RegionRef, backup_file: str | Path,
                       dry_run: bool = False, force: bool = False) -> list[str]:
        """Re-apply the metadata saved in ``backup_file`` to ``region``'s images.

        Every line of the file is checked first (also for a dry run): one
        malformed line and nothing is changed. The file must have been
        recorded for ``region``; a backup of another region is refused
        unless ``force``, and then the region-specific ids (``kernel_id``,
        ``ramdisk_id``) are not restored. Only the project's own images are
        changed: a saved public image of another project is left alone.
        Images are found by id, else by name. Saved visibility,
        ``min_ram``, ``min_disk``, ``protected``, user properties and (a
        backup of version 2) ``os_hidden``, tags, members and GlanceSync's
        marks are set; user properties (and, version 2, marks and members)
        that were not saved are removed. Data is never touched. Returns the
        ids of the images changed (or that would be, in a dry run).

        :raises UsageError: the backup file cannot be read, or it was recorded
            for another region (without ``force``).
        :raises ConfigError: a line of the backup file is malformed.
        """
        ref = RegionRef.parse(region)
        return backups.restore(self.adapter(ref), self.target(ref.target), ref,
                               Path(backup_file), dry_run=dry_run, force=force)
