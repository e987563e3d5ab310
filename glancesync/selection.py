"""Which master images are synchronised (SPEC section 4).

:func:`select_master` keeps the master *candidates* once per run;
:func:`is_synchronised` then decides per target. Both are pure: no adapter,
no I/O, so status, dry run and sync share exactly the same decision.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Iterable, Protocol

from glancesync.image import Image

LOG = logging.getLogger(__name__)

#: Suffix of master images that mark an image as obsolete (SPEC section 6).
OBSOLETE_SUFFIX = "_obsolete"


class SelectionPolicy(Protocol):
    """The part of a target's configuration that selection reads."""

    forcesyncs: frozenset[str]
    metadata_condition: Callable[[Image, frozenset[str]], bool] | None
    metadata_set: frozenset[str]


@dataclasses.dataclass
class MasterSelection:
    """The master images that may be synchronised at all.

    ``candidates`` maps a name to its only active, named image owned by the
    master project (or ownerless). Names held by several such images are in
    ``duplicates`` (name -> those images, by id) and are not candidates:
    the plan of a region gives each one that should reach it an
    ``error_duplicate`` status. ``warnings`` holds the messages already
    logged. ``region`` names the master region (recorded in the provenance
    of the copies). ``deactivated`` maps a name to its only deactivated
    image of the master project, when no candidate has that name: never
    synchronised, reported. ``listed_ids`` holds the id of every image the
    master listing showed, whatever its state and owner: a regional copy
    whose master image is among them is never taken for the copy of a
    deleted image.
    """

    candidates: dict[str, Image]
    region: str | None = None
    deactivated: dict[str, Image] = dataclasses.field(default_factory=dict)
    duplicates: dict[str, list[Image]] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)
    listed_ids: frozenset[str] = frozenset()

    @property
    def duplicate_names(self) -> set[str]:
        """The names held by several candidates."""
        return set(self.duplicates)

    def by_id(self) -> dict[str, Image]:
        """Candidates indexed by master UUID."""
        return {image.id: image for image in self.candidates.values()}

    def synchronised(self, target: SelectionPolicy) -> dict[str, Image]:
        """The candidates synchronised to ``target``, by name."""
        return {name: image for name, image in self.candidates.items()
                if is_synchronised(image, target)}


def select_master(images: Iterable[Image], master_project_id: str | None,
                  region: str | None = None) -> MasterSelection:
    """Keep active, named images of the master project; drop duplicate names.

    ``region`` is the master region's name, kept in the selection. Named
    deactivated images of the master project are kept aside
    (:attr:`MasterSelection.deactivated`).
    """
    images = list(images)
    by_name: dict[str, list[Image]] = {}
    deactivated: dict[str, list[Image]] = {}
    for image in images:
        if image.status not in ("active", "deactivated") or not image.name:
            continue
        if image.owner and image.owner != master_project_id:
            continue
        found = by_name if image.status == "active" else deactivated
        found.setdefault(image.name, []).append(image)
    selection = MasterSelection(candidates={}, region=region,
                                listed_ids=frozenset(image.id for image in images))
    selection.deactivated = {name: found[0] for name, found in deactivated.items()
                             if len(found) == 1 and name not in by_name}
    foreign = sum(1 for i in images if i.status == "active" and i.owner
                  and i.owner != master_project_id)
    if foreign and not by_name:
        message = (f"the master region has {foreign} active image(s), none owned by "
                   f"the master project {master_project_id}: nothing to synchronise; "
                   "check the master target's credentials (or project, for a local one)")
        selection.warnings.append(message)
        LOG.warning(message)
    for name in sorted(by_name):
        found = by_name[name]
        if len(found) == 1:
            selection.candidates[name] = found[0]
            continue
        selection.duplicates[name] = sorted(found, key=lambda i: i.id)
        message = (f"master image name {name!r} is used by {len(found)} images "
                   f"({', '.join(sorted(i.id for i in found))}): none of them is "
                   "synchronised; rename or delete the extra ones")
        selection.warnings.append(message)
        LOG.warning(message)
    return selection


def is_obsolete_name(name: str | None) -> bool:
    """True for names that mark an obsolete image."""
    return bool(name) and name.endswith(OBSOLETE_SUFFIX)


def is_synchronised(image: Image, target: SelectionPolicy) -> bool:
    """The six ordered rules of SPEC section 4 for one candidate and target."""
    if is_obsolete_name(image.name):
        return False
    if image.id in target.forcesyncs:
        return True
    if target.metadata_condition is not None:
        return bool(target.metadata_condition(image, target.metadata_set))
    if not image.is_public:
        return False
    if not target.metadata_set:
        return True
    return any(key in image.properties for key in target.metadata_set)
