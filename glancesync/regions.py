"""Region names: ``target:Region`` parsing, ``target:`` expansion, ordering.

Pure functions (SPEC section 2): the regions of a target come from a
``region_lister`` callable, so the rules can be used and tested without any
service. A bare ``Region`` means ``master:Region``.
"""
from __future__ import annotations

from typing import Callable, Sequence

from glancesync.config import MASTER, Config
from glancesync.errors import RegionNotFoundError, UsageError


def parse_region(text: str) -> tuple[str, str | None]:
    """``'Spain'`` -> ``('master', 'Spain')``; ``'other:'`` -> ``('other', None)``."""
    text = text.strip()
    target, sep, region = text.partition(":")
    if not sep:
        target, region = MASTER, text
    target, region = target.strip(), region.strip()
    if not target or (not sep and not region):
        raise UsageError(f"invalid region {text!r}: expected Region, target:Region"
                         " or target:")
    return target, region or None


def qualify(target: str, region: str) -> str:
    """The fully qualified name of a region."""
    return f"{target}:{region}"


def resolve_regions(args: Sequence[str], config: Config,
                    region_lister: Callable[[str], list[str]]) -> list[str]:
    """Turn region arguments into fully qualified ``target:Region`` names.

    No argument means ``master:``. ``target:`` expands to the target's
    regions minus its ``ignore_regions`` (and minus the master region for
    ``master``). When anything was expanded, the result is ordered by
    ``preferable_order`` (unlisted regions after, in catalog order); a fully
    explicit list keeps the order given. Duplicates are dropped. Unknown
    targets and regions raise :class:`RegionNotFoundError` listing what
    exists.
    """
    known: dict[str, list[str]] = {}

    def regions_of(target: str) -> list[str]:
        if target not in known:
            config.target(target)  # unknown target: error listing the targets
            known[target] = list(region_lister(target))
        return known[target]

    result: list[str] = []
    expanded = False
    for arg in args or [f"{MASTER}:"]:
        target, region = parse_region(arg)
        available = regions_of(target)
        if region is None:
            expanded = True
            result.extend(qualify(target, name) for name in _expand(config, target, available))
        elif region in available:
            result.append(qualify(target, region))
        else:
            raise RegionNotFoundError(
                f"target {target!r} has no region {region!r} with an image"
                f" service; its regions are {', '.join(available) or '(none)'}")
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


def order_regions(regions: Sequence[str], preferable_order: Sequence[str]) -> list[str]:
    """Sort qualified names by ``preferable_order``; unlisted ones keep their order, last.

    Names in ``preferable_order`` may be bare (``master:`` implied) or
    qualified; names that match nothing are ignored.
    """
    rank: dict[str, int] = {}
    for index, name in enumerate(preferable_order):
        target, region = parse_region(name)
        if region is not None:
            rank.setdefault(qualify(target, region), index)
    last = len(rank) + len(preferable_order)
    return sorted(regions, key=lambda name: rank.get(name, last))
