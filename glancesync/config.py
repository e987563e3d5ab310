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

Overrides (``--config`` on the command line) are ``section.key=value``, or
``key=value``: such a bare key goes to ``[main]`` when it is a main option
(``master_region``, ``max_children``, ...) and to ``[DEFAULT]`` otherwise.
"""
from __future__ import annotations

import base64
import binascii
import configparser
import dataclasses
import logging
import os
import re
import stat
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from glancesync.condition import Condition
from glancesync.errors import ConfigError, RegionNotFoundError

LOG = logging.getLogger(__name__)

#: Where the configuration is read from when no stream nor
#: ``$GLANCESYNC_CONFIG`` is given.
DEFAULT_PATH = "/etc/glancesync.conf"
ENV_VAR = "GLANCESYNC_CONFIG"
MASTER = "master"
MAIN = "main"
DEFAULTS = "DEFAULT"

#: Options of ``[main]``.
MAIN_OPTIONS = ("master_region", "preferable_order", "max_children",
                "images_dir", "cache_dir", "cache_max_size",
                "stalled_upload_age", "run_dir", "retries", "retry_wait")

#: Keystone credential options of a target (keystoneauth1 names).
AUTH_OPTIONS = ("auth_url", "username", "password", "project_name",
                "project_id", "user_domain_name", "project_domain_name",
                "application_credential_id", "application_credential_secret")

#: Options whose value is a secret: masked in repr(), and a file holding
#: one must not be readable by other users.
SECRET_OPTIONS = ("password", "credential", "application_credential_secret")

#: Options of a target section (and of ``[DEFAULT]``).
TARGET_OPTIONS = (
    "type", "path", "regions", "project", "cloud", *AUTH_OPTIONS, "user", "credential",
    "cacert", "insecure", "interface", "forcesyncs", "metadata_condition",
    "metadata_set", "replace", "rename", "dontupdate", "ignore_regions",
    "only_tenant_images", "support_obsolete_images", "obsolete_syncprops",
    "list_images_timeout",
)

TARGET_KINDS = ("keystone", "local")
INTERFACES = ("public", "internal", "admin")
DEFAULT_DOMAIN = "Default"
DEFAULT_LOCAL_PROJECT = "local-project"
MASK = "***"

_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3,
               "t": 1024 ** 4, "p": 1024 ** 5}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
_CHECKSUM_RE = re.compile(r"^[0-9a-f]+$")
# Section name never used in a file: DEFAULT is handled by this module,
# not by configparser, so that [main] does not inherit target defaults.
_NO_DEFAULT_SECTION = "\0glancesync-no-default"


@dataclasses.dataclass
class MainConfig:
    """The ``[main]`` section."""

    master_region: str
    preferable_order: list[str] = dataclasses.field(default_factory=list)
    max_children: int = 1
    images_dir: Path | None = None
    cache_dir: Path | None = None
    cache_max_size: int | None = None  #: bytes
    stalled_upload_age: float = 3600.0  #: seconds
    run_dir: Path | None = None
    retries: int = 3  #: retries of a transient failure (0: none)
    retry_wait: float = 1.0  #: seconds before the first retry, doubled after each


@dataclasses.dataclass(repr=False)
class TargetConfig:
    """One target section, defaults of ``[DEFAULT]`` applied.

    ``kind`` is ``keystone`` or ``local``. A Keystone target has either
    ``cloud`` (a ``clouds.yaml`` name, resolved when the target connects)
    or ``auth`` (keystoneauth1 v3 option names to values). ``repr()`` masks
    the secrets.
    """

    name: str
    kind: str = "keystone"
    path: Path | None = None
    regions: list[str] = dataclasses.field(default_factory=list)
    auth: dict[str, str] | None = None
    cloud: str | None = None
    cacert: str | None = None
    insecure: bool = False
    interface: str = "public"
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
    list_images_timeout: float = 30.0
    project: str = DEFAULT_LOCAL_PROJECT

    def __repr__(self) -> str:
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "auth" and value is not None:
                value = {k: MASK if k in SECRET_OPTIONS else v for k, v in value.items()}
            parts.append(f"{field.name}={value!r}")
        return f"TargetConfig({', '.join(parts)})"


@dataclasses.dataclass
class Config:
    """The whole configuration: ``[main]``, the targets, the file it came from."""

    main: MainConfig
    targets: dict[str, TargetConfig]
    path: str | None = None

    def secrets(self) -> list[str]:
        """The secret values of the configuration (passwords, secrets), to mask in logs.

        Whatever their source: the file, ``--config`` overrides, the legacy
        ``credential`` line (decoded) or the ``OS_*`` variables.
        """
        return [target.auth[option] for target in self.targets.values() if target.auth
                for option in SECRET_OPTIONS if target.auth.get(option)]

    def target(self, name: str) -> TargetConfig:
        """The target called ``name``; :class:`RegionNotFoundError` if none."""
        try:
            return self.targets[name]
        except KeyError:
            raise RegionNotFoundError(
                f"unknown target {name!r}; the configured targets are"
                f" {', '.join(sorted(self.targets))}", region=name) from None


def load_config(stream: Any = None, overrides: Sequence[str] = (),
                environ: Mapping[str, str] | None = None) -> Config:
    """Read, complete and validate the configuration.

    ``stream`` is any object with ``read()`` (its ``name`` is used in
    messages); ``overrides`` are ``section.key=value`` or ``key=value``
    strings; ``environ`` replaces :data:`os.environ` (for tests and for
    callers that build the environment themselves).
    """
    env = os.environ if environ is None else environ
    parser = configparser.ConfigParser(interpolation=None,
                                       default_section=_NO_DEFAULT_SECTION)
    path: str | None = None
    if stream is not None:
        path = getattr(stream, "name", None)
        path = str(path) if isinstance(path, (str, os.PathLike)) else None
        try:
            text = stream.read()
        except OSError as exc:
            raise ConfigError(f"cannot read the configuration: {exc.strerror or exc}",
                              path=path) from None
        if isinstance(text, bytes):
            text = _decode(text, path)
        _parse(parser, text, path)
    else:
        path = env.get(ENV_VAR) or (DEFAULT_PATH if os.path.exists(DEFAULT_PATH) else None)
        if path is not None:
            try:
                with open(path, "rb") as handle:
                    text = _decode(handle.read(), path)
            except OSError as exc:
                origin = f" (named by ${ENV_VAR})" if env.get(ENV_VAR) else ""
                raise ConfigError(
                    f"cannot read the configuration file{origin}:"
                    f" {exc.strerror or exc}", path=path) from None
            _parse(parser, text, path)
    if path is not None:
        # Before the overrides: a secret given on the command line is not in the file.
        _check_permissions(parser, path)
    _apply_overrides(parser, overrides)
    return _build(parser, path, env)


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
            f" {exc.line.strip()!r}", path=path) from None
    except configparser.ParsingError as exc:
        lines = ", ".join(f"line {lineno}: {line.strip()!r}" for lineno, line in exc.errors)
        raise ConfigError(f"not INI syntax (expected 'key = value'): {lines}",
                          path=path) from None


def _apply_overrides(parser: configparser.ConfigParser, overrides: Sequence[str]) -> None:
    for override in overrides:
        key, sep, value = override.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"invalid override {override!r}: expected"
                              " section.key=value or key=value",
                              path="--config")
        section, dot, option = key.rpartition(".")
        if not dot:
            section = MAIN if option in MAIN_OPTIONS else DEFAULTS
        if not section or not option:
            raise ConfigError(f"invalid override {override!r}: expected"
                              " section.key=value or key=value",
                              path="--config")
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, option.strip().lower(), value.strip())


def _check_permissions(parser: configparser.ConfigParser, path: str) -> None:
    """Warn when a file holding a secret is readable by group or others."""
    holds_secret = any(parser.has_option(section, option)
                       for section in parser.sections() for option in SECRET_OPTIONS)
    if not holds_secret:
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # a stream not backed by a file: nothing to check
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        LOG.warning("%s holds a password or secret and is readable by other"
                    " users (mode %o); restrict it with: chmod 600 %s",
                    path, stat.S_IMODE(mode), path)


class _Section:
    """Typed access to one section's options, with error locations."""

    def __init__(self, path: str | None, name: str, values: Mapping[str, str]) -> None:
        self.path = path
        self.name = name
        self.values = dict(values)

    def error(self, option: str | None, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, section=self.name, option=option)

    def get(self, option: str, default: str | None = None) -> str | None:
        value = self.values.get(option)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    def convert(self, option: str, default: Any, func: Callable[[str], Any],
                expected: str) -> Any:
        raw = self.get(option)
        if raw is None:
            return default
        try:
            return func(raw)
        except (ValueError, TypeError):
            raise self.error(option, f"invalid value {raw!r}: expected {expected}") from None

    def integer(self, option: str, default: int | None, minimum: int) -> int | None:
        value = self.convert(option, default, int, "an integer")
        if value is not None and value < minimum:
            raise self.error(option, f"invalid value {value}: expected an integer"
                                     f" >= {minimum}")
        return value

    def number(self, option: str, default: float, minimum: float, strict: bool) -> float:
        value = self.convert(option, default, float, "a number of seconds")
        if value < minimum or (strict and value == minimum):
            relation = ">" if strict else ">="
            raise self.error(option, f"invalid value {value}: expected a number"
                                     f" of seconds {relation} {minimum:g}")
        return value

    def boolean(self, option: str, default: bool) -> bool:
        raw = self.get(option)
        if raw is None:
            return default
        try:
            return configparser.ConfigParser.BOOLEAN_STATES[raw.lower()]
        except KeyError:
            raise self.error(option, f"invalid value {raw!r}: expected true/false,"
                                     " yes/no, on/off or 1/0") from None

    def size(self, option: str) -> int | None:
        raw = self.get(option)
        if raw is None:
            return None
        match = _SIZE_RE.match(raw)
        if not match:
            raise self.error(option, f"invalid size {raw!r}: expected a number of"
                                     " bytes with an optional K, M, G, T suffix"
                                     " (e.g. 500M, 10G)")
        return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])

    def path_value(self, option: str) -> Path | None:
        raw = self.get(option)
        return None if raw is None else Path(raw).expanduser()

    def items(self, option: str) -> list[str]:
        """A list: items separated by commas and/or whitespace, duplicates dropped."""
        raw = self.get(option)
        if raw is None:
            return []
        return list(dict.fromkeys(item for item in re.split(r"[,\s]+", raw) if item))

    def choice(self, option: str, default: str, choices: Sequence[str]) -> str:
        raw = self.get(option, default)
        assert raw is not None
        if raw.lower() not in choices:
            raise self.error(option, f"invalid value {raw!r}: expected one of"
                                     f" {', '.join(choices)}")
        return raw.lower()

    def checksums(self, option: str) -> frozenset[str]:
        result = set()
        for item in self.items(option):
            item = item.lower()
            if item != "any" and not _CHECKSUM_RE.match(item):
                raise self.error(option, f"invalid checksum {item!r}: expected"
                                         " hexadecimal checksums or 'any'")
            result.add(item)
        return frozenset(result)


