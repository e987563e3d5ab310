"""``--image PATTERN``: a plan restricted to some master images.

The planner always sees the whole region (so that matching, duplicates and
AMI references stay right); :func:`restrict` then keeps only the statuses
and operations of the images whose name matches one of the patterns, plus
the kernels and ramdisks an upload of theirs needs. Every other image is
left alone and not reported.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import logging
from typing import Iterable, Sequence

from glancesync.plan.model import OLD_SUFFIX, ImageStatus, RegionPlan, Status

LOG = logging.getLogger(__name__)


def matches(name: str | None, patterns: Sequence[str]) -> bool:
    """True when ``name`` matches one of the shell-style ``patterns``.

    Case-sensitive, like Glance's names (:func:`fnmatch.fnmatchcase`): ``*``,
    ``?``, ``[seq]``. No pattern: every name matches.
    """
    if not patterns:
        return True
    return name is not None and any(fnmatch.fnmatchcase(name, p) for p in patterns)


def restrict(plan: RegionPlan, patterns: Sequence[str]) -> RegionPlan:
    """``plan`` with only the images matching ``patterns`` (and what they need).

    An image kept because a kept upload refers to it (``kernel_id``,
    ``ramdisk_id``) is said in the plan's warnings and the log. The
    ``NAME.old`` copies a rename kept go with NAME (``keep_old_copies``
    retires them). No pattern: ``plan`` itself.
    """
    if not patterns:
        return plan
    kept = {s.name for s in plan.statuses
            if matches(s.name, patterns) or _old_copy_of_match(s, patterns)}
    kept |= {op.name for op in plan.operations if matches(op.name, patterns)}
    notes = []
    for name in sorted(_dependencies(plan, kept)):
        notes.append(f"image {name} included: an image matching --image needs it"
                     " (kernel_id or ramdisk_id)")
        kept.add(name)
    for note in notes:
        LOG.info("%s: %s", plan.region, note)
    return dataclasses.replace(
        plan,
        statuses=[s for s in plan.statuses if s.name in kept],
        operations=[op for op in plan.operations if op.name in kept],
        warnings=list(plan.warnings) + notes)


#: The statuses of a copy the image lifecycle (``removal_policy``) applies to.
_LIFECYCLE = frozenset({Status.PENDING_REMOVAL, Status.INFO_REMOVAL_GRACE, Status.OK_RETIRED,
                        Status.INFO_REMOVAL_SKIPPED})


def _old_copy_of_match(status: ImageStatus, patterns: Sequence[str]) -> bool:
    """A lifecycle line of a ``NAME.old`` copy (``keep_old_copies``) of a matching NAME."""
    name = status.name or ""
    return (status.status in _LIFECYCLE and name.endswith(OLD_SUFFIX)
            and matches(name[:-len(OLD_SUFFIX)], patterns))


def _dependencies(plan: RegionPlan, kept: Iterable[str]) -> set[str]:
    """Names the operations of ``kept`` refer to, transitively, not in ``kept``."""
    by_name = {op.name: op for op in plan.operations}
    found: set[str] = set()
    todo = list(kept)
    seen = set(todo)
    while todo:
        op = by_name.get(todo.pop())
        for used in (op.ami_refs.values() if op else ()):
            if used not in seen:
                seen.add(used)
                found.add(used)
                todo.append(used)
    return found
