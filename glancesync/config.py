"""Loading and validating the GlanceSync configuration (SPEC section 3).

The configuration is an INI file: ``[main]`` holds global options,
``[DEFAULT]`` gives defaults to every target section, and every other
section is a target (``[master]``, ``[other]``, ...). Everything is
validated here, at load time: a mistake raises :class:`ConfigError` naming
the file, the section, the option and what was expected.

Where the file comes from: the stream given to :func:`load_config`, else
``$GLANCESYNC_CONFIG``, else ``/etc/glancesync.conf`` if it exists, else
nothing: a ``master`` target is then built from the ``OS_*`` environment
variables (``OS_REGION_NAME`` is the master region).

A section named ``[target:Region]`` holds options of one region of a
target (only those marked ``per_region`` in :mod:`glancesync.options`:
``transfer``, ``convert_to``, ``upload_method``, ``saving_timeout``,
``region_bandwidth_limit``, ``keep_image_id``, ``validate_command``,
``validate_timeout``); they override the target's values for that region
(:meth:`TargetConfig.for_region`).

Overrides (``--config`` on the command line) are ``section.key=value``, or
``key=value``: such a bare key goes to ``[main]`` when it is a main option
(``master_region``, ``max_children``, ...) and to ``[DEFAULT]`` otherwise.

The options are described once, in :mod:`glancesync.options` (the common
ones) and by each region backend (its own): this module checks the names,
reads the common options and hands each target section to the backend its
``type`` names (:mod:`glancesync.backends`), which reads its own settings.
"""
from __future__ import annotations

import configparser
import dataclasses
import difflib
import logging
import os
import re
import shlex
import stat
import urllib.parse
from pathlib import Path
from typing import Any, BinaryIO, Mapping, Sequence

from glancesync import backends
from glancesync.condition import Condition
from glancesync.filemodes import OutputModes
from glancesync.errors import ConfigError, RegionNotFoundError, UsageError
from glancesync.integrity import open_regular_file
from glancesync.options import (DEFAULTS, MAIN, MAIN_OPTIONS, MASTER, TARGET_OPTIONS, TYPE,
                                Option, Section, split_list)
from glancesync.regions import RegionRef

__all__ = ["Config", "MainConfig", "TargetConfig", "load_config", "main_options",
           "open_config_file", "per_region_options", "target_options", "MASTER"]

LOG = logging.getLogger(__name__)

#: Where the configuration is read from when no stream nor
#: ``$GLANCESYNC_CONFIG`` is given.
DEFAULT_PATH = "/etc/glancesync.conf"
ENV_VAR = "GLANCESYNC_CONFIG"
#: A log record carrying this attribute (true) is a warning the operator must
#: see whatever the verbosity: the scripts print it under cron and --quiet too.
ALWAYS_SHOWN = "always_shown"
#: The largest configuration read, in bytes: a real one is a few KiB.
MAX_CONFIG_SIZE = 1024 * 1024
# Section name never used in a file: DEFAULT is handled by this module,
# not by configparser, so that [main] does not inherit target defaults.
_NO_DEFAULT_SECTION = "\0glancesync-no-default"


def coordination_url_problem(url: str) -> str | None:
    """Why ``url`` is no tooz URL (its scheme names no installed tooz driver), or None."""
    from importlib.metadata import entry_points
    scheme, sep, _ = url.partition("://")
    drivers = sorted(e.name for e in entry_points(group="tooz.backends"))
    if not sep or scheme not in drivers:
        return (f"not a tooz URL: the part before :// must name a tooz driver"
                f" ({', '.join(drivers)}), e.g. etcd3+http://HOST:2379")
    return None


def main_options() -> tuple[Option, ...]:
    """The options of ``[main]``."""
    return MAIN_OPTIONS


