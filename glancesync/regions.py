"""Region names: ``target:Region`` references, ``target:`` expansion, ordering.

A region is named once, when its argument is resolved, as a
:class:`RegionRef` (target, name); the reference is then passed down to
the targets, adapters and locks, which never parse a name again. Pure
functions (SPEC section 2): the regions of a target come from a
``region_lister`` callable, so the rules can be used and tested without any
service. A bare ``Region`` means ``master:Region``.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
from typing import Callable, Collection, Protocol, Sequence

from glancesync.options import MASTER
from glancesync.errors import RegionNotFoundError, UsageError

LOG = logging.getLogger(__name__)


class _Ordering(Protocol):
    master_region: str
    preferable_order: Sequence[str]


class _Ignoring(Protocol):
    ignore_regions: Sequence[str]


class RegionSettings(Protocol):
    """What resolving region arguments reads of the configuration
    (:class:`~glancesync.config.Config` is one): the targets' names, each
    target's ``ignore_regions``, ``master_region`` and ``preferable_order``."""

    @property
    def targets(self) -> Collection[str]: ...

    @property
    def main(self) -> _Ordering: ...

    def target(self, name: str) -> _Ignoring:
        """The target ``name``; raises :class:`RegionNotFoundError` for an unknown one."""


@dataclasses.dataclass(frozen=True)
class RegionRef:
    """One region of one target; ``str()`` is ``target:name``."""

    target: str
    name: str

    def __str__(self) -> str:
        return f"{self.target}:{self.name}"

    @classmethod
    def parse(cls, text: str | RegionRef) -> RegionRef:
        """``'Spain'`` -> ``master:Spain``; ``'other:RegionC'`` -> ``other:RegionC``.

        A :class:`RegionRef` is returned as it is.

        :raises UsageError: ``text`` is not a region name, or names a whole
            target (``other:``).
        """
        if isinstance(text, RegionRef):
            return text
        target, name = parse_region(text)
        if name is None:
            raise UsageError(f"{text!r} names a target; give one region "
                             f"(e.g. {target}:RegionName)")
        return cls(target, name)


def parse_region(text: str) -> tuple[str, str | None]:
    """``'Spain'`` -> ``('master', 'Spain')``; ``'other:'`` -> ``('other', None)``.

    :raises UsageError: ``text`` is empty or has no target before ``:``.
    """
    text = text.strip()
    target, sep, region = text.partition(":")
    if not sep:
        target, region = MASTER, text
    target, region = target.strip(), region.strip()
    if not target or (not sep and not region):
        raise UsageError(f"invalid region {text!r}: expected Region, target:Region"
                         " or target:")
    return target, region or None


def resolve_regions(args: Sequence[str | RegionRef], config: RegionSettings,
                    region_lister: Callable[[str], list[str]],
                    warn: Callable[[str], None] | None = None) -> list[RegionRef]:
    """Turn region arguments into :class:`RegionRef`, each checked to exist.

    No argument means ``master:``. ``target:`` expands to the target's
    regions minus its ``ignore_regions`` (and minus the master region for
    ``master``). When anything was expanded, the result is ordered by
    ``preferable_order`` (unlisted regions after, in catalog order); a fully
    explicit list keeps the order given. Duplicates are dropped. This is
    the one place where a region is checked to exist.

    Entries of ``ignore_regions`` and ``preferable_order`` are checked
    against the regions of the targets listed here: one that matches no
    region is given to ``warn`` (default: logged as a warning), naming the
    option and the entry. An entry holding blanks that names no region but
    whose blank-separated words all do is taken as those regions, with a
    warning (old files separated names with spaces; names may hold them).

    :raises RegionNotFoundError: an unknown target or region; the message
        lists what exists, ``region`` holds the name asked for.
    :raises UsageError: an argument is not a region name.
    """
    known: dict[str, list[str]] = {}
    warn = warn or (lambda message: LOG.warning("%s", message))

    def regions_of(target: str) -> list[str]:
        if target not in known:
            config.target(target)  # unknown target: error listing the targets
            known[target] = list(region_lister(target))
        return known[target]

    result: list[RegionRef] = []
    expanded = False
    for arg in args or [f"{MASTER}:"]:
        if isinstance(arg, RegionRef):
            target, region = arg.target, arg.name
        else:
            target, region = parse_region(arg)
        available = regions_of(target)
        if region is None:
            expanded = True
            result.extend(RegionRef(target, name)
                          for name in _expand(config, target, available, warn))
        elif region in available:
            result.append(RegionRef(target, region))
        else:
            raise RegionNotFoundError(
                f"target {target!r} has no region {region!r} with an image"
                f" service; its regions are {', '.join(available) or '(none)'}",
                region=f"{target}:{region}")
    result = list(dict.fromkeys(result))
    if expanded:
        result = order_regions(result, _checked_order(config, known, warn))
    return result


