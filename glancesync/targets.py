"""Targets: a set of regions reached with one credential.

A :class:`Target` lists its regions and builds one
:class:`~glancesync.adapters.base.RegionAdapter` per region. A Keystone
target finds its regions in the service catalog (service type ``image``); a
local target finds them as folders on disk.
"""
from __future__ import annotations

import abc

from glancesync.adapters.base import RegionAdapter
from glancesync.regions import RegionRef


class Target(abc.ABC):
    """One target of the configuration (``master``, ``other``, ...)."""

    name: str

    @abc.abstractmethod
    def region_names(self) -> list[str]:
        """Every region of the target that has an image service, catalog order."""

    @abc.abstractmethod
    def adapter(self, region: RegionRef) -> RegionAdapter:
        """The adapter of one region of this target, named ``str(region)``.

        The region was checked to exist when it was resolved
        (:func:`~glancesync.regions.resolve_regions`); it is not checked again.
        """

    @property
    def location(self) -> str:
        """Where the target's regions live (a Keystone URL, a folder).

        Two configurations naming the same regions share it, whatever they
        call the target: region locks are keyed by it.
        """
        return self.name

    def close(self) -> None:
        """Release sessions and connections."""
