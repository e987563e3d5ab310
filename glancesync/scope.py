"""Which images a run covers: ``--image PATTERN``, or master images named by id.

The planner always sees the whole region (so that matching, duplicates and
AMI references stay right); a :class:`Scope` then keeps only the
statuses and operations of the images it covers, plus the kernels and
ramdisks an upload of theirs needs (said in the plan's warnings). Every
other image is left alone and not reported.

Two ways to name images, which a scope may combine:

* ``patterns`` (``--image``, :func:`restrict`): shell-style patterns of
  names; a line or operation is kept when its image's name matches (the
  ``NAME.old`` copies of a matching ``NAME`` go with it);
* ``image_ids`` (a sync of named master images, what an event of the
  master region names): a line is kept when it is about one of these
  master images, whatever its name in the region and whatever became of
  it in the master: a new or changed image (its upload, update, conflict),
  a deleted or no longer selected one (the lifecycle of its copies,
  recognised by their provenance), its leftovers, an ``error_duplicate``
  line of its name, the ``NAME.old`` copies of its name. An operation is
  kept when it acts for one of these master images, or on a regional image
  one of the kept lines is about.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import logging
from typing import Callable, Collection, Iterable, Sequence

from glancesync.plan.model import OLD_SUFFIX, ImageStatus, Operation, RegionPlan, Status
from glancesync.selection import MasterSelection

LOG = logging.getLogger(__name__)


def matches(name: str | None, patterns: Sequence[str]) -> bool:
    """True when ``name`` matches one of the shell-style ``patterns``.

    Case-sensitive, like Glance's names (:func:`fnmatch.fnmatchcase`): ``*``,
    ``?``, ``[seq]``. No pattern: every name matches.
    """
    if not patterns:
        return True
    return name is not None and any(fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclasses.dataclass(frozen=True)
class Scope:
    """The master images a run covers: those whose name matches ``patterns``, and
    those whose id is in ``image_ids``; neither: every image."""

    patterns: tuple[str, ...] = ()
    image_ids: frozenset[str] = frozenset()

    @classmethod
    def of(cls, patterns: Iterable[str] = (), image_ids: Iterable[str] = ()) -> Scope:
        return cls(tuple(patterns), frozenset(image_ids))

    @property
    def everything(self) -> bool:
        """True when the scope covers every image (nothing to restrict)."""
        return not self.patterns and not self.image_ids

    def names(self, master: MasterSelection | None) -> set[str]:
        """The names the master region gives the images of ``image_ids`` (selected,
        held by several images, or deactivated)."""
        if master is None or not self.image_ids:
            return set()
        found = {name for name, image in master.candidates.items() if image.id in self.image_ids}
        found |= {name for name, images in master.duplicates.items()
                  if any(image.id in self.image_ids for image in images)}
        found |= {name for name, image in master.deactivated.items()
                  if image.id in self.image_ids}
        return found

    def restrict(self, plan: RegionPlan, master: MasterSelection | None = None) -> RegionPlan:
        """``plan`` with only what this scope covers (and what that needs).

        ``master`` is the master selection the plan was made from: it gives
        the names of the images of ``image_ids``. Everything: ``plan`` itself.
        """
        if self.everything:
            return plan
        lines: set[int] = set()
        ops: set[int] = set()
        if self.patterns:
            lines, ops = _of_patterns(plan, self.patterns)
        if self.image_ids:
            ids_lines, ids_ops = _of_ids(plan, self.image_ids, self.names(master))
            lines |= ids_lines
            ops |= ids_ops
        known = ({s.name for s in plan.statuses if id(s) in lines}
                 | {op.name for op in plan.operations if id(op) in ops})
        notes = []
        for name in sorted(_dependencies(plan, [op for op in plan.operations if id(op) in ops],
                                         known)):
            why = ("an image matching --image needs it" if self.patterns and not self.image_ids
                   else "an image this run covers needs it")
            notes.append(f"image {name} included: {why} (kernel_id or ramdisk_id)")
            lines |= {id(s) for s in plan.statuses if s.name == name}
            ops |= {id(op) for op in plan.operations if op.name == name}
        for note in notes:
            LOG.info("%s: %s", plan.region, note)
        return dataclasses.replace(
            plan,
            statuses=[s for s in plan.statuses if id(s) in lines],
            operations=[op for op in plan.operations if id(op) in ops],
            warnings=list(plan.warnings) + notes)


def restrict(plan: RegionPlan, patterns: Sequence[str]) -> RegionPlan:
    """``plan`` with only the images matching ``patterns`` (and what they need).

    An image kept because a kept upload refers to it (``kernel_id``,
    ``ramdisk_id``) is said in the plan's warnings and the log. The
    ``NAME.old`` copies a rename kept go with NAME (``keep_old_copies``
    retires them). No pattern: ``plan`` itself.
    """
    return Scope(tuple(patterns)).restrict(plan)


#: The statuses of a copy the image lifecycle (``removal_policy``) applies to.
_LIFECYCLE = frozenset({Status.PENDING_REMOVAL, Status.INFO_REMOVAL_GRACE, Status.OK_RETIRED,
                        Status.INFO_REMOVAL_SKIPPED})


def _old_copy_of(status: ImageStatus, covered: Callable[[str], bool]) -> bool:
    """A lifecycle line of a ``NAME.old`` copy (``keep_old_copies``) of a covered NAME."""
    name = status.name or ""
    return (status.status in _LIFECYCLE and name.endswith(OLD_SUFFIX)
            and covered(name[:-len(OLD_SUFFIX)]))


def _of_patterns(plan: RegionPlan, patterns: Sequence[str]) -> tuple[set[int], set[int]]:
    """The lines and operations of ``plan`` whose image's name matches ``patterns``,
    as sets of ``id()``: by name, the ``NAME.old`` copies of a matching NAME too."""
    names = {s.name for s in plan.statuses if matches(s.name, patterns)
             or _old_copy_of(s, lambda name: matches(name, patterns))}
    names |= {op.name for op in plan.operations if matches(op.name, patterns)}
    return ({id(s) for s in plan.statuses if s.name in names},
            {id(op) for op in plan.operations if op.name in names})


def _of_ids(plan: RegionPlan, ids: Collection[str], names: Collection[str]
            ) -> tuple[set[int], set[int]]:
    """The lines and operations of ``plan`` about the master images ``ids`` (named
    ``names`` in the master), as sets of ``id()``."""
    lines = {id(s) for s in plan.statuses
             if s.master_id in ids or (s.master_id is None and s.name in names)
             or _old_copy_of(s, names.__contains__)}
    regional = {s.regional_id for s in plan.statuses if id(s) in lines and s.regional_id}

    def covered(op: Operation) -> bool:
        if op.master is not None:
            return op.master.id in ids
        return op.regional is not None and op.regional.id in regional

    return lines, {id(op) for op in plan.operations if covered(op)}


def _dependencies(plan: RegionPlan, kept: Iterable[Operation], known: set[str]) -> set[str]:
    """Names the operations ``kept`` refer to (``kernel_id``, ``ramdisk_id``),
    transitively, not among the ``known`` names."""
    by_name = {op.name: op for op in plan.operations}
    found: set[str] = set()
    seen = set(known)
    todo = list(kept)
    while todo:
        for used in todo.pop().ami_refs.values():
            if used not in seen:
                seen.add(used)
                found.add(used)
                if used in by_name:
                    todo.append(by_name[used])
    return found
