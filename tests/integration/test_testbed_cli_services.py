"""The test bed's command line with every service: start, status, env, stop; nothing left.

A bed of its own (not the session's), started as a user would, with
region settings applied at start, and stopped from another process: after
``stop`` no process of it is left, RabbitMQ's helpers and epmd included.
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import requests
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.testbed import TestBed, etcd, procs, rabbitmq

ROOT = Path(__file__).resolve().parents[2]


def _cli(run: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    home = os.environ.get("GLANCESYNC_TESTBED_HOME") or str(ROOT / ".testbed")
    command, *rest = args  # --dir first: rabbitmqctl passes on what follows its name
    return subprocess.run([sys.executable, "-m", "glancesync.testbed", command,
                           "--dir", str(run), *rest],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          env=dict(os.environ, GLANCESYNC_TESTBED_HOME=home), cwd=ROOT)


def _exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        words = shlex.split(line)
        assert words[0] == "export", line
        key, _, value = words[1].partition("=")
        found[key] = value
    return found


def test_cli_runs_every_service_and_stop_leaves_no_process(tmp_path):
    run = tmp_path / "run"
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"RegionA": {"second_endpoint": "process",
                                                "policy": {"upload_image": "!"}}}))
    seen: dict[int, tuple[int, str]] = {}
    tag = None
    folder = None
    try:
        start = _cli(run, "start", "--settings", str(settings), timeout=900)
        assert start.returncode == 0, start.stderr + start.stdout
        assert "rabbitmq: running, rabbit://glancesync:***@127.0.0.1:" in start.stdout
        assert "etcd: running, etcd3+http://127.0.0.1:" in start.stdout
        bed = TestBed.load(run)
        info = bed.info
        state = json.loads((run / "state.json").read_text())
        tag, folder = state["tag"], Path(state["rabbitmq"]["dir"])
        seen = procs.tagged(f"{tag}:")
        services = set(bed.processes().values())
        assert {"rabbitmq", "epmd", "etcd", "glance2-RegionA", "glance-Master"} <= services
        assert folder.is_dir()

        exports = _exports(_cli(run, "env").stdout)
        assert exports["GLANCESYNC_TESTBED_TRANSPORT_URL"] == info.transport_url
        assert exports["GLANCESYNC_TESTBED_NOTIFICATION_EXCHANGE"] == "glance"
        assert exports["GLANCESYNC_TESTBED_NOTIFICATION_TOPIC"] == "notifications"
        assert exports["GLANCESYNC_TESTBED_COORDINATION_URL"] == info.coordination_url
        assert exports["GLANCESYNC_TESTBED_DIR"] == str(run)
        rabbitmq.probe(info.service_ports["amqp"], urlsplit(info.transport_url).password)
        assert etcd.probe(info.service_ports["etcd-client"]) is None

        # The settings given at start: two endpoints served, direct upload forbidden.
        urls = bed.image_endpoints("RegionA")
        assert len(urls) == 2 and all(requests.get(f"{url}/versions", timeout=30).ok
                                      for url in urls)
        auth = ksa_session.Session(auth=v3.Password(**info.auth("master-admin")))
        headers = {"X-Auth-Token": auth.get_token()}
        image = requests.post(f"{info.glance_urls['RegionA']}/v2/images", headers=headers,
                              json={"name": "gs-cli", "disk_format": "raw",
                                    "container_format": "bare"}, timeout=30).json()
        upload = requests.put(f"{info.glance_urls['RegionA']}/v2/images/{image['id']}/file",
                              data=b"\0" * 1024, timeout=30, headers={
                                  **headers, "Content-Type": "application/octet-stream"})
        assert upload.status_code == 403, upload.text

        users = _cli(run, "rabbitmqctl", "list_users", "--quiet")
        assert users.returncode == 0, users.stderr
        assert "glancesync" in users.stdout and "guest" not in users.stdout

        # Each optional service stops and starts alone, from the command line.
        for service in ("etcd", "rabbitmq"):
            stopped = _cli(run, service, "stop")
            assert stopped.returncode == 0, stopped.stderr
            assert f"{service}: stopped" in _cli(run, "status").stdout
        assert not set(bed.processes().values()) & {"rabbitmq", "epmd", "etcd"}
        started = _cli(run, "etcd", "start")
        assert started.returncode == 0, started.stderr
        assert "etcd: running" in _cli(run, "status").stdout
        seen.update(procs.tagged(f"{tag}:"))
    finally:
        stop = _cli(run, "stop", timeout=120)
    assert stop.returncode == 0, stop.stderr
    assert procs.tagged(f"{tag}:") == {}
    assert [pid for pid, (started, _) in seen.items() if procs.is_alive(pid, started)] == []
    assert not folder.exists(), "RabbitMQ's folder is removed"
    for port in info.service_ports.values():
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
    assert _cli(run, "status").returncode == 1


def test_cli_refuses_bad_region_settings(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"RegionA": {"second_endpoints": "dead"}}))
    done = _cli(tmp_path / "run", "start", "--settings", str(settings))
    assert done.returncode == 1
    assert "unknown setting second_endpoints" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists(), "nothing started"
