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
import stat
from typing import Any, Iterable, Mapping

from glancesync.errors import ConfigError
from glancesync.options import MASTER, Option, Section

__all__ = ["OPTIONS", "AUTH_OPTIONS", "OpenStackSettings", "read_settings", "load_cloud",
           "named_file_problem", "check_cloud_files", "check_tls_files"]

#: Keystone credential options of a target (keystoneauth1 names).
AUTH_OPTIONS = ("auth_url", "username", "password", "project_name",
                "project_id", "user_domain_name", "project_domain_name",
                "application_credential_id", "application_credential_secret")

INTERFACES = ("public", "internal", "admin")
_BOOLEANS = {"1": True, "yes": True, "true": True, "on": True,
             "0": False, "no": False, "false": False, "off": False}
_SUPPORTED_AUTH_TYPES = ("password", "v3password", "v3applicationcredential",
                         "applicationcredential")
_CLOUDS_YAML = ("describe the cloud in clouds.yaml (any auth_type openstacksdk knows)"
                " and set OS_CLOUD")
_PROJECT_SCOPE = ("GlanceSync needs a project-scoped token (the images belong to a"
                  " project): set OS_PROJECT_NAME or OS_PROJECT_ID instead")

#: ``OS_*`` variables the OpenStack client honours that GlanceSync refuses
#: without a configuration file: name -> (values accepted, None for none;
#: why). The others it honours are read by :func:`read_settings`
#: (credentials, ``OS_REGION_NAME``, TLS, interface, time-out); variables of
#: other services (``OS_COMPUTE_API_VERSION``...) do not concern it.
#: Sources: python-openstackclient's and keystoneauth1's option lists.
ENV_REFUSED: dict[str, tuple[tuple[str, ...] | None, str]] = {
    "OS_AUTH_TYPE": (_SUPPORTED_AUTH_TYPES, "without a configuration file GlanceSync takes"
                     f" {', '.join(_SUPPORTED_AUTH_TYPES)}; {_CLOUDS_YAML}"),
    "OS_IDENTITY_API_VERSION": (("3", "3.0", "v3"), "GlanceSync speaks Keystone v3 only"),
    "OS_IMAGE_API_VERSION": (("2", "2.0", "v2"), "GlanceSync speaks Glance's Image API v2"
                             " only"),
    "OS_SYSTEM_SCOPE": (None, _PROJECT_SCOPE),
    "OS_DOMAIN_ID": (None, _PROJECT_SCOPE),
    "OS_DOMAIN_NAME": (None, _PROJECT_SCOPE),
    "OS_TRUST_ID": (None, f"trusts are not supported; {_CLOUDS_YAML}"),
    "OS_AUTH_PLUGIN": (_SUPPORTED_AUTH_TYPES, "the former name of OS_AUTH_TYPE: without a"
                       f" configuration file GlanceSync takes"
                       f" {', '.join(_SUPPORTED_AUTH_TYPES)}; {_CLOUDS_YAML}"),
    "OS_URL": (None, "an endpoint given with a token: GlanceSync finds every endpoint in"
                     " the catalog of the token it makes itself"),
    "OS_ENDPOINT": (None, "an endpoint override: GlanceSync takes each region's image"
                          " endpoint from the catalog (OS_INTERFACE chooses which)"),
    "OS_TOKEN": (None, "a token expires within hours and a run must be able to"
                       " authenticate again: use an application credential"
                       " (OS_APPLICATION_CREDENTIAL_ID and _SECRET)"),
    **{f"OS_{name}": (None, f"it belongs to an auth_type GlanceSync takes only from"
                      f" clouds.yaml; {_CLOUDS_YAML}")
       for name in ("PASSCODE", "PROTOCOL", "IDENTITY_PROVIDER", "ACCESS_TOKEN",
                    "CLIENT_ID", "CLIENT_SECRET", "OPENID_SCOPE", "DISCOVERY_ENDPOINT")},
}
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
    Option("cert", "string", help="client certificate (PEM) presented to the servers"),
    Option("key", "string", help="private key of cert, when not in its file"),
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
    cert: str | None = None
    key: str | None = None
    #: Seconds a connection may stay silent (``OS_API_TIMEOUT``; None: the default).
    timeout: float | None = None
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
                "cert": self.cert, "key": self.key,
                "insecure": self.insecure, "interface": self.interface}

    def __repr__(self) -> str:
        auth = self.auth
        if auth is not None:
            auth = {k: MASK if k in _SECRET_NAMES else v for k, v in auth.items()}
        return (f"OpenStackSettings(auth={auth!r}, cloud={self.cloud!r}, "
                f"cacert={self.cacert!r}, insecure={self.insecure!r}, "
                f"interface={self.interface!r}, env_region={self.env_region!r}, "
                f"cert={self.cert!r}, key={self.key!r}, timeout={self.timeout!r})")


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
                                 interface=given("interface"), cert=given("cert"),
                                 key=given("key"), section=section.name,
                                 requests_per_second=rate)
    if settings.cloud is not None:
        return settings
    settings.auth = _explicit_auth(section)
    if settings.auth is None and section.name == MASTER:
        settings.cloud, settings.auth = _environment_auth(section, env)
        if settings.cloud is not None or settings.auth is not None:
            settings.env_region = env.get("OS_REGION_NAME") or None
            _environment_session(section, env, settings)
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
    """Credentials of ``master`` from ``OS_*`` variables (cloud or explicit).

    :raises ConfigError: a variable GlanceSync cannot honour (see
        :data:`ENV_REFUSED`), or incomplete credentials.
    """
    if env.get("OS_CLOUD"):
        return env["OS_CLOUD"], None
    _refuse_environment(section, env)

    def var(option: str) -> str | None:
        return env.get("OS_" + option.upper()) or None

    auth_type = (var("auth_type") or "").lower() or None
    if var("application_credential_id") or var("application_credential_name"):
        if var("application_credential_id"):
            wanted = ("auth_url", "application_credential_id",
                      "application_credential_secret")
        else:  # by name: the user is needed too
            wanted = ("auth_url", "application_credential_name",
                      "application_credential_secret", "username")
        auth = {option: var(option) for option in wanted}
        if "username" in auth and not auth["username"] and var("user_id"):
            auth.pop("username")
            auth["user_id"] = var("user_id")
    else:
        auth = {option: var(option) for option in ("auth_url", "username", "password")}
        if auth["username"] is None and var("user_id"):
            del auth["username"]
            auth["user_id"] = var("user_id")
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
    if auth_type is not None:
        result["auth_type"] = auth_type
    if "username" in result or "user_id" in result:
        _environment_domain(env, result, "user")
    if "project_name" in result:
        _environment_domain(env, result, "project")
    return None, result


