"""The sample configuration and the manual's option table, from the option table.

``glancesync/options.py`` (and each backend's options) is the one
description of every option: name, kind, default, scope, secret, help.
This script writes from it:

* ``conf/glancesync.conf.sample`` (``python docs/options_doc.py`` rewrites
  it; ``--check`` exits 1 when it differs; a unit test runs the check);
* ``docs/manual/options_table.inc``, the table included by the manual's
  configuration page, written by every docs build (``docs/conf.py``).

Only prose that belongs to no option lives here: the sample's header and
its example target sections.
"""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from glancesync import backends  # noqa: E402
from glancesync.options import MAIN_OPTIONS, TARGET_OPTIONS, Option  # noqa: E402

SAMPLE = ROOT / "conf" / "glancesync.conf.sample"
TABLE = ROOT / "docs" / "manual" / "options_table.inc"

#: What each kind of value is, as the table and the sample say it.
KIND_NAMES = {
    "string": "text", "int": "integer", "number": "seconds", "hours": "hours",
    "rate": "requests per second",
    "bool": "boolean",
    "size": "size (K, M, G, T or P)", "list": "list of names", "set": "list of words",
    "checksums": "list of checksums or any", "path": "path",
    "choice": "one of", "expression": "expression",
}

HEADER = """\
# GlanceSync configuration sample, written from the option table of
# GlanceSync (glancesync/options.py): do not edit the option lines by hand.
#
# Copy it to /etc/glancesync.conf (or point $GLANCESYNC_CONFIG at it) and
# keep it private when it holds passwords: chmod 600.
#
# Every option is listed. A line "# option = value" shows the default; the
# active lines are the only ones a working file needs. The manual's
# configuration page describes each option in full. Lists are separated by
# commas; region names keep their blanks ("Test Lab"), lists of ids,
# properties and checksums may also be separated by blanks; quote an item
# ("..." or '...') to hold a comma. Sizes take a K, M, G, T or P suffix
# (powers of 1024) and fractions (1.5G). An entry that matches no region or
# master image is warned about. Any option can be overridden on the command
# line with --config section.option=value, or --config option=value (for
# [main] options it goes to [main], for the others to [DEFAULT]).
"""

DEFAULT_INTRO = """\
# Defaults of every target section below: any target option may be set
# here, those of every type of target too (each type reads its own). A
# target section takes the common options and those of its own type."""

#: Examples shown for some options (a value one can copy).
EXAMPLES = {
    "preferable_order": "RegionB, RegionA, other:RegionC",
    "images_dir": "/var/lib/glance/images",
    "cache_dir": "/var/cache/glancesync",
    "cache_max_size": "10G",
    "convert_max_virtual_size": "500G",
    "run_dir": "/var/log/glancesync/runs",
    "lock_dir": "/srv/glancesync/locks",
    "coordination_url": "etcd3+http://etcd.example:2379",
    "bandwidth_limit": "50M",
    "region_bandwidth_limit": "10M",
    "metadata_condition": "image.is_public and 'nid' in image.user_properties",
    "metadata_set": "nid, type, sdc_aware",
    "ignore_regions": "Test Lab, eu-west-1",
    "path": "/srv/glancesync/mirror",
    "credential": "admin,c2VjcmV0,http://keystone:5000/v3,admin",
}

TARGETS = """\
[master]
# The target of the master region. This sample reads its credentials from
# the clouds.yaml cloud "master"; replace with your own credentials.
cloud = master

# Another Keystone target, e.g. with explicit credentials:
# [other]
# auth_url = https://keystone.other.example:5000/v3
# username = glancesync
# password = CHANGE_ME
# project_name = glancesync
# ignore_regions = RegionTest
#
# A local target (regions are folders):
# [mirror]
# type = local
# path = /srv/glancesync/mirror
"""


