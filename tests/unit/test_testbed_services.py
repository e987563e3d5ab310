"""The test bed's pieces that need no running service: tags, folders, files, settings.

The services themselves (RabbitMQ, etcd, the switched regions) are checked
on the real bed in tests/integration/test_testbed_services.py,
test_testbed_switches.py and test_testbed_cli_services.py.
"""
from __future__ import annotations

import configparser
import json
import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glancesync.testbed import RegionSettings, TestBedError, files, procs, rabbitmq
from glancesync.testbed.__main__ import _masked, _read_settings, main
from glancesync.testbed.switches import policy_yaml

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the test bed reads /proc")


def _tagged_tree(tmp_path: Path, tag: str) -> subprocess.Popen:
    """A shell that starts a grandchild in a session of its own (as epmd -daemon does)."""
    ready = tmp_path / "ready"
    script = f"setsid sleep 300 & echo $! > {ready}.tmp; mv {ready}.tmp {ready}; wait"
    proc = procs.spawn(["sh", "-c", script], log_path=tmp_path / "log",
                       env=dict(os.environ, **{procs.TAG_VARIABLE: tag}), cwd=tmp_path,
                       tie_to_parent=False)
    for _ in range(6000):
        if ready.exists():
            break
        proc.poll()
        if proc.returncode is not None:
            raise AssertionError(f"the shell exited: {(tmp_path / 'log').read_text()}")
        time.sleep(0.01)
    else:
        raise AssertionError("the grandchild never started")
    return proc


def test_tagged_finds_processes_that_left_their_group(tmp_path):
    proc = _tagged_tree(tmp_path, "unit-tag-1:svc")
    grandchild = int((tmp_path / "ready").read_text())
    try:
        found = procs.tagged("unit-tag-1:")
        assert set(found) == {proc.pid, grandchild}
        assert {tag for _, tag in found.values()} == {"unit-tag-1:svc"}
        assert procs.group_members(proc.pid) == [proc.pid], "the grandchild left the group"
        assert procs.tagged("unit-tag-2:") == {}
        assert procs.stop_processes({pid: started for pid, (started, _) in found.items()},
                                    grace=30) == []
        proc.wait(timeout=30)
        assert procs.tagged("unit-tag-1:") == {}
    finally:
        for pid in (proc.pid, grandchild):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)


def test_rabbitmq_folder_reachable_by_its_user(tmp_path):
    home = tmp_path / "private" / "home"
    home.mkdir(parents=True)
    os.chmod(tmp_path / "private", 0o700)
    folder = rabbitmq.make_folder(home, "unit")
    try:
        rabbitmq.write_files(folder, amqp_port=5999, password="pw")
        if os.geteuid() == 0:
            # The rabbitmq user cannot enter a folder private to root: not under it.
            assert home not in folder.parents
            owner = pwd.getpwnam(rabbitmq.SYSTEM_USER).pw_uid
            assert {path.stat().st_uid for path in [folder, *folder.rglob("*")]} == {owner}
        else:
            assert folder == home / "rabbitmq-unit"
        assert (folder / "rabbitmq.conf").read_text().startswith(
            "listeners.tcp.default = 127.0.0.1:5999\n")
        assert "default_user = glancesync\ndefault_pass = pw\n" in (
            folder / "rabbitmq.conf").read_text()
        assert (folder / "enabled_plugins").read_text() == "[].\n"
        assert {"mnesia", "log", "home"} <= {path.name for path in folder.iterdir()}
    finally:
        rabbitmq.remove_folder(folder)
    assert not folder.exists()


def test_rabbitmq_environment_keeps_everything_on_loopback(tmp_path):
    env = rabbitmq.environment(tmp_path, node="n@localhost", amqp_port=1, dist_port=2,
                               epmd_port=3)
    assert env["RABBITMQ_NODE_IP_ADDRESS"] == env["ERL_EPMD_ADDRESS"] == "127.0.0.1"
    assert "inet_dist_use_interface {127,0,0,1}" in env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    assert env["RABBITMQ_CONF_ENV_FILE"] == str(tmp_path / "rabbitmq-env.conf"), \
        "/etc/rabbitmq/rabbitmq-env.conf is not read"
    assert env["HOME"] == str(tmp_path / "home")
    assert rabbitmq.epmd_argv(3)[1:] == ["-port", "3", "-address", "127.0.0.1"]
    assert rabbitmq.transport_url(1, "p") == "rabbit://glancesync:p@127.0.0.1:1/"


def _conf(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parser


def test_glance_conf_with_notifications_policy_and_extra_options(tmp_path):
    text = files.glance_conf(
        tmp_path, 9292, "http://127.0.0.1:5000/v3", "secret", import_ports=[9292],
        python=Path("/venv/bin/python"),
        notifications={"transport_url": "rabbit://u:p@127.0.0.1:1/", "topic": "notifications"},
        policy_file=tmp_path / "policy.yaml",
        extra={"DEFAULT": {"image_property_quota": "3"}, "new_section": {"k": "v"}})
    conf = _conf(text)
    assert conf["oslo_messaging_notifications"]["driver"] == "messagingv2"
    assert conf["oslo_messaging_notifications"]["transport_url"] == "rabbit://u:p@127.0.0.1:1/"
    assert conf["oslo_messaging_notifications"]["retry"] == "1"
    assert conf["oslo_policy"]["policy_file"] == str(tmp_path / "policy.yaml")
    assert conf["DEFAULT"]["image_property_quota"] == "3"
    assert conf["DEFAULT"]["bind_port"] == "9292", "stock options kept"
    assert conf["new_section"]["k"] == "v"
    stock = _conf(files.glance_conf(tmp_path, 9292, "http://k/v3", "s", import_ports=[9292],
                                    python=Path("/p")))
    assert not stock.has_section("oslo_messaging_notifications")
    assert not stock.has_section("oslo_policy")
    assert stock["DEFAULT"]["enabled_import_methods"].startswith("[")


def test_region_settings_round_trip_and_policy_text():
    settings = RegionSettings(glance_conf={"DEFAULT": {"image_member_quota": "1"}},
                              policy={"upload_image": "!"}, schema_image={"a": {"type": "string"}},
                              second_endpoint="dead", second_endpoint_first=True)
    assert RegionSettings.from_json(json.loads(json.dumps(settings.to_json()))) == settings
    assert RegionSettings.from_json(None).is_stock
    assert not settings.is_stock
    assert policy_yaml({"upload_image": "!", "a:b": "role:admin"}) == \
        '"upload_image": "!"\n"a:b": "role:admin"\n'


@pytest.mark.parametrize("content, message", [
    ("[]", "expected an object of region -> settings"),
    ('{"RegionA": {"policies": {}}}', "RegionA: unknown setting policies"),
    ("{", "cannot read the region settings"),
])
def test_cli_region_settings_file_errors(tmp_path, content, message):
    path = tmp_path / "settings.json"
    path.write_text(content)
    with pytest.raises(TestBedError, match=message):
        _read_settings(path)


def test_cli_refuses_bad_settings_without_starting(tmp_path, capsys):
    path = tmp_path / "settings.json"
    path.write_text('{"RegionA": {"second_endpoint": "ipv6"}}')
    assert main(["start", "--dir", str(tmp_path / "run"), "--settings", str(path)]) == 1
    assert "second_endpoint must be one of dead, process" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_status_masks_the_password():
    assert _masked("rabbit://glancesync:s3cret@127.0.0.1:5672/") == \
        "rabbit://glancesync:***@127.0.0.1:5672/"
