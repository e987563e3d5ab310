"""The options of an OpenStack (Keystone + Glance) target, and how they are read.

Credentials, in order of precedence: ``cloud`` (a ``clouds.yaml`` name,
read by openstacksdk's configuration loader with every setting it holds:
authentication of any ``auth_type``, ``interface``, ``region_name``,
``verify``, ``cacert``, ``cert``, ``key``, ``api_timeout``...; the
section's own ``cacert``, ``insecure`` and ``interface`` override them);
explicit Keystone v3 options
(``auth_url``, ``username`` or ``user``, ``password``, ``project_name`` or
``project_id``, the domains, ``Default`` unless set); an application
credential; the legacy ``credential = user,base64(password),auth_url,project``
line; for the ``master`` target only, the ``OS_*`` environment variables
(``OS_CLOUD``, or ``OS_AUTH_URL``... with ``OS_REGION_NAME`` as default
master region). TLS: ``cacert``, ``insecure``; ``interface`` chooses the
catalog endpoints.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from typing import Any, Mapping

from glancesync.errors import ConfigError
from glancesync.options import MASTER, Option, Section

__all__ = ["OPTIONS", "AUTH_OPTIONS", "OpenStackSettings", "read_settings", "load_cloud"]

#: Keystone credential options of a target (keystoneauth1 names).
AUTH_OPTIONS = ("auth_url", "username", "password", "project_name",
                "project_id", "user_domain_name", "project_domain_name",
                "application_credential_id", "application_credential_secret")

INTERFACES = ("public", "internal", "admin")
DEFAULT_DOMAIN = "Default"
MASK = "***"

#: The slowest pace ``requests_per_second`` accepts (one request a minute).
MIN_REQUESTS_PER_SECOND = 1 / 60

_SECRETS = ("password", "application_credential_secret", "credential")

#: The options of a target of type ``keystone``.
OPTIONS: tuple[Option, ...] = (
    Option("cloud", "string", help="a clouds.yaml cloud holding the credentials"),
    *(Option(name, "string", DEFAULT_DOMAIN if name.endswith("_domain_name") else None,
             secret=name in _SECRETS, help="Keystone v3 credential option")
      for name in AUTH_OPTIONS),
    Option("user", "string", help="alias of username"),
    Option("credential", "string", secret=True,
           help="legacy user,base64(password),auth_url,project line"),
    Option("cacert", "string", help="CA bundle verifying the servers' certificates"),
    Option("insecure", "bool", False, help="do not verify certificates (tests only)"),
    Option("interface", "choice", None, choices=INTERFACES,
           help="which catalog endpoints are used (default: the cloud's, else public)"),
    Option("requests_per_second", "rate", 0.0, minimum=0.0,
           help="most HTTP requests per second to the target's Keystone and Glances, all"
                " its regions together (0: no limit)"),
)

_BY_NAME = {option.name: option for option in OPTIONS}
_SECRET_NAMES = frozenset(option.name for option in OPTIONS if option.secret)


@dataclasses.dataclass(repr=False)
class OpenStackSettings:
    """What a Keystone target needs; ``repr()`` masks the secrets.

    Either ``cloud`` (a ``clouds.yaml`` name) or ``auth`` (keystoneauth1 v3
    option names to values) is set. ``cacert`` and ``interface`` are None
    when the section does not set them: a cloud's own settings apply then
    (``interface`` is ``public`` without a cloud); ``insecure`` true turns
    verification off whatever the cloud says. ``env_region`` is
    ``OS_REGION_NAME`` when the credentials came from the ``OS_*``
    variables.
    """

    auth: dict[str, str] | None = None
    cloud: str | None = None
    cacert: str | None = None
    insecure: bool = False
    interface: str | None = None
    #: Most requests per second to the target's services (0: no limit).
    requests_per_second: float = 0.0
    env_region: str | None = None
    #: The section the settings were read from (names it in errors).
    section: str = MASTER

    @property
    def default_region(self) -> str | None:
        """The master region when ``[main]`` names none.

        ``OS_REGION_NAME`` for credentials from the environment, else the
        ``region_name`` of the cloud (read from ``clouds.yaml`` now; a cloud
        that cannot be read gives none here, and its error when used).
        """
        if self.env_region or self.cloud is None:
            return self.env_region
        try:
            region = load_cloud(self.cloud, self.section).get_region_name("image")
        except ConfigError:
            return None
        return str(region) if region else None

    def option_values(self) -> Mapping[str, Any]:
        """Every option the settings hold, credentials decoded, by option name."""
        return {**(self.auth or {}), "cloud": self.cloud, "cacert": self.cacert,
                "insecure": self.insecure, "interface": self.interface}

    def __repr__(self) -> str:
        auth = self.auth
        if auth is not None:
            auth = {k: MASK if k in _SECRET_NAMES else v for k, v in auth.items()}
        return (f"OpenStackSettings(auth={auth!r}, cloud={self.cloud!r}, "
                f"cacert={self.cacert!r}, insecure={self.insecure!r}, "
                f"interface={self.interface!r}, env_region={self.env_region!r})")


def read_settings(section: Section, env: Mapping[str, str]) -> OpenStackSettings:
    """The settings of one target section (``[DEFAULT]`` applied).

    :raises ConfigError: credentials missing, incomplete or malformed, or a
        bad ``insecure`` / ``interface`` value.
    """
    def given(name: str) -> Any:
        """The section's value of option ``name``, or None when it sets none."""
        return section.read(_BY_NAME[name]) if section.get(name) is not None else None

    rate = section.read(_BY_NAME["requests_per_second"])
    if 0 < rate < MIN_REQUESTS_PER_SECOND:
        raise ConfigError(f"{rate:g} would hold a run for ever: at least"
                          f" {MIN_REQUESTS_PER_SECOND:g}, or 0 for no limit",
                          section=section.name, option="requests_per_second")
    settings = OpenStackSettings(cloud=given("cloud"), cacert=given("cacert"),
                                 insecure=section.read(_BY_NAME["insecure"]),
                                 interface=given("interface"), section=section.name,
                                 requests_per_second=rate)
    if settings.cloud is not None:
        return settings
    settings.auth = _explicit_auth(section)
    if settings.auth is None and section.name == MASTER:
        settings.cloud, settings.auth = _environment_auth(section, env)
        if settings.cloud is not None or settings.auth is not None:
            settings.env_region = env.get("OS_REGION_NAME") or None
    if settings.auth is None and settings.cloud is None:
        env_hint = (", or the environment variables OS_CLOUD, or OS_AUTH_URL,"
                    " OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME"
                    if section.name == MASTER else "")
        raise section.error(None, "no credentials: set cloud (a clouds.yaml"
                                  " name), or auth_url, username, password and"
                                  " project_name, or application_credential_id"
                                  " and application_credential_secret, or"
                                  f" credential{env_hint}")
    if settings.cloud is None and settings.interface is None:
        settings.interface = "public"  # no cloud to take it from
    return settings