def target_options() -> tuple[Option, ...]:
    """The options a target section may hold: the common ones, then each backend's.

    Every registered backend's options are valid in ``[DEFAULT]``; a target
    section is refused one of another backend than its own.
    """
    table: dict[str, Option] = {}
    for option in (*TARGET_OPTIONS, *(o for b in backends.registered() for o in b.options)):
        table.setdefault(option.name, option)
    return tuple(table.values())


@dataclasses.dataclass
class MainConfig:
    """The ``[main]`` section."""

    master_region: str
    preferable_order: list[str] = dataclasses.field(default_factory=list)
    max_children: int = 1
    images_dir: Path | None = None
    cache_dir: Path | None = None
    cache_max_size: int | None = None  #: bytes
    convert_max_virtual_size: int = 128 * 1024 ** 3  #: bytes a converted image may declare
    convert_timeout: float = 3600.0  #: seconds one conversion may take
    stalled_upload_age: float = 3600.0  #: seconds
    run_dir: Path | None = None
    keep_runs: int = 30  #: run folders kept in run_dir (0: all)
    lock_dir: Path | None = None  #: None: the machine-wide folder (glancesync.lock)
    coordination_url: str | None = None  #: a tooz URL; None: the file locks of lock_dir
    lock_ttl: int = 30  #: seconds a coordinated lock outlives its last heartbeat
    bandwidth_limit: int | None = None  #: bytes per second of one run's uploads
    retries: int = 3  #: retries of a transient failure (0: none)
    retry_wait: float = 1.0  #: seconds before the first retry, doubled after each
    metrics_file: Path | None = None  #: Prometheus text-format metrics of every run
    output_group: str | None = None  #: group that may read the outputs (glancesync.filemodes)
    max_deletes: int = 10  #: lifecycle removal steps one run may take, all regions
    #: Regions (``target:Region``) per wave of ``rollout_waves``, in order (none: no waves).
    rollout_waves: tuple[tuple[str, ...], ...] = ()
    wave_soak_hours: float = 0.0  #: hours a wave holds a copy before the next one gets it
    max_master_shrink: int = 50  #: percent the master listing may shrink between runs
    #: Continuous propagation (glancesync.watch): the master Glance's notifications.
    notifications_url: str | None = None  #: an oslo.messaging transport URL (rabbit://...)
    notifications_topic: str = "notifications"
    reconcile_interval: float = 3600.0  #: seconds between whole reconciliations
    watch_listen: str | None = "127.0.0.1:9465"  #: HOST:PORT of health and metrics


@dataclasses.dataclass
class TargetConfig:
    """One target section, defaults of ``[DEFAULT]`` applied.

    ``backend`` is the section's ``type`` (a name of
    :mod:`glancesync.backends`); ``settings`` is what that backend read of
    its own options (for instance
    :class:`~glancesync.backends.openstack.settings.OpenStackSettings`),
    None for a policy made by hand. The other fields are the common
    options, the policy of selection and synchronisation. ``repr()``
    masks the secrets (each backend's settings mask their own).
    """

    name: str
    backend: str = "keystone"
    settings: Any = None
    forcesyncs: frozenset[str] = frozenset()
    metadata_condition: Condition | None = None
    metadata_set: frozenset[str] = frozenset()
    replace: frozenset[str] = frozenset()
    rename: frozenset[str] = frozenset()
    dontupdate: frozenset[str] = frozenset()
    ignore_regions: list[str] = dataclasses.field(default_factory=list)
    only_tenant_images: bool = True
    support_obsolete_images: bool = True
    obsolete_syncprops: frozenset[str] = frozenset()
    list_images_timeout: float = 30.0  #: seconds
    sync_tags: bool = True
    sync_members: bool = False
    deactivated_copies: str = "report"  #: report | reactivate | keep
    signature_properties: str = "after-upload"  #: after-upload | at-upload | drop
    sync_without_checksum: bool = False
    removal_policy: str = "keep"  #: keep | hide | deactivate | delete
    removal_grace_hours: float = 24.0  #: hours
    keep_old_copies: int | None = None  #: NAME.old copies kept per name (None: all)
    transfer: str = "stream"  #: stream, glance-download or auto
    convert_to: str | None = None  #: disk format of the regional copies (None: the master's)
    upload_method: str = "auto"  #: auto, direct or glance-direct (Glance regions)
    import_timeout: float = 1800.0  #: seconds a server-side copy may take
    saving_timeout: float = 900.0  #: seconds a sent upload may stay ``saving``
    keep_image_id: bool = False  #: new copies created with the master image's id
    validate_command: str | None = None  #: run on each new copy before it is published
    validate_timeout: float = 1800.0  #: seconds validate_command may take
    region_bandwidth_limit: int | None = None  #: bytes per second of uploads to a region
    #: Region name -> per-region option values (sections ``[target:Region]``).
    regions: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def for_region(self, region: str) -> "TargetConfig":
        """This target's configuration as it applies to ``region`` (its section's values)."""
        values = self.regions.get(region)
        return dataclasses.replace(self, **values) if values else self


