"""Image members across identity services (``sync_members``).

A ``shared`` master image is shared with projects of the master's identity
service; its copies are shared with the projects *of the same name and
domain* in each region's identity service (project ids differ between
Keystones). This module reads the members the planner compares
(:attr:`~glancesync.image.Image.members`) and maps master projects to the
regions' (:data:`~glancesync.plan.MemberTarget`); the planner itself stays
pure. A project that does not exist in a region maps to None: it is
reported, never guessed.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Iterable

from glancesync.backends.base import ProjectName, RegionAdapter, Target
from glancesync.image import Image
from glancesync.plan.model import MemberTarget
from glancesync.selection import MasterSelection, SelectionPolicy

__all__ = ["ProjectMapper", "read_members", "region_inputs", "with_master_members",
           "with_regional_members"]


def read_members(adapter: RegionAdapter, images: Iterable[Image],
                 wanted: set[str]) -> list[Image]:
    """``images``, those whose id is in ``wanted`` with their members read."""
    return [dataclasses.replace(image, members=tuple(adapter.list_members(image.id)))
            if image.id in wanted else image for image in images]


def with_master_members(adapter: RegionAdapter, selection: MasterSelection) -> MasterSelection:
    """The selection with the members of its ``shared`` candidates read (one call each)."""
    shared = {image.id for image in selection.candidates.values()
              if image.visibility == "shared"}
    candidates = dict(zip(selection.candidates,
                          read_members(adapter, selection.candidates.values(), shared)))
    return dataclasses.replace(selection, candidates=candidates)


def with_regional_members(adapter: RegionAdapter, images: Iterable[Image],
                          names: Iterable[str]) -> list[Image]:
    """Regional images, with the members of the project's ``shared`` ones named in ``names``."""
    images = list(images)
    names = set(names)
    shared = {image.id for image in images
              if image.name in names and image.visibility == "shared"
              and image.owner == adapter.project_id
              and image.status in ("active", "deactivated")}
    return read_members(adapter, images, shared)


def region_inputs(selection: MasterSelection, policy: SelectionPolicy, adapter: RegionAdapter,
                  regional: Iterable[Image], mapper: "ProjectMapper",
                  target: Target) -> tuple[list[Image], dict[str, MemberTarget]]:
    """What planning a region with ``sync_members`` needs besides the images.

    The regional images with the members of the copies read, and the
    mapping of the master members of the images synchronised to ``policy``
    (their members read: :func:`with_master_members`) into ``target``.
    """
    synced = selection.synchronised(policy)
    return (with_regional_members(adapter, regional, synced),
            mapper.members(synced.values(), target))


class ProjectMapper:
    """Maps projects of the master target to those of other targets, by name and domain.

    Look-ups are cached for the mapper's life (one run): a project is looked
    up once in the master's identity service and once per target.
    """

    def __init__(self, master: Target) -> None:
        self.master = master
        self._names: dict[str, ProjectName | None] = {}
        self._found: dict[tuple[str, ProjectName], str | None] = {}
        self._lock = threading.Lock()

    def name(self, project_id: str) -> ProjectName | None:
        """The name and domain of a master project (None: unknown to the master)."""
        with self._lock:
            if project_id not in self._names:
                self._names[project_id] = self.master.project_name(project_id)
            return self._names[project_id]

    def map(self, project_id: str, target: Target) -> MemberTarget:
        """How messages name master project ``project_id``, and its id in ``target``."""
        project = self.name(project_id)
        if project is None:
            return f"project {project_id} (unknown to the master)", None
        key = (target.name, project)
        with self._lock:
            if key not in self._found:
                self._found[key] = target.find_project(project)
            return f"project {project}", self._found[key]

    def members(self, masters: Iterable[Image], target: Target) -> dict[str, MemberTarget]:
        """The :data:`MemberTarget` of every member of ``masters`` in ``target``."""
        return {project: self.map(project, target)
                for image in masters for project in image.members or ()}
