"""Configuration variants and region resolution on the test bed's Keystones.

Each way of giving credentials (explicit options, ``clouds.yaml`` cloud,
legacy ``credential`` line, ``OS_*`` environment, application credential)
must authenticate for real and find the regions of the catalogs: Keystone
#1 has Master, RegionA and RegionB, Keystone #2 has RegionC.
"""
from __future__ import annotations

import base64
import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.exceptions import HttpError
from keystoneauth1.identity import v3

from glancesync.errors import (AuthenticationError, ConfigError, ConnectionFailure,
                               GlanceSyncError, RegionNotFoundError)
from glancesync.facade import GlanceSync
from tests.catalog import Catalog
from tests.faultproxy import FaultProxy
from tests.testbed_config import write_config
from tests.tls import TLSProxy, self_signed_certificate

pytestmark = pytest.mark.integration

#: The explicit credential options written by write_config.
EXPLICIT = ("auth_url", "username", "password", "project_name", "user_domain_name",
            "project_domain_name")
NO_EXPLICIT = dict.fromkeys(EXPLICIT)


def facade(path: Path) -> GlanceSync:
    with open(path) as stream:
        return GlanceSync(stream, progress=False)


@pytest.fixture
def conf(tmp_path) -> Path:
    return tmp_path / "glancesync.conf"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch) -> None:
    """No OS_* variable nor $GLANCESYNC_CONFIG of the caller leaks in."""
    for name in list(os.environ):
        if name.startswith("OS_") or name == "GLANCESYNC_CONFIG":
            monkeypatch.delenv(name)


def assert_logged_in(sync: GlanceSync, info, cloud: str = "master-admin") -> None:
    assert sync.target("master").project_id == info.project_id(cloud)
    assert sync.get_regions() == ["RegionA", "RegionB"]


# --- credentials --------------------------------------------------------------

def test_explicit_credentials(testbed, conf):
    info = testbed.info
    with facade(write_config(info, conf)) as sync:
        assert_logged_in(sync, info)
        assert sync.target("other").project_id == info.project_id("other-admin")
        assert sync.get_regions(target="other") == ["other:RegionC"]


def test_explicit_credentials_with_project_id(testbed, conf):
    info = testbed.info
    path = write_config(info, conf, master={"project_name": None,
                                            "project_domain_name": None,
                                            "project_id": info.project_id("master-bob")},
                        master_cloud="master-bob")
    with facade(path) as sync:
        assert_logged_in(sync, info, "master-bob")


def test_explicit_credentials_through_default_section(testbed, conf):
    """[DEFAULT] gives the credentials to a target section that has none."""
    info = testbed.info
    auth = info.auth("master-alice")
    path = write_config(info, conf, master=NO_EXPLICIT, extra_sections={"DEFAULT": auth})
    with facade(path) as sync:
        assert_logged_in(sync, info, "master-alice")


def test_cloud_from_clouds_yaml(testbed, conf, monkeypatch):
    info = testbed.info
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(info.clouds_yaml))
    path = write_config(info, conf, master={**NO_EXPLICIT, "cloud": "master-admin"},
                        other={**NO_EXPLICIT, "cloud": "other-alice"})
    with facade(path) as sync:
        assert_logged_in(sync, info)
        assert sync.target("other").project_id == info.project_id("other-alice")
        assert sync.get_regions(target="other") == ["other:RegionC"]


def test_unknown_cloud_is_a_config_error(testbed, conf, monkeypatch):
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(testbed.info.clouds_yaml))
    path = write_config(testbed.info, conf, master={**NO_EXPLICIT, "cloud": "nowhere"})
    with facade(path) as sync, pytest.raises(ConfigError) as error:
        sync.get_regions()
    assert error.value.section == "master" and error.value.option == "cloud"


def test_legacy_credential_line(testbed, conf):
    info = testbed.info
    auth = info.auth("master-admin")
    encoded = base64.b64encode(auth["password"].encode()).decode()
    credential = f"{auth['username']},{encoded},{auth['auth_url']},{auth['project_name']}"
    path = write_config(info, conf, master={**NO_EXPLICIT, "credential": credential})
    with facade(path) as sync:
        assert_logged_in(sync, info)


