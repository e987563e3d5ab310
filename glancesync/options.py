"""The one description of the configuration options, and their typed parsers.

Every option is an :class:`Option`: its name, the kind of value it takes,
its default, its scope (``main``: the ``[main]`` section; ``target``: a
target section and ``[DEFAULT]``), whether its value is a secret, a short
help text and, for some kinds, its choices or minimum. The options every
target shares are declared here (:data:`MAIN_OPTIONS`,
:data:`TARGET_OPTIONS`); each region backend declares its own with the same
class (:mod:`glancesync.backends`). The reference (docs/manual/configuration.rst)
and the sample (conf/glancesync.conf.sample) are checked against these
declarations by the tests.

A :class:`Section` gives typed access to one section's values
(:meth:`Section.read`); every mistake is a :class:`~glancesync.errors.ConfigError`
naming the file, the section, the option and what was expected.
"""
from __future__ import annotations

import configparser
import dataclasses
import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from glancesync.condition import Condition
from glancesync.errors import ConfigError

__all__ = ["MAIN", "DEFAULTS", "MASTER", "MAIN_OPTIONS", "TARGET_OPTIONS", "TYPE", "KINDS",
           "TRANSFERS", "CONVERT_FORMATS", "Option", "Section", "split_list"]

#: Section names with a meaning of their own; every other section is a target.
MAIN = "main"
DEFAULTS = "DEFAULT"
#: The target holding the master region.
MASTER = "master"

_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3,
               "t": 1024 ** 4, "p": 1024 ** 5}
