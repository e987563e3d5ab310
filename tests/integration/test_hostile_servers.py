"""Hostile servers on the loopback test bed (issue 15, cases 2 and 7).

A :class:`~tests.faultproxy.FaultProxy` in front of Keystone #1 rewrites
the token's catalog, as a hostile (or broken) Keystone would: a region
named like a path, or an image endpoint that is another proxy in front of
the real Glance which answers redirections to a :class:`~tests.faultproxy.Recorder`.
The recorder must never receive anything: no token, no password.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import pytest

from glancesync.errors import ServiceError
from glancesync.facade import GlanceSync
from tests.faultproxy import FaultProxy, Recorder
from tests.testbed_config import write_config

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def port(url: str) -> int:
    return urlsplit(url).port


def catalog_rewriter(change: Callable[[dict, dict], None]) -> Callable[[bytes, bytes, bytes],
                                                                        bytes]:
    """A FaultProxy ``rewrite`` applying ``change(service, endpoint)`` to token catalogs."""
    def rewrite(method: bytes, path: bytes, body: bytes) -> bytes:
        if method != b"POST" or not path.startswith(b"/v3/auth/tokens") or not body:
            return body
        token = json.loads(body)
        for service in token.get("token", {}).get("catalog", []):
            for endpoint in service.get("endpoints", []):
                change(service, endpoint)
        return json.dumps(token).encode()
    return rewrite


def image_endpoint_of(region: str, url: str) -> Callable[[dict, dict], None]:
    def change(service: dict, endpoint: dict) -> None:
        if service.get("type") == "image" and endpoint.get("region_id") == region:
            endpoint["url"] = url
    return change


def config_through(testbed, folder: Path, keystone: FaultProxy, **main: object) -> Path:
    """A configuration whose master target reaches Keystone #1 through ``keystone``."""
    return write_config(testbed.info, folder / "glancesync.conf",
                        master={"auth_url": keystone.url + "/v3",
                                "metadata_condition": "image.name.startswith('gs-none-')"},
                        main={"retries": 0, **main})


def keystone_port(testbed) -> int:
    return port(testbed.info.keystone_urls["master"])


# --- case 7: the token never follows a redirection elsewhere ---------------------------

@pytest.mark.timeout(120)
@pytest.mark.parametrize("status", [307, 302, 301, 303, 308])
def test_a_glance_redirecting_elsewhere_never_gets_the_token(testbed, tmp_path, status):
    with Recorder() as recorder, \
            FaultProxy(port(testbed.info.glance_urls["RegionA"]), redirect_to=recorder.url,
                       redirects=100, redirect_status=status,
                       redirect_prefix=b"/v2/") as glance, \
            FaultProxy(keystone_port(testbed), rewrite=catalog_rewriter(
                image_endpoint_of("RegionA", glance.url))) as keystone:
        config = config_through(testbed, tmp_path, keystone)
        with open(config) as stream, GlanceSync(stream, progress=False) as gs:
            with pytest.raises(ServiceError, match=f"refused to send a request to "
                                                   f"{recorder.url}/v2/images") as info:
                gs.get_images_region("RegionA")
            assert not info.value.transient  # not retried: it would only fail again
            assert gs.get_images_region("RegionB") is not None  # the others still work
        assert glance.redirects_done >= 1 and keystone.rewrites_done >= 1
    assert recorder.received == []


@pytest.mark.timeout(120)
def test_the_script_reports_the_refused_redirection_in_one_line(testbed, tmp_path):
    with Recorder() as recorder, \
            FaultProxy(port(testbed.info.glance_urls["RegionA"]), redirect_to=recorder.url,
                       redirects=100, redirect_prefix=b"/v2/") as glance, \
            FaultProxy(keystone_port(testbed), rewrite=catalog_rewriter(
                image_endpoint_of("RegionA", glance.url))) as keystone:
        config = config_through(testbed, tmp_path, keystone)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
        env["GLANCESYNC_LOCK_DIR"] = str(tmp_path / "locks")
        done = subprocess.run([str(BIN / "glancesync-sync"), "--config-file", str(config),
                               "--show-status", "RegionA", "RegionB"],
                              capture_output=True, text=True, env=env, timeout=100)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "master:RegionA: cannot get the status" in done.stderr
    assert f"refused to send a request to {recorder.url}/v2/images" in done.stderr
    assert recorder.received == []


