"""No password, token or encoded credential in any output or log (issue 6).

A full parallel sync with ``--debug`` and ``--log-file`` against the test
bed, one target with explicit credentials and one with the legacy
``credential = user,base64(password),auth_url,project`` form; then stdout,
stderr, the log file and the per-region run logs are searched for the
passwords, their base64 forms and anything shaped like a Keystone token.
"""
from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from tests.testbed_config import write_config

BIN = Path(sys.executable).parent


def test_debug_logs_hold_no_secret(testbed, tmp_path):
    info = testbed.info
    master_auth, other_auth = info.auth("master-admin"), info.auth("other-admin")
    master_session = ksa_session.Session(auth=v3.Password(**master_auth))
    token = master_session.get_token()
    # Fernet tokens: long url-safe base64 starting gAAAAA; any such run is a leak.
    assert token.startswith("gAAAAA") and len(token) > 100
    token_shape = re.compile(r"gAAAAA[A-Za-z0-9_=-]{40,}")

    prefix = f"gs-secret-{uuid.uuid4().hex[:8]}-"
    condition = f"image.name.startswith('{prefix}')"
    encoded = base64.b64encode(other_auth["password"].encode()).decode()
    legacy = ",".join([other_auth["username"], encoded, other_auth["auth_url"],
                       other_auth["project_name"]])
    explicit_only = dict.fromkeys(["auth_url", "username", "password", "project_name",
                                   "user_domain_name", "project_domain_name"])
    config = write_config(info, tmp_path / "glancesync.conf",
                          master={"metadata_condition": condition},
                          other={**explicit_only, "credential": legacy,
                                 "metadata_condition": condition})
    master = GlanceRegionAdapter("master:Master", master_session, "Master",
                                 info.project_id("master-admin"))
    image = master.create_image(prefix + "img", visibility="public", disk_format="raw",
                                container_format="bare")
    master.upload_data(image.id, [b"secret test data" * 100], 1600)
    log_file = tmp_path / "debug.log"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OS_", "GLANCESYNC_"))}
    env.update(GLANCESYNC_LOCK_DIR=str(tmp_path / "locks"))
    try:
        result = subprocess.run(
            [str(BIN / "glancesync-sync"), "--config-file", str(config), "--debug",
             "--log-file", str(log_file), "--parallel", "master:RegionA", "other:RegionC"],
            capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        run_logs = list((tmp_path / "runs").glob("run_*/*.log"))
        assert len(run_logs) == 2
        texts = {"stdout": result.stdout, "stderr": result.stderr,
                 "log file": log_file.read_text(),
                 **{path.name: path.read_text() for path in run_logs}}
        # The debug output is really there: requests with (hashed) tokens.
        assert "X-Auth-Token" in texts["log file"]
        assert "master:RegionA: uploading image" in texts["master_RegionA.log"]
        secrets = {
            "master password": master_auth["password"],
            "other password": other_auth["password"],
            "other password, base64": encoded,
            "master password, base64": base64.b64encode(
                master_auth["password"].encode()).decode(),
            "legacy credential": legacy,
            "test token": token,
        }
        for where, text in texts.items():
            for what, secret in secrets.items():
                assert secret not in text, f"{what} in {where}"
            assert not token_shape.search(text), f"a token in {where}"
            for value in re.findall(r"X-(?:Auth|Subject)-Token[\"']?:\s*[\"']?([^\s\"']+)", text):
                assert value.startswith("{SHA256}") or value == "***", (where, value)
    finally:
        for region, cloud in (("Master", "master-admin"), ("RegionA", "master-admin"),
                              ("RegionC", "other-admin")):
            session = ksa_session.Session(auth=v3.Password(**info.auth(cloud)))
            adapter = GlanceRegionAdapter(region, session, region, info.project_id(cloud))
            for leftover in adapter.list_images():
                if leftover.name and leftover.name.startswith(prefix):
                    adapter.delete_image(leftover.id)
            adapter.close()