@dataclasses.dataclass
class Config:
    """The whole configuration: ``[main]``, the targets, the file it came from."""

    main: MainConfig
    targets: dict[str, TargetConfig]
    path: str | None = None

    def secrets(self) -> list[str]:
        """The secret values of the configuration (passwords, secrets), to mask in logs.

        The values of the options that their backend declares secret, as the
        targets use them: from the file, ``--config`` overrides, the legacy
        ``credential`` line (decoded) or the ``OS_*`` variables; the password
        of ``coordination_url``, if it has one.
        """
        found = [secret for target in self.targets.values() if target.settings is not None
                 for secret in backends.get_backend(target.backend).secrets(target.settings)]
        if self.main.coordination_url:  # redis://:PASSWORD@host, a service's password
            password = urllib.parse.urlsplit(self.main.coordination_url).password
            if password:
                found.append(urllib.parse.unquote(password))
        return found + url_passwords(self.main.notifications_url)

    def target(self, name: str) -> TargetConfig:
        """The target called ``name``; :class:`~glancesync.RegionNotFoundError` if none."""
        try:
            return self.targets[name]
        except KeyError:
            raise RegionNotFoundError(
                f"unknown target {name!r}; the configured targets are"
                f" {', '.join(sorted(self.targets))}", region=name) from None


def url_passwords(url: str | None) -> list[str]:
    """The passwords of a transport URL (``rabbit://USER:PASS@HOST:PORT,USER:PASS@HOST2/``),
    as written and decoded, to mask in logs."""
    if not url or "://" not in url:
        return []
    hosts = url.split("://", 1)[1].split("/", 1)[0]
    found = []
    for host in hosts.split(","):
        credentials = host.rpartition("@")[0]
        password = credentials.partition(":")[2]
        if password:
            found += [password, urllib.parse.unquote(password)]
    return list(dict.fromkeys(found))


def load_config(stream: Any = None, overrides: Sequence[str] = (),
                environ: Mapping[str, str] | None = None) -> Config:
    """Read, complete and validate the configuration.

    ``stream`` is a path (``str`` or :class:`os.PathLike`) or any object
    with ``read()`` (its ``name`` is used in messages); ``overrides`` are ``section.key=value`` or ``key=value``
    strings; ``environ`` replaces :data:`os.environ` (for tests and for
    callers that build the environment themselves).

    :raises ConfigError: the file is missing, unreadable or invalid.
    """
    env = os.environ if environ is None else environ
    parser = configparser.ConfigParser(interpolation=None,
                                       default_section=_NO_DEFAULT_SECTION)
    path: str | None = None
    if isinstance(stream, (str, os.PathLike)):
        path = os.fspath(stream)
        with open_config_file(path) as handle:
            _parse(parser, _read(handle, path), path)
    elif stream is not None:
        path = getattr(stream, "name", None)
        path = str(path) if isinstance(path, (str, os.PathLike)) else None
        _parse(parser, _read(stream, path), path)
    else:
        path = env.get(ENV_VAR) or (DEFAULT_PATH if os.path.exists(DEFAULT_PATH) else None)
        if path is not None:
            origin = f" (named by ${ENV_VAR})" if env.get(ENV_VAR) else ""
            with open_config_file(path, origin) as handle:
                _parse(parser, _read(handle, path), path)
    if path is not None:
        # Before the overrides: a secret given on the command line is not in the file.
        _check_permissions(parser, path)
    in_file = {section: set(parser[section]) for section in parser.sections()}
    origins = _apply_overrides(parser, overrides)
    _warn_shadowed(parser, origins)
    return _build(parser, path, env, _Origins(path, in_file, origins))


