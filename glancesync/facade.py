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
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

from glancesync import report
from glancesync.adapters.base import RegionAdapter
from glancesync.config import MASTER, Config, TargetConfig, load_config
from glancesync.errors import ExitStatus, GlanceSyncError, LockedError, UsageError
from glancesync.executor import Executor, RegionResult
from glancesync.image import READ_ONLY_FIELDS, UPDATABLE_FIELDS, Image, metadata_diff
from glancesync.lock import RegionLock
from glancesync.plan import ImageStatus, RegionPlan, make_plan
from glancesync.redaction import REDACTOR
from glancesync.regions import parse_region, qualify, resolve_regions
from glancesync.retry import RetryingAdapter, RetryPolicy
from glancesync.runlog import RunLogs, region_context
from glancesync.selection import MasterSelection, select_master
from glancesync.targets import Target
from glancesync.transfer import ImageCache, MasterImageSource

LOG = logging.getLogger(__name__)



@dataclasses.dataclass
class RunResult:
    """What a run over several regions did: per region, a result or an error."""

    results: dict[str, RegionResult] = dataclasses.field(default_factory=dict)
    plans: dict[str, RegionPlan] = dataclasses.field(default_factory=dict)
    failures: dict[str, GlanceSyncError] = dataclasses.field(default_factory=dict)
    dry_run: bool = False
    bytes_downloaded: int = 0
    log_folder: Path | None = None

    @property
    def exit_status(self) -> ExitStatus:
        """The script's exit status for this run (see :class:`ExitStatus`)."""
        if self.failures:
            if all(isinstance(e, LockedError) for e in self.failures.values()):
                return ExitStatus.LOCKED
            return ExitStatus.REGION_FAILED
        if any(not r.success for r in self.results.values()):
            return ExitStatus.REGION_FAILED
        if any(p.needs_operator for p in self.plans.values()):
            return ExitStatus.NEEDS_OPERATOR
        if self.dry_run and any(not p.in_sync for p in self.plans.values()):
            return ExitStatus.PENDING
        return ExitStatus.OK


@dataclasses.dataclass
class StatusReport:
    """Status of several regions: one :class:`ImageStatus` per image and region."""

    plans: dict[str, RegionPlan] = dataclasses.field(default_factory=dict)
    failures: dict[str, GlanceSyncError] = dataclasses.field(default_factory=dict)

    @property
    def statuses(self) -> list[ImageStatus]:
        return [s for plan in self.plans.values() for s in plan.statuses]

    @property
    def exit_status(self) -> ExitStatus:
        if self.failures:
            return ExitStatus.REGION_FAILED
        if any(p.needs_operator for p in self.plans.values()):
            return ExitStatus.NEEDS_OPERATOR
        if any(not p.in_sync for p in self.plans.values()):
            return ExitStatus.PENDING
        return ExitStatus.OK


