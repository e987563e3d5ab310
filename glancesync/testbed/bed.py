"""The loopback OpenStack test bed: install, start, stop, attach, fault control.

Layout (all on 127.0.0.1, ports picked free at start):

* Keystone ``master`` with image regions Master, RegionA, RegionB;
* Keystone ``other`` with image region RegionC;
* one ``glance-api`` under uWSGI per region, each with its own SQLite
  database (a copy of one migrated template) and file store.

Every Keystone has ``admin`` (project ``admin``, role admin), ``alice``
(project ``alpha``, role member), ``bob`` (project ``beta``, role member) and
``glance`` (project ``service``, role admin) for Glance's token validation.

The run directory holds ``state.json``, ``clouds.yaml``, ``openrc-<cloud>``
files, the services' configuration and data, ``logs/`` and ``pids/``.

Ports: the process that starts the bed keeps a reservation of every port
(see :mod:`glancesync.testbed.ports`) until ``stop``, so a region that is
down keeps its port for the restart. A service starts only once its port
is bindable, and ``stop_region`` returns only once every thread of the old
service has exited and the port is bindable again.
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

import requests

from glancesync.errors import GlanceSyncError
from glancesync.testbed import files, ports, procs

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
_HOLDERS_SHOWN = 8  # sockets named in the error when a port stays in use


class TestBedError(GlanceSyncError):
    """The test bed could not be installed, started, reached or stopped."""

    __test__ = False


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
    def start(self, *, detach: bool = False, timeout: float = 300.0) -> TestBedInfo:
        """Boot the bed; bounded by TIMEOUT seconds; tears down on failure.

        Unless DETACH, the services are stopped when this process exits
        (atexit, and the kernel's parent-death signal as a last resort).
        """
        if self.is_running():
            raise TestBedError(f"a test bed already runs in {self.run_dir}; stop it first")
        if not self.is_installed():
            raise TestBedError(f"the test bed is not installed in {self.venv}; "
                               f"run: python -m glancesync.testbed install")
        self._tie_to_parent = not detach
        if not detach and not self._atexit_registered:
            atexit.register(self._stop_at_exit)
            self._atexit_registered = True
        with _sigterm_as_exit():
            try:
                self._boot(time.monotonic() + timeout)
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
        (run / _RUN_MARKER).touch()

    def _service_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("OS_", "PYTHON", "VIRTUAL_ENV"))}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env.update(extra)
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        proc = procs.spawn(argv, log_path=self.run_dir / "logs" / f"{name}.log",
                           env=self._service_env(env), cwd=self.run_dir,
                           tie_to_parent=self._tie_to_parent)
        self._children[proc.pid] = proc
        pid_file = self.run_dir / "pids" / f"{name}.pid"
        pid_file.write_text(f"{proc.pid} {procs.start_time(proc.pid) or ''}")
        return proc

    def _boot(self, deadline: float) -> None:
        began = time.monotonic()
        self._prepare_run_dir()
        run = self.run_dir
        regions = [region for names in KEYSTONE_REGIONS.values() for region in names]
        free = self._reserve_free_ports(len(KEYSTONE_REGIONS) + len(regions))
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
                                   "keystone": name, "dir": str(run / f"glance-{region}")}
        self._state = {"status": "starting", "home": str(self.home), "run_dir": str(run),
                       "keystones": keystones, "glances": glances, "clouds": {},
                       "services": {}}
        self._write_state()

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
            LOG.info("glance %s answers after %.1f s", region, time.monotonic() - began)
        self._write_client_files()
        self._state["status"] = "running"
        self._state["boot_seconds"] = round(time.monotonic() - began, 2)
        self._write_state()
        LOG.info("test bed up in %.1f s (%s)", self._state["boot_seconds"], run)

    def _start_glances(self, database: Path, deadline: float) -> None:
        for region, glance in self._state["glances"].items():
            shutil.copyfile(database, Path(glance["dir"]) / "glance.db")
            self._start_service(f"glance-{region}", deadline)

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
            "image_endpoints": {region: images[region]["url"] for region in keystone["regions"]},
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

    def _write_glance_config(self, region: str) -> None:
        glance = self._state["glances"][region]
        keystone = self._state["keystones"][glance["keystone"]]
        root = Path(glance["dir"])
        for sub in ("images", "staging", "tasks", "cache", "locks"):
            (root / sub).mkdir(parents=True)
        # glance-download may pull from any region of the same Keystone.
        siblings = [other["port"] for other in self._state["glances"].values()
                    if other["keystone"] == glance["keystone"]]
        (root / "glance-api.conf").write_text(files.glance_conf(
            root, glance["port"], keystone["url"], keystone["passwords"]["glance"],
            import_ports=siblings, python=self.python))
        shutil.copyfile(self._paste_ini(), root / "glance-api-paste.ini")
        (root / "uwsgi.ini").write_text(
            files.uwsgi_ini(glance["port"], "glance.wsgi.api:application", self.venv))

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
        kind, _, which = name.partition("-")
        return self._state["keystones" if kind == "keystone" else "glances"][which]["port"]

    def _start_service(self, name: str, deadline: float) -> None:
        """Start service NAME once its port is bindable (waiting until DEADLINE at most)."""
        self._hold_port(name, deadline)
        root, env = self._service_dir_env(name)
        self._spawn(name, [str(self.venv / "bin" / "uwsgi"), "--ini", str(root / "uwsgi.ini")],
                    env)
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

    def _hold_port(self, name: str, deadline: float) -> None:
        """Wait until the port of service NAME is bindable, then keep it reserved.

        Bounded by DEADLINE and by ``_PORT_WAIT`` seconds.

        :raises TestBedError: the port is still in use; names its holders.
        """
        port = self._service_port(name)
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
            raise TestBedError(f"{name} died (exit {code}); {log}:\n{log_tail(log)}")

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

    def _wait_glance(self, region: str, token: str, deadline: float) -> None:
        """Wait until REGION answers an authenticated GET /v2/images with 200."""
        url = self._state["glances"][region]["url"]
        name = f"glance-{region}"
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
        """Stop every process of this bed (SIGTERM, then SIGKILL after GRACE s)."""
        records = self._pid_records() if (self.run_dir / "pids").exists() else {}
        groups = {pid: started for pid, started in records.values()}
        groups.update({pid: None for pid, proc in self._children.items()
                       if proc.poll() is None and pid not in groups})
        alive = procs.stop_groups(groups, grace=grace, children=self._children)
        if alive:
            raise TestBedError(f"could not stop processes {alive} of {self.run_dir}")
        self._release_ports()
        for path in (self.run_dir / "pids").glob("*.pid"):
            path.unlink(missing_ok=True)
        self._children.clear()
        state = self._state or self._read_state()
        if state:
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
        record = self._glance_record(region)
        if record is not None:
            alive = procs.stop_groups({record[0]: record[1]}, grace=5.0,
                                      children=self._children, first_signal=signal.SIGKILL)
            if alive:
                raise TestBedError(f"glance of {region}: processes {alive} survived SIGKILL")
            self._children.pop(record[0], None)
        (self.run_dir / "pids" / f"glance-{region}.pid").unlink(missing_ok=True)
        self._state = self._state or self._read_state()
        self._hold_port(f"glance-{region}", time.monotonic() + _PORT_WAIT)

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