def open_config_file(path: str | os.PathLike[str], origin: str = "") -> BinaryIO:
    """The configuration file at ``path``, opened for reading (bytes).

    Only a regular file of at most :data:`MAX_CONFIG_SIZE` bytes is taken:
    a FIFO, a device (``/dev/zero``), a folder or a huge file would hang or
    exhaust the run. Opening never blocks (a FIFO without writer).
    ``origin`` completes the messages (`` (named by $GLANCESYNC_CONFIG)``).

    :raises ConfigError: the file cannot be opened, or is not a configuration file.
    """
    try:
        return open_regular_file(path, MAX_CONFIG_SIZE)
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file{origin}:"
                          f" {exc.strerror or exc}", path=str(path)) from None


def _read(stream: Any, path: str | None) -> str:
    """At most :data:`MAX_CONFIG_SIZE` bytes (or characters) of ``stream``, as text."""
    try:
        data = stream.read(MAX_CONFIG_SIZE + 1)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the configuration: {getattr(exc, 'strerror', None) or exc}",
                          path=path) from None
    if len(data) > MAX_CONFIG_SIZE:
        raise ConfigError(f"cannot read the configuration: more than {MAX_CONFIG_SIZE}"
                          " bytes, a configuration file is at most that", path=path)
    return _decode(data, path) if isinstance(data, bytes) else data


def _decode(data: bytes, path: str | None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the file is not UTF-8 text ({exc.reason} at byte"
                          f" {exc.start})", path=path) from None


def _parse(parser: configparser.ConfigParser, text: str, path: str | None) -> None:
    try:
        parser.read_string(text, source=path or "<stream>")
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(f"section defined twice (line {exc.lineno})",
                          path=path, section=exc.section) from None
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(f"option defined twice (line {exc.lineno})",
                          path=path, section=exc.section, option=exc.option) from None
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(
            f"line {exc.lineno}: expected a [section] header before"
            f" {_shown_line(exc.line)!r}", path=path) from None
    except configparser.ParsingError as exc:
        text_lines = text.splitlines()

        def shown(lineno: int, line: str) -> str:
            # configparser records repr(line); the number finds the line itself.
            if 1 <= lineno <= len(text_lines):
                line = text_lines[lineno - 1]
            previous = text_lines[lineno - 2] if 2 <= lineno <= len(text_lines) + 1 else ""
            return repr(_shown_line(line, previous))

        lines = ", ".join(f"line {lineno}: {shown(lineno, line)}"
                          for lineno, line in exc.errors)
        raise ConfigError(f"not INI syntax (expected 'key = value'): {lines}",
                          path=path) from None


#: Where an override's value is said to come from in errors:
#: ``(section, option) -> ("--config", section or None for a bare key, option)``.
_OverrideOrigins = dict[tuple[str, str], tuple[str, "str | None", str]]


def _apply_overrides(parser: configparser.ConfigParser,
                     overrides: Sequence[str]) -> _OverrideOrigins:
    """Set the ``--config`` values in ``parser``; where each came from."""
    origins: _OverrideOrigins = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"invalid override {_shown_line(override)!r}: expected"
                              " section.key=value or key=value",
                              path="--config")
        section, dot, option = key.rpartition(".")
        if not dot:
            section = MAIN if option in {o.name for o in MAIN_OPTIONS} else DEFAULTS
        if not section or not option or section == parser.default_section:
            raise ConfigError(f"invalid override {_shown_line(override)!r}: expected"
                              " section.key=value or key=value",
                              path="--config")
        if not parser.has_section(section):
            parser.add_section(section)
        name = option.strip().lower()
        parser.set(section, name, value.strip())
        origins[(section, name)] = ("--config", section if dot else None, name)
    return origins


