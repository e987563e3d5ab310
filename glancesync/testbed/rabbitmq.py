"""RabbitMQ of the test bed: Debian's ``rabbitmq-server`` on loopback, bed-owned.

One broker per bed, with its own Erlang node name, ports (AMQP, inter-node,
epmd), folder and user, so several beds (several engineers, several test
runs) share one machine without meeting, and the system's own RabbitMQ, if
any, is never touched. Facts behind the choices (/work/shared/TESTBED.md,
RabbitMQ 3.10 from Debian 12):

* everything is set through the environment (``RABBITMQ_NODENAME``,
  ``RABBITMQ_NODE_PORT``, ``RABBITMQ_DIST_PORT``, ``RABBITMQ_MNESIA_BASE``,
  ``RABBITMQ_CONFIG_FILE``, ``ERL_EPMD_PORT``, ``HOME`` for the Erlang
  cookie...). ``RABBITMQ_CONF_ENV_FILE`` names an empty file of ours, so
  the machine's ``/etc/rabbitmq/rabbitmq-env.conf`` is not read;
* the server runs as ``/usr/lib/rabbitmq/bin/rabbitmq-server``, not through
  Debian's ``/usr/sbin`` wrapper: the wrapper ``su``s to ``rabbitmq``,
  which resets ``HOME`` and starts a new session that the bed could not
  stop. As root, the bed itself runs the server as the ``rabbitmq`` user
  (its folder owned by that user, every folder above it enterable);
* ``default_user``/``default_pass`` create the bed's user on the first boot,
  so ``guest`` never exists; the console log goes to the bed's log file;
* listeners and the inter-node port are bound to 127.0.0.1 with
  ``reuseaddr``, so they start beside the bed's port reservation
  (:mod:`glancesync.testbed.ports`); epmd is started by the bed on its own
  loopback port before the server, and stopped by PID.
"""
from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

import amqp

from glancesync.testbed.files import LOOPBACK

LOG = logging.getLogger(__name__)

#: The server and its CLI as Debian installs them (package ``rabbitmq-server``).
SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")
#: The system user Debian's package creates; the server runs as it under root.
SYSTEM_USER = "rabbitmq"
#: Where Glance publishes its notifications (oslo.messaging: exchange = the
#: ``control_exchange`` of Glance, topic = ``[oslo_messaging_notifications] topics``).
EXCHANGE = "glance"
TOPIC = "notifications"
#: The bed's RabbitMQ user (never ``guest``).
USER = "glancesync"
PACKAGE_HINT = ("install Debian's rabbitmq-server (as root: apt-get install rabbitmq-server; "
                "make test does it)")


def missing() -> str | None:
    """What is missing to run the bed's RabbitMQ, or None when it can run."""
    if not SERVER.exists() or not CTL.exists():
        return f"{SERVER} not found: {PACKAGE_HINT}"
    if epmd() is None:
        return f"epmd (Erlang) not found: {PACKAGE_HINT}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return f"no {SYSTEM_USER!r} user: {PACKAGE_HINT}"
    return None


def epmd() -> Path | None:
    """The Erlang port mapper daemon's executable, if installed."""
    found = shutil.which("epmd") or shutil.which("epmd", path="/usr/lib/erlang/bin")
    return Path(found).resolve() if found else None


def run_user() -> str | None:
    """The user the server runs as: ``rabbitmq`` under root, else None (this user)."""
    return SYSTEM_USER if os.geteuid() == 0 else None


def _enterable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """True when USER may traverse PATH (its search bit for owner, group or others)."""
    try:
        info = path.stat()
    except OSError:
        return False
    if user.pw_uid == 0:
        return True
    if info.st_uid == user.pw_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    groups = {user.pw_gid} | {group.gr_gid for group in _groups_of(user.pw_name)}
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _groups_of(name: str) -> list[grp.struct_group]:
    return [group for group in grp.getgrall() if name in group.gr_mem]


