"""Opt-in extra of the test bed: the ``openstack`` CLI in a virtualenv of its own.

The benchmark compares GlanceSync with the operator's loop of ``openstack
image save`` / ``openstack image create``. python-openstackclient is large
and not needed by the tests, so it never joins the default install: it goes
into ``HOME/osc-venv`` only when :func:`install_openstackclient` is called.
"""
from __future__ import annotations

import fcntl
import logging
import subprocess
import sys
import time
from pathlib import Path

from glancesync.testbed.bed import TestBedError, default_home, log_tail

LOG = logging.getLogger(__name__)

#: What the extra installs (tested version range).
CLIENT_PACKAGES: tuple[str, ...] = ("python-openstackclient>=7.0,<11",)
_MARKER = ".glancesync-osc-installed"


def client_venv(home: Path | str | None = None) -> Path:
    """The virtualenv of the ``openstack`` CLI under the test bed HOME."""
    return (Path(home).resolve() if home else default_home()) / "osc-venv"


def openstack_command(home: Path | str | None = None) -> Path:
    """Path of the ``openstack`` executable of the extra (may not exist yet)."""
    return client_venv(home) / "bin" / "openstack"


def is_client_installed(home: Path | str | None = None) -> bool:
    """True when the extra venv holds exactly :data:`CLIENT_PACKAGES`."""
    venv = client_venv(home)
    try:
        return ((venv / _MARKER).read_text() == "\n".join(CLIENT_PACKAGES)
                and openstack_command(home).exists())
    except OSError:
        return False


def install_openstackclient(home: Path | str | None = None, *,
                            timeout: float = 1800.0) -> bool:
    """Install python-openstackclient into ``HOME/osc-venv`` if absent.

    Idempotent; safe against a concurrent install (file lock). Returns True
    when it installed something.
    """
    venv = client_venv(home)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / "osc-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_client_installed(home):
            return False
        log_path = venv.parent / "osc-install.log"
        python = venv / "bin" / "python"
        commands = []
        if not python.exists():
            commands.append([sys.executable, "-m", "venv", str(venv)])
        commands.append([str(python), "-m", "pip", "install",
                         "--disable-pip-version-check", "-q", *CLIENT_PACKAGES])
        started = time.monotonic()
        LOG.info("installing %s into %s", ", ".join(CLIENT_PACKAGES), venv)
        with open(log_path, "w") as log:
            for command in commands:
                try:
                    done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, timeout=timeout,
                                          check=False)
                except subprocess.TimeoutExpired:
                    raise TestBedError(f"{' '.join(command)} took more than "
                                       f"{timeout:.0f} s; see {log_path}") from None
                if done.returncode:
                    log.flush()
                    raise TestBedError(f"{' '.join(command)} failed (exit "
                                       f"{done.returncode}):\n{log_tail(log_path)}")
        (venv / _MARKER).write_text("\n".join(CLIENT_PACKAGES))
        LOG.info("openstack CLI installed in %.1f s", time.monotonic() - started)
        return True