def _section_values(parser: configparser.ConfigParser, name: str) -> dict[str, str]:
    return dict(parser.items(name, raw=True)) if parser.has_section(name) else {}


def _check_options(section: _Section, valid: Sequence[str], only: Mapping[str, str]) -> None:
    for option in only:
        if option not in valid:
            raise section.error(option, f"unknown option; the valid options of"
                                        f" this section are {', '.join(valid)}")


def _build(parser: configparser.ConfigParser, path: str | None,
           env: Mapping[str, str]) -> Config:
    defaults = _section_values(parser, DEFAULTS)
    _check_options(_Section(path, DEFAULTS, defaults), TARGET_OPTIONS, defaults)
    main_values = _section_values(parser, MAIN)
    main_section = _Section(path, MAIN, main_values)
    _check_options(main_section, MAIN_OPTIONS, main_values)

    targets: dict[str, TargetConfig] = {}
    env_master_region: str | None = None
    names = [s for s in parser.sections() if s not in (MAIN, DEFAULTS)]
    if MASTER not in names:
        names.insert(0, MASTER)
    for name in names:
        own = _section_values(parser, name)
        section = _Section(path, name, {**defaults, **own})
        _check_options(section, TARGET_OPTIONS, own)
        target, from_env = _build_target(section, env)
        if from_env:
            env_master_region = env.get("OS_REGION_NAME") or None
        targets[name] = target

    master_region = main_section.get("master_region") or env_master_region
    if not master_region:
        raise main_section.error("master_region", "missing: the name of the region"
                                 " holding the reference images is required (when"
                                 " master uses OS_* variables, OS_REGION_NAME also"
                                 " gives it)")
    main = MainConfig(
        master_region=master_region,
        preferable_order=main_section.items("preferable_order"),
        max_children=main_section.integer("max_children", 1, 1),
        images_dir=main_section.path_value("images_dir"),
        cache_dir=main_section.path_value("cache_dir"),
        cache_max_size=main_section.size("cache_max_size"),
        stalled_upload_age=main_section.number("stalled_upload_age", 3600.0, 0.0, False),
        run_dir=main_section.path_value("run_dir"),
        retries=main_section.integer("retries", 3, 0),
        retry_wait=main_section.number("retry_wait", 1.0, 0.0, False),
    )
    return Config(main=main, targets=targets, path=path)


