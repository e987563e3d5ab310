"""The loopback OpenStack test bed: install, start, stop, attach, fault control.

Layout (all on 127.0.0.1, ports picked free at start):

* Keystone ``master`` with image regions Master, RegionA, RegionB;
* Keystone ``other`` with image region RegionC;
* one ``glance-api`` under uWSGI per region, each with its own SQLite
  database (a copy of one migrated template) and file store; the Master
  region publishes its notifications on the bed's RabbitMQ;
* on demand (:meth:`TestBed.start_rabbitmq`, :meth:`TestBed.start_etcd`, or
  ``start(rabbitmq=True, etcd=True)``): Debian's RabbitMQ (its own node,
  epmd and user; :mod:`glancesync.testbed.rabbitmq`) and etcd (one member;
  :mod:`glancesync.testbed.etcd`), each stopped and started again on its
  own (a bus or a coordination service going down).

Every Keystone has ``admin`` (project ``admin``, role admin), ``alice``
(project ``alpha``, role member), ``bob`` (project ``beta``, role member) and
``glance`` (project ``service``, role admin) for Glance's token validation.

A region can be configured unlike the others (:mod:`glancesync.testbed.switches`):
extra ``glance-api.conf`` options, a ``policy.yaml``, a ``schema-image.json``,
a second image endpoint in the catalog.

The run directory holds ``state.json``, ``clouds.yaml``, ``openrc-<cloud>``
files, the services' configuration and data, ``logs/`` and ``pids/``.

Ports: the process that starts the bed keeps a reservation of every port
(see :mod:`glancesync.testbed.ports`) until ``stop``, so a region that is
down keeps its port for the restart. A service starts only once its port
is bindable, and ``stop_region`` returns only once every thread of the old
service has exited and the port is bindable again. RabbitMQ's and etcd's
ports are chosen and reserved at start too, whether they run or not.

Processes: each service runs in a process group of its own, stopped by its
PID; every process the bed spawns also carries a tag in its environment
(:data:`procs.TAG_VARIABLE`), so the ones that leave their group (Erlang's
helpers, an ``epmd`` daemon) are found and stopped too.
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import fcntl
import grp
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import amqp
import requests

from glancesync.testbed import etcd, files, ports, procs, rabbitmq
from glancesync.testbed.errors import TestBedError
from glancesync.testbed.switches import RegionSettings, policy_yaml

LOG = logging.getLogger(__name__)

#: Keystone name -> its image regions (the first also gets the identity endpoint).
KEYSTONE_REGIONS: dict[str, tuple[str, ...]] = {
    "master": ("Master", "RegionA", "RegionB"),
    "other": ("RegionC",),
}
#: (user, project, role) created in every Keystone; one cloud per user.
USERS: tuple[tuple[str, str, str], ...] = (
    ("admin", "admin", "admin"),
    ("alice", "alpha", "member"),
    ("bob", "beta", "member"),
)
#: What ``install`` puts into the test bed's own virtualenv (tested versions).
PACKAGES: tuple[str, ...] = (
    "keystone>=30.0,<31",
    "glance>=33.0,<34",
    "uWSGI>=2.0.28,<2.1",
)
DOMAIN = "Default"
STATE_FILE = "state.json"
_MARKER = ".glancesync-testbed-installed"
_RUN_MARKER = ".glancesync-testbed-run"
_HOME_ENV = "GLANCESYNC_TESTBED_HOME"
_LOG_TAIL_LINES = 40
_MAX_SERVER_ERRORS = 10
_GLANCE_DB_CACHE = "glancesync-glance-template.db"
#: Longest wait (seconds) for a service's port to become bindable: the old
#: service's sockets close within milliseconds once its threads have exited.
_PORT_WAIT = 10.0
#: Ports chosen at boot for the optional services: AMQP, Erlang distribution,
#: epmd, etcd client, etcd peer.
_OPTIONAL_PORTS = 5
#: The region whose Glance publishes its notifications on the bed's RabbitMQ.
NOTIFYING_REGION = KEYSTONE_REGIONS["master"][0]
#: Defaults of the waits for the optional services (seconds): RabbitMQ boots
#: in about 20 s on an idle 2-core machine, etcd in about 1 s.
RABBITMQ_TIMEOUT = 300.0
ETCD_TIMEOUT = 60.0
#: Variables of the caller's environment never passed to a service.
_ENV_DROPPED = ("OS_", "PYTHON", "VIRTUAL_ENV", "RABBITMQ_", "ERL_", "ETCD_", procs.TAG_VARIABLE)
_HOLDERS_SHOWN = 8  # sockets named in the error when a port stays in use


def default_home() -> Path:
    """``$GLANCESYNC_TESTBED_HOME`` or ``./.testbed``: holds ``venv`` and ``run``."""
    value = os.environ.get(_HOME_ENV)
    return Path(value).resolve() if value else Path.cwd().resolve() / ".testbed"


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """Last lines of a log file (for error messages)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(text.splitlines()[-lines:])


def log_excerpt(path: Path, first: int = 8, last: int = 20) -> str:
    """The first error lines of a log, then its last lines (for error messages).

    A service that fails at boot (RabbitMQ's configuration, say) says why
    near the top and then prints pages of crash report.
    """
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as error:
        return f"(no log: {error})"
    errors = [line for line in lines[:-last] if "error" in line.lower()][:first]
    head = ["(first errors)", *errors, "(last lines)"] if errors else []
    return "\n".join(head + lines[-last:])


@dataclasses.dataclass(frozen=True)
class TestBedInfo:
    """Where the services of a running bed are and how to log in."""

    __test__ = False

    run_dir: Path
    clouds_yaml: Path
    keystone_urls: dict[str, str]  #: 'master' | 'other' -> http://127.0.0.1:P/v3
    glance_urls: dict[str, str]  #: region -> http://127.0.0.1:P
    regions: dict[str, list[str]]  #: 'master' | 'other' -> region names
    clouds: dict[str, dict[str, str]]  #: cloud name -> credentials + project_id
    boot_seconds: float | None = None
    #: oslo.messaging URL of the bed's RabbitMQ (``rabbit://USER:PASS@127.0.0.1:P/``),
    #: where the Master region publishes; reachable only while RabbitMQ runs.
    transport_url: str | None = None
    #: Exchange and topic of Glance's notifications (listen with a Target of both).
    notification_exchange: str = rabbitmq.EXCHANGE
    notification_topic: str = rabbitmq.TOPIC
    #: The region whose Glance publishes notifications, and whether it does
    #: yet (from the first start of RabbitMQ on).
    notifying_region: str | None = None
    notifying: bool = False
    #: etcd's client URL (``http://127.0.0.1:P``) and its tooz URL
    #: (``etcd3+http://127.0.0.1:P``); reachable only while etcd runs.
    etcd_url: str | None = None
    coordination_url: str | None = None
    #: Loopback ports of the optional services: ``amqp``, ``erlang-dist``
    #: (RabbitMQ's inter-node port), ``epmd``, ``etcd-client``, ``etcd-peer``.
    service_ports: dict[str, int] = dataclasses.field(default_factory=dict)
    #: RabbitMQ's Erlang node name (``rabbitmqctl -n NODE``).
    rabbitmq_node: str | None = None

    def auth(self, cloud: str) -> dict[str, str]:
        """keystoneauth1 ``v3.Password`` keyword arguments of CLOUD."""
        entry = self._cloud(cloud)
        return {key: entry[key] for key in (
            "auth_url", "username", "password", "project_name",
            "user_domain_name", "project_domain_name")}

    def project_id(self, cloud: str) -> str:
        """Id of the project CLOUD's user is scoped to."""
        return self._cloud(cloud)["project_id"]

    def _cloud(self, cloud: str) -> dict[str, str]:
        try:
            return self.clouds[cloud]
        except KeyError:
            raise TestBedError(
                f"unknown cloud {cloud!r}; known: {', '.join(sorted(self.clouds))}") from None