def _expand(config: RegionSettings, target: str, available: list[str],
            warn: Callable[[str], None]) -> list[str]:
    """The regions of ``target`` minus its ``ignore_regions`` (bare or qualified)."""
    ignored: set[str] = set()
    option = f"ignore_regions of target {target}"
    for entry in config.target(target).ignore_regions:
        prefix, _, rest = entry.partition(":")
        if prefix.strip() == target:
            entry = rest.strip()
        elif rest and prefix.strip() in config.targets:
            warn(f"{option}: {entry!r} names a region of another target")
            continue
        ignored.update(_matching(entry, available, option, warn))
    if target == MASTER:
        ignored.add(config.main.master_region)
    return [name for name in available if name not in ignored]


def _checked_order(config: RegionSettings, known: dict[str, list[str]],
                   warn: Callable[[str], None]) -> list[str]:
    """``preferable_order``, its entries checked against the targets listed."""
    order: list[str] = []
    option = "preferable_order of [main]"
    for entry in config.main.preferable_order:
        target, name = parse_region(entry)
        if target not in config.targets or name is None:
            warn(f"{option}: {entry!r} does not name a region of a configured target")
        elif target not in known:
            order.append(entry)  # a target this run does not look at: unchecked
        else:
            order.extend(f"{target}:{found}"
                         for found in _matching(name, known[target], option, warn))
    return order


def _matching(name: str, available: Sequence[str], option: str,
              warn: Callable[[str], None]) -> list[str]:
    """The regions an entry of ``option`` names: itself, or the words of an old list."""
    if name in available:
        return [name]
    words = name.split()
    if len(words) > 1 and all(word in available for word in words):
        warn(f"{option}: {name!r} is taken as the regions {', '.join(words)}; separate"
             " region names with commas (a blank is part of a name)")
        return words
    warn(f"{option}: {name!r} matches no region; the regions are"
         f" {', '.join(available) or '(none)'}")
    return []


def check_master_region(config: Config, available: Sequence[str]) -> None:
    """Check that ``master_region`` of ``[main]`` is one of the master target's regions.

    ``available``: the regions of target ``master`` (its catalog's, or its
    folders). A misspelt name is a configuration mistake, not a failure of
    the region: exit status 2, the regions that exist listed, the closest first.

    :raises RegionNotFoundError: ``master_region`` is not among ``available``.
    """
    name = config.main.master_region
    if name in available:
        return
    close = difflib.get_close_matches(name, list(available), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise RegionNotFoundError(
        f"master_region {name!r} of [main] is not a region of target {MASTER!r}"
        f" with an image service{hint}; its regions are {', '.join(available) or '(none)'}",
        region=f"{MASTER}:{name}")


def order_regions(regions: Sequence[RegionRef],
                  preferable_order: Sequence[str]) -> list[RegionRef]:
    """Sort regions by ``preferable_order``; unlisted ones keep their order, last.

    Names in ``preferable_order`` may be bare (``master:`` implied) or
    qualified; names that match nothing are ignored.
    """
    rank: dict[RegionRef, int] = {}
    for index, name in enumerate(preferable_order):
        target, region = parse_region(name)
        if region is not None:
            rank.setdefault(RegionRef(target, region), index)
    last = len(rank) + len(preferable_order)
    return sorted(regions, key=lambda ref: rank.get(ref, last))