def _explicit_auth(section: Section) -> dict[str, str] | None:
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


def _require(section: Section, auth: dict[str, str | None]) -> dict[str, str]:
    missing = [option for option, value in auth.items() if value is None]
    if missing:
        raise section.error(missing[0], f"missing: the credentials also need"
                                        f" {', '.join(missing)}")
    return {k: v for k, v in auth.items() if v is not None}


def _with_project(section: Section, auth: dict[str, str],
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


def _legacy_credential(section: Section, credential: str,
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


def _environment_auth(section: Section,
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


def load_cloud(cloud: str, section: str) -> Any:
    """The ``clouds.yaml`` cloud ``cloud`` as openstacksdk's loader reads it.

    Returns an ``openstack.config.cloud_region.CloudRegion``: every setting
    of the entry (and of ``secure.yaml``), its authentication plugin loaded.
    openstacksdk is imported only here.

    :raises ConfigError: the cloud is unknown or its settings are invalid
        (naming ``section`` and its ``cloud`` option).
    """
    from openstack import config as os_config
    from openstack import exceptions as os_exc
    loader = None
    try:
        loader = os_config.OpenStackConfig()
        return loader.get_one(cloud=cloud)
    except (os_exc.SDKException, KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"cloud {cloud!r} cannot be read from clouds.yaml: {exc};"
                          f" {_where_clouds_were_read(loader)}",
                          section=section, option="cloud") from None


def _where_clouds_were_read(loader: Any) -> str:
    """Which ``clouds.yaml`` openstacksdk read and the clouds it holds, or where it looked.

    Under cron the user, ``$HOME`` and the working folder are not those of
    a login shell: the message says which ones the file was looked for with.
    """
    import getpass
    user = getpass.getuser()
    path = getattr(loader, "config_filename", None)
    if path:
        try:
            names = sorted(name for name in loader.get_cloud_names())
        except (AttributeError, KeyError, TypeError, ValueError):
            names = []
        return (f"read {path} as user {user}; its clouds are"
                f" {', '.join(names) or '(none)'}")
    searched = list(getattr(loader, "_config_files", None) or [])
    return (f"no clouds.yaml found as user {user} (HOME={os.environ.get('HOME', '?')});"
            f" looked in {', '.join(searched) or 'the default places'}; give its path in"
            " $OS_CLIENT_CONFIG_FILE")