@pytest.mark.parametrize("suffix", ["", "/", "/v2.0", "/v2.0/", "/v3/"])
def test_legacy_credential_with_an_old_keystone_url(testbed, conf, suffix):
    """Old configurations name the Keystone root or its retired v2.0 API."""
    info = testbed.info
    auth = info.auth("master-admin")
    root = auth["auth_url"].rstrip("/").removesuffix("/v3")
    encoded = base64.b64encode(auth["password"].encode()).decode()
    credential = f"{auth['username']},{encoded},{root}{suffix},{auth['project_name']}"
    path = write_config(info, conf, master={**NO_EXPLICIT, "credential": credential})
    with facade(path) as sync:
        assert_logged_in(sync, info)


def test_environment_only(testbed, monkeypatch, tmp_path):
    info = testbed.info
    auth = info.auth("master-admin")
    for key, value in auth.items():
        monkeypatch.setenv(f"OS_{key.upper()}", value)
    monkeypatch.setenv("OS_REGION_NAME", "Master")
    monkeypatch.chdir(tmp_path)
    with GlanceSync(progress=False) as sync:
        assert sync.config.path is None
        assert sync.config.main.master_region == "Master"
        assert list(sync.config.targets) == ["master"]
        assert_logged_in(sync, info)
        assert sync.get_regions(omit_master_region=False) == ["Master", "RegionA", "RegionB"]


def test_environment_tls_and_interface_as_the_openstack_client_takes_them(
        testbed, monkeypatch, tmp_path):
    """Issue 23, case 11: OS_CACERT, OS_CERT, OS_KEY and OS_INTERFACE without a file.

    Keystone behind TLS with a private CA, asking for a client certificate.
    """
    info = testbed.info
    cert, key = self_signed_certificate(tmp_path)
    client_cert, client_key = self_signed_certificate(tmp_path, "client")
    keystone = info.keystone_urls["master"].removesuffix("/v3")
    monkeypatch.chdir(tmp_path)
    with TLSProxy(keystone, cert, key, client_ca=client_cert) as tls:
        for name, value in {**info.auth("master-admin"), "auth_url": tls.url + "/v3",
                            "region_name": "Master", "cacert": str(cert),
                            "cert": str(client_cert), "key": str(client_key),
                            "interface": "public"}.items():
            monkeypatch.setenv(f"OS_{name.upper()}", value)
        with GlanceSync(progress=False) as sync:
            assert sync.config.path is None
            assert_logged_in(sync, info)
        monkeypatch.setenv("OS_INTERFACE", "internal")  # the bed registers public ones only
        with GlanceSync(progress=False) as sync:
            assert sync.target("master").interface == "internal"
            assert sync.get_regions() == []
        monkeypatch.setenv("OS_INTERFACE", "public")
        monkeypatch.delenv("OS_KEY")  # the certificate without its key: refused
        with GlanceSync(progress=False) as sync, pytest.raises(GlanceSyncError):
            sync.get_regions()
        assert tls.requests > 0 and tls.saw_refusal()


def test_environment_with_project_id(testbed, monkeypatch):
    info = testbed.info
    auth = info.auth("master-alice")
    for key in ("auth_url", "username", "password"):
        monkeypatch.setenv(f"OS_{key.upper()}", auth[key])
    monkeypatch.setenv("OS_PROJECT_ID", info.project_id("master-alice"))
    monkeypatch.setenv("OS_REGION_NAME", "Master")
    with GlanceSync(io.StringIO("[main]\n"), progress=False) as sync:
        assert_logged_in(sync, info, "master-alice")


def test_environment_application_credential(testbed, monkeypatch, application_credential):
    identifier, secret = application_credential
    monkeypatch.setenv("OS_AUTH_URL", testbed.info.keystone_urls["master"])
    monkeypatch.setenv("OS_APPLICATION_CREDENTIAL_ID", identifier)
    monkeypatch.setenv("OS_APPLICATION_CREDENTIAL_SECRET", secret)
    monkeypatch.setenv("OS_REGION_NAME", "Master")
    with GlanceSync(io.StringIO(""), progress=False) as sync:
        assert_logged_in(sync, testbed.info)