def make_folder(home: Path, token: str) -> Path:
    """A new, empty folder for one bed's broker, owned by the user that runs it.

    ``HOME/rabbitmq-TOKEN`` when the server's user can reach it; otherwise
    (a home under a folder private to root, such as ``/root`` or pytest's
    ``/tmp/pytest-of-root``) a private folder under the system's temporary
    folder. The caller removes it (:func:`remove_folder`).
    """
    user = run_user()
    folder = home / f"rabbitmq-{token}"
    if user is not None:
        entry = pwd.getpwnam(user)
        if not all(_enterable_by(parent, entry) for parent in [home, *home.parents]):
            folder = Path(tempfile.mkdtemp(prefix=f"glancesync-rabbitmq-{token}-"))
            LOG.info("%s cannot reach %s; its folder is %s", user, home, folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub in ("mnesia", "log", "home"):
        (folder / sub).mkdir(mode=0o700, exist_ok=True)
    return folder


def write_files(folder: Path, *, amqp_port: int, password: str) -> None:
    """Write the configuration files into FOLDER and give it to the server's user."""
    (folder / "enabled_plugins").write_text("[].\n")
    (folder / "rabbitmq-env.conf").write_text("# the bed sets everything in the environment\n")
    (folder / "rabbitmq.conf").write_text(config(amqp_port, password))
    (folder / "advanced.config").write_text(ADVANCED_CONFIG)
    user = run_user()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def remove_folder(folder: Path) -> None:
    """Remove a broker's folder (after the broker has stopped)."""
    shutil.rmtree(folder, ignore_errors=True)


def config(amqp_port: int, password: str) -> str:
    """rabbitmq.conf: one loopback listener, the bed's user, logs on the console.

    ``default_user`` and its password are applied on the node's first boot
    only, which is the only boot with an empty database.
    """
    return f"""\
listeners.tcp.default = {LOOPBACK}:{amqp_port}
loopback_users = none
default_user = {USER}
default_pass = {password}
default_vhost = /
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
default_user_tags.administrator = true
log.console = true
log.console.level = info
log.console.use_colors = off
log.file = false
disk_free_limit.absolute = 50MB
"""


#: The AMQP listener with ``reuseaddr`` (beside the bed's reservation of its
#: port); the other options are RabbitMQ's defaults, which this list replaces.
ADVANCED_CONFIG = """\
[{rabbit, [{tcp_listen_options, [{backlog, 128}, {nodelay, true},
                                 {linger, {true, 0}}, {exit_on_close, false},
                                 {reuseaddr, true}]}]}].
"""


def environment(folder: Path, *, node: str, amqp_port: int, dist_port: int,
                epmd_port: int) -> dict[str, str]:
    """The variables that make ``rabbitmq-server`` (and ``rabbitmqctl``) the bed's."""
    erl_args = (f"-kernel inet_dist_use_interface {{127,0,0,1}} "
                f"-kernel inet_dist_listen_options [{{reuseaddr,true}}]")
    return {
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
        "RABBITMQ_FEATURE_FLAGS_FILE": str(folder / "feature_flags"),
        "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": erl_args,
        "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_ADDRESS": LOOPBACK,
        "ERL_EPMD_PORT": str(epmd_port),
        "HOME": str(folder / "home"),
    }


def epmd_argv(port: int) -> list[str]:
    """epmd in the foreground on loopback PORT (the bed stops it by PID)."""
    return [str(epmd()), "-port", str(port), "-address", LOOPBACK]


def transport_url(amqp_port: int, password: str) -> str:
    """oslo.messaging transport URL of the bed's broker."""
    return f"rabbit://{USER}:{password}@{LOOPBACK}:{amqp_port}/"


def probe(amqp_port: int, password: str, *, timeout: float = 5.0) -> None:
    """Log in to the broker over AMQP and log out.

    :raises OSError: nothing listens, or the connection broke.
    :raises amqp.exceptions.AMQPError: the broker refused the login or is
        not ready yet.
    """
    connection = amqp.Connection(host=f"{LOOPBACK}:{amqp_port}", userid=USER,
                                 password=password, virtual_host="/",
                                 connect_timeout=timeout, read_timeout=timeout,
                                 write_timeout=timeout)
    try:
        connection.connect()
        connection.close()
    finally:
        connection.collect()
