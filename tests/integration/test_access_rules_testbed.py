"""Application credentials with access rules on the test bed (issue 23, case 10).

A token made from an application credential with access rules is refused
(HTTP 401) by every call its rules do not allow, and by every Glance whose
``[keystone_authtoken]`` lacks ``service_type`` (keystonemiddleware cannot
check the rules then). Neither is a wrong credential: the messages name the
rule or the setting. The bed's Glances have no ``service_type`` unless a
region is switched (``glance_conf``).
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.errors import GlanceSyncError
from glancesync.facade import GlanceSync
from glancesync.testbed import RegionSettings
from tests.testbed_config import write_config

pytestmark = pytest.mark.integration

EXPLICIT = ("auth_url", "username", "password", "project_name", "user_domain_name",
            "project_domain_name")
CHECKS_RULES = RegionSettings(glance_conf={"keystone_authtoken": {"service_type": "image"}})
IMAGE_CALLS = [{"service": "image", "method": method, "path": "/v2/**"}
               for method in ("GET", "POST", "PUT", "PATCH", "DELETE")]
IDENTITY_LOOKUPS = [{"service": "identity", "method": "GET", "path": path}
                    for path in ("/v3/projects/*", "/v3/domains/*", "/v3/projects",
                                 "/v3/domains")]


class Credentials:
    """Application credentials of master's admin, made with given rules (deleted after)."""

    def __init__(self, testbed) -> None:
        self.info = testbed.info
        self.session = ksa_session.Session(auth=v3.Password(**self.info.auth("master-admin")))
        self.url = (f"{self.info.keystone_urls['master'].rstrip('/')}/users/"
                    f"{self.session.get_user_id()}/application_credentials")
        self.made: list[str] = []

    def make(self, rules: list[dict]) -> tuple[str, str]:
        body = {"application_credential": {"name": f"gs-rules-{uuid.uuid4().hex[:8]}",
                                           "access_rules": rules}}
        created = self.session.post(self.url, json=body).json()["application_credential"]
        self.made.append(created["id"])
        return created["id"], created["secret"]

    def config(self, folder: Path, rules: list[dict], **master: object) -> Path:
        identifier, secret = self.make(rules)
        return write_config(self.info, folder / "glancesync.conf", master={
            **dict.fromkeys(EXPLICIT), "auth_url": self.info.keystone_urls["master"],
            "application_credential_id": identifier,
            "application_credential_secret": secret, **master})

    def delete(self) -> None:
        for identifier in self.made:
            self.session.delete(f"{self.url}/{identifier}", raise_exc=False)


@pytest.fixture
def credentials(testbed, monkeypatch, tmp_path) -> Iterator[Credentials]:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Credentials(testbed)
    yield made
    made.delete()


@pytest.fixture(scope="module")
def checking(testbed) -> Iterator[None]:
    """Master and RegionA check access rules (service_type set) meanwhile."""
    with testbed.configured({"Master": CHECKS_RULES, "RegionA": CHECKS_RULES}):
        yield


def failure_of(path: Path) -> str:
    """What a sync of RegionA says when it fails (raised or per region)."""
    with open(path) as stream, GlanceSync(stream, progress=False) as gs:
        try:
            result = gs.sync(["RegionA"])
        except GlanceSyncError as error:  # the master's listing failed: the run stops
            return str(error)
    assert result.exit_status != 0
    return " ".join(str(error) for error in result.failures.values())


def test_a_glance_without_service_type_is_named_not_the_credential(credentials, tmp_path):
    text = failure_of(credentials.config(tmp_path, IMAGE_CALLS))
    assert "service_type = image in [keystone_authtoken]" in text, text
    assert "Glance of region Master does not check them" in text, text
    assert "check the target's credentials" not in text


def test_a_call_the_rules_do_not_allow_is_named(checking, credentials, tmp_path):
    rules = [{"service": "image", "method": "GET", "path": "/v2/schemas/**"}]
    text = failure_of(credentials.config(tmp_path, rules))
    assert "do not allow GET /v2/images on the image service" in text, text
    assert "image GET /v2/schemas/**" in text
    assert "check the target's credentials" not in text


def test_sync_members_names_the_identity_rules_it_needs(checking, credentials, tmp_path,
                                                        testbed):
    session = credentials.session
    master = GlanceRegionAdapter("master:Master", session, "Master",
                                 testbed.info.project_id("master-admin"))
    name = f"gs-rules-{uuid.uuid4().hex[:8]}"
    image = master.create_image(name, visibility="shared", disk_format="raw",
                                container_format="bare")
    try:
        master.upload_data(image.id, [b"shared" * 100], 600)
        master.add_member(image.id, testbed.info.project_id("master-alice"))
        options = {"sync_members": "true", "metadata_condition": f"image.name == '{name}'"}
        text = failure_of(credentials.config(tmp_path, IMAGE_CALLS, **options))
        assert "access rules of its application credential allow no such identity call" \
            in text, text
        assert "/v3/projects/*" in text
        path = credentials.config(tmp_path, IMAGE_CALLS + IDENTITY_LOOKUPS, **options)
        with open(path) as stream, GlanceSync(stream, progress=False) as gs:
            result = gs.sync(["RegionA"])
            assert result.exit_status == 0, result.failures
    finally:
        admin = GlanceRegionAdapter("master:RegionA", session, "RegionA", None)
        for image_id in [i.id for i in admin.list_images() if i.name == name]:
            admin.delete_image(image_id)
        master.delete_image(image.id)