@pytest.mark.timeout(120)
def test_a_redirection_within_the_same_origin_is_followed(testbed, tmp_path):
    glance = FaultProxy(port(testbed.info.glance_urls["RegionA"]), redirects=1,
                        redirect_prefix=b"/v2/images")
    glance.redirect_to = glance.url  # back to itself: the same host and port
    with glance, FaultProxy(keystone_port(testbed), rewrite=catalog_rewriter(
            image_endpoint_of("RegionA", glance.url))) as keystone:
        config = config_through(testbed, tmp_path, keystone)
        with open(config) as stream, GlanceSync(stream, progress=False) as gs:
            assert isinstance(gs.get_images_region("RegionA"), list)
        assert glance.redirects_done == 1


@pytest.mark.timeout(120)
def test_keystone_redirecting_the_authentication_never_gets_the_password(testbed, tmp_path):
    with Recorder() as recorder, \
            FaultProxy(keystone_port(testbed), redirect_to=recorder.url, redirects=100,
                       redirect_prefix=b"/v3/auth/tokens") as keystone:
        config = config_through(testbed, tmp_path, keystone)
        with open(config) as stream, GlanceSync(stream, progress=False) as gs:
            with pytest.raises(ServiceError, match="refused to send a request to"
                                                   f" {recorder.url}/v3/auth/tokens"):
                gs.get_regions()
        assert keystone.redirects_done >= 1
    assert recorder.received == []


# --- case 2: a region name from the catalog never makes a path ---------------------------

@pytest.mark.timeout(300)
def test_a_catalog_region_named_like_a_path_stays_in_the_run_folder(testbed, tmp_path):
    evil = f"../../../EVIL-{uuid.uuid4().hex[:8]}"
    escaped = (tmp_path / "runs" / "run_x" / evil).resolve().parent / (Path(evil).name + ".log")

    def rename(service: dict, endpoint: dict) -> None:
        if service.get("type") == "image" and endpoint.get("region_id") == "RegionA":
            endpoint["region_id"] = endpoint["region"] = evil

    with FaultProxy(keystone_port(testbed), rewrite=catalog_rewriter(rename)) as keystone:
        config = config_through(testbed, tmp_path, keystone, run_dir=tmp_path / "runs")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
        env["GLANCESYNC_LOCK_DIR"] = str(tmp_path / "locks")
        regions = subprocess.run([str(BIN / "glancesync-sync"), "--config-file", str(config),
                                  "--show-regions"], capture_output=True, text=True, env=env,
                                 timeout=100)
        done = subprocess.run([str(BIN / "glancesync-sync"), "--config-file", str(config),
                               "--parallel", "--no-progress"], capture_output=True, text=True,
                              env=env, timeout=200)
    assert f"master:{evil}" in regions.stdout.splitlines()
    # The configuration selects no image ('gs-none-'): a run that can do nothing
    # is exit status 2 (issue 22); its regions were run, and logged, all the same.
    assert done.returncode == 2, done.stderr
    assert "nothing to synchronise" in done.stderr
    assert "Traceback" not in done.stderr
    # run_dir also keeps files of its own (master-listing.json): one run folder.
    [folder] = [path for path in (tmp_path / "runs").iterdir() if path.is_dir()]
    logs = sorted(path.name for path in folder.iterdir())
    assert len(logs) == 2 and "master_RegionB.log" in logs
    assert any(name.startswith("master_.._.._.._EVIL-") for name in logs)
    assert not escaped.exists()
    assert sorted(p for p in tmp_path.rglob("*.log")) == sorted(folder.iterdir())
    assert f"master:{evil}: sync done" in done.stdout
