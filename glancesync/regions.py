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
from typing import TYPE_CHECKING, Callable, Sequence

from glancesync.options import MASTER
from glancesync.errors import RegionNotFoundError, UsageError

if TYPE_CHECKING:
    from glancesync.config import Config


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


def resolve_regions(args: Sequence[str | RegionRef], config: Config,
                    region_lister: Callable[[str], list[str]]) -> list[RegionRef]:
    """Turn region arguments into :class:`RegionRef`, each checked to exist.

    No argument means ``master:``. ``target:`` expands to the target's
    regions minus its ``ignore_regions`` (and minus the master region for
    ``master``). When anything was expanded, the result is ordered by
    ``preferable_order`` (unlisted regions after, in catalog order); a fully
    explicit list keeps the order given. Duplicates are dropped. This is
    the one place where a region is checked to exist.

    :raises RegionNotFoundError: an unknown target or region; the message
        lists what exists, ``region`` holds the name asked for.
    :raises UsageError: an argument is not a region name.
    """
    known: dict[str, list[str]] = {}

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
                          for name in _expand(config, target, available))
        elif region in available:
            result.append(RegionRef(target, region))
        else:
            raise RegionNotFoundError(
                f"target {target!r} has no region {region!r} with an image"
                f" service; its regions are {', '.join(available) or '(none)'}",
                region=f"{target}:{region}")
    result = list(dict.fromkeys(result))
    if expanded:
        result = order_regions(result, config.main.preferable_order)
    return result


def _expand(config: Config, target: str, available: list[str]) -> list[str]:
    ignored = {_bare(target, name) for name in config.target(target).ignore_regions}
    if target == MASTER:
        ignored.add(config.main.master_region)
    return [name for name in available if name not in ignored]


def _bare(target: str, name: str) -> str:
    """``ignore_regions`` entries may be written qualified with their target."""
    prefix = f"{target}:"
    return name[len(prefix):] if name.startswith(prefix) else name


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
