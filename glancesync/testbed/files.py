"""The files of a test bed: service configurations, clouds.yaml, openrc.

Pure text builders: they take paths, ports and credentials and return the
content; the caller writes it. Keeping them apart from process control
makes the configuration easy to read in one place.
"""
from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path

LOOPBACK = "127.0.0.1"


def keystone_conf(root: Path) -> str:
    """keystone.conf: SQLite, Fernet tokens, cheap password hashing (tests only)."""
    keys = root / "fernet-keys"
    return f"""\
[DEFAULT]
debug = false

[database]
connection = sqlite:///{root / 'keystone.db'}

[token]
provider = fernet

[fernet_tokens]
key_repository = {keys}

[fernet_receipts]
key_repository = {keys}

[credential]
key_repository = {root / 'credential-keys'}

[identity]
password_hash_rounds = 4

[oslo_concurrency]
lock_path = {root / 'locks'}
"""


#: Import methods every region advertises (``GET /v2/info/import``).
IMPORT_METHODS = ("glance-direct", "web-download", "copy-image", "glance-download")
#: Prefixes of the source image's properties that a ``glance-download`` import
#: copies to the new image: Glance's own default, written out so the bed
#: behaves like a stock deployment whatever the Glance version.
GLANCE_DOWNLOAD_PROPERTIES = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")


def _conf_list(values: Iterable[object]) -> str:
    """An oslo.config list value: square brackets, comma separated."""
    return "[" + ",".join(str(value) for value in values) + "]"


#: Sections and options of glance-api.conf, in the order they are written.
Sections = dict[str, dict[str, str]]


