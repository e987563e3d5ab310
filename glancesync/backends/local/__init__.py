"""The local region backend (``type = local``): regions that are folders.

Each sub-folder of the target's ``path`` holding a store is a region
(:mod:`.target`); a region is Glance's image database API on SQLite plus a
data folder (:mod:`.store`), behind the region adapter interface
(:mod:`.adapter`). An offline mirror, a demo, a test region.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from glancesync.backends.base import Backend, Target, TargetSpec
from glancesync.options import Option, Section

__all__ = ["BACKEND", "DEFAULT_PROJECT", "LocalSettings", "OPTIONS"]

#: The project owning the images of a local target, when ``project`` is not set.
DEFAULT_PROJECT = "local-project"

#: The options of a target of type ``local``.
OPTIONS: tuple[Option, ...] = (
    Option("path", "path", help="folder holding the regions, one sub-folder each"),
    Option("regions", "list", [], help="regions created empty on first use if missing"),
    Option("project", "string", DEFAULT_PROJECT, help="the project the target acts as"),
    Option("projects", "list", [], help="the projects that exist for sync_members, in"
                                        " domain Default (empty: any name)"),
)
_PATH, _REGIONS, _PROJECT, _PROJECTS = OPTIONS


@dataclasses.dataclass
class LocalSettings:
    """What a local target needs: its folder, declared regions and project."""

    path: Path
    regions: list[str] = dataclasses.field(default_factory=list)
    project: str = DEFAULT_PROJECT
    projects: list[str] = dataclasses.field(default_factory=list)
    default_region: str | None = None

    def option_values(self) -> Mapping[str, Any]:
        """``path``, ``regions``, ``project`` and ``projects``."""
        return {"path": self.path, "regions": self.regions, "project": self.project,
                "projects": self.projects}


def read_settings(section: Section, env: Mapping[str, str]) -> LocalSettings:
    """The settings of one ``type = local`` section.

    :raises ConfigError: ``path`` is missing.
    """
    path = section.read(_PATH)
    if path is None:
        raise section.error("path", "missing: a local target needs the folder"
                                    " holding its regions (path = FOLDER)")
    return LocalSettings(path=path, regions=section.read(_REGIONS),
                         project=section.read(_PROJECT), projects=section.read(_PROJECTS))


def _make_target(spec: TargetSpec) -> Target:
    from glancesync.backends.local.target import LocalTarget
    return LocalTarget(spec)


BACKEND = Backend(name="local", options=OPTIONS, settings=read_settings,
                  make_target=_make_target,
                  description="regions that are folders on disk (SQLite and data files)")