#: The largest ``clouds.yaml``, CA bundle or client certificate read (bytes):
#: such files hold a few KiB to a few hundred KiB.
MAX_NAMED_FILE = 16 * 1024 * 1024


def named_file_problem(path: str) -> str | None:
    """Why the file a setting names at ``path`` must not be opened, or None.

    A FIFO would block its reader for ever (openstacksdk and OpenSSL open
    files without a bound), a device (``/dev/zero``) or a socket never ends
    or never answers, and a file above :data:`MAX_NAMED_FILE` bytes is no
    such file. A missing file or a folder is left to the library reading it
    (it says so itself; a folder of CA certificates is valid). ``stat``
    never blocks.
    """
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if stat.S_ISDIR(info.st_mode):
        return None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "a device")
        return f"{path} is {kind}, not a regular file: reading it could block for ever"
    if info.st_size > MAX_NAMED_FILE:
        return f"{path} has {info.st_size} bytes, more than the {MAX_NAMED_FILE} allowed"
    return None


def _cloud_files(environ: Mapping[str, str]) -> Iterable[tuple[str, list[str]]]:
    """The lists of files openstacksdk's loader reads the first it can of:
    ``clouds.yaml``, ``secure.yaml``, ``clouds-public.yaml`` (and the paths of
    ``$OS_CLIENT_CONFIG_FILE`` and ``$OS_CLIENT_SECURE_FILE`` first)."""
    from openstack.config import loader
    for variable, files in (("OS_CLIENT_CONFIG_FILE", loader.CONFIG_FILES),
                            ("OS_CLIENT_SECURE_FILE", loader.SECURE_FILES),
                            (None, loader.VENDOR_FILES)):
        named = environ.get(variable) if variable else None
        yield variable or "", ([named] if named else []) + list(files)


def check_cloud_files(section: str, environ: Mapping[str, str] | None = None) -> None:
    """Refuse, before openstacksdk reads them, the ``clouds.yaml`` files it would block on.

    Every file of the lists that exists is looked at: openstacksdk goes on
    to the next one when a file cannot be read or parsed, so any of them
    may be opened. One that :func:`named_file_problem` refuses is a
    ``ConfigError``.
    """
    environ = os.environ if environ is None else environ
    for variable, paths in _cloud_files(environ):
        for path in paths:
            problem = named_file_problem(path)
            if problem is not None:
                origin = f" (${variable})" if variable and path == environ.get(variable) else ""
                raise ConfigError(f"cannot read the clouds.yaml file{origin}: {problem}",
                                  section=section, option="cloud")


def check_tls_files(verify: Any, cert: Any, section: str,
                    environ: Mapping[str, str] | None = None) -> None:
    """Refuse a CA bundle or client certificate that a TLS handshake would block on.

    ``verify`` and ``cert`` are a requests session's: the CA bundle's path
    (``cacert``, a cloud's ``cacert``, ``$OS_CACERT`` through openstacksdk),
    or True, and then requests reads ``$REQUESTS_CA_BUNDLE`` or
    ``$CURL_CA_BUNDLE``; the client certificate and key paths.

    :raises ConfigError: one of them is a FIFO, a device, a socket or too large.
    """
    environ = os.environ if environ is None else environ
    named: list[tuple[str, str]] = []
    if isinstance(verify, str):
        named.append(("cacert", verify))
    elif verify is True:
        named += [(f"${name}", environ[name]) for name in ("REQUESTS_CA_BUNDLE",
                                                           "CURL_CA_BUNDLE")
                  if environ.get(name)]
    certs = cert if isinstance(cert, (tuple, list)) else (cert,)
    named += [("cert", path) for path in certs if isinstance(path, str)]
    for what, path in named:
        problem = named_file_problem(path)
        if problem is not None:
            raise ConfigError(f"cannot use the TLS file of {what}: {problem}",
                              section=section, option="cacert" if what == "cacert" else None)