def _build_target(section: _Section, env: Mapping[str, str]) -> tuple[TargetConfig, bool]:
    """The target of one section; the flag tells if ``OS_*`` gave its credentials."""
    kind = section.choice("type", "keystone", TARGET_KINDS)
    condition = None
    expression = section.get("metadata_condition")
    if expression is not None:
        try:
            condition = Condition(expression)
        except ConfigError as exc:
            raise section.error("metadata_condition", exc.message) from None
    target = TargetConfig(
        name=section.name,
        kind=kind,
        insecure=section.boolean("insecure", False),
        cacert=section.get("cacert"),
        interface=section.choice("interface", "public", INTERFACES),
        forcesyncs=frozenset(section.items("forcesyncs")),
        metadata_condition=condition,
        metadata_set=frozenset(section.items("metadata_set")),
        replace=section.checksums("replace"),
        rename=section.checksums("rename"),
        dontupdate=section.checksums("dontupdate"),
        ignore_regions=section.items("ignore_regions"),
        only_tenant_images=section.boolean("only_tenant_images", True),
        support_obsolete_images=section.boolean("support_obsolete_images", True),
        obsolete_syncprops=frozenset(section.items("obsolete_syncprops")),
        list_images_timeout=section.number("list_images_timeout", 30.0, 0.0, True),
        project=section.get("project", DEFAULT_LOCAL_PROJECT) or DEFAULT_LOCAL_PROJECT,
    )
    from_env = False
    if kind == "local":
        target.path = section.path_value("path")
        target.regions = section.items("regions")
        if target.path is None:
            raise section.error("path", "missing: a local target needs the folder"
                                        " holding its regions (path = FOLDER)")
    else:
        target.cloud = section.get("cloud")
        if target.cloud is None:
            target.auth = _explicit_auth(section)
            if target.auth is None and section.name == MASTER:
                target.cloud, target.auth = _environment_auth(section, env)
                from_env = True
            if target.auth is None and target.cloud is None:
                env_hint = (", or the environment variables OS_CLOUD, or OS_AUTH_URL,"
                            " OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME"
                            if section.name == MASTER else "")
                raise section.error(None, "no credentials: set cloud (a clouds.yaml"
                                          " name), or auth_url, username, password and"
                                          " project_name, or application_credential_id"
                                          " and application_credential_secret, or"
                                          f" credential{env_hint}")
    return target, from_env