def test_environment_cloud(testbed, monkeypatch):
    """OS_CLOUD names a clouds.yaml entry for master."""
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(testbed.info.clouds_yaml))
    monkeypatch.setenv("OS_CLOUD", "master-bob")
    with GlanceSync(io.StringIO("[main]\nmaster_region = Master\n"), progress=False) as sync:
        assert_logged_in(sync, testbed.info, "master-bob")


# --- every setting of a clouds.yaml cloud (issue 10, case 5) ------------------

def write_clouds(path: Path, **clouds: dict) -> Path:
    """clouds.yaml with these clouds (JSON is YAML)."""
    path.write_text(json.dumps({"clouds": clouds}, default=str))
    return path


@pytest.fixture
def catalog(testbed) -> Iterator[Catalog]:
    made = Catalog(testbed.info)
    try:
        yield made
    finally:
        made.remove()


def test_a_clouds_interface_and_region_name_are_honoured(testbed, conf, catalog,
                                                         monkeypatch, tmp_path):
    """interface: internal picks the internal endpoints; region_name is the master region."""
    info = testbed.info
    port = int(info.glance_urls["RegionA"].rsplit(":", 1)[1])
    with FaultProxy(port, lifetime=120) as internal:
        catalog.add("Master", info.glance_urls["Master"], interface="internal")
        catalog.add("RegionA", internal.url, interface="internal")  # none for RegionB
        clouds = write_clouds(tmp_path / "clouds.yaml", inside={
            "auth": info.auth("master-admin"), "interface": "internal",
            "region_name": "Master"})
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        path = write_config(info, conf, main={"master_region": None},
                            master={**NO_EXPLICIT, "cloud": "inside"})
        with facade(path) as sync:
            assert sync.config.main.master_region == "Master"
            assert sync.get_regions() == ["RegionA"]
            report = sync.status(["RegionA"])
            assert report.failures == {}
        assert internal.requests > 0  # RegionA's Glance was reached at its internal URL
        path = write_config(info, conf, main={"master_region": None},
                            master={**NO_EXPLICIT, "cloud": "inside", "interface": "public"})
        with facade(path) as sync:  # the section's own option overrides the cloud
            assert sync.get_regions() == ["RegionA", "RegionB"]


def test_a_clouds_tls_settings_are_honoured(testbed, conf, monkeypatch, tmp_path):
    """Keystone behind TLS asking for a client certificate: cacert, cert, key, insecure."""
    info = testbed.info
    cert, key = self_signed_certificate(tmp_path)
    client_cert, client_key = self_signed_certificate(tmp_path, "client")
    keystone = info.keystone_urls["master"].removesuffix("/v3")
    with TLSProxy(keystone, cert, key, client_ca=client_cert) as tls:
        auth = {**info.auth("master-admin"), "auth_url": tls.url + "/v3"}
        client = {"cert": client_cert, "key": client_key}
        clouds = write_clouds(
            tmp_path / "clouds.yaml",
            trusted={"auth": auth, "cacert": cert, **client},
            unverified={"auth": auth, "verify": False, **client},
            insecure={"auth": auth, "insecure": True, **client},
            anonymous={"auth": auth, "cacert": cert})
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        for cloud in ("trusted", "unverified", "insecure"):
            path = write_config(info, conf, master={**NO_EXPLICIT, "cloud": cloud})
            with facade(path) as sync:
                assert_logged_in(sync, info)
        path = write_config(info, conf, master={**NO_EXPLICIT, "cloud": "anonymous"})
        with facade(path) as sync, pytest.raises(ConnectionFailure):
            sync.get_regions()  # no client certificate: the handshake is refused
        assert tls.requests > 0 and tls.saw_refusal()


@pytest.fixture
def application_credential(testbed) -> Iterator[tuple[str, str]]:
    """An application credential of master's admin (deleted afterwards)."""
    info = testbed.info
    session = ksa_session.Session(auth=v3.Password(**info.auth("master-admin")))
    url = f"{info.keystone_urls['master'].rstrip('/')}/users/{session.get_user_id()}" \
          "/application_credentials"
    body = {"application_credential": {"name": f"gs-test-{uuid.uuid4().hex[:8]}"}}
    try:
        created = session.post(url, json=body).json()["application_credential"]
    except HttpError as error:
        pytest.skip(f"Keystone refuses to create an application credential: {error}")
    yield created["id"], created["secret"]
    session.delete(f"{url}/{created['id']}")


