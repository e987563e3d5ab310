"""Backups of a region's image metadata, and their restore.

What a backup saves is the image model the sync keeps ("the whole
image"): the fields and user properties, tags, ``os_hidden``,
the members of shared images by project name and domain (project ids
differ between identity services), and GlanceSync's own ``glancesync.*``
marks (provenance, lifecycle). The lines are written and checked by
:mod:`glancesync.report` (:data:`~glancesync.report.BACKUP_RECORD_SCHEMA`,
:data:`~glancesync.report.BACKUP_VERSION`); a restore changes the region
only through the :class:`~glancesync.executor.Executor`, which honours a
dry run. Backups of version 1 (no ``version``) restore as they always did.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

from glancesync import report
from glancesync.backends.base import ProjectName, RegionAdapter, Target
from glancesync.errors import GlanceSyncError, UsageError
from glancesync.executor import Executor
from glancesync.image import Image
from glancesync.plan import Operation, OperationKind, RegionPlan
from glancesync.regions import RegionRef

LOG = logging.getLogger(__name__)

Member = dict[str, "str | None"]


def save(adapter: RegionAdapter, target: Target, folder: Path, region: RegionRef) -> Path:
    """Write the backup file of ``region`` (its project's and the public images) in ``folder``.

    Members are read for shared images when the backend has them, and named
    by project name and domain when the identity service says them.

    :raises GlanceSyncError: the region cannot be listed.
    """
    images = report.visible_images(adapter.list_images(), adapter.project_id)
    members = {image.id: found for image in images
               if (found := _members(adapter, target, image, region)) is not None}
    written = report.write_backup(folder, str(region), images, members)
    LOG.info("%s: metadata of %d images saved in %s", region, len(images), written)
    return written


def _members(adapter: RegionAdapter, target: Target, image: Image,
             region: RegionRef) -> list[Member] | None:
    """The members of a shared image, or None (not shared, or no members in the backend)."""
    if image.visibility != "shared":
        return None
    try:
        project_ids = adapter.list_members(image.id)
    except UsageError:
        return None  # the backend has no image members
    found: list[Member] = []
    for project_id in sorted(project_ids):
        try:
            name = target.project_name(project_id)
        except GlanceSyncError as error:
            LOG.warning("%s: image %s is shared with project %s, whose name cannot be looked"
                        " up (%s): saved by id only", region, image.name, project_id, error)
            name = None
        found.append({"project": name.name if name else None,
                      "domain": name.domain if name else None, "project_id": project_id})
    return found


def restore(adapter: RegionAdapter, target: Target, region: RegionRef, backup_file: Path,
            *, dry_run: bool = False, force: bool = False) -> list[str]:
    """Re-apply ``backup_file`` to ``region``: :meth:`GlanceSync.restore_backup`."""
    records = report.read_backup(Path(backup_file))
    recorded = sorted({str(r.get("region")) for r in records if r.get("region") != str(region)})
    if recorded and not force:
        raise UsageError(
            f"the backup file {backup_file} was recorded for region"
            f" {', '.join(recorded)}, not {region}: restore it to its own region, or force"
            " it (--force; kernel_id and ramdisk_id are then not restored)")
    same_region = not recorded
    project = adapter.project_id
    images = adapter.list_images()
    own = [i for i in images if project is None or i.owner == project]
    by_id = {i.id: i for i in own}
    by_name = {i.name: i for i in own}
    foreign = {i.id for i in images} - set(by_id)
    plan = RegionPlan(str(region))
    for record in records:
        current = by_id.get(record["id"]) if same_region else None
        if current is None and record["name"] is not None:
            current = by_name.get(record["name"])
        if current is None:
            why = ("belongs to another project: left alone" if record["id"] in foreign
                   else "is not in the region")
            LOG.warning("%s: image %s (%s) of the backup %s", region, record["name"],
                        record["id"], why)
            continue
        changes, remove = report.restore_changes(current, record, same_region=same_region)
        add, drop = _member_changes(adapter, target, region, current, record.get("members"),
                                    same_region)
        if changes or remove or add or drop:
            plan.operations.append(Operation(
                OperationKind.UPDATE_METADATA, current.name or current.id, regional=current,
                changes=changes, remove=tuple(remove), add_members=tuple(add),
                remove_members=tuple(drop), reason="restore from backup"))
    if not plan.operations:
        return []
    result = Executor(adapter, None, dry_run=dry_run).execute(plan)
    if result.failed:
        name, error = next(iter(result.failed.items()))
        raise GlanceSyncError(f"the restore of {len(result.failed)} image(s) failed, first"
                              f" {name}: {error}", region=str(region))
    return [op.regional.id for op in plan.operations if op.regional is not None]


def _member_changes(adapter: RegionAdapter, target: Target, region: RegionRef,
                    current: Image, saved: Iterable[Any] | None,
                    same_region: bool) -> tuple[list[str], list[str]]:
    """Projects to share ``current`` with and to stop sharing it with, per the backup."""
    if saved is None or current.visibility != "shared":
        return [], []
    try:
        present = set(adapter.list_members(current.id))
    except UsageError:
        return [], []
    wanted: set[str] = set()
    for member in saved:
        project_id = _project_of(target, member, same_region)
        if project_id is None:
            LOG.warning("%s: image %s was shared with project %s, which the region's"
                        " identity service does not have: not shared with it", region,
                        current.name, member.get("project") or member.get("project_id"))
            continue
        wanted.add(project_id)
    return sorted(wanted - present), sorted(present - wanted)


def _project_of(target: Target, member: Any, same_region: bool) -> str | None:
    """The region's project id of a saved member: by name and domain, else its id (same region)."""
    if member.get("project") and member.get("domain"):
        try:
            found = target.find_project(ProjectName(member["project"], member["domain"]))
        except UsageError:
            found = None  # no project look-ups: the saved id, in its own region
        if found is not None:
            return found
    return member.get("project_id") if same_region else None