def _explicit_auth(section: _Section) -> dict[str, str] | None:
    """Keystone v3 auth options from the section (explicit, app. credential, legacy)."""
    given = {option: section.get(option) for option in AUTH_OPTIONS}
    if given["username"] is None and section.get("user") is not None:
        given["username"] = section.get("user")
    credential = section.get("credential")
    if given["application_credential_id"] or given["application_credential_secret"]:
        return _require(section, {
            "auth_url": given["auth_url"],
            "application_credential_id": given["application_credential_id"],
            "application_credential_secret": given["application_credential_secret"],
        })
    if given["username"] or given["password"]:
        auth = _require(section, {
            "auth_url": given["auth_url"], "username": given["username"],
            "password": given["password"]})
        return _with_project(section, auth, given)
    if credential is not None:
        return _legacy_credential(section, credential, given)
    return None


def _require(section: _Section, auth: dict[str, str | None]) -> dict[str, str]:
    missing = [option for option, value in auth.items() if value is None]
    if missing:
        raise section.error(missing[0], f"missing: the credentials also need"
                                        f" {', '.join(missing)}")
    return {k: v for k, v in auth.items() if v is not None}


def _with_project(section: _Section, auth: dict[str, str],
                  given: Mapping[str, str | None]) -> dict[str, str]:
    if given.get("project_id"):
        auth["project_id"] = given["project_id"]  # type: ignore[assignment]
    elif given.get("project_name"):
        auth["project_name"] = given["project_name"]  # type: ignore[assignment]
    else:
        raise section.error("project_name", "missing: the credentials need"
                                            " project_name or project_id")
    auth["user_domain_name"] = given.get("user_domain_name") or DEFAULT_DOMAIN
    if "project_name" in auth:
        auth["project_domain_name"] = given.get("project_domain_name") or DEFAULT_DOMAIN
    return auth