def default_text(option: Option) -> str:
    """How the sample and the manual write the default ('' for none)."""
    value = option.default
    if value is None or (isinstance(value, (list, tuple, frozenset, set)) and not value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple, frozenset, set)):
        return ", ".join(sorted(map(str, value)))
    if option.kind == "size" and isinstance(value, int):
        for suffix, unit in (("T", 1024 ** 4), ("G", 1024 ** 3), ("M", 1024 ** 2)):
            if value >= unit and value % unit == 0:
                return f"{value // unit}{suffix}"
    return str(value)


def kind_text(option: Option) -> str:
    """The kind of value, with the choices of a ``choice``."""
    if option.name == "type":
        return "one of " + ", ".join(backends.names())
    if option.kind == "choice":
        return "one of " + ", ".join(option.choices)
    text = KIND_NAMES[option.kind]
    if option.minimum is not None:
        text += f" {'>' if option.strict else '>='} {option.minimum:g}"
    return text


def where_text(option: Option, backend: str | None) -> str:
    """Where the option may appear."""
    if option.scope == "main":
        return "``[main]``"
    places = [f"targets of type ``{backend}``" if backend else "any target", "``[DEFAULT]``"]
    if getattr(option, "per_region", False):
        places.append("``[target:Region]``")
    return ", ".join(places)


def grouped() -> list[tuple[str | None, tuple[Option, ...]]]:
    """The target options: the common ones (None), then each backend's."""
    groups: list[tuple[str | None, tuple[Option, ...]]] = [(None, TARGET_OPTIONS)]
    seen = {option.name for option in TARGET_OPTIONS}
    for backend in backends.registered():
        own = tuple(o for o in backend.options if o.name not in seen)
        seen |= {o.name for o in own}
        groups.append((backend.name, own))
    return groups


def _comment(text: str) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, 74)]


def _sample_option(option: Option, active: str | None = None) -> list[str]:
    help_text = option.help[0].upper() + option.help[1:] + "."
    lines = _comment(f"{help_text} ({kind_text(option)}"
                     f"{'; a secret' if option.secret else ''})")
    if option.name in EXAMPLES:
        lines.append(f"# Example: {option.name} = {EXAMPLES[option.name]}")
    if active is not None:
        lines.append(f"{option.name} = {active}")
    else:
        lines.append(f"# {option.name} = {default_text(option)}".rstrip() if not
                     default_text(option) else f"# {option.name} = {default_text(option)}")
    return lines


def sample_text() -> str:
    """The whole sample configuration file."""
    out = [HEADER, "[main]"]
    for option in MAIN_OPTIONS:
        active = "Master" if option.name == "master_region" else None
        out += _sample_option(option, active) + [""]
    out += ["", "[DEFAULT]", DEFAULT_INTRO, ""]
    for backend, options in grouped():
        title = (f"Options of targets of type {backend} only" if backend
                 else "Options of every target")
        out += [f"# --- {title} " + "-" * max(3, 70 - len(title)), ""]
        for option in options:
            out += _sample_option(option) + [""]
    out += ["", TARGETS]
    return "\n".join(out).rstrip("\n") + "\n"


def _rows(options: Iterable[Option], backend: str | None) -> list[list[str]]:
    rows = []
    for option in options:
        default = default_text(option)
        rows.append([f"``{option.name}``", kind_text(option),
                     f"``{default}``" if default else "(none)",
                     where_text(option, backend), "yes" if option.secret else "",
                     option.help])
    return rows


def table_text() -> str:
    """The reStructuredText list-table of every option."""
    lines = [".. list-table:: Every option (generated from the option table)",
             "   :header-rows: 1", "   :widths: 18 14 10 18 6 34", "",
             "   * - Option", "     - Type", "     - Default", "     - Where",
             "     - Secret", "     - What it is"]
    rows = _rows(MAIN_OPTIONS, None)
    for backend, options in grouped():
        rows += _rows(options, backend)
    for row in rows:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" if cell else "     -" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it already holds it (keeps Sphinx's cache)."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        if SAMPLE.read_text(encoding="utf-8") != sample_text():
            print(f"{SAMPLE} differs from the option table: run python docs/options_doc.py",
                  file=sys.stderr)
            return 1
        return 0
    write_if_changed(SAMPLE, sample_text())
    write_if_changed(TABLE, table_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
