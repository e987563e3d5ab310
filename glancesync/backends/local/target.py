"""Local targets: regions that are folders on disk (SPEC section 9).

Each sub-folder of the target's ``path`` holding a local store database is a
region served by :class:`~glancesync.backends.local.adapter.LocalRegionAdapter`.
"""
from __future__ import annotations

from pathlib import Path

from glancesync.backends.base import ProjectName, RegionAdapter, Target, TargetSpec
from glancesync.backends.local.store import DB_NAME
from glancesync import safenames
from glancesync.errors import ConfigError, UnsafeNameError, UsageError
from glancesync.regions import RegionRef

#: The file that makes a folder a local region.
REGION_MARKER = DB_NAME

#: The domain of every project of a local target (a project's name is its id).
LOCAL_DOMAIN = "Default"


class LocalTarget(Target):
    """A target whose regions are sub-folders of one folder."""

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec
        self.settings = spec.settings
        self.name = spec.name
        self.path: Path = self.settings.path
        self.project_id = self.settings.project

    @property
    def location(self) -> str:
        """The folder holding the regions."""
        return str(self.path.resolve())

    def region_names(self) -> list[str]:
        """The declared ``regions``, then the other sub-folders holding a region.

        A declared region exists even before its folder does: it is created
        empty on first use (a new offline mirror, for instance).
        """
        declared = list(self.settings.regions)
        try:
            entries = list(self.path.iterdir())
        except FileNotFoundError:
            entries = []
        except OSError as exc:
            raise ConfigError(f"cannot list the regions in {self.path}:"
                              f" {exc.strerror or exc}", section=self.name,
                              option="path") from None
        found = sorted(entry.name for entry in entries
                       if (entry / REGION_MARKER).is_file())
        return declared + [name for name in found if name not in declared]

    def project_name(self, project_id: str) -> ProjectName | None:
        """A local project's name is its id, in domain ``Default``.

        With ``projects`` set, only those exist.
        """
        known = self.settings.projects
        if known and project_id not in known:
            return None
        return ProjectName(project_id, LOCAL_DOMAIN)

    def find_project(self, project: ProjectName) -> str | None:
        """The project's name, when it is in domain ``Default`` (and in ``projects``)."""
        if project.domain.lower() != LOCAL_DOMAIN.lower():
            return None
        known = self.settings.projects
        return project.name if not known or project.name in known else None

    def adapter(self, region: RegionRef) -> RegionAdapter:
        """The adapter of ``region``; a declared region's folder is created on first use.

        An undeclared region whose folder holds no store is refused on first
        use, even as master region (which is never resolved against the list).

        :raises UsageError: the name cannot be a folder name.
        """
        name = region.name
        try:
            # The operator may link a region's folder elsewhere: not resolved.
            path = safenames.join(self.path, name, resolve=False)
        except UnsafeNameError:
            raise UsageError(f"invalid local region name {name!r}") from None
        from glancesync.backends.local.adapter import LocalRegionAdapter
        return LocalRegionAdapter(
            name=str(region), path=path,
            project_id=self.settings.project, is_admin=True,
            list_timeout=self.spec.list_images_timeout,
            create=name in self.settings.regions)