def _legacy_credential(section: _Section, credential: str,
                       given: Mapping[str, str | None]) -> dict[str, str]:
    """``credential = user,base64(password),auth_url,project`` (the old format)."""
    parts = [part.strip() for part in credential.split(",")]
    if len(parts) != 4 or not all(parts):
        raise section.error("credential", "invalid value: expected"
                                          " user,base64(password),auth_url,project"
                                          f" (4 fields, got {len(parts)})")
    user, encoded, auth_url, project = parts
    try:
        password = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise section.error("credential", "invalid value: the second field must be"
                                          " the password encoded in base64 (e.g. the"
                                          " output of: printf %s PASSWORD | base64)") from None
    auth = {"auth_url": auth_url, "username": user, "password": password}
    return _with_project(section, auth, {**given, "project_name": project,
                                         "project_id": None})


def _environment_auth(section: _Section,
                      env: Mapping[str, str]) -> tuple[str | None, dict[str, str] | None]:
    """Credentials of ``master`` from ``OS_*`` variables (cloud or explicit)."""
    if env.get("OS_CLOUD"):
        return env["OS_CLOUD"], None

    def var(option: str) -> str | None:
        return env.get("OS_" + option.upper()) or None

    if var("application_credential_id"):
        wanted = ("auth_url", "application_credential_id", "application_credential_secret")
        auth = {option: var(option) for option in wanted}
    else:
        auth = {option: var(option) for option in ("auth_url", "username", "password")}
        project_id = var("project_id") or var("tenant_id")
        project_name = var("project_name") or var("tenant_name")
        if project_id:
            auth["project_id"] = project_id
        else:
            auth["project_name"] = project_name
    missing = ["OS_" + option.upper() for option, value in auth.items() if value is None]
    if len(missing) == len(auth):
        return None, None
    if missing:
        raise section.error(None, "no credentials in the section and incomplete"
                                  f" OS_* environment: missing {', '.join(missing)}")
    result = {k: v for k, v in auth.items() if v is not None}
    if "username" in result:
        result["user_domain_name"] = var("user_domain_name") or DEFAULT_DOMAIN
        if "project_name" in result:
            result["project_domain_name"] = var("project_domain_name") or DEFAULT_DOMAIN
    return None, result