def _service_ports(state: dict) -> dict[str, int]:
    bus, member = state.get("rabbitmq"), state.get("etcd")
    ports_of: dict[str, int] = {}
    if bus:
        ports_of.update({"amqp": bus["amqp_port"], "erlang-dist": bus["dist_port"],
                         "epmd": bus["epmd_port"]})
    if member:
        ports_of.update({"etcd-client": member["client_port"],
                         "etcd-peer": member["peer_port"]})
    return ports_of


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit meanwhile, so a half-started bed is torn down."""
    if sys.platform != "linux" or not _in_main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield  # somebody (e.g. the pytest fixture) already handles it
        return

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class TestBed:
    """One test bed, living in ``run_dir``.

    ``TestBed().install()`` then ``.start()`` boots it; ``.stop()`` stops
    every process it started (also from another process, through the PID
    files). ``TestBed.load(run_dir)`` attaches to a running bed.
    """

    __test__ = False

    def __init__(self, run_dir: Path | str | None = None, *,
                 home: Path | str | None = None) -> None:
        self.home = Path(home).resolve() if home else default_home()
        self.venv = self.home / "venv"
        self.run_dir = Path(run_dir).resolve() if run_dir else self.home / "run"
        self._state: dict | None = None
        self._children: dict[int, subprocess.Popen] = {}
        #: port -> reservation socket (see glancesync.testbed.ports), held until stop().
        self._reservations: dict[int, socket.socket] = {}
        self._tie_to_parent = True
        self._atexit_registered = False

    # ----------------------------------------------------------- install
    @property
    def python(self) -> Path:
        """Interpreter of the test bed's virtualenv."""
        return self.venv / "bin" / "python"

    def is_installed(self) -> bool:
        """True when the venv holds exactly the packages of this version."""
        marker = self.venv / _MARKER
        try:
            return marker.read_text() == "\n".join(PACKAGES) and self.python.exists()
        except OSError:
            return False

    def install(self, *, timeout: float = 1800.0) -> bool:
        """Create the venv and install Keystone, Glance and uWSGI if absent.

        Idempotent and quick when already done. Returns True if it installed.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.is_installed():
                return False
            log_path = self.home / "install.log"
            started = time.monotonic()
            LOG.info("installing %s into %s", ", ".join(PACKAGES), self.venv)
            commands = []
            if not self.python.exists():
                commands.append([sys.executable, "-m", "venv", str(self.venv)])
            commands.append([str(self.python), "-m", "pip", "install",
                             "--disable-pip-version-check", "-q", *PACKAGES])
            with open(log_path, "w") as log:
                for command in commands:
                    try:
                        done = subprocess.run(
                            command, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, timeout=timeout, check=False)
                    except subprocess.TimeoutExpired:
                        raise TestBedError(
                            f"{' '.join(command)} took more than {timeout:.0f} s; "
                            f"see {log_path}") from None
                    if done.returncode:
                        log.flush()
                        raise TestBedError(
                            f"{' '.join(command)} failed (exit {done.returncode}):\n"
                            f"{log_tail(log_path)}")
            self._migrate_glance_template(log_path, timeout)
            (self.venv / _MARKER).write_text("\n".join(PACKAGES))
            LOG.info("test bed installed in %.1f s", time.monotonic() - started)
            return True

    def _migrate_glance_template(self, log_path: Path, timeout: float) -> None:
        """Migrate one empty Glance database now; every bed copies it."""
        work = self.home / "glance-template"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        database = work / "glance.db"
        (work / "glance-manage.conf").write_text(files.glance_manage_conf(database))
        command = [str(self.venv / "bin" / "glance-manage"), "--config-file",
                   str(work / "glance-manage.conf"), "db_sync"]
        with open(log_path, "a") as log:
            try:
                done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                raise TestBedError(f"glance-manage db_sync took more than {timeout:.0f} s; "
                                   f"see {log_path}") from None
        if done.returncode:
            raise TestBedError(f"glance-manage db_sync failed (exit {done.returncode}):\n"
                               f"{log_tail(log_path)}")
        shutil.copyfile(database, self.venv / _GLANCE_DB_CACHE)
        shutil.rmtree(work)

    # ------------------------------------------------------------- state
    @classmethod
    def load(cls, run_dir: Path | str) -> TestBed:
        """Attach to the bed running in RUN_DIR (raises if it is not running)."""
        bed = cls(run_dir)
        state = bed._read_state()
        if state is None or state.get("status") != "running":
            raise TestBedError(f"no running test bed in {bed.run_dir}")
        bed.home = Path(state["home"])
        bed.venv = bed.home / "venv"
        bed._state = state
        bed._tie_to_parent = False
        if not bed.is_running():
            raise TestBedError(f"the test bed in {bed.run_dir} is not running "
                               f"(some service died); stop it and start again")
        return bed

    def _read_state(self) -> dict | None:
        try:
            return json.loads((self.run_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise TestBedError(f"unreadable {self.run_dir / STATE_FILE}: {error}") from error

    def _write_state(self) -> None:
        path = self.run_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2, sort_keys=True))
        os.chmod(tmp, 0o600)
        tmp.replace(path)

    @property
    def info(self) -> TestBedInfo:
        """Endpoints and credentials of the started (or loaded) bed."""
        state = self._state or self._read_state()
        if not state or state.get("status") != "running":
            raise TestBedError(f"no running test bed in {self.run_dir}")
        return TestBedInfo(
            run_dir=self.run_dir,
            clouds_yaml=self.run_dir / "clouds.yaml",
            keystone_urls={name: ks["url"] for name, ks in state["keystones"].items()},
            glance_urls={region: gl["url"] for region, gl in state["glances"].items()},
            regions={name: list(ks["regions"]) for name, ks in state["keystones"].items()},
            clouds={name: dict(cloud) for name, cloud in state["clouds"].items()},
            boot_seconds=state.get("boot_seconds"),
            transport_url=state.get("rabbitmq", {}).get("transport_url"),
            notifying_region=state.get("rabbitmq", {}).get("region"),
            notifying=bool(state.get("rabbitmq", {}).get("notifying")),
            etcd_url=state.get("etcd", {}).get("url"),
            coordination_url=state.get("etcd", {}).get("coordination_url"),
            service_ports=_service_ports(state),
            rabbitmq_node=state.get("rabbitmq", {}).get("node"),
        )

    def _pid_records(self) -> dict[str, tuple[int, int | None]]:
        """Service name -> (pid, start time), from the PID files."""
        records = {}
        for path in sorted((self.run_dir / "pids").glob("*.pid")):
            try:
                pid_text, _, started = path.read_text().partition(" ")
                records[path.stem] = (int(pid_text), int(started) if started.strip() else None)
            except (OSError, ValueError):
                LOG.warning("ignoring unreadable PID file %s", path)
        return records

    def is_running(self) -> bool:
        """True when the bed is up: every service process alive."""
        state = self._state or self._read_state()
        if not state or state.get("status") != "running":
            return False
        records = self._pid_records()
        services = state.get("services", {})
        return bool(services) and all(
            name in records and procs.is_alive(*records[name]) for name in services)

    # ------------------------------------------------------------- start
    def start(self, *, detach: bool = False, timeout: float = 300.0,
              rabbitmq: bool = False, etcd: bool = False,
              region_settings: dict[str, RegionSettings] | None = None) -> TestBedInfo:
        """Boot the bed; bounded by TIMEOUT seconds; tears down on failure.

        Unless DETACH, the services are stopped when this process exits
        (atexit, and the kernel's parent-death signal as a last resort).
        RABBITMQ and ETCD start those services too (RabbitMQ boots beside
        the other services; allow it :data:`RABBITMQ_TIMEOUT`); otherwise
        their ports are reserved and :meth:`start_rabbitmq` /
        :meth:`start_etcd` start them later. REGION_SETTINGS (region ->
        :class:`RegionSettings`) configures regions unlike the others.

        :raises TestBedError: not installed, already running, a service
            missing (its package named), failing or not ready in time.
        """
        if self.is_running():
            raise TestBedError(f"a test bed already runs in {self.run_dir}; stop it first")
        if not self.is_installed():
            raise TestBedError(f"the test bed is not installed in {self.venv}; "
                               f"run: python -m glancesync.testbed install")
        settings = dict(region_settings or {})
        regions = [region for names in KEYSTONE_REGIONS.values() for region in names]
        unknown = sorted(set(settings) - set(regions))
        if unknown:
            raise TestBedError(f"unknown region {', '.join(unknown)} in region_settings; "
                               f"known: {', '.join(regions)}")
        for wanted, problem in ((rabbitmq, self._rabbitmq_missing()), (etcd, self._etcd_missing())):
            if wanted and problem:
                raise TestBedError(f"{problem}; or start the bed without it")
        self._tie_to_parent = not detach
        if not detach and not self._atexit_registered:
            atexit.register(self._stop_at_exit)
            self._atexit_registered = True
        with _sigterm_as_exit():
            try:
                self._boot(time.monotonic() + timeout, settings,
                           rabbitmq=rabbitmq, etcd=etcd)
            except BaseException:
                LOG.error("test bed start failed; stopping what was started")
                self.stop()
                raise
        return self.info

    def _stop_at_exit(self) -> None:
        if self._children or self._state:
            self.stop()

    def _prepare_run_dir(self) -> None:
        """Empty the run dir (only if it is ours or empty) and lay it out."""
        run = self.run_dir
        if run.exists() and any(run.iterdir()):
            if not (run / _RUN_MARKER).exists():
                raise TestBedError(f"{run} is not empty and not a test bed run dir; "
                                   f"choose another --dir")
            leftovers = [pid for pid, started in self._pid_records().values()
                         if procs.is_alive(pid, started)]
            if leftovers:
                raise TestBedError(f"processes {leftovers} of a previous bed still run "
                                   f"in {run}; stop it first")
            shutil.rmtree(run)
        for sub in ("logs", "pids"):
            (run / sub).mkdir(parents=True, exist_ok=True)
        # Its files hold passwords (services' configurations, clouds.yaml).
        os.chmod(run, 0o700)
        (run / _RUN_MARKER).touch()

    def _service_env(self, name: str, extra: dict[str, str]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(_ENV_DROPPED)}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        tag = (self._state or {}).get("tag")
        if tag:
            env[procs.TAG_VARIABLE] = f"{tag}:{name}"
        env.update(extra)
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], *,
               user: str | None = None, cwd: Path | None = None) -> subprocess.Popen:
        proc = procs.spawn(argv, log_path=self.run_dir / "logs" / f"{name}.log",
                           env=self._service_env(name, env), cwd=cwd or self.run_dir,
                           tie_to_parent=self._tie_to_parent, user=user)
        self._children[proc.pid] = proc
        pid_file = self.run_dir / "pids" / f"{name}.pid"
        pid_file.write_text(f"{proc.pid} {procs.start_time(proc.pid) or ''}")
        return proc

    def _boot(self, deadline: float, settings: dict[str, RegionSettings], *,
              rabbitmq: bool, etcd: bool) -> None:
        began = time.monotonic()
        self._prepare_run_dir()
        run = self.run_dir
        regions = [region for names in KEYSTONE_REGIONS.values() for region in names]
        seconds = [region for region in regions
                   if settings.get(region, RegionSettings()).second_endpoint]
        free = self._reserve_free_ports(len(KEYSTONE_REGIONS) + len(regions) + len(seconds)
                                        + _OPTIONAL_PORTS)
        keystones: dict[str, dict] = {}
        glances: dict[str, dict] = {}
        for name, names in KEYSTONE_REGIONS.items():
            port = free.pop(0)
            keystones[name] = {
                "port": port, "url": f"http://{files.LOOPBACK}:{port}/v3",
                "regions": list(names), "dir": str(run / f"keystone-{name}"),
                "passwords": {user: secrets.token_urlsafe(12)
                              for user in [u for u, _, _ in USERS] + ["glance"]},
            }
            for region in names:
                port = free.pop(0)
                glances[region] = {"port": port, "url": f"http://{files.LOOPBACK}:{port}",
                                   "keystone": name, "dir": str(run / f"glance-{region}"),
                                   "settings": settings.get(region, RegionSettings()).to_json()}
                if region in seconds:
                    glances[region]["second_port"] = free.pop(0)
        tag = secrets.token_hex(6)
        self._state = {"status": "starting", "home": str(self.home), "run_dir": str(run),
                       "tag": tag, "keystones": keystones, "glances": glances, "clouds": {},
                       "services": {}, "rabbitmq": self._rabbitmq_plan(tag, free, rabbitmq),
                       "etcd": self._etcd_plan(free)}
        self._write_state()
        if rabbitmq:  # the slowest service: boots beside the others
            self._spawn_rabbitmq(deadline)

        setups = {name: self._start_keystone_setup(name) for name in keystones}
        for region in glances:
            self._write_glance_config(region)
        pending: dict[str, subprocess.Popen] = dict(setups)
        # The migrated Glance database is the same for every bed of one
        # install: migrate once, keep it next to the venv, copy it per region.
        cached = self.venv / _GLANCE_DB_CACHE
        template = run / "glance-template" / "glance.db"
        if cached.exists():
            self._start_glances(cached, deadline)
        else:
            template.parent.mkdir()
            manage_conf = template.parent / "glance-manage.conf"
            manage_conf.write_text(files.glance_manage_conf(template))
            pending["glance"] = self._spawn("setup-glance-db", [
                str(self.venv / "bin" / "glance-manage"), "--config-file", str(manage_conf),
                "db_sync"], {})

        results: dict[str, dict] = {}
        while pending:
            for name, proc in list(pending.items()):
                code = proc.poll()
                if code is None:
                    continue
                del pending[name]
                log = run / "logs" / (f"setup-keystone-{name}.log" if name != "glance"
                                      else "setup-glance-db.log")
                if code:
                    raise TestBedError(f"{name} set-up failed (exit {code}); {log}:\n"
                                       f"{log_tail(log)}")
                LOG.info("%s set-up done after %.1f s", name, time.monotonic() - began)
                (run / "pids" / log.with_suffix(".pid").name).unlink(missing_ok=True)
                if name == "glance":
                    shutil.copyfile(template, cached.with_suffix(".tmp"))
                    cached.with_suffix(".tmp").replace(cached)
                    self._start_glances(template, deadline)
                else:
                    result_path = Path(keystones[name]["dir"]) / "setup-result.json"
                    results[name] = json.loads(result_path.read_text())
                    self._start_service(f"keystone-{name}", deadline)
            if pending and time.monotonic() > deadline:
                tails = "\n".join(
                    f"--- {name}:\n{log_tail(run / 'logs' / f'setup-{name}.log', 10)}"
                    for name in (f"keystone-{n}" if n != "glance" else "glance-db"
                                 for n in pending))
                raise TestBedError(f"set-up of {', '.join(pending)} did not finish in time; "
                                   f"see {run / 'logs'}\n{tails}")
            time.sleep(0.05)

        self._state["clouds"] = self._clouds(results)
        tokens = {}
        for name in keystones:
            tokens[name] = self._wait_token(name, deadline)
            LOG.info("keystone %s answers after %.1f s", name, time.monotonic() - began)
        for region, glance in glances.items():
            self._wait_glance(region, tokens[glance["keystone"]], deadline)
            if "second_port" in glance and self._settings(region).second_endpoint == "process":
                self._wait_glance(region, tokens[glance["keystone"]], deadline, second=True)
            LOG.info("glance %s answers after %.1f s", region, time.monotonic() - began)
        if etcd:
            self.start_etcd(timeout=max(1.0, deadline - time.monotonic()))
        if rabbitmq:
            self._wait_rabbitmq(deadline)
            LOG.info("rabbitmq answers after %.1f s", time.monotonic() - began)
        self._write_client_files()
        self._state["status"] = "running"
        self._state["boot_seconds"] = round(time.monotonic() - began, 2)
        self._write_state()
        LOG.info("test bed up in %.1f s (%s)", self._state["boot_seconds"], run)

    def _start_glances(self, database: Path, deadline: float) -> None:
        for region, glance in self._state["glances"].items():
            shutil.copyfile(database, Path(glance["dir"]) / "glance.db")
            self._start_service(f"glance-{region}", deadline)
            if self._settings(region).second_endpoint == "process":
                self._start_service(f"glance2-{region}", deadline)

    def _start_keystone_setup(self, name: str) -> subprocess.Popen:
        keystone = self._state["keystones"][name]
        root = Path(keystone["dir"])
        for sub in ("fernet-keys", "credential-keys"):
            (root / sub).mkdir(parents=True, mode=0o700)
        (root / "locks").mkdir()
        (root / "keystone.conf").write_text(files.keystone_conf(root))
        (root / "uwsgi.ini").write_text(
            files.uwsgi_ini(keystone["port"], "keystone.wsgi.api:application", self.venv))
        images = self._state["glances"]
        spec = {
            "config_file": str(root / "keystone.conf"),
            "os_user": pwd.getpwuid(os.getuid()).pw_name,
            "os_group": grp.getgrgid(os.getgid()).gr_name,
            "admin_password": keystone["passwords"]["admin"],
            "identity_url": keystone["url"],
            "regions": keystone["regions"],
            "image_endpoints": {region: self._image_endpoints(region)
                                for region in keystone["regions"]},
            "users": [{"name": user, "password": keystone["passwords"][user],
                       "project": project, "role": role}
                      for user, project, role in USERS if user != "admin"]
                     + [{"name": "glance", "password": keystone["passwords"]["glance"],
                         "project": "service", "role": "admin"}],
        }
        spec_path = root / "setup-spec.json"
        spec_path.write_text(json.dumps(spec))
        os.chmod(spec_path, 0o600)
        script = Path(__file__).with_name("keystone_setup.py")
        return self._spawn(f"setup-keystone-{name}", [
            str(self.python), "-I", str(script), str(spec_path),
            str(root / "setup-result.json")], {})

    def _settings(self, region: str) -> RegionSettings:
        return RegionSettings.from_json(self._state["glances"][region].get("settings"))

    def _image_endpoints(self, region: str) -> list[str]:
        """REGION's image endpoints in the catalog: its own, then the second one if any."""
        glance = self._state["glances"][region]
        urls = [glance["url"]]
        settings = self._settings(region)
        if settings.second_endpoint:
            urls.append(f"http://{files.LOOPBACK}:{glance['second_port']}")
            if settings.second_endpoint_first:
                urls.reverse()
        return urls

    def _write_glance_config(self, region: str) -> None:
        """Write REGION's configuration from its settings (folders made once)."""
        glance = self._state["glances"][region]
        keystone = self._state["keystones"][glance["keystone"]]
        settings = self._settings(region)
        root = Path(glance["dir"])
        for sub in ("images", "staging", "tasks", "cache", "locks"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        # glance-download may pull from any region of the same Keystone.
        siblings = [other["port"] for other in self._state["glances"].values()
                    if other["keystone"] == glance["keystone"]]
        if glance.get("second_port") and settings.second_endpoint == "process":
            siblings.append(glance["second_port"])
        notifications = None
        bus = self._state.get("rabbitmq") or {}
        if bus.get("region") == region and bus.get("notifying"):
            notifications = {"transport_url": bus["transport_url"], "topic": rabbitmq.TOPIC}
        policy = root / "policy.yaml"
        schema = root / "schema-image.json"
        if settings.policy is not None:
            policy.write_text(policy_yaml(settings.policy))
        else:
            policy.unlink(missing_ok=True)
        if settings.schema_image is not None:
            schema.write_text(json.dumps(settings.schema_image, indent=2))
        else:
            schema.unlink(missing_ok=True)
        (root / "glance-api.conf").write_text(files.glance_conf(
            root, glance["port"], keystone["url"], keystone["passwords"]["glance"],
            import_ports=siblings, python=self.python, notifications=notifications,
            policy_file=policy if settings.policy is not None else None,
            extra=settings.glance_conf))
        shutil.copyfile(self._paste_ini(), root / "glance-api-paste.ini")
        (root / "uwsgi.ini").write_text(
            files.uwsgi_ini(glance["port"], "glance.wsgi.api:application", self.venv))
        if glance.get("second_port"):
            (root / "uwsgi-2.ini").write_text(files.uwsgi_ini(
                glance["second_port"], "glance.wsgi.api:application", self.venv))

    def _paste_ini(self) -> Path:
        packaged = self.venv / "etc" / "glance" / "glance-api-paste.ini"
        if packaged.exists():
            return packaged
        found = sorted(self.venv.rglob("glance-api-paste.ini"))
        if not found:
            raise TestBedError(f"glance-api-paste.ini not found in {self.venv}; reinstall")
        return found[0]

    def _service_dir_env(self, name: str) -> tuple[Path, dict[str, str]]:
        kind, _, which = name.partition("-")
        if kind == "keystone":
            root = Path(self._state["keystones"][which]["dir"])
            return root, {"OS_KEYSTONE_CONFIG_DIR": str(root)}
        root = Path(self._state["glances"][which]["dir"])
        return root, {"OS_GLANCE_CONFIG_DIR": str(root)}

    def _service_port(self, name: str) -> int:
        """The port of uWSGI service NAME (``keystone-X``, ``glance-R``, ``glance2-R``)."""
        kind, _, which = name.partition("-")
        if kind == "glance2":
            return self._state["glances"][which]["second_port"]
        return self._state["keystones" if kind == "keystone" else "glances"][which]["port"]

    def _start_service(self, name: str, deadline: float) -> None:
        """Start uWSGI service NAME once its port is bindable (waiting until DEADLINE at most)."""
        self._hold_port(name, deadline)
        root, env = self._service_dir_env(name)
        ini = "uwsgi-2.ini" if name.startswith("glance2-") else "uwsgi.ini"
        self._spawn(name, [str(self.venv / "bin" / "uwsgi"), "--ini", str(root / ini)], env)
        self._state["services"][name] = str(self.run_dir / "logs" / f"{name}.log")
        self._write_state()

    # ------------------------------------------------------------- ports
    def _reserve_free_ports(self, count: int) -> list[int]:
        """COUNT distinct free loopback ports, reserved until ``stop``."""
        picked = []
        for _ in range(count):
            sock = ports.reserve()
            port = sock.getsockname()[1]
            self._reservations[port] = sock
            picked.append(port)
        return picked

    def _hold_port(self, name: str, deadline: float, port: int | None = None) -> None:
        """Wait until PORT (default: uWSGI service NAME's) is bindable, then keep it reserved.

        Bounded by DEADLINE and by ``_PORT_WAIT`` seconds.

        :raises TestBedError: the port is still in use; names its holders.
        """
        port = port if port is not None else self._service_port(name)
        began = time.monotonic()
        sock = ports.wait_bindable(port, min(deadline, began + _PORT_WAIT))
        if sock is None:
            found = ports.holders(port)
            held = "; ".join(found[:_HOLDERS_SHOWN]) or "no socket seen"
            if len(found) > _HOLDERS_SHOWN:
                held += f"; and {len(found) - _HOLDERS_SHOWN} more"
            raise TestBedError(f"port {port} of {name} is still in use after "
                               f"{time.monotonic() - began:.1f} s: {held}")
        previous = self._reservations.pop(port, None)
        if previous is not None:
            previous.close()
        self._reservations[port] = sock

    def _release_ports(self) -> None:
        for sock in self._reservations.values():
            sock.close()
        self._reservations.clear()

    def _clouds(self, results: dict[str, dict]) -> dict[str, dict[str, str]]:
        clouds = {}
        for name, keystone in self._state["keystones"].items():
            for user, project, _ in USERS:
                clouds[f"{name}-{user}"] = {
                    "auth_url": keystone["url"], "username": user,
                    "password": keystone["passwords"][user], "project_name": project,
                    "user_domain_name": DOMAIN, "project_domain_name": DOMAIN,
                    "project_id": results[name]["projects"][project],
                }
        return clouds

    def _write_client_files(self) -> None:
        clouds = self._state["clouds"]
        public = {name: {k: v for k, v in cloud.items() if k != "project_id"}
                  for name, cloud in clouds.items()}
        targets = [(self.run_dir / "clouds.yaml", files.clouds_yaml(public))]
        for name, cloud in public.items():
            region = self._state["keystones"][name.split("-", 1)[0]]["regions"][0]
            targets.append((self.run_dir / f"openrc-{name}", files.openrc(cloud, region)))
        for path, text in targets:
            path.write_text(text)
            os.chmod(path, 0o600)

    # --------------------------------------------------------- readiness
    def _check_alive(self, name: str) -> None:
        pid, started = self._pid_records()[name]
        if not procs.is_alive(pid, started):
            proc = self._children.get(pid)
            code = proc.poll() if proc else None
            log = self.run_dir / "logs" / f"{name}.log"
            raise TestBedError(f"{name} died (exit {code}); {log}:\n{log_excerpt(log)}")

    def _wait_token(self, keystone: str, deadline: float) -> str:
        """Admin token of KEYSTONE once it answers; bounded by DEADLINE."""
        state = self._state["keystones"][keystone]
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": DOMAIN},
                "password": state["passwords"]["admin"]}}},
            "scope": {"project": {"name": "admin", "domain": {"name": DOMAIN}}}}}
        name = f"keystone-{keystone}"
        last = "no answer"
        while True:
            self._check_alive(name)
            try:
                answer = requests.post(f"{state['url']}/auth/tokens", json=body, timeout=10)
                if answer.status_code == 201:
                    return answer.headers["X-Subject-Token"]
                last = f"HTTP {answer.status_code}: {answer.text[:300]}"
            except requests.RequestException as error:
                last = str(error)
            if time.monotonic() > deadline:
                log = self.run_dir / "logs" / f"{name}.log"
                raise TestBedError(f"{name} not ready in time ({last}); {log}:\n"
                                   f"{log_tail(log)}")
            time.sleep(0.1)

    def _wait_glance(self, region: str, token: str, deadline: float, *,
                     second: bool = False) -> None:
        """Wait until REGION (its SECOND process) answers an authenticated GET /v2/images."""
        glance = self._state["glances"][region]
        url = f"http://{files.LOOPBACK}:{glance['second_port']}" if second else glance["url"]
        name = f"glance2-{region}" if second else f"glance-{region}"
        last = "no answer"
        server_errors = 0
        while True:
            self._check_alive(name)
            try:
                answer = requests.get(f"{url}/v2/images", headers={"X-Auth-Token": token},
                                      timeout=15)
                if answer.status_code == 200:
                    return
                last = f"HTTP {answer.status_code}: {answer.text[:300]}"
                # A loaded application that keeps failing is misconfigured:
                # waiting longer cannot help.
                server_errors = server_errors + 1 if answer.status_code >= 500 else 0
            except requests.RequestException as error:
                last = str(error)
            if time.monotonic() > deadline or server_errors >= _MAX_SERVER_ERRORS:
                log = self.run_dir / "logs" / f"{name}.log"
                raise TestBedError(f"{name} not ready in time ({last}); {log}:\n"
                                   f"{log_tail(log)}")
            time.sleep(0.1)

    # -------------------------------------------------------------- stop
    def stop(self, *, grace: float = 10.0) -> None:
        """Stop every process of this bed (SIGTERM, then SIGKILL after GRACE s).

        Also the processes that left their group (found by their tag), so
        no RabbitMQ, epmd or etcd process outlives the bed; RabbitMQ's
        folder is removed.

        :raises TestBedError: some process survived SIGKILL.
        """
        state = self._state or self._read_state()
        records = self._pid_records() if (self.run_dir / "pids").exists() else {}
        groups = {pid: started for pid, started in records.values()}
        groups.update({pid: None for pid, proc in self._children.items()
                       if proc.poll() is None and pid not in groups})
        alive = procs.stop_groups(groups, grace=grace, children=self._children)
        if state and state.get("tag"):
            leftovers = procs.tagged(f"{state['tag']}:")
            alive += procs.stop_processes({pid: started for pid, (started, _) in
                                           leftovers.items()}, grace=grace)
        if alive:
            raise TestBedError(f"could not stop processes {alive} of {self.run_dir}")
        self._release_ports()
        for path in (self.run_dir / "pids").glob("*.pid"):
            path.unlink(missing_ok=True)
        self._children.clear()
        if state:
            folder = (state.get("rabbitmq") or {}).get("dir")
            if folder:
                rabbitmq.remove_folder(Path(folder))
                state["rabbitmq"]["dir"] = None
            state["status"] = "stopped"
            self._state = state
            self._write_state()
        self._state = None

    # ------------------------------------------------ per-region control
    def _glance_record(self, region: str) -> tuple[int, int | None] | None:
        if region not in self.info.glance_urls:
            raise TestBedError(f"unknown region {region!r}; known: "
                               f"{', '.join(self.info.glance_urls)}")
        return self._pid_records().get(f"glance-{region}")

    def glance_pids(self, region: str) -> list[int]:
        """PIDs of REGION's glance uWSGI processes (master and workers)."""
        record = self._glance_record(region)
        if record is None or not procs.is_alive(*record):
            return []
        return procs.group_members(record[0])

    def stop_region(self, region: str) -> None:
        """SIGKILL REGION's glance processes: a worker dying mid-flight.

        Returns once every thread of them has exited and the port is
        bindable again, and keeps the port reserved for ``start_region``.

        :raises TestBedError: a process survived SIGKILL, or the port stays in use.
        """
        self._glance_record(region)  # checks the region's name
        self._kill_uwsgi(f"glance-{region}")

    def _kill_uwsgi(self, name: str) -> None:
        """SIGKILL uWSGI service NAME; return once it is gone and its port held again."""
        record = self._pid_records().get(name)
        if record is not None:
            alive = procs.stop_groups({record[0]: record[1]}, grace=5.0,
                                      children=self._children, first_signal=signal.SIGKILL)
            if alive:
                raise TestBedError(f"{name}: processes {alive} survived SIGKILL")
            self._children.pop(record[0], None)
        (self.run_dir / "pids" / f"{name}.pid").unlink(missing_ok=True)
        self._state = self._state or self._read_state()
        self._hold_port(name, time.monotonic() + _PORT_WAIT)

    def start_region(self, region: str, *, timeout: float = 120.0) -> None:
        """Start REGION's glance again on the same port; wait until it serves.

        :raises TestBedError: it already runs, its port stays in use, or it
            does not serve within TIMEOUT seconds.
        """
        if self.glance_pids(region):
            raise TestBedError(f"glance of {region} is already running")
        deadline = time.monotonic() + timeout
        self._state = self._state or self._read_state()
        self._start_service(f"glance-{region}", deadline)
        token = self._wait_token(self._state["glances"][region]["keystone"], deadline)
        self._wait_glance(region, token, deadline)

    # ------------------------------------------------- optional services
    def _current_state(self) -> dict:
        state = self._state or self._read_state()
        if not state or state.get("status") not in ("running", "starting"):
            raise TestBedError(f"no running test bed in {self.run_dir}")
        if "rabbitmq" not in state or "tag" not in state:
            raise TestBedError(f"the test bed in {self.run_dir} was started by an older "
                               f"GlanceSync without RabbitMQ and etcd; stop it and start again")
        self._state = state
        return state

    def processes(self) -> dict[int, str]:
        """Every live process this bed started, helpers included: pid -> service name.

        Found by the tag in their environment (:data:`procs.TAG_VARIABLE`),
        so also those that left their service's process group.
        """
        state = self._state or self._read_state()
        if not state or not state.get("tag"):
            return {}
        prefix = f"{state['tag']}:"
        return {pid: tag[len(prefix):] for pid, (_, tag) in procs.tagged(prefix).items()}

    def _service_alive(self, name: str) -> bool:
        record = self._pid_records().get(name)
        return record is not None and procs.is_alive(*record)

    def _stop_service(self, name: str, *, grace: float, kill: bool) -> None:
        """Stop service NAME and every process carrying its tag; forget its PID file.

        :raises TestBedError: a process survived SIGKILL.
        """
        state = self._current_state()
        record = self._pid_records().get(name)
        alive: list[int] = []
        if record is not None:
            alive = procs.stop_groups({record[0]: record[1]}, grace=grace,
                                      children=self._children,
                                      first_signal=signal.SIGKILL if kill else signal.SIGTERM)
            self._children.pop(record[0], None)
        leftovers = procs.tagged(f"{state['tag']}:{name}")
        alive += procs.stop_processes({pid: started for pid, (started, _) in
                                       leftovers.items()}, grace=grace)
        if alive:
            raise TestBedError(f"{name}: processes {alive} survived SIGKILL")
        (self.run_dir / "pids" / f"{name}.pid").unlink(missing_ok=True)

    @staticmethod
    def _rabbitmq_missing() -> str | None:
        return rabbitmq.missing()

    @staticmethod
    def _etcd_missing() -> str | None:
        return etcd.missing()

    def _rabbitmq_plan(self, tag: str, free: list[int], notifying: bool) -> dict:
        """RabbitMQ's node, ports and credentials, chosen at boot (before Glance's config).

        NOTIFYING: whether the notifying region's Glance starts configured to
        publish (RabbitMQ starts with the bed); otherwise the first
        :meth:`start_rabbitmq` turns it on, so a bed whose RabbitMQ never runs
        has a Glance that never tries to publish.
        """
        amqp_port, dist_port, epmd_port = free.pop(0), free.pop(0), free.pop(0)
        password = secrets.token_urlsafe(16)
        return {"node": f"glancesync-{tag}@localhost", "amqp_port": amqp_port,
                "dist_port": dist_port, "epmd_port": epmd_port, "user": rabbitmq.USER,
                "password": password, "region": NOTIFYING_REGION,
                "transport_url": rabbitmq.transport_url(amqp_port, password),
                "exchange": rabbitmq.EXCHANGE, "topic": rabbitmq.TOPIC, "dir": None,
                "notifying": notifying}

    def _etcd_plan(self, free: list[int]) -> dict:
        client_port, peer_port = free.pop(0), free.pop(0)
        return {"client_port": client_port, "peer_port": peer_port,
                "dir": str(self.run_dir / "etcd"), "url": etcd.client_url(client_port),
                "coordination_url": etcd.coordination_url(client_port)}

    def _rabbitmq_env(self) -> dict[str, str]:
        bus = self._state["rabbitmq"]
        return rabbitmq.environment(Path(bus["dir"]), node=bus["node"],
                                    amqp_port=bus["amqp_port"], dist_port=bus["dist_port"],
                                    epmd_port=bus["epmd_port"])

    def rabbitmq_running(self) -> bool:
        """True while the bed's RabbitMQ process runs (it may still be booting)."""
        return self._service_alive("rabbitmq")

    def start_rabbitmq(self, *, timeout: float = RABBITMQ_TIMEOUT) -> None:
        """Start the bed's RabbitMQ (and its epmd) and wait until it accepts the bed's user.

        Same node, ports, user and data as before: queues declared durable
        survive a stop. The first start also restarts the notifying
        region's Glance, configured to publish from then on. Bounded by
        TIMEOUT seconds; what was started is stopped again on failure.

        :raises TestBedError: not installed (names the package), already
            running, died (with its log's tail) or not ready in time.
        """
        self._current_state()
        if self.rabbitmq_running():
            raise TestBedError(f"RabbitMQ of {self.run_dir} is already running")
        problem = rabbitmq.missing()
        if problem:
            raise TestBedError(problem)
        deadline = time.monotonic() + timeout
        try:
            self._spawn_rabbitmq(deadline)
            self._wait_rabbitmq(deadline)
        except BaseException:
            self._stop_rabbitmq_processes(grace=5.0, kill=True)
            raise
        bus = self._state["rabbitmq"]
        if not bus.get("notifying"):
            bus["notifying"] = True
            self._write_state()
            region = bus["region"]
            self.reconfigure_region(region, self._settings(region),
                                    timeout=max(60.0, deadline - time.monotonic()))

    def _spawn_rabbitmq(self, deadline: float) -> None:
        """Lay out RabbitMQ's folder (once), start epmd, then the server: no waiting for it."""
        bus = self._state["rabbitmq"]
        if not bus.get("dir") or not Path(bus["dir"]).is_dir():
            folder = rabbitmq.make_folder(self.home, self._state["tag"])
            rabbitmq.write_files(folder, amqp_port=bus["amqp_port"], password=bus["password"])
            bus["dir"] = str(folder)
            self._write_state()
        for port in (bus["amqp_port"], bus["dist_port"], bus["epmd_port"]):
            self._hold_port("rabbitmq", deadline, port)
        env = self._rabbitmq_env()
        user = rabbitmq.run_user()
        if not self._service_alive("epmd"):
            self._spawn("epmd", rabbitmq.epmd_argv(bus["epmd_port"]), env, user=user,
                        cwd=Path(bus["dir"]))
            self._wait_listening("epmd", bus["epmd_port"], deadline)
        self._spawn("rabbitmq", [str(rabbitmq.SERVER)], env, user=user, cwd=Path(bus["dir"]))

    def _wait_listening(self, name: str, port: int, deadline: float) -> None:
        """Wait until service NAME accepts TCP connections on loopback PORT."""
        while True:
            self._check_alive(name)
            try:
                socket.create_connection((files.LOOPBACK, port), timeout=2).close()
                return
            except OSError as error:
                last = str(error)
            if time.monotonic() > deadline:
                log = self.run_dir / "logs" / f"{name}.log"
                raise TestBedError(f"{name} does not listen on port {port} in time ({last}); "
                                   f"{log}:\n{log_tail(log)}")
            time.sleep(0.05)

    def _wait_rabbitmq(self, deadline: float) -> None:
        """Wait until RabbitMQ accepts an AMQP login of the bed's user; bounded by DEADLINE."""
        bus = self._state["rabbitmq"]
        last = "no answer"
        while True:
            self._check_alive("rabbitmq")
            try:
                rabbitmq.probe(bus["amqp_port"], bus["password"])
                return
            except (OSError, amqp.exceptions.AMQPError) as error:
                last = f"{type(error).__name__}: {error}"
            if time.monotonic() > deadline:
                log = self.run_dir / "logs" / "rabbitmq.log"
                raise TestBedError(f"RabbitMQ not ready in time ({last}); {log}:\n"
                                   f"{log_tail(log)}")
            time.sleep(0.2)

    def stop_rabbitmq(self, *, kill: bool = False, grace: float = 60.0) -> None:
        """Stop the bed's RabbitMQ and its epmd; their ports stay the bed's.

        SIGTERM (a clean shutdown, up to GRACE seconds) or, with KILL,
        SIGKILL (a crash). Returns once no process of theirs is left and
        the ports are bindable again. Glance's pending notifications are
        dropped meanwhile (see :func:`files.notification_options`).

        :raises TestBedError: a process survived, or a port stays in use.
        """
        self._current_state()
        self._stop_rabbitmq_processes(grace=grace, kill=kill)
        bus = self._state["rabbitmq"]
        deadline = time.monotonic() + _PORT_WAIT
        for port in (bus["amqp_port"], bus["dist_port"], bus["epmd_port"]):
            self._hold_port("rabbitmq", deadline, port)

    def _stop_rabbitmq_processes(self, *, grace: float, kill: bool) -> None:
        self._stop_service("rabbitmq", grace=grace, kill=kill)
        self._stop_service("epmd", grace=min(grace, 10.0), kill=kill)

    def rabbitmqctl(self, *args: str, timeout: float = 120.0) -> str:
        """Run ``rabbitmqctl -n NODE ARGS`` against the bed's broker; its output.

        :raises TestBedError: RabbitMQ is not running, or the command failed.
        """
        self._current_state()
        if not self.rabbitmq_running():
            raise TestBedError(f"RabbitMQ of {self.run_dir} is not running")
        bus = self._state["rabbitmq"]
        command = [str(rabbitmq.CTL), "-n", bus["node"], *args]
        identity: dict = {}
        user = rabbitmq.run_user()
        if user is not None:
            identity = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env=self._service_env("rabbitmqctl", self._rabbitmq_env()),
                                  cwd=bus["dir"], stdin=subprocess.DEVNULL, check=False,
                                  **identity)
        except subprocess.TimeoutExpired:
            raise TestBedError(f"{' '.join(command)} took more than {timeout:.0f} s") from None
        if done.returncode:
            raise TestBedError(f"{' '.join(command)} failed (exit {done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}")
        return done.stdout

    def etcd_running(self) -> bool:
        """True while the bed's etcd process runs."""
        return self._service_alive("etcd")

    def start_etcd(self, *, timeout: float = ETCD_TIMEOUT) -> None:
        """Start the bed's etcd member (same data as before) and wait until it serves.

        :raises TestBedError: not installed (names the package), already
            running, died (with its log's tail) or not ready in time.
        """
        self._current_state()
        if self.etcd_running():
            raise TestBedError(f"etcd of {self.run_dir} is already running")
        problem = etcd.missing()
        if problem:
            raise TestBedError(problem)
        member = self._state["etcd"]
        deadline = time.monotonic() + timeout
        for port in (member["client_port"], member["peer_port"]):
            self._hold_port("etcd", deadline, port)
        data = Path(member["dir"])
        data.mkdir(mode=0o700, exist_ok=True)
        self._spawn("etcd", etcd.argv(data, member["client_port"], member["peer_port"]), {})
        last = "no answer"
        try:
            while True:
                self._check_alive("etcd")
                try:
                    problem = etcd.probe(member["client_port"])
                    if problem is None:
                        return
                    last = problem
                except (requests.RequestException, ValueError) as error:
                    last = str(error)
                if time.monotonic() > deadline:
                    log = self.run_dir / "logs" / "etcd.log"
                    raise TestBedError(f"etcd not ready in time ({last}); {log}:\n"
                                       f"{log_tail(log)}")
                time.sleep(0.1)
        except BaseException:
            self._stop_service("etcd", grace=5.0, kill=True)
            raise

    def stop_etcd(self, *, kill: bool = False, grace: float = 10.0) -> None:
        """Stop the bed's etcd (SIGTERM, or SIGKILL with KILL); its ports stay the bed's.

        :raises TestBedError: a process survived, or a port stays in use.
        """
        self._current_state()
        self._stop_service("etcd", grace=grace, kill=kill)
        member = self._state["etcd"]
        deadline = time.monotonic() + _PORT_WAIT
        for port in (member["client_port"], member["peer_port"]):
            self._hold_port("etcd", deadline, port)

    # ------------------------------------------------------------ switches
    def region_settings(self, region: str) -> RegionSettings:
        """How REGION is configured now (stock settings unless changed)."""
        self._current_state()
        self._glance_record(region)  # checks the region's name
        return self._settings(region)

    def reconfigure_region(self, region: str, settings: RegionSettings | None = None, *,
                           timeout: float = 120.0) -> None:
        """Restart REGION's Glance configured by SETTINGS (None: like every other region).

        See :meth:`reconfigure`.
        """
        self.reconfigure({region: settings}, timeout=timeout)

    def reconfigure(self, settings: dict[str, RegionSettings | None], *,
                    timeout: float = 120.0) -> None:
        """Restart each region named, configured by its settings (None: stock), together.

        The regions' processes are killed, their files rewritten, their
        second image endpoints added to or removed from the catalog, and
        they start again on the same ports with the same data; returns once
        each of their processes serves. Tokens issued before carry the old
        catalog.

        :raises TestBedError: unknown region, a port in use, Keystone
            refused the catalog change, or Glance not ready in TIMEOUT s.
        """
        state = self._current_state()
        for region in settings:
            self._glance_record(region)  # checks the name before anything changes
        deadline = time.monotonic() + timeout
        tokens: dict[str, str] = {}
        for region, wanted in settings.items():
            wanted = wanted if wanted is not None else RegionSettings()
            glance = state["glances"][region]
            keystone = glance["keystone"]
            old = self._settings(region)
            self._kill_uwsgi(f"glance-{region}")
            if old.second_endpoint == "process":
                self._kill_uwsgi(f"glance2-{region}")
                state["services"].pop(f"glance2-{region}", None)
            if keystone not in tokens:
                tokens[keystone] = self._wait_token(keystone, deadline)
            token = tokens[keystone]
            own = glance["url"]
            if old.second_endpoint:
                self._remove_endpoint(keystone, token, region,
                                      f"http://{files.LOOPBACK}:{glance['second_port']}")
            if wanted.second_endpoint and "second_port" not in glance:
                glance["second_port"] = self._reserve_free_ports(1)[0]
            glance["settings"] = wanted.to_json()
            self._write_state()
            self._write_glance_config(region)
            if wanted.second_endpoint:
                second = f"http://{files.LOOPBACK}:{glance['second_port']}"
                if wanted.second_endpoint_first:  # the catalog lists in creation order
                    self._remove_endpoint(keystone, token, region, own)
                    self._add_endpoint(keystone, token, region, second)
                    self._add_endpoint(keystone, token, region, own)
                else:
                    self._add_endpoint(keystone, token, region, second)
            self._start_service(f"glance-{region}", deadline)
            if wanted.second_endpoint == "process":
                self._start_service(f"glance2-{region}", deadline)
        for region in settings:
            token = tokens[state["glances"][region]["keystone"]]
            self._wait_glance(region, token, deadline)
            if self._settings(region).second_endpoint == "process":
                self._wait_glance(region, token, deadline, second=True)

    @contextlib.contextmanager
    def region_configured(self, region: str, settings: RegionSettings, *,
                          timeout: float = 120.0) -> Iterator[TestBedInfo]:
        """REGION configured by SETTINGS meanwhile, then as it was before (both by restart)."""
        with self.configured({region: settings}, timeout=timeout) as info:
            yield info

    @contextlib.contextmanager
    def configured(self, settings: dict[str, RegionSettings], *,
                   timeout: float = 120.0) -> Iterator[TestBedInfo]:
        """Each region named configured by its settings meanwhile, then as before."""
        previous = {region: self.region_settings(region) for region in settings}
        self.reconfigure(settings, timeout=timeout)
        try:
            yield self.info
        finally:
            self.reconfigure(previous, timeout=timeout)

    def image_endpoints(self, region: str) -> list[str]:
        """REGION's public image endpoints as its Keystone's catalog lists them now."""
        state = self._current_state()
        self._glance_record(region)
        keystone = state["glances"][region]["keystone"]
        token = self._wait_token(keystone, time.monotonic() + 60)
        return [endpoint["url"] for endpoint in self._endpoints(keystone, token, region)]

    def _keystone_call(self, keystone: str, token: str, method: str, path: str,
                       **kwargs) -> requests.Response:
        url = f"{self._state['keystones'][keystone]['url']}{path}"
        try:
            answer = requests.request(method, url, headers={"X-Auth-Token": token},
                                      timeout=30, **kwargs)
        except requests.RequestException as error:
            raise TestBedError(f"keystone-{keystone}: {method} {path}: {error}") from error
        if not answer.ok:
            raise TestBedError(f"keystone-{keystone}: {method} {path}: HTTP "
                               f"{answer.status_code}: {answer.text[:300]}")
        return answer

    def _image_service_id(self, keystone: str, token: str) -> str:
        services = self._keystone_call(keystone, token, "GET", "/services",
                                       params={"type": "image"}).json()["services"]
        if not services:
            raise TestBedError(f"keystone-{keystone} has no image service")
        return services[0]["id"]

    def _endpoints(self, keystone: str, token: str, region: str) -> list[dict]:
        """REGION's public image endpoints, in the catalog's order."""
        service = self._image_service_id(keystone, token)
        catalog = self._keystone_call(keystone, token, "GET", "/auth/catalog").json()["catalog"]
        return [endpoint for entry in catalog if entry["id"] == service
                for endpoint in entry["endpoints"]
                if endpoint["region_id"] == region and endpoint["interface"] == "public"]

    def _add_endpoint(self, keystone: str, token: str, region: str, url: str) -> None:
        service = self._image_service_id(keystone, token)
        self._keystone_call(keystone, token, "POST", "/endpoints", json={"endpoint": {
            "service_id": service, "interface": "public", "region_id": region,
            "url": url, "enabled": True}})

    def _remove_endpoint(self, keystone: str, token: str, region: str, url: str) -> None:
        service = self._image_service_id(keystone, token)
        listed = self._keystone_call(keystone, token, "GET", "/endpoints", params={
            "service_id": service, "interface": "public", "region_id": region}).json()
        for endpoint in listed["endpoints"]:
            if endpoint["url"].rstrip("/") == url:
                self._keystone_call(keystone, token, "DELETE", f"/endpoints/{endpoint['id']}")
