"""Keystone and local targets: catalog parsing, credentials, error translation.

Keystone is faked at the HTTP level (requests-mock); nothing of ours is
patched. The connection test uses a closed loopback port.
"""
from __future__ import annotations

import io
import json
import socket
import textwrap

import pytest

from glancesync.config import TargetConfig, load_config
from glancesync.errors import (AuthenticationError, ConfigError, ConnectionFailure,
                               RegionNotFoundError, ServiceError)
from glancesync.backends import get_backend
from glancesync.backends.openstack.keystone import KeystoneTarget, v3_url
from glancesync.facade import GlanceSync
from glancesync.backends.local.target import LocalTarget
from glancesync.regions import RegionRef

AUTH_URL = "http://127.0.0.1:35357"
TOKENS = AUTH_URL + "/v3/auth/tokens"


def endpoint(region: str, interface: str = "public", service: str = "image") -> dict:
    return {"id": f"{service}-{region}-{interface}", "interface": interface,
            "region_id": region, "region": region,
            "url": f"http://127.0.0.1:9292/{region}/{interface}"}


CATALOG = [
    {"type": "identity", "id": "s1", "name": "keystone",
     "endpoints": [endpoint("Master", service="identity")]},
    {"type": "image", "id": "s2", "name": "glance",
     "endpoints": [endpoint("RegionB"), endpoint("RegionB", "internal"),
                   endpoint("Master"), endpoint("RegionA"), endpoint("OnlyInternal", "internal"),
                   endpoint("Master", "admin")]},
    {"type": "compute", "id": "s3", "name": "nova",
     "endpoints": [endpoint("RegionNova", service="compute")]},
]


def token_body(catalog=CATALOG, project_id="proj-123") -> dict:
    return {"token": {
        "methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
        "issued_at": "2024-01-01T00:00:00.000000Z",
        "user": {"id": "u1", "name": "admin", "domain": {"id": "default", "name": "Default"}},
        "project": {"id": project_id, "name": "admin",
                    "domain": {"id": "default", "name": "Default"}},
        "roles": [{"id": "r1", "name": "member"}],
        "catalog": catalog,
    }}


def identity_versions(mock) -> None:
    """Keystone's version document at its root, as a generic auth plugin asks for it."""
    mock.get(AUTH_URL, status_code=300, json={"versions": {"values": [{
        "id": "v3.14", "status": "stable", "links": [{"rel": "self",
                                                       "href": f"{AUTH_URL}/v3/"}]}]}})
    mock.get(AUTH_URL + "/v3", json={"version": {
        "id": "v3.14", "status": "stable", "links": [{"rel": "self",
                                                       "href": f"{AUTH_URL}/v3/"}]}})


def target_config(section: str, name: str = "master") -> TargetConfig:
    text = "[main]\nmaster_region = Master\n" + textwrap.dedent(section)
    return load_config(io.StringIO(text), environ={}).target(name)


PASSWORD_SECTION = f"""
[master]
auth_url = {AUTH_URL}
username = admin
password = pw
project_name = admin
"""


@pytest.fixture
def keystone(requests_mock):
    requests_mock.post(TOKENS, status_code=201, json=token_body(),
                       headers={"X-Subject-Token": "tok-1"})
    return requests_mock


def test_v3_url():
    assert v3_url("http://k:5000") == "http://k:5000/v3"
    assert v3_url("http://k:5000/v3/") == "http://k:5000/v3"
    assert v3_url("https://k/identity") == "https://k/identity/v3"


def test_regions_from_catalog_in_order(keystone):
    target = KeystoneTarget(target_config(PASSWORD_SECTION))
    assert keystone.call_count == 0  # lazy: nothing before the first use
    assert target.region_names() == ["RegionB", "Master", "RegionA"]
    assert target.project_id == "proj-123"
    assert keystone.call_count == 1  # one token for everything
    body = keystone.request_history[0].json()["auth"]
    assert body["identity"]["methods"] == ["password"]
    user = body["identity"]["password"]["user"]
    assert user == {"name": "admin", "password": "pw", "domain": {"name": "Default"}}
    assert body["scope"] == {"project": {"name": "admin", "domain": {"name": "Default"}}}


