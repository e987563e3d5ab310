"""The executor's steps other than uploads: metadata, sharing, obsolete images,
reactivation, the lifecycle's removal steps and the clean-up of leftovers.

Each step takes the region's run (:class:`StepRun`: its
:class:`~glancesync.executor.actions.RegionActions` and the ids of the
copies uploaded earlier in the run), one operation of the plan and the
region's result, which it counts in. Every change goes through
:meth:`~glancesync.executor.actions.RegionActions.act`.
"""
from __future__ import annotations

from typing import Iterable, Protocol

from glancesync.errors import GlanceSyncError, ImageNotFoundError
from glancesync.executor.actions import LOG, RegionActions, describe
from glancesync.executor.results import RegionResult
from glancesync.plan.model import Operation, OperationKind


class StepRun(Protocol):
    """What a step needs of the region's run."""

    #: The choke point of the region's changes.
    actions: RegionActions
    #: Master name -> regional id of the copy uploaded in this run.
    new_ids: dict[str, str]


class Failed(GlanceSyncError):
    """An operation cannot run because an earlier one failed."""


def resolve_refs(run: StepRun, op: Operation) -> dict[str, str]:
    """Regional UUIDs of the kernels/ramdisks uploaded earlier in the run.

    :raises Failed: one of them was not uploaded (its upload failed).
    """
    resolved = {}
    for key, used in op.ami_refs.items():
        if used not in run.new_ids:
            raise Failed(f"{key} image {used} was not synchronised in this run",
                         region=run.actions.region, image=op.name)
        resolved[key] = run.new_ids[used]
    return resolved


def update(run: StepRun, op: Operation, result: RegionResult) -> None:
    """Bring a copy's metadata and members in step (kernel and ramdisk ids resolved)."""
    actions = run.actions
    changes = dict(op.changes)
    changes.update(resolve_refs(run, op))
    if changes or op.remove:
        why = f": {op.reason}" if op.reason else ""
        actions.act("update", f"image {op.name} ({describe(changes, op.remove)}){why}",
                    actions.adapter.update_image, op.regional.id, changes, op.remove)
    share(actions, op.name, op.regional.id, op.add_members, op.remove_members)
    result.updated += 1


def reactivate(run: StepRun, op: Operation, result: RegionResult) -> None:
    """Reactivate a deactivated copy, then bring its metadata in step."""
    actions = run.actions
    actions.act("reactivate", f"image {op.name} ({op.regional.id})",
                actions.adapter.reactivate_image, op.regional.id)
    update(run, op, result)


def share(actions: RegionActions, name: str, image_id: str, add: Iterable[str],
          remove: Iterable[str]) -> None:
    """Share the image with the projects of ``add``, stop with those of ``remove``."""
    for project in add:
        actions.act("share", f"image {name} with project {project}",
                    actions.adapter.add_member, image_id, project)
    for project in remove:
        actions.act("unshare", f"image {name} from project {project}",
                    actions.adapter.remove_member, image_id, project)


def obsolete(run: StepRun, op: Operation, result: RegionResult) -> None:
    """Rename a copy ``NAME_obsolete``, or correct an obsolete copy's metadata."""
    actions = run.actions
    verb, what = (("rename", f"image {op.regional.name} to {op.name}")
                  if op.kind is OperationKind.OBSOLETE_RENAME else
                  ("update", f"obsolete image {op.name}"))
    actions.act(verb, f"{what} ({describe(op.changes, ())})",
                actions.adapter.update_image, op.regional.id, op.changes)
    result.obsoleted += 1


def remove(run: StepRun, op: Operation, result: RegionResult) -> None:
    """A removal step of the lifecycle, on a copy still as it was planned.

    The copy is read again first (a sync may run long): one that is
    gone, protected, renamed or given to another project since the plan
    is left alone. Deactivating records its mark first, so that a copy
    whose master image comes back is reactivated by a later sync.
    """
    actions = run.actions
    planned = op.regional
    what = f"image {op.name} ({planned.id}): {op.reason}"
    try:
        current = actions.adapter.get_image(planned.id)
    except ImageNotFoundError:
        LOG.info("%s: image %s (%s) is already gone", actions.region, op.name, planned.id)
        return
    changed = [field for field in ("name", "owner", "protected")
               if getattr(current, field) != getattr(planned, field)]
    if changed:
        LOG.warning("%s: image %s (%s) changed since it was listed (%s): left alone",
                    actions.region, op.name, planned.id, ", ".join(changed))
        return
    if op.kind is OperationKind.HIDE:
        actions.act("hide", what, actions.adapter.update_image, planned.id, op.changes)
        result.retired += 1
    elif op.kind is OperationKind.DEACTIVATE:
        actions.act("mark", f"image {op.name} ({describe(op.changes, ())})",
                    actions.adapter.update_image, planned.id, op.changes)
        actions.act("deactivate", what, actions.adapter.deactivate_image, planned.id)
        result.retired += 1
    else:
        actions.act("delete", what, actions.adapter.delete_image, planned.id)
        result.deleted += 1


#: What a leftover must still have for its clean-up to go ahead.
_LEFTOVER_FIELDS = ("status", "updated_at", "name", "owner", "protected", "visibility",
                    "size", "checksum", "os_hash_value")


def cleanup(run: StepRun, op: Operation, result: RegionResult) -> None:
    """Delete a leftover of an interrupted upload, if it is still as planned.

    The image is looked at again first: one that changed since it was
    listed (an upload resumed, a status changed, renamed, protected, given
    to another project) is left alone; its fields are compared, not only
    its ``updated_at``, which Glance stamps to the second. A
    leftover that cannot be deleted (protected, forbidden, the region
    unwell) is a warning, not a failure: the next run tries again.
    """
    actions = run.actions
    leftover = op.regional
    what = f"leftover {leftover.status} image {op.name} ({leftover.id})"
    try:
        current = actions.adapter.get_image(leftover.id)
        if any(getattr(current, field) != getattr(leftover, field)
               for field in _LEFTOVER_FIELDS):
            LOG.info("%s: %s changed since it was listed (now %s): left alone",
                     actions.region, what, current.status)
            return
        actions.act("delete", what, actions.adapter.delete_image, leftover.id)
    except ImageNotFoundError:
        LOG.info("%s: %s is already gone", actions.region, what)
        return
    except GlanceSyncError as error:
        result.uncleaned += 1
        LOG.warning("%s: could not delete %s: %s; it is left for the next run",
                    actions.region, what, error)
        return
    result.cleaned += 1