_SIZE_RE = re.compile(r"^\s*(\d{1,20}(?:\.\d{1,20})?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
_CHECKSUM_RE = re.compile(r"^[0-9a-f]+$")
#: The largest number of seconds a ``number`` option takes (about 31 years):
#: beyond, timers and socket timeouts overflow.
MAX_SECONDS = 1e9


@dataclasses.dataclass(frozen=True)
class Option:
    """One configuration option.

    ``kind`` is a key of :data:`KINDS` and says what :meth:`Section.read`
    returns: ``string`` (str), ``int``, ``number`` (float, seconds),
    ``hours`` (float), ``rate`` (float, requests per second), ``bool``,
    ``size`` (int bytes, with K/M/G/T/P suffixes), ``list`` (list of names, such as region names, separated by
    commas: blanks inside a name are kept), ``set`` (frozenset of words:
    ids, properties; separated by commas or blanks), ``checksums`` (the
    same, of hex strings or ``any``), ``path`` (Path, ``~`` expanded),
    ``choice`` (one of ``choices``, lower case), ``expression`` (a compiled
    :class:`~glancesync.condition.Condition`). Every list kind is split by
    :func:`split_list` (items may be quoted). ``default`` is returned for
    an absent or empty value. ``minimum`` bounds ``int``, ``number``,
    ``hours`` and ``rate`` (excluded when ``strict``). ``secret`` values are masked in logs and
    reprs, and a file holding one should not be readable by others.
    ``per_region`` options may also be set for one region of a target, in a
    section named ``[target:Region]``.
    """

    name: str
    kind: str
    default: Any = None
    scope: str = "target"
    secret: bool = False
    help: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    strict: bool = False
    per_region: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: unknown kind {self.kind!r}")
        if self.scope not in ("main", "target"):
            raise ValueError(f"option {self.name}: scope must be 'main' or 'target'")
        if self.per_region and self.scope != "target":
            raise ValueError(f"option {self.name}: only target options can be per region")


class Section:
    """Typed access to one section's values (defaults of ``[DEFAULT]`` applied).

    ``path`` (the file, or None) and ``name`` locate errors. ``origins``
    says where a value came from when it is not this section of that file:
    option -> ``(path, section, option)`` as errors show them (a value of
    ``[DEFAULT]``: the file and ``DEFAULT``; a ``--config`` override:
    ``--config`` and the section and key as written).
    """

    def __init__(self, path: str | None, name: str, values: Mapping[str, str],
                 secrets: frozenset[str] = frozenset(),
                 origins: Mapping[str, tuple[str | None, str | None, str]] | None = None
                 ) -> None:
        self.path = path
        self.name = name
        self.values = dict(values)
        self.secrets = secrets
        self.origins = dict(origins or {})

    def error(self, option: str | None, message: str) -> ConfigError:
        """The error to raise for a mistake in ``option`` (None: the whole section).

        It names where the value came from: this section of the file, the
        file's ``[DEFAULT]``, or a ``--config`` override.
        """
        if option is not None and option in self.origins:
            path, section, shown = self.origins[option]
            return ConfigError(message, path=path, section=section, option=shown)
        return ConfigError(message, path=self.path, section=self.name, option=option)

    def get(self, option: str, default: str | None = None) -> str | None:
        """The raw value of ``option``, stripped; ``default`` when absent or empty.

        A secret option (named in ``secrets``) enclosed in double quotes is
        what lies between them, spaces included (:func:`unquote_secret`).
        """
        value = self.values.get(option)
        if value is None or value.strip() == "":
            return default
        if option in self.secrets:
            return unquote_secret(value.strip())
        return value.strip()

    def read(self, option: Option) -> Any:
        """The value of ``option`` parsed according to its kind.

        :raises ConfigError: the value does not fit the kind.
        """
        return KINDS[option.kind](self, option)

    def check_names(self, valid: Sequence[str], given: Mapping[str, str]) -> None:
        """Refuse the names of ``given`` that are not in ``valid``.

        :raises ConfigError: naming the first unknown option and listing the valid ones.
        """
        for option in given:
            if option not in valid:
                raise self.error(option, f"unknown option; the valid options of"
                                         f" this section are {', '.join(valid)}")

    def _convert(self, option: Option, func: Callable[[str], Any], expected: str) -> Any:
        raw = self.get(option.name)
        if raw is None:
            return option.default
        try:
            return func(raw)
        except (ValueError, TypeError):
            raise self.error(option.name,
                             f"invalid value {raw!r}: expected {expected}") from None

    def _items(self, option: Option, *, blanks: bool) -> list[str]:
        raw = self.get(option.name)
        if raw is None:
            return []
        try:
            return split_list(raw, blanks=blanks)
        except ValueError as exc:
            raise self.error(option.name, f"invalid list {raw!r}: {exc}") from None


_QUOTES = "\"'"


def split_list(text: str, *, blanks: bool = False) -> list[str]:
    """The items of a list value, in order, duplicates dropped.

    Items are separated by commas and, when ``blanks``, by blanks too;
    blanks around an item are dropped, and empty items. An item may be
    quoted with ``"`` or ``'`` to hold commas, blanks at its ends or the
    other quote: ``Test Lab, "Lab, old", ' padded'``. A quote anywhere but
    at the start of an item is an ordinary character (``O'Brien``).

    :raises ValueError: a quote is not closed, or a quoted item is followed
        by something else than a separator.
    """
    def separates(char: str) -> bool:
        return char == "," or (blanks and char.isspace())

    items: list[str] = []
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] == "," or text[pos].isspace():
            pos += 1
        elif text[pos] in _QUOTES:
            close = text.find(text[pos], pos + 1)
            if close < 0:
                raise ValueError(f"the quote {text[pos]} at position {pos + 1} is not closed")
            items.append(text[pos + 1:close])
            pos = close + 1
            while pos < end and text[pos].isspace() and not separates(text[pos]):
                pos += 1
            if pos < end and not separates(text[pos]):
                raise ValueError(f"a separator must follow the quoted item {items[-1]!r}")
        else:
            start = pos
            while pos < end and not separates(text[pos]):
                pos += 1
            items.append(text[start:pos].strip())
    return list(dict.fromkeys(item for item in items if item))


def unquote_secret(value: str) -> str:
    """A secret's value: between double quotes if it is enclosed in them.

    INI values lose their leading and trailing spaces; a password that has
    some is written ``password = " s3cret "``. Nothing is escaped inside: a
    secret that itself begins and ends with ``"`` takes one more pair.
    """
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _string(section: Section, option: Option) -> Any:
    return section.get(option.name, option.default)


def _int(section: Section, option: Option) -> Any:
    value = section._convert(option, int, "an integer")
    if value is not None and option.minimum is not None and value < option.minimum:
        raise section.error(option.name, f"invalid value {value}: expected an integer"
                                         f" >= {option.minimum:g}")
    return value


def _number(section: Section, option: Option) -> Any:
    return _quantity(section, option, "seconds", 1.0)


def _hours(section: Section, option: Option) -> Any:
    return _quantity(section, option, "hours", 3600.0)


def _rate(section: Section, option: Option) -> Any:
    return _quantity(section, option, "requests per second", 1.0)