def test_interface_selects_endpoints(keystone):
    config = target_config(PASSWORD_SECTION + "interface = internal\n")
    assert KeystoneTarget(config).region_names() == ["RegionB", "OnlyInternal"]


def test_empty_catalog(requests_mock):
    requests_mock.post(TOKENS, status_code=201, json=token_body(catalog=[]),
                       headers={"X-Subject-Token": "tok-1"})
    assert KeystoneTarget(target_config(PASSWORD_SECTION)).region_names() == []


def test_tls_defaults_and_options(keystone, tmp_path):
    assert KeystoneTarget(target_config(PASSWORD_SECTION)).session.verify is True
    ca = tmp_path / "ca.pem"
    with_ca = target_config(PASSWORD_SECTION + f"cacert = {ca}\n")
    assert KeystoneTarget(with_ca).session.verify == str(ca)
    insecure = target_config(PASSWORD_SECTION + f"cacert = {ca}\ninsecure = true\n")
    assert KeystoneTarget(insecure).session.verify is False


def test_application_credential(requests_mock):
    requests_mock.post(TOKENS, status_code=201, json=token_body(),
                       headers={"X-Subject-Token": "tok-1"})
    config = target_config(f"""
        [master]
        auth_url = {AUTH_URL}/v3
        application_credential_id = app-1
        application_credential_secret = s3
    """)
    assert KeystoneTarget(config).region_names() == ["RegionB", "Master", "RegionA"]
    identity = requests_mock.request_history[0].json()["auth"]["identity"]
    assert identity["methods"] == ["application_credential"]
    assert identity["application_credential"] == {"id": "app-1", "secret": "s3"}


def test_legacy_credential_password_is_sent_decoded(keystone):
    config = target_config(f"""
        [master]
        credential = bob,cGFzcyB3b3Jk,{AUTH_URL}/v3,projB
    """)
    KeystoneTarget(config).region_names()
    auth = keystone.request_history[0].json()["auth"]
    assert auth["identity"]["password"]["user"]["password"] == "pass word"
    assert auth["scope"]["project"]["name"] == "projB"