def _warn_shadowed(parser: configparser.ConfigParser, origins: _OverrideOrigins) -> None:
    """Warn about ``--config`` values of ``[DEFAULT]`` that a target's own value hides."""
    for (section, option), (_, written, _) in origins.items():
        if section != DEFAULTS:
            continue
        for target in parser.sections():
            if target not in (MAIN, DEFAULTS) and parser.has_option(target, option):
                key = f"{DEFAULTS}.{option}" if written else option
                LOG.warning("--config %s goes to [DEFAULT], but [%s] sets its own %s,"
                            " which wins there; to change it, write --config %s.%s=VALUE",
                            key, target, option, target, option,
                            extra={ALWAYS_SHOWN: True})


@dataclasses.dataclass
class _Origins:
    """Where the values of the configuration came from, for located errors."""

    path: str | None
    in_file: dict[str, set[str]]
    overrides: _OverrideOrigins

    def section_path(self, section: str) -> str | None:
        """What a whole-section error names: the file, or ``--config`` for a section
        made only by overrides."""
        if section not in self.in_file and any(s == section for s, _ in self.overrides):
            return "--config"
        return self.path

    def of(self, section: str, values: Mapping[str, str],
           defaults: Mapping[str, str] = {}) -> dict[str, tuple[str | None, str | None, str]]:
        """Option -> origin, for the options of ``section`` not from its own file lines."""
        result: dict[str, tuple[str | None, str | None, str]] = {}
        for option in {*values, *defaults}:
            if option in values:
                if (section, option) in self.overrides:
                    result[option] = self.overrides[(section, option)]
            elif (DEFAULTS, option) in self.overrides:
                result[option] = self.overrides[(DEFAULTS, option)]
            else:
                result[option] = (self.path, DEFAULTS, option)
        return result


def _secret_names() -> frozenset[str]:
    """The options whose values are secrets (every backend's)."""
    return frozenset(option.name for option in (*target_options(), *MAIN_OPTIONS)
                     if option.secret)


def _shown_line(line: str, previous: str = "") -> str:
    """A malformed line as an error may quote it: never a secret.

    A line whose first word is a secret option's name, or looks like one
    (``password S3cret``, ``pasword=S3cret``), shows that word only; a line
    after such a line (a password on a line of its own) shows nothing.
    """
    def key(text: str) -> str:
        return re.split(r"[\s=:]", text.strip(), maxsplit=1)[0]

    def secret_like(word: str) -> bool:
        word = word.lower()
        return bool(word) and (any(part in word for part in _SECRET_WORDS)
                               or bool(difflib.get_close_matches(word, _secret_names(),
                                                                 n=1, cutoff=0.75)))

    if previous.strip() and secret_like(key(previous)):
        return "***"
    if secret_like(key(line)):
        parts = re.match(r"([^\s=:]*)(\s*[=:]\s*|\s+|$)", line.strip())
        assert parts is not None  # the pattern matches any text
        return f"{parts[1]}{parts[2]}***" if parts[0] != line.strip() else parts[1]
    return line.strip()


#: Parts of option names that hold secrets, whatever the exact spelling.
_SECRET_WORDS = ("pass", "secret", "token", "credential")


def _check_permissions(parser: configparser.ConfigParser, path: str) -> None:
    """Warn when a file holding a secret is readable by group or others."""
    secret = list(_secret_names())
    holds_secret = any(parser.has_option(section, option)
                       for section in parser.sections() for option in secret)
    if not holds_secret:
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # a stream not backed by a file: nothing to check
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        # A security warning: the scripts print it even under cron (--quiet).
        LOG.warning("%s holds a password or secret and is readable by other"
                    " users (mode %o); restrict it with: chmod 600 %s",
                    path, stat.S_IMODE(mode), path, extra={ALWAYS_SHOWN: True})