def _environment_domain(env: Mapping[str, str], auth: dict[str, str], of: str) -> None:
    """The user's or project's domain: ``OS_<OF>_DOMAIN_ID`` or ``_NAME``, else
    ``OS_DEFAULT_DOMAIN`` or ``OS_DEFAULT_DOMAIN_ID`` (an id, as the OpenStack
    client takes it), else ``OS_DEFAULT_DOMAIN_NAME``, else ``Default`` (a name)."""
    if of == "user" and "user_id" in auth and "username" not in auth:
        return  # an id names the user in every domain
    domain_id = env.get(f"OS_{of.upper()}_DOMAIN_ID") or None
    domain_name = env.get(f"OS_{of.upper()}_DOMAIN_NAME") or None
    if domain_id:
        auth[f"{of}_domain_id"] = domain_id
    elif domain_name:
        auth[f"{of}_domain_name"] = domain_name
    elif env.get("OS_DEFAULT_DOMAIN") or env.get("OS_DEFAULT_DOMAIN_ID"):
        auth[f"{of}_domain_id"] = env.get("OS_DEFAULT_DOMAIN") or env["OS_DEFAULT_DOMAIN_ID"]
    elif env.get("OS_DEFAULT_DOMAIN_NAME"):
        auth[f"{of}_domain_name"] = env["OS_DEFAULT_DOMAIN_NAME"]
    else:
        auth[f"{of}_domain_name"] = DEFAULT_DOMAIN


def _environment_session(section: Section, env: Mapping[str, str],
                         settings: OpenStackSettings) -> None:
    """TLS, interface and time-out of ``master`` from ``OS_*`` (as the OpenStack
    client takes them: ``OS_CACERT``, ``OS_CERT``, ``OS_KEY``, ``OS_INSECURE``,
    ``OS_INTERFACE`` or ``OS_ENDPOINT_TYPE``, ``OS_API_TIMEOUT``)."""
    settings.cacert = env.get("OS_CACERT") or settings.cacert
    settings.cert = env.get("OS_CERT") or settings.cert
    settings.key = env.get("OS_KEY") or settings.key
    insecure = (env.get("OS_INSECURE") or "").strip().lower()
    if insecure:
        if insecure not in _BOOLEANS:
            raise section.error(None, f"OS_INSECURE={insecure!r}: expected true or false")
        settings.insecure = _BOOLEANS[insecure]
    for name in ("OS_INTERFACE", "OS_ENDPOINT_TYPE"):
        raw = (env.get(name) or "").strip()
        if raw and settings.interface is None:
            interface = raw.lower().removesuffix("url")
            if interface not in INTERFACES:
                raise section.error(None, f"{name}={raw!r}: expected one of"
                                          f" {', '.join(INTERFACES)}")
            settings.interface = interface
    timeout = (env.get("OS_API_TIMEOUT") or "").strip()
    if timeout:
        try:
            settings.timeout = float(timeout)
        except ValueError:
            settings.timeout = -1.0
        if not 0 < settings.timeout < float("inf"):
            raise section.error(None, f"OS_API_TIMEOUT={timeout!r}: expected seconds > 0")


def _refuse_environment(section: Section, env: Mapping[str, str]) -> None:
    """Refuse the ``OS_*`` variables the OpenStack client honours and GlanceSync
    cannot (:data:`ENV_REFUSED`), naming each with the reason."""
    for name, (accepted, reason) in ENV_REFUSED.items():
        value = (env.get(name) or "").strip()
        if value and (accepted is None or value.lower() not in accepted):
            shown = f"{name}={value!r}" if accepted is not None else f"{name} (set)"
            raise section.error(None, f"{shown} is not supported: {reason}")


def load_cloud(cloud: str, section: str) -> Any:
    """The ``clouds.yaml`` cloud ``cloud`` as openstacksdk's loader reads it.

    Returns an ``openstack.config.cloud_region.CloudRegion``: every setting
    of the entry (and of ``secure.yaml``), its authentication plugin loaded.
    openstacksdk is imported only here.

    :raises ConfigError: the cloud is unknown or its settings are invalid
        (naming ``section`` and its ``cloud`` option), or a ``clouds.yaml``
        it would read is a FIFO, a device or too large (:func:`check_cloud_files`).
    """
    from openstack import config as os_config
    from openstack import exceptions as os_exc
    check_cloud_files(section)
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
