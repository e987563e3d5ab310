"""etcd of the test bed: Debian's ``etcd-server``, one member on loopback.

A single-member cluster with its own data folder and two loopback ports
(client and peer), started by the bed in about a second
(/work/shared/TESTBED.md). Its gRPC gateway answers JSON under ``/v3/``:
what tooz's ``etcd3+http://`` driver talks to, through ``etcd3gw``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import requests

from glancesync.testbed.files import LOOPBACK

#: The member's name (``--name``), also the key of ``--initial-cluster``.
MEMBER = "glancesync-testbed"
PACKAGE_HINT = "install Debian's etcd-server (as root: apt-get install etcd-server; " \
               "make test does it)"


def executable() -> Path | None:
    """The etcd server's executable, if installed."""
    found = shutil.which("etcd") or shutil.which("etcd", path="/usr/bin:/usr/sbin")
    return Path(found) if found else None


def missing() -> str | None:
    """What is missing to run the bed's etcd, or None when it can run."""
    if executable() is None:
        return f"etcd not found: {PACKAGE_HINT}"
    return None


def argv(data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    """Command line of the bed's single etcd member (loopback only)."""
    client = f"http://{LOOPBACK}:{client_port}"
    peer = f"http://{LOOPBACK}:{peer_port}"
    return [str(executable()), "--name", MEMBER, "--data-dir", str(data_dir),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"{MEMBER}={peer}", "--initial-cluster-state", "new",
            "--logger", "zap", "--log-outputs", "stderr"]


def client_url(client_port: int) -> str:
    """The member's client URL (plain HTTP, gRPC gateway under ``/v3/``)."""
    return f"http://{LOOPBACK}:{client_port}"


def coordination_url(client_port: int) -> str:
    """tooz's URL of the bed's etcd (driver ``etcd3+http``, through etcd3gw)."""
    return f"etcd3+http://{LOOPBACK}:{client_port}"


def probe(client_port: int, *, timeout: float = 5.0) -> str | None:
    """None when the member is healthy and its v3 gateway answers; else why not.

    :raises requests.RequestException: nothing answers.
    """
    base = client_url(client_port)
    health = requests.get(f"{base}/health", timeout=timeout)
    if health.status_code != 200 or health.json().get("health") != "true":
        return f"GET /health: HTTP {health.status_code}: {health.text[:200]}"
    status = requests.post(f"{base}/v3/maintenance/status", json={}, timeout=timeout)
    if status.status_code != 200:
        return f"POST /v3/maintenance/status: HTTP {status.status_code}: {status.text[:200]}"
    return None