class GlanceSync:
    """Synchronise the images of Glance regions with the master region.

    ``config_parameters`` is a stream with the configuration (a file object
    or ``io.StringIO``), or an already loaded :class:`~glancesync.config.Config`;
    ``None`` reads ``$GLANCESYNC_CONFIG``, then ``/etc/glancesync.conf``,
    then the ``OS_*`` environment variables. ``overrides`` are
    ``section.key=value`` strings. ``progress`` shows progress bars (None:
    only when stderr is a terminal).
    """

    def __init__(self, config_parameters: TextIO | Config | None = None, *,
                 overrides: Sequence[str] = (), environ: Mapping[str, str] | None = None,
                 progress: bool | None = None) -> None:
        if isinstance(config_parameters, Config):
            self.config = config_parameters
        else:
            self.config = load_config(config_parameters, overrides, environ)
        self.progress = progress
        self._targets: dict[str, Target] = {}
        self._adapters: dict[str, RegionAdapter] = {}
        self._guard = threading.RLock()
        self._source: MasterImageSource | None = None
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

    def __enter__(self) -> "GlanceSync":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- regions -------------------------------------------------------------

    @property
    def master_region(self) -> str:
        """The fully qualified name of the master region."""
        return qualify(MASTER, self.config.main.master_region)

    def target(self, name: str) -> Target:
        """The target called ``name`` (built on first use)."""
        from glancesync.keystone import make_target
        with self._guard:
            if name not in self._targets:
                self._targets[name] = make_target(self.config.target(name))
            return self._targets[name]

    def get_regions(self, omit_master_region: bool = True,
                    target: str = "master") -> list[str]:
        """The regions of ``target``, ordered by ``preferable_order``.

        Regions of ``master`` are bare names; others are ``target:Region``,
        so every returned name can be passed back to the other methods.
        """
        names = self.resolve_regions([f"{target}:"])
        if target == MASTER and not omit_master_region:
            names.insert(0, self.master_region)
        return [n.split(":", 1)[1] if n.startswith(f"{MASTER}:") else n for n in names]

    def resolve_regions(self, regions: Sequence[str]) -> list[str]:
        """Fully qualified names for region arguments (SPEC section 2)."""
        return resolve_regions(regions, self.config,
                               lambda t: self.target(t).region_names())

    def _qualified(self, region: str) -> str:
        target, name = parse_region(region)
        if name is None:
            raise UsageError(f"{region!r} names a target; give one region "
                             f"(e.g. {target}:RegionName)")
        return qualify(target, name)

    def adapter(self, region: str) -> RegionAdapter:
        """The adapter of ``region`` (``target:Region``); checked to exist.

        Its idempotent calls are retried after transient failures
        (:class:`~glancesync.retry.RetryingAdapter`, ``retries`` and
        ``retry_wait`` of ``[main]``).
        """
        qualified = self._qualified(region)
        with self._guard:
            if qualified not in self._adapters:
                if qualified != self.master_region:
                    resolve_regions([qualified], self.config,
                                    lambda t: self.target(t).region_names())
                target, name = parse_region(qualified)
                self._adapters[qualified] = RetryingAdapter(
                    self.target(target).adapter(name), self._retry_policy())
            return self._adapters[qualified]

    def _target_config(self, region: str) -> TargetConfig:
        return self.config.target(parse_region(region)[0])

    # --- reading ---------------------------------------------------------------

    def _master(self) -> MasterSelection:
        master = self.adapter(self.master_region)
        return select_master(master.list_images(), master.project_id)

    def _retry_policy(self) -> RetryPolicy:
        """Retries of transient failures, from ``retries`` and ``retry_wait``."""
        main = self.config.main
        return RetryPolicy(retries=main.retries, initial_wait=main.retry_wait)

    def get_images_region(self, region: str) -> list[dict[str, Any]]:
        """The project's images and the public images of ``region``, as dicts."""
        adapter = self.adapter(region)
        return [image.to_dict()
                for image in report.visible_images(adapter.list_images(), adapter.project_id)]

    def plan_region(self, region: str, master: MasterSelection | None = None) -> RegionPlan:
        """The plan of ``region``: per image status and the operations of a sync."""
        qualified = self._qualified(region)
        master = master or self._master()
        adapter = self.adapter(qualified)
        target = self._target_config(qualified)
        return make_plan(qualified, master, adapter.list_images(), adapter.project_id,
                         target, stalled_upload_age=self.config.main.stalled_upload_age)

    def get_status(self, region: str) -> list[ImageStatus]:
        """Structured status of every synchronised image in ``region``."""
        return self.plan_region(region).statuses

    def status(self, regions: Sequence[str] = ()) -> StatusReport:
        """Status of several regions (``--show-status``); failures per region."""
        names = self.resolve_regions(regions)
        master = self._master()
        result = StatusReport()
        for name in names:
            try:
                result.plans[name] = self.plan_region(name, master)
            except GlanceSyncError as error:
                LOG.error("%s: cannot get the status: %s", name, error)
                result.failures[name] = error
        return result

    # --- synchronising ---------------------------------------------------------

    def source(self) -> MasterImageSource:
        """The master image data source shared by every region of this object."""
        with self._guard:
            if self._source is None:
                main = self.config.main
                cache = ImageCache(main.cache_dir, main.cache_max_size)
                self._source = MasterImageSource(self.adapter(self.master_region), cache,
                                                 main.images_dir, progress=self.progress)
            return self._source

    def sync_region(self, region: str, dry_run: bool = False) -> RegionResult:
        """Synchronise one region with the master region.

        With ``dry_run`` nothing is changed anywhere: the actions that a sync
        would do are logged and returned. Raises :class:`GlanceSyncError`
        when the region cannot be synchronised at all; per-image failures
        are in the result.
        """
        return self._sync_one(self._qualified(region), self._master(), dry_run)

    def sync(self, regions: Sequence[str] = (), *, dry_run: bool = False,
             parallel: bool = False) -> RunResult:
        """Synchronise several regions (default: every region of ``master:``).

        Master data is downloaded once whatever the number of regions. With
        ``parallel``, up to ``max_children`` regions are synchronised at once,
        each with its own log file in the run folder. A failing region does
        not stop the others: see :attr:`RunResult.failures`.
        """
        names = self.resolve_regions(regions)
        master = self._master()
        result = RunResult(dry_run=dry_run)
        # The source lives as long as this object: count this run's bytes only.
        downloaded_before = self._source.bytes_downloaded if self._source else 0
        workers = max(1, self.config.main.max_children) if parallel else 1
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            if parallel:
                result.log_folder = stack.enter_context(RunLogs(self._run_dir(), names)).folder
            pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(workers))
            futures = [pool.submit(self._sync_guarded, name, master, dry_run, result)
                       for name in names]
            for future in concurrent.futures.as_completed(futures):
                future.result()  # a bug in a worker must not pass silently
        if self._source is not None:
            result.bytes_downloaded = self._source.bytes_downloaded - downloaded_before
        LOG.info("run over %d region(s) done in %.1f s; %d failed", len(names),
                 time.monotonic() - started, len(result.failures))
        return result

    def _sync_guarded(self, name: str, master: MasterSelection, dry_run: bool,
                      result: RunResult) -> None:
        with region_context(name):
            try:
                plan = self.plan_region(name, master)
                result.plans[name] = plan
                result.results[name] = self._execute(name, plan, dry_run)
            except GlanceSyncError as error:
                LOG.error("%s: synchronisation failed: %s", name, error)
                result.failures[name] = error

    def _sync_one(self, name: str, master: MasterSelection, dry_run: bool) -> RegionResult:
        with region_context(name):
            return self._execute(name, self.plan_region(name, master), dry_run)

    def _execute(self, name: str, plan: RegionPlan, dry_run: bool) -> RegionResult:
        adapter = self.adapter(name)
        options = {"retry": self._retry_policy(), "progress": self.progress}
        if dry_run:
            return Executor(adapter, self.source(), dry_run=True, **options).execute(plan)
        with RegionLock(self._lock_dir(), self.lock_name(name)):
            return Executor(adapter, self.source(), dry_run=False, **options).execute(plan)

    def _run_dir(self) -> Path:
        if self.config.main.run_dir:
            return self.config.main.run_dir
        import platformdirs
        return Path(platformdirs.user_state_dir("glancesync")) / "runs"

    def lock_name(self, region: str) -> str:
        """The name of ``region``'s lock: ``Region@<Keystone URL or folder>``.

        Keyed by where the region lives, not by the configuration's target
        names, so runs of different configurations on the same region
        exclude each other and unrelated federations never do.
        """
        target, name = parse_region(self._qualified(region))
        return f"{name}@{self.target(target).location}"

    def _lock_dir(self) -> Path | None:
        """``$GLANCESYNC_LOCK_DIR`` if set, else the default of :mod:`glancesync.lock`."""
        folder = os.environ.get("GLANCESYNC_LOCK_DIR")
        return Path(folder) if folder else None

    # --- reports -----------------------------------------------------------------

    def print_images_master_region(self, file: TextIO | None = None) -> None:
        """Print the master images that are synchronised to the other regions."""
        out = file or sys.stdout
        selection = self._master()
        target = self.config.target(MASTER)
        images = sorted(selection.synchronised(target).values(), key=lambda i: i.name or "")
        for line in report.master_report(self.config.main.master_region, images):
            print(line, file=out)

    def print_images(self, region: str, file: TextIO | None = None) -> None:
        """Print a report of ``region``'s images, marking anomalies (see legend)."""
        out = file or sys.stdout
        qualified = self._qualified(region)
        adapter = self.adapter(qualified)
        master = self._master()
        images = report.visible_images(adapter.list_images(), adapter.project_id)
        target = self._target_config(qualified)
        for line in report.region_report(qualified, images, master.candidates,
                                         target.metadata_set):
            print(line, file=out)

    def backup_glancemetadata_region(self, region: str, path: str | Path | None = None,
                                     folder: Path | None = None) -> Path:
        """Save the metadata of ``region``'s images (project's and public).

        The file is written in ``backup_glance_<timestamp>/`` under ``path``
        (default: the current directory); its path is returned.
        """
        qualified = self._qualified(region)
        adapter = self.adapter(qualified)
        images = report.visible_images(adapter.list_images(), adapter.project_id)
        folder = folder or report.backup_folder(Path(path) if path else Path.cwd())
        written = report.write_backup(folder, qualified, images)
        LOG.info("%s: metadata of %d images saved in %s", qualified, len(images), written)
        return written

    def backup(self, regions: Sequence[str] = (), path: str | Path | None = None) -> list[Path]:
        """Back up several regions into one ``backup_glance_<timestamp>`` folder."""
        names = self.resolve_regions(regions)
        folder = report.backup_folder(Path(path) if path else Path.cwd())
        return [self.backup_glancemetadata_region(name, folder=folder) for name in names]

    # --- changing one image ------------------------------------------------------

    def delete_image(self, region: str, uuid: str, confirm: bool = True) -> bool:
        """Delete image ``uuid`` from ``region``; this cannot be undone.

        With ``confirm`` (the default) the user is asked on the terminal;
        without a terminal the deletion is refused. Returns True if deleted.
        """
        adapter = self.adapter(region)
        image = adapter.get_image(uuid)
        if confirm:
            if not sys.stdin.isatty():
                raise UsageError("deleting an image needs a confirmation; no terminal "
                                 "to ask on: call delete_image(..., confirm=False)")
            answer = input(f"Delete image {image.name} ({uuid}) from {region}? "
                           "This cannot be undone [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                LOG.info("%s: deletion of %s cancelled", region, uuid)
                return False
        adapter.delete_image(uuid)
        LOG.info("%s: deleted image %s (%s)", region, image.name, uuid)
        return True

    def update_metadata_image(self, region: str, image: Image | Mapping[str, Any]) -> Image:
        """Update an image's metadata in ``region`` from ``image``.

        ``image`` is an :class:`Image` or a dict as returned by
        :meth:`get_images_region`; its ``id`` names the image (it cannot be
        changed). ``name``, ``visibility`` (or ``is_public``: whichever of the
        two differs from the image; ``visibility`` if both do), ``min_ram``,
        ``min_disk``, ``protected`` and user properties are set; a property
        whose value is ``None`` is removed. Other read-only fields are ignored.
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


    def restore_backup(self, region: str, backup_file: str | Path,
                       dry_run: bool = False) -> list[str]:
        """Re-apply the metadata saved in ``backup_file`` to ``region``'s images.

        Images are found by id, else by name. Saved visibility, ``min_ram``,
        ``min_disk``, ``protected`` and user properties are set; user
        properties that were not saved are removed. Data is never touched.
        Returns the ids of the images changed (or that would be, in a dry run).
        """
        qualified = self._qualified(region)
        adapter = self.adapter(qualified)
        records = list(report.read_backup(Path(backup_file)))
        images = report.visible_images(adapter.list_images(), adapter.project_id)
        by_id = {i.id: i for i in images}
        by_name = {i.name: i for i in images}
        changed = []
        for record in records:
            current = by_id.get(record["id"]) or by_name.get(record["name"])
            if current is None:
                LOG.warning("%s: image %s (%s) of the backup is not in the region",
                            qualified, record["name"], record["id"])
                continue
            changes, remove = report.restore_changes(current, record)
            if not changes and not remove:
                continue
            changed.append(current.id)
            Executor(adapter, None, dry_run=dry_run).update_metadata(
                current, changes, remove, reason="restore from backup")
        return changed