def glance_conf(root: Path, port: int, keystone_url: str, service_password: str, *,
                import_ports: list[int], python: Path,
                notifications: dict[str, str] | None = None,
                policy_file: Path | None = None,
                extra: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """glance-api.conf for one region: file store, Keystone auth, SQLite.

    List options are written in square brackets: without them Glance 33
    misreads them and image creation fails with HTTP 500.

    Interoperable import: ``glance-download`` (a region pulling an image
    from another region of its Keystone) fetches the source's metadata and
    data over HTTP under ``[import_filtering_opts]``, which by default
    refuses loopback hosts and any port but 80 and 443. IMPORT_PORTS are the
    ports of the Glance regions this one may pull from (those of its own
    Keystone; the others are not in its catalog anyway). Under uWSGI the
    import tasks run in the worker's pool of native threads (``[wsgi]
    task_pool_threads``, 16 by default). Import plugins that run helpers
    (``image_conversion`` runs qemu-img under ``python -m
    oslo_concurrency.prlimit``) need PYTHON, the bed's interpreter, as
    ``[wsgi] python_interpreter``: under uWSGI ``sys.executable`` is uWSGI.

    Glance writes the links of its version document from the request (no
    ``public_endpoint``), honouring a reverse proxy's ``X-Forwarded-*``
    headers (``[oslo_middleware] enable_proxy_headers_parsing``): a region
    served through a proxy under a path prefix advertises the proxy's URLs,
    as a correctly deployed Glance does.

    NOTIFICATIONS (the options of ``[oslo_messaging_notifications]``, see
    :func:`notification_options`) makes the region publish its events;
    POLICY_FILE is a ``policy.yaml`` of the region's own; EXTRA (section ->
    option -> value, values written as given) adds or overrides options
    last, e.g. ``{"DEFAULT": {"image_property_quota": "5"}}``.
    """
    sections: Sections = {
        "DEFAULT": {
            "debug": "false",
            "bind_host": LOOPBACK,
            "bind_port": str(port),
            "worker_self_reference_url": f"http://{LOOPBACK}:{port}",
            "enabled_backends": "fs:file",
            "enabled_import_methods": _conf_list(IMPORT_METHODS),
            "image_cache_dir": str(root / "cache"),
        },
        "database": {"connection": f"sqlite:///{root / 'glance.db'}"},
        "glance_store": {"default_backend": "fs"},
        "fs": {"filesystem_store_datadir": str(root / "images")},
        "os_glance_staging_store": {"filesystem_store_datadir": str(root / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(root / "tasks")},
        "paste_deploy": {"flavor": "keystone"},
        "keystone_authtoken": {
            "www_authenticate_uri": keystone_url,
            "auth_url": keystone_url,
            "auth_type": "password",
            "interface": "public",
            "username": "glance",
            "password": service_password,
            "project_name": "service",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "oslo_concurrency": {"lock_path": str(root / "locks")},
        "oslo_middleware": {"enable_proxy_headers_parsing": "true"},
        "wsgi": {"python_interpreter": str(python)},
        "import_filtering_opts": {
            "allowed_schemes": "[http]",
            "allowed_hosts": f"[{LOOPBACK}]",
            "allowed_ports": _conf_list(sorted(import_ports)),
        },
        "glance_download_properties": {"extra_properties": _conf_list(GLANCE_DOWNLOAD_PROPERTIES)},
    }
    if notifications:
        sections.update(notification_options(**notifications))
    if policy_file is not None:
        sections["oslo_policy"] = {"policy_file": str(policy_file)}
    for section, options in (extra or {}).items():
        sections.setdefault(section, {}).update({key: str(value)
                                                 for key, value in options.items()})
    return render_ini(sections)


def notification_options(transport_url: str, topic: str) -> Sections:
    """Sections that make a Glance publish its notifications on TRANSPORT_URL.

    Glance's notifier retries for ever by default (``retry = -1``), which
    would hold every image request while the broker is down (tests stop it
    on purpose): here one send is tried once more after a reconnection
    (``retry = 1``: a connection broken by a broker restart is replaced
    at once; with ``retry = 0`` the first two events after a restart were
    lost), then the event is dropped and logged. While the broker is down
    that costs about a second per event (oslo.messaging's
    ``rabbit_retry_interval``, 1 s at least). No heartbeat thread: a broken
    connection is found when the next event is sent.
    """
    return {
        "oslo_messaging_notifications": {
            "driver": "messagingv2",
            "transport_url": transport_url,
            "topics": topic,
            "retry": "1",
        },
        "oslo_messaging_rabbit": {
            "kombu_reconnect_delay": "0",
            "rabbit_retry_interval": "1",
            "rabbit_retry_backoff": "0",
            "heartbeat_timeout_threshold": "0",
        },
    }


def render_ini(sections: Mapping[str, Mapping[str, str]]) -> str:
    """Sections as an INI file (oslo.config reads values verbatim)."""
    blocks = []
    for section, options in sections.items():
        lines = [f"[{section}]"] + [f"{key} = {value}" for key, value in options.items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def glance_manage_conf(db_path: Path) -> str:
    """Minimal configuration for migrating the template Glance database."""
    return f"[database]\nconnection = sqlite:///{db_path}\n"


def uwsgi_ini(port: int, module: str, venv: Path) -> str:
    """uWSGI options that proved necessary (TESTBED.md).

    ``chunked-input-limit`` matters: the 1 MiB default breaks glanceclient's
    chunked uploads with HTTP 500. ``http-socket`` answers in HTTP/1.1 but
    closes the connection after each response without saying so: a client
    that reuses the pooled connection at once gets "connection reset", hence
    ``Connection: close``. ``no-orphans`` makes workers die with their master.
    """
    return f"""\
[uwsgi]
http-socket = {LOOPBACK}:{port}
module = {module}
virtualenv = {venv}
master = true
processes = 1
threads = 4
enable-threads = true
lazy-apps = true
die-on-term = true
no-orphans = true
need-app = true
buffer-size = 65535
socket-timeout = 30
chunked-input-limit = 16777216
add-header = Connection: close
"""


def _yaml_str(value: str) -> str:
    # A JSON string is a valid YAML flow scalar: no escaping surprises.
    return json.dumps(value)


def clouds_yaml(clouds: dict[str, dict[str, str]]) -> str:
    """clouds.yaml with one Keystone v3 cloud per entry (no region_name)."""
    lines = ["clouds:"]
    for name, cloud in clouds.items():
        lines += [
            f"  {name}:",
            "    auth:",
            f"      auth_url: {_yaml_str(cloud['auth_url'])}",
            f"      username: {_yaml_str(cloud['username'])}",
            f"      password: {_yaml_str(cloud['password'])}",
            f"      project_name: {_yaml_str(cloud['project_name'])}",
            f"      user_domain_name: {_yaml_str(cloud['user_domain_name'])}",
            f"      project_domain_name: {_yaml_str(cloud['project_domain_name'])}",
            "    identity_api_version: 3",
            "    interface: public",
        ]
    return "\n".join(lines) + "\n"


def openrc(cloud: dict[str, str], region: str) -> str:
    """Shell exports of the OS_* variables of one cloud."""
    values = {
        "OS_AUTH_URL": cloud["auth_url"],
        "OS_USERNAME": cloud["username"],
        "OS_PASSWORD": cloud["password"],
        "OS_PROJECT_NAME": cloud["project_name"],
        "OS_USER_DOMAIN_NAME": cloud["user_domain_name"],
        "OS_PROJECT_DOMAIN_NAME": cloud["project_domain_name"],
        "OS_IDENTITY_API_VERSION": "3",
        "OS_REGION_NAME": region,
    }
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in values.items())