def _section_values(parser: configparser.ConfigParser, name: str) -> dict[str, str]:
    return dict(parser.items(name, raw=True)) if parser.has_section(name) else {}


def _build(parser: configparser.ConfigParser, path: str | None,
           env: Mapping[str, str], origins: _Origins) -> Config:
    target_names = [option.name for option in target_options()]
    defaults = _section_values(parser, DEFAULTS)
    Section(path, DEFAULTS, defaults, origins=origins.of(DEFAULTS, defaults)).check_names(
        target_names, defaults)
    main_values = _section_values(parser, MAIN)
    main_section = Section(path, MAIN, main_values, origins=origins.of(MAIN, main_values))
    main_section.check_names([option.name for option in MAIN_OPTIONS], main_values)

    targets: dict[str, TargetConfig] = {}
    names = [s for s in parser.sections() if s not in (MAIN, DEFAULTS)]
    region_sections = [name for name in names if _REGION_SEP in name]
    names = [name for name in names if name not in region_sections]
    if MASTER not in names:
        names.insert(0, MASTER)
    for name in names:
        own = _section_values(parser, name)
        section = Section(origins.section_path(name), name, {**defaults, **own},
                          secrets=_secret_names(), origins=origins.of(name, own, defaults))
        section.check_names(target_names, own)
        targets[name] = _build_target(section, env, own)
    for name in region_sections:
        _read_region_section(Section(origins.section_path(name), name,
                                     _section_values(parser, name)), targets)

    main = {option.name: main_section.read(option) for option in MAIN_OPTIONS}
    main["master_region"] = main["master_region"] or targets[MASTER].settings.default_region
    if not main["master_region"]:
        raise main_section.error("master_region", "missing: the name of the region"
                                 " holding the reference images is required (when"
                                 " master uses OS_* variables, OS_REGION_NAME also"
                                 " gives it; with a clouds.yaml cloud, its region_name)")
    main["rollout_waves"] = _parse_waves(main_section, main["rollout_waves"], targets)
    if main["coordination_url"]:
        problem = coordination_url_problem(main["coordination_url"])
        if problem:
            raise main_section.error("coordination_url", problem)
    if main["output_group"]:
        try:
            OutputModes(main["output_group"]).gid()
        except ConfigError as error:
            raise main_section.error("output_group", error.message) from None
    return Config(main=MainConfig(**main), targets=targets, path=path)


def _parse_waves(section: Section, text: str | None,
                 targets: Mapping[str, TargetConfig]) -> tuple[tuple[str, ...], ...]:
    """``rollout_waves``: waves separated by ``;``, regions (``Region`` of the master
    target, or ``target:Region``) by ``,``; each region in one wave only.

    :raises ConfigError: an empty wave, a whole target, an unknown target, or a
        region named twice.
    """
    if not text:
        return ()
    waves, seen = [], set()
    for number, wave in enumerate(text.split(";"), start=1):
        regions = []
        for entry in split_list(wave):
            try:
                ref = RegionRef.parse(entry)
            except UsageError as error:
                raise section.error("rollout_waves", f"wave {number}: {error.message}") \
                    from None
            if ref.target not in targets:
                raise section.error("rollout_waves", f"wave {number}: unknown target"
                                                     f" {ref.target!r} in {entry!r}")
            if str(ref) in seen:
                raise section.error("rollout_waves", f"{ref} is in two waves: a region"
                                                     " belongs to one wave")
            seen.add(str(ref))
            regions.append(str(ref))
        if not regions:
            raise section.error("rollout_waves", f"wave {number} names no region (waves"
                                                 " are separated by ';', regions by ',')")
        waves.append(tuple(regions))
    return tuple(waves)


#: Separates the target from the region in the name of a per-region section.
_REGION_SEP = ":"