def test_application_credential(testbed, conf, application_credential):
    info = testbed.info
    identifier, secret = application_credential
    path = write_config(info, conf, master={
        **NO_EXPLICIT, "auth_url": info.keystone_urls["master"],
        "application_credential_id": identifier,
        "application_credential_secret": secret})
    with facade(path) as sync:
        assert_logged_in(sync, info)


def test_wrong_password(testbed, conf):
    path = write_config(testbed.info, conf, master={"password": "not-the-password"})
    with facade(path) as sync, pytest.raises(AuthenticationError) as error:
        sync.get_regions()
    assert "master" in str(error.value)
    assert "not-the-password" not in str(error.value)


def test_wrong_password_of_another_target(testbed, conf):
    path = write_config(testbed.info, conf, other={"password": "nope"})
    with facade(path) as sync:
        assert sync.get_regions() == ["RegionA", "RegionB"]
        with pytest.raises(AuthenticationError, match="other"):
            sync.get_regions(target="other")


# --- regions ------------------------------------------------------------------

@pytest.fixture
def sync(testbed, conf) -> Iterator[GlanceSync]:
    with facade(write_config(testbed.info, conf)) as made:
        yield made


def test_regions_of_both_keystones(sync):
    assert sync.get_regions() == ["RegionA", "RegionB"]
    assert sync.get_regions(omit_master_region=False) == ["Master", "RegionA", "RegionB"]
    assert sync.get_regions(target="other") == ["other:RegionC"]
    assert sync.get_regions(target="other", omit_master_region=False) == ["other:RegionC"]


def test_resolve_regions(sync):
    assert sync.resolve_regions([]) == ["master:RegionA", "master:RegionB"]
    assert sync.resolve_regions(["other:", "RegionB"]) == ["other:RegionC", "master:RegionB"]
    assert sync.resolve_regions(["RegionB", "master:RegionA", "RegionB"]) == [
        "master:RegionB", "master:RegionA"]
    assert sync.resolve_regions(["master:Master"]) == ["master:Master"]


def test_preferable_order(testbed, conf):
    path = write_config(testbed.info, conf,
                        main={"preferable_order": "other:RegionC, RegionB, Nowhere"})
    with facade(path) as sync:
        assert sync.get_regions() == ["RegionB", "RegionA"]
        assert sync.resolve_regions(["master:", "other:"]) == [
            "other:RegionC", "master:RegionB", "master:RegionA"]
        # A fully explicit list keeps the order given.
        assert sync.resolve_regions(["RegionA", "other:RegionC"]) == [
            "master:RegionA", "other:RegionC"]


def test_ignore_regions(testbed, conf):
    path = write_config(testbed.info, conf, master={"ignore_regions": "RegionA"},
                        other={"ignore_regions": "other:RegionC"})
    with facade(path) as sync:
        assert sync.get_regions() == ["RegionB"]
        assert sync.get_regions(target="other") == []
        # Named explicitly, an ignored region is still used.
        assert sync.resolve_regions(["RegionA", "other:RegionC"]) == [
            "master:RegionA", "other:RegionC"]


def test_unknown_region_lists_the_regions(sync):
    with pytest.raises(RegionNotFoundError) as error:
        sync.resolve_regions(["RegionZ"])
    message = str(error.value)
    assert "RegionZ" in message and "'master'" in message
    assert all(name in message for name in ("Master", "RegionA", "RegionB"))
    with pytest.raises(RegionNotFoundError, match="RegionC"):
        sync.resolve_regions(["other:RegionA"])


def test_unknown_target_lists_the_targets(sync):
    with pytest.raises(RegionNotFoundError) as error:
        sync.resolve_regions(["elsewhere:"])
    assert "elsewhere" in str(error.value)
    assert "master, other" in str(error.value)
    with pytest.raises(RegionNotFoundError, match="master, other"):
        sync.get_regions(target="elsewhere")