def _quantity(section: Section, option: Option, unit: str, seconds: float) -> Any:
    """A finite float in ``unit`` (of ``seconds`` each, at most :data:`MAX_SECONDS`
    in all), bounded by ``option.minimum``."""
    value = section._convert(option, float, f"a number of {unit}")
    most = MAX_SECONDS / seconds
    if value is not None and not (math.isfinite(value) and abs(value) <= most):
        raise section.error(option.name, f"invalid value {section.get(option.name)!r}:"
                                         f" expected a finite number of {unit}, at most"
                                         f" {most:.0f}")
    minimum = option.minimum
    if minimum is not None and (value < minimum or (option.strict and value == minimum)):
        relation = ">" if option.strict else ">="
        raise section.error(option.name, f"invalid value {value}: expected a number"
                                         f" of {unit} {relation} {minimum:g}")
    return value


def _bool(section: Section, option: Option) -> Any:
    raw = section.get(option.name)
    if raw is None:
        return option.default
    try:
        return configparser.ConfigParser.BOOLEAN_STATES[raw.lower()]
    except KeyError:
        raise section.error(option.name, f"invalid value {raw!r}: expected true/false,"
                                         " yes/no, on/off or 1/0") from None


def _size(section: Section, option: Option) -> Any:
    raw = section.get(option.name)
    if raw is None:
        return option.default
    match = _SIZE_RE.match(raw)
    if not match:
        raise section.error(option.name, f"invalid size {raw!r}: expected a number of"
                                         " bytes with an optional K, M, G, T or P"
                                         " suffix, fractions allowed (e.g. 500M, 10G,"
                                         " 1.5G)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _list(section: Section, option: Option) -> Any:
    return section._items(option, blanks=False)


def _set(section: Section, option: Option) -> Any:
    return frozenset(section._items(option, blanks=True))


def _checksums(section: Section, option: Option) -> Any:
    result = set()
    for item in section._items(option, blanks=True):
        item = item.lower()
        if item != "any" and not _CHECKSUM_RE.match(item):
            raise section.error(option.name, f"invalid checksum {item!r}: expected"
                                             " hexadecimal checksums or 'any'")
        result.add(item)
    return frozenset(result)


def _path(section: Section, option: Option) -> Any:
    raw = section.get(option.name)
    return option.default if raw is None else Path(raw).expanduser()


def _choice(section: Section, option: Option) -> Any:
    raw = section.get(option.name, option.default)
    if raw is None:
        return None
    if raw.lower() not in option.choices:
        raise section.error(option.name, f"invalid value {raw!r}: expected one of"
                                         f" {', '.join(option.choices)}")
    return raw.lower()


def _expression(section: Section, option: Option) -> Any:
    raw = section.get(option.name)
    if raw is None:
        return option.default
    try:
        return Condition(raw)
    except ConfigError as exc:
        raise section.error(option.name, exc.message) from None


#: The parser of each kind of option: ``(section, option) -> value``.
KINDS: dict[str, Callable[[Section, Option], Any]] = {
    "string": _string, "int": _int, "number": _number, "hours": _hours, "bool": _bool,
    "rate": _rate, "size": _size,
    "list": _list, "set": _set, "checksums": _checksums, "path": _path,
    "choice": _choice, "expression": _expression,
}


def _main(name: str, kind: str, default: Any = None, help: str = "", **kw: Any) -> Option:
    return Option(name, kind, default, scope="main", help=help, **kw)


#: Options of ``[main]``.
MAIN_OPTIONS: tuple[Option, ...] = (
    _main("master_region", "string", help="region of target master holding the reference"
                                          " images (required; OS_REGION_NAME without a file)"),
    _main("preferable_order", "list", [], help="order of the regions after an expansion"),
    _main("max_children", "int", 1, minimum=1, help="regions synchronised at once with"
                                                    " --parallel"),
    _main("images_dir", "path", help="read-only folder of master image files named by id"),
    _main("cache_dir", "path", help="folder of verified master image files kept between runs"),
    _main("cache_max_size", "size", help="largest size of cache_dir in bytes (no limit)"),
    _main("convert_max_virtual_size", "size", 128 * 1024 ** 3,
          help="largest virtual disk size in bytes of a master image converted with"
               " qemu-img (convert_to); a larger one is refused before qemu-img runs"),
    _main("convert_timeout", "number", 3600.0, minimum=0.0, strict=True,
          help="seconds the checks and the qemu-img conversion of one image may take"
               " (wall clock, and qemu-img's CPU time); a slower one is stopped and"
               " refused"),
    _main("stalled_upload_age", "number", 3600.0, minimum=0.0,
          help="seconds after which a queued or saving image left by an interrupted"
               " upload of GlanceSync is deleted"),
    _main("run_dir", "path", help="folder of the per-region logs of --parallel runs"),
    _main("keep_runs", "int", 30, minimum=0,
          help="run folders kept in run_dir, the oldest deleted first (0: all)"),
    _main("lock_dir", "path", help="folder of the region lock files, shared by every"
                                   " operator (default: /var/lock/glancesync)"),
    _main("coordination_url", "string",
          help="tooz URL of the coordination service that the hosts synchronising one"
               " federation share for their region locks and leader election, e.g."
               " etcd3+http://HOST:2379 (none: the file locks of lock_dir, one machine)"),
    _main("lock_ttl", "int", 30, minimum=2,
          help="seconds a lock of coordination_url outlives its last heartbeat: a host"
               " that dies blocks its regions that long at most"),
    _main("bandwidth_limit", "size",
          help="bytes per second (K, M, G suffixes) that the uploads of one run may send,"
               " all regions together: the share of this host's link (no limit)"),
    _main("retries", "int", 3, minimum=0, help="new attempts of a call failing for a"
                                               " transient reason (0: none)"),
    _main("retry_wait", "number", 1.0, minimum=0.0,
          help="seconds before the first retry, doubled before each next one"),
    _main("output_group", "string", help="group that may read the outputs (metrics,"
                                        " reports, backups, logs), else their owner only"),
    _main("metrics_file", "path", help="file of Prometheus metrics written at the end of"
                                       " every run, for node_exporter's textfile collector"
                                       " (none)"),
    _main("max_deletes", "int", 10, minimum=0,
          help="most lifecycle removal steps (hide, deactivate, delete) one run takes,"
               " all regions together; a run that would take more takes none"),
    _main("rollout_waves", "string",
          help="waves of regions a new master image reaches one after the other (waves"
               " separated by ';', regions by ','; the regions not named: a last wave)"),
    _main("wave_soak_hours", "hours", 0.0, minimum=0.0,
          help="hours every region of a wave must have held an accepted copy before the"
               " next wave gets it"),
    _main("max_master_shrink", "int", 50, minimum=0,
          help="largest drop, in percent, of the images the master listing shows since"
               " the last run; a run whose listing shrank more takes no removal step"
               " (100: no limit)"),
    _main("notifications_url", "string", secret=True,
          help="oslo.messaging transport URL of the master Glance's notifications, e.g."
               " rabbit://USER:PASS@HOST:5672/ (glancesync-watch; none: no watcher)"),
    _main("notifications_topic", "string", "notifications",
          help="topic of the master Glance's notifications (its"
               " [oslo_messaging_notifications] topics)"),
    _main("reconcile_interval", "number", 3600.0, minimum=0.0, strict=True,
          help="seconds between two whole reconciliations of glancesync-watch (one"
               " also runs at its start and when the bus comes back)"),
    _main("watch_listen", "string", "127.0.0.1:9465",
          help="loopback HOST:PORT where glancesync-watch serves /health and"
               " /metrics (Prometheus); 'none': no endpoint"),
)

#: Values of ``transfer``: how image data reaches a region.
TRANSFERS = ("stream", "glance-download", "auto")
#: Values of ``upload_method``: how streamed data enters a Glance region.
UPLOAD_METHODS = ("auto", "direct", "glance-direct")
#: Values of ``convert_to``: the Glance disk formats ``qemu-img`` converts to.
CONVERT_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx")

#: The region backend of a target; its choices are the names registered in
#: :mod:`glancesync.backends`, known only when the configuration is read.
TYPE = Option("type", "choice", "keystone", help="the region backend of the target")

#: ``removal_policy``: what happens to a regional copy whose master image is
#: gone or no longer selected (and to ``NAME.old`` copies beyond
#: ``keep_old_copies``). ``keep`` never touches them.
REMOVAL_POLICIES = ("keep", "hide", "deactivate", "delete")

#: The image lifecycle options of a target.
LIFECYCLE_OPTIONS: tuple[Option, ...] = (
    Option("removal_policy", "choice", "keep", choices=REMOVAL_POLICIES,
           help="a copy whose master image is gone or no longer selected: keep it,"
                " hide it, deactivate it or delete it"),
    Option("removal_grace_hours", "hours", 24.0, minimum=0.0,
           help="hours between the sync that finds a copy's master image gone and the"
                " removal step"),
    Option("keep_old_copies", "int", None, minimum=0,
           help="most NAME.old copies kept per name; older ones get the removal_policy"
                " step (no limit)"),
)

#: The release options of a target (issue 26).
ROLLOUT_OPTIONS: tuple[Option, ...] = (
    Option("keep_image_id", "bool", False, per_region=True,
           help="create each new regional copy with the master image's id (where the"
                " region refuses it, a new id and a status that says why)"),
    Option("validate_command", "string", None, per_region=True,
           help="command run on each new copy before it is made visible (exit status 0:"
                " published; else kept private, the previous copy in service)"),
    Option("validate_timeout", "number", 1800.0, minimum=0.0, strict=True, per_region=True,
           help="seconds validate_command may take before it is stopped (a failed"
                " validation)"),
)

#: Options every target section takes, whatever its backend (``type``).
TARGET_OPTIONS: tuple[Option, ...] = (
    TYPE,
    Option("forcesyncs", "set", frozenset(), help="master image ids always synchronised"),
    Option("metadata_condition", "expression",
           help="expression deciding which master images are synchronised"),
    Option("metadata_set", "set", frozenset(), help="properties compared and synchronised"),
    Option("replace", "checksums", frozenset(),
           help="regional checksums (or any) whose image is replaced"),
    Option("rename", "checksums", frozenset(),
           help="regional checksums (or any) whose image is renamed .old"),
    Option("dontupdate", "checksums", frozenset(),
           help="regional checksums (or any) whose image is kept as it is"),
    Option("ignore_regions", "list", [], help="regions skipped when the target is expanded"),
    Option("only_tenant_images", "bool", True,
           help="only the project's own regional images count"),
    Option("support_obsolete_images", "bool", True, help="apply NAME_obsolete master images"),
    Option("obsolete_syncprops", "set", frozenset(),
           help="properties copied to a regional image made obsolete"),
    Option("list_images_timeout", "number", 30.0, minimum=0.0, strict=True,
           help="seconds a whole listing of a region's images may take"),
    Option("sync_tags", "bool", True, help="compare and copy the images' tags"),
    Option("sync_members", "bool", False,
           help="share shared images with the projects of the same name and domain"
                " as in the master region"),
    Option("deactivated_copies", "choice", "report", choices=("report", "reactivate", "keep"),
           help="a deactivated regional copy: report it (needs an operator),"
                " reactivate it, or keep it deactivated"),
    Option("signature_properties", "choice", "after-upload",
           choices=("after-upload", "at-upload", "drop"),
           help="when img_signature* properties are set on a copy: after its data is"
                " verified, at creation (the region verifies them), or never"),
    Option("sync_without_checksum", "bool", False,
           help="copy master images that have no checksum, verified by size and by the"
                " hash computed while downloading"),
    *LIFECYCLE_OPTIONS,
    Option("transfer", "choice", "stream", choices=TRANSFERS, per_region=True,
           help="how image data reaches the regions: stream (through this host), "
                "glance-download (the region copies it from a region of its Keystone) "
                "or auto (glance-download where possible, else stream)"),
    Option("convert_to", "choice", None, choices=CONVERT_FORMATS, per_region=True,
           help="disk format the regions store, converted with qemu-img (empty: "
                "the master's)"),
    Option("region_bandwidth_limit", "size", None, per_region=True,
           help="bytes per second (K, M, G suffixes) that the uploads to one region may"
                " send (no limit)"),
    Option("upload_method", "choice", "auto", choices=UPLOAD_METHODS, per_region=True,
           help="how streamed data enters a Glance region: direct (PUT of the image"
                " data), glance-direct (staged, then imported: the import API) or auto"
                " (direct, glance-direct once the region's policy forbids direct)"),
    Option("import_timeout", "number", 1800.0, minimum=0.0, strict=True,
           help="seconds a server-side copy (glance-download) may take before it is "
                "cancelled and the image streamed, and an import of staged data "
                "(glance-direct) before it fails"),
    Option("saving_timeout", "number", 900.0, minimum=0.0, strict=True, per_region=True,
           help="seconds an upload waits for its image to leave the saving state once"
                " every byte was sent (a store slow to finalise)"),
    *ROLLOUT_OPTIONS,
)