def test_cloud_from_clouds_yaml(requests_mock, tmp_path, monkeypatch):
    clouds = tmp_path / "clouds.yaml"
    ca = tmp_path / "ca.pem"
    clouds.write_text(json.dumps({"clouds": {"mycloud": {
        "auth": {"auth_url": AUTH_URL, "username": "carol", "password": "cpw",
                 "project_id": "proj-9", "user_domain_name": "Users"},
        "cacert": str(ca)}}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    identity_versions(requests_mock)
    requests_mock.post(TOKENS, status_code=201, json=token_body(project_id="proj-9"),
                       headers={"X-Subject-Token": "tok-1"})
    target = KeystoneTarget(target_config("[master]\ncloud = mycloud\n"))
    assert target.region_names() == ["RegionB", "Master", "RegionA"]
    assert target.session.verify == str(ca)
    assert target.project_id == "proj-9"
    auth = next(r for r in requests_mock.request_history if r.method == "POST").json()["auth"]
    assert auth["identity"]["password"]["user"] == {
        "name": "carol", "password": "cpw", "domain": {"name": "Users"}}
    assert auth["scope"] == {"project": {"id": "proj-9"}}


# -- every setting of a clouds.yaml cloud (issue 10, case 5) ----------------------

CLOUD_AUTH = {"auth_url": AUTH_URL, "username": "carol", "password": "cpw",
              "project_name": "p9", "user_domain_name": "Default",
              "project_domain_name": "Default"}


@pytest.fixture
def clouds(tmp_path, monkeypatch, keystone):
    """Write clouds.yaml with the given clouds (name -> settings besides auth)."""
    identity_versions(keystone)
    path = tmp_path / "clouds.yaml"
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))

    def write(**entries: dict) -> None:
        path.write_text(json.dumps({"clouds": {
            name: {"auth": CLOUD_AUTH, **settings} for name, settings in entries.items()}}))
    return write


def cloud_target(section: str = "", main: str = "master_region = Master\n") -> KeystoneTarget:
    text = "[main]\n" + main + "[master]\ncloud = c\n" + textwrap.dedent(section)
    return KeystoneTarget(load_config(io.StringIO(text), environ={}).target("master"))


def test_a_clouds_interface_chooses_the_endpoints(clouds):
    clouds(c={"interface": "internal"})
    target = cloud_target()
    assert target.region_names() == ["RegionB", "OnlyInternal"]
    assert target.adapter(RegionRef("master", "RegionB")).interface == "internal"
    assert cloud_target("interface = public\n").region_names() == [
        "RegionB", "Master", "RegionA"]  # the section's own option wins
    clouds(c={"image_interface": "admin", "interface": "internal"})
    assert cloud_target().region_names() == ["Master"]  # openstacksdk's per-service key


def test_a_clouds_region_name_is_the_default_master_region(clouds):
    clouds(c={"region_name": "Spain"})
    text = "[main]\n[master]\ncloud = c\n"
    assert load_config(io.StringIO(text), environ={}).main.master_region == "Spain"
    text = "[main]\nmaster_region = Master\n[master]\ncloud = c\n"
    assert load_config(io.StringIO(text), environ={}).main.master_region == "Master"
    other = "[main]\nmaster_region = M\n[master]\ncloud = c\n[other]\ncloud = c\n"
    assert load_config(io.StringIO(other), environ={}).main.master_region == "M"


def test_a_clouds_tls_settings_and_client_certificate(clouds, tmp_path):
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    clouds(c={"verify": False})
    assert cloud_target().session.verify is False
    clouds(c={"insecure": True, "cacert": str(ca)})
    assert cloud_target().session.verify is False
    clouds(c={"cacert": str(ca), "cert": str(cert), "key": str(key)})
    session = cloud_target().session
    assert session.verify == str(ca) and session.cert == (str(cert), str(key))
    clouds(c={"verify": False})
    assert cloud_target(f"cacert = {ca}\n").session.verify == str(ca)  # the section wins
    clouds(c={"cacert": str(ca)})
    assert cloud_target("insecure = true\n").session.verify is False


def test_a_clouds_api_timeout_else_the_socket_timeout(clouds):
    clouds(c={"api_timeout": 42})
    assert cloud_target().session.timeout == 42
    clouds(c={})
    assert cloud_target().session.timeout == 300


def test_a_clouds_auth_type_is_any_keystoneauth_plugin(clouds, keystone, tmp_path):
    """auth_type: token (or any other plugin openstacksdk loads) is not refused."""
    (tmp_path / "clouds.yaml").write_text(json.dumps({"clouds": {"c": {
        "auth_type": "v3token", "auth": {"auth_url": AUTH_URL, "token": "a-token",
                                         "project_id": "proj-123"}}}}))
    target = cloud_target()
    assert target.region_names() == ["RegionB", "Master", "RegionA"]
    posts = [r for r in keystone.request_history if r.method == "POST"]
    assert posts[0].json()["auth"]["identity"] == {"methods": ["token"],
                                                   "token": {"id": "a-token"}}


def test_a_clouds_wrong_interface_is_a_config_error(clouds):
    clouds(c={"interface": "private"})
    with pytest.raises(ConfigError) as info:
        cloud_target().region_names()
    assert info.value.option == "cloud" and "private" in str(info.value)


def test_unknown_cloud(tmp_path, monkeypatch):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    target = KeystoneTarget(target_config("[master]\ncloud = ghost\n"))
    with pytest.raises(ConfigError, match="ghost") as info:
        target.region_names()
    assert info.value.section == "master" and info.value.option == "cloud"


def test_unauthorized(requests_mock):
    requests_mock.post(TOKENS, status_code=401,
                       json={"error": {"code": 401, "message": "The request you have"
                                       " made requires authentication."}})
    target = KeystoneTarget(target_config(PASSWORD_SECTION))
    with pytest.raises(AuthenticationError) as info:
        target.region_names()
    message = str(info.value)
    assert f"{AUTH_URL}/v3" in message
    assert "target master" in message
    assert "username/password/project" in message
    assert info.value.status_code == 401


def test_server_error(requests_mock):
    requests_mock.post(TOKENS, status_code=503, json={"error": {"message": "down"}})
    with pytest.raises(ServiceError) as info:
        KeystoneTarget(target_config(PASSWORD_SECTION)).region_names()
    assert info.value.status_code == 503
    assert AUTH_URL in str(info.value)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused():
    url = f"http://127.0.0.1:{closed_port()}"
    config = target_config(PASSWORD_SECTION.replace(AUTH_URL, url))
    with pytest.raises(ConnectionFailure) as info:
        KeystoneTarget(config).region_names()
    message = str(info.value)
    assert f"{url}/v3" in message
    assert "check auth_url" in message


def test_unknown_region_for_adapter(keystone):
    config = load_config(io.StringIO("[main]\nmaster_region = Master\n" + PASSWORD_SECTION),
                         environ={})
    with GlanceSync(config) as glancesync:
        with pytest.raises(RegionNotFoundError, match="RegionB, Master, RegionA"):
            glancesync.adapter("RegionQ")


def test_adapter_is_a_glance_adapter(keystone):
    glance = pytest.importorskip("glancesync.backends.openstack.glance")
    target = KeystoneTarget(target_config(PASSWORD_SECTION + "list_images_timeout = 7\n"))
    adapter = target.adapter(RegionRef("master", "RegionA"))
    assert isinstance(adapter, glance.GlanceRegionAdapter)
    assert adapter.name == "master:RegionA"
    assert adapter.project_id == "proj-123"


def test_close_forgets_the_token(keystone):
    target = KeystoneTarget(target_config(PASSWORD_SECTION))
    target.region_names()
    target.close()
    target.region_names()
    assert keystone.call_count == 2


# -- local targets, and targets made by their backend -------------------------------------------

def test_local_target_regions(tmp_path):
    for name in ("RegionB", "RegionA", "NotARegion"):
        (tmp_path / name).mkdir()
    (tmp_path / "RegionA" / "images.db").write_bytes(b"")
    (tmp_path / "RegionB" / "images.db").write_bytes(b"")
    (tmp_path / "stray.db").write_bytes(b"")
    config = target_config(f"[master]\ntype = local\npath = {tmp_path}\n")
    target = get_backend(config.backend).make_target(config)
    assert isinstance(target, LocalTarget)
    assert target.region_names() == ["RegionA", "RegionB"]


def test_local_target_missing_folder_has_no_regions(tmp_path):
    config = target_config(f"[master]\ntype = local\npath = {tmp_path / 'none'}\n")
    assert LocalTarget(config).region_names() == []


def test_local_adapter(tmp_path):
    local = pytest.importorskip("glancesync.backends.local.adapter")
    config = target_config(f"[master]\ntype = local\npath = {tmp_path}\nproject = p7\n")
    adapter = LocalTarget(config).adapter(RegionRef("master", "RegionA"))
    assert isinstance(adapter, local.LocalRegionAdapter)
    assert adapter.name == "master:RegionA"
    assert adapter.project_id == "p7"


def test_make_target_keystone():
    config = target_config(PASSWORD_SECTION)
    target = get_backend(config.backend).make_target(config)
    assert isinstance(target, KeystoneTarget)
    assert target.name == "master"
