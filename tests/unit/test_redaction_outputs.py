"""One redaction for every output (issue 21, case 9).

A loopback server plays the Keystone of a second target (it issues a token
and a catalog naming itself) and a hostile Glance whose error echoes the token it received and
the password it saw at authentication. The installed command runs on it as
cron does, with every output asked: the console (stdout and stderr), a log
file, the JSON run report, the HTML report and the metrics file. Neither
the bare token nor the password may appear in any of them.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostileserver import HostileServer, answer

BIN = Path(sys.executable).parent
PASSWORD = "Pa55-" + secrets.token_hex(6)


class FakeCloud:
    """Keystone and a hostile Glance on one loopback server."""

    def __init__(self) -> None:
        self.token = "gAAAAAB" + secrets.token_urlsafe(96)  # a bare token: no label
        self.password_seen = ""

    def __call__(self, method: str, path: str, headers: dict[str, str]):
        url = f"http://127.0.0.1:{self.server.port}"
        if path.startswith("/v3/auth/tokens"):
            body = json.dumps({"token": {
                "project": {"id": "p1", "name": "admin", "domain": {"id": "default"}},
                "user": {"id": "u1", "name": "admin", "domain": {"id": "default"}},
                "expires_at": "2999-01-01T00:00:00.000000Z", "methods": ["password"],
                "catalog": [{"type": "image", "name": "glance", "endpoints": [
                    {"region_id": r, "region": r, "interface": "public", "url": url}
                    for r in ("RegionA",)]}]}}).encode()
            return answer("201 Created", {"Content-Type": "application/json",
                                          "X-Subject-Token": self.token,
                                          "Content-Length": str(len(body))}, [body])
        if path == "/":  # Glance's version document: the image API is here
            body = json.dumps({"versions": [{"id": "v2.16", "status": "CURRENT", "links": [
                {"rel": "self", "href": f"{url}/v2/"}]}]}).encode()
            return answer("300 Multiple Choices", {"Content-Type": "application/json",
                                                  "Content-Length": str(len(body))}, [body])
        echo = (f"500 Internal Server Error: your request {method} {path} carried"
                f" {headers.get('x-auth-token')} and the account's secret is {PASSWORD}")
        body = echo.encode()
        return answer("500 Internal Server Error", {"Content-Type": "text/plain",
                                                   "Content-Length": str(len(body))}, [body])


@pytest.mark.timeout(120)
def test_a_server_echoing_the_token_and_password_reaches_no_output(tmp_path):
    cloud = FakeCloud()
    with HostileServer(cloud) as server:
        cloud.server = server
        config = tmp_path / "glancesync.conf"
        config.write_text(f"""[main]
master_region = Master
retries = 0
cache_dir = {tmp_path / 'cache'}
run_dir = {tmp_path / 'runs'}
metrics_file = {tmp_path / 'glancesync.prom'}
[master]
type = local
path = {tmp_path / 'regions'}
regions = Master
[other]
auth_url = {server.url}/v3
username = admin
password = {PASSWORD}
project_name = admin
""")
        config.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
        env.update(GLANCESYNC_LOCK_DIR=str(tmp_path / "locks"), HOME=str(tmp_path))
        done = subprocess.run(
            [str(BIN / "glancesync-sync"), "--config-file", str(config), "--debug",
             "--log-file", str(tmp_path / "run.log"), "--report-json", str(tmp_path / "r.json"),
             "--report-html", str(tmp_path / "r.html"), "other:RegionA"],
            capture_output=True, text=True, env=env, timeout=100)
        assert any(h.get("x-auth-token") == cloud.token for _, _, h in server.requests), \
            (done.stderr, server.requests)
    outputs = {"stdout": done.stdout, "stderr": done.stderr}
    for name in ("run.log", "r.json", "r.html", "glancesync.prom"):
        outputs[name] = (tmp_path / name).read_text()
    assert "500" in outputs["r.json"] and "carried" in outputs["r.json"]  # the error is there
    for name, text in outputs.items():
        assert cloud.token not in text, name
        assert cloud.token[:40] not in text, name
        assert PASSWORD not in text, name