def per_region_options() -> tuple[Option, ...]:
    """The options a ``[target:Region]`` section may hold."""
    return tuple(option for option in TARGET_OPTIONS if option.per_region)


def _read_region_section(section: Section, targets: dict[str, TargetConfig]) -> None:
    """Record the values of a ``[target:Region]`` section on its target.

    :raises ConfigError: an unknown target, an empty region name, or an
        option that cannot be set per region.
    """
    target, _, region = section.name.partition(_REGION_SEP)
    target, region = target.strip(), region.strip()
    if not target or not region or _REGION_SEP in region:
        raise section.error(None, "a per-region section is named [target:Region]")
    if target not in targets:
        raise section.error(None, f"unknown target {target!r}; the configured targets are"
                                  f" {', '.join(sorted(targets))}")
    allowed = per_region_options()
    for option in section.values:
        if option not in {o.name for o in allowed}:
            raise section.error(option, "cannot be set for one region; the options of a"
                                        f" [target:Region] section are"
                                        f" {', '.join(o.name for o in allowed)}")
    values = {option.name: section.read(option) for option in allowed
              if option.name in section.values}
    _check_command(section, values.get("validate_command"))
    targets[target].regions.setdefault(region, {}).update(values)


def _check_command(section: Section, command: str | None) -> None:
    """``validate_command`` must split into words (shell quoting, never a shell).

    :raises ConfigError: unbalanced quotes.
    """
    if command is None:
        return
    try:
        shlex.split(command)
    except ValueError as error:
        raise section.error("validate_command", f"cannot be split into words ({error}):"
                                                " check its quotes") from None


def _build_target(section: Section, env: Mapping[str, str],
                  own: Mapping[str, str]) -> TargetConfig:
    """The target of one section: common options here, the rest by its backend.

    ``own`` are the section's own values (``[DEFAULT]``'s left aside): an
    option of another backend among them is refused.
    """
    kind = section.read(dataclasses.replace(TYPE, choices=backends.names()))
    backend = backends.get_backend(kind)
    _refuse_foreign_options(section, kind, backend, own)
    common = {option.name: section.read(option)
              for option in TARGET_OPTIONS if option is not TYPE}
    if common["keep_old_copies"] is not None and common["removal_policy"] == "keep":
        raise section.error("keep_old_copies", "needs removal_policy = hide, deactivate"
                                               " or delete: it says what happens to the"
                                               " NAME.old copies beyond the limit")
    _check_command(section, common.get("validate_command"))
    settings = backend.settings(section, env)
    # Other backends' options are valid anywhere ([DEFAULT] serves every
    # target): their values are checked all the same.
    read = {option.name for option in (*TARGET_OPTIONS, *backend.options)}
    for option in target_options():
        if option.name not in read and option.name in section.values:
            section.read(option)
    return TargetConfig(name=section.name, backend=kind, settings=settings, **common)


def _refuse_foreign_options(section: Section, kind: str, backend: Any,
                            own: Mapping[str, str]) -> None:
    """Refuse an option of another backend set in the section itself.

    In ``[DEFAULT]`` such options serve the targets of that backend; in a
    target section they would be silently ignored (``path`` in a Keystone
    target usually means a forgotten ``type = local``).

    :raises ConfigError: naming the option, its backend and the section's type.
    """
    accepted = {option.name for option in (*TARGET_OPTIONS, *backend.options)}
    for name in own:
        if name in accepted:
            continue
        owners = [b.name for b in backends.registered()
                  if any(option.name == name for option in b.options)]
        if not owners:
            continue  # an unknown name: check_names reports it
        explicit = "type" in own
        hint = (f"; if this is a {owners[0]} target, add type = {owners[0]}"
                if len(owners) == 1 else "")
        raise section.error(name, f"an option of {' or '.join(owners)} targets, but"
                                  f" this target's type is {kind}"
                                  f"{'' if explicit else ' (the default)'}{hint}")
