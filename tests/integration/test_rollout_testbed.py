"""Releasing images (issue 26) through the facade on the real bed.

validate_command gets the target's credentials as ``OS_*`` variables and
reaches the region with them (a real Keystone and Glance); keep_image_id
asks a real Glance for the master's id. Only this test's images are
synchronised (the bed is shared).
"""
from __future__ import annotations

import shlex
import sys

import pytest

from glancesync.plan.validation import MARK_VALIDATION
from tests.integration.test_facade import Bed, bed, data, glancesync, sessions  # noqa: F401

pytestmark = pytest.mark.integration

#: A validation command: reads the new copy from its region with the credentials
#: of its environment only, accepts it when Glance shows it private and active,
#: unless its name says "refuse".
CHECK = """
import os, sys
from keystoneauth1 import session
from keystoneauth1.identity import v3
env = os.environ
auth = v3.Password(auth_url=env["OS_AUTH_URL"], username=env["OS_USERNAME"],
                   password=env["OS_PASSWORD"], project_name=env["OS_PROJECT_NAME"],
                   user_domain_name=env["OS_USER_DOMAIN_NAME"],
                   project_domain_name=env["OS_PROJECT_DOMAIN_NAME"])
glance = session.Session(auth=auth)
image = glance.get("/v2/images/" + env["GLANCESYNC_IMAGE_ID"],
                   endpoint_filter={"service_type": "image",
                                    "region_name": env["OS_REGION_NAME"]}).json()
print("seen", image["name"], image["status"], image["visibility"], env["GLANCESYNC_REGION"])
ok = (image["status"] == "active" and image["visibility"] == "private"
      and image["name"] == env["GLANCESYNC_IMAGE_NAME"])
sys.exit(0 if ok and "refuse" not in image["name"] else 3)
"""


def test_validate_command_and_keep_image_id_on_glance(bed, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    good = bed.add("Master", "good", data("good"))
    bed.add("Master", "refuse-me", data("refuse"))
    condition = f"image.is_public and image.name.startswith('{bed.prefix}')"
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    sections = {"master": {"metadata_condition": condition, "keep_image_id": "true"},
                "extra_sections": {"master:RegionA": {"validate_command": command,
                                                      "validate_timeout": 120}}}
    with glancesync(bed, tmp_path, **sections) as facade:
        result = facade.sync(["RegionA"])
        assert result.exit_status == 4  # the refused image needs an operator
        plan = result.plans["master:RegionA"]
        assert result.results["master:RegionA"].uploaded == 1
        refused = plan.status_of(bed.prefix + "refuse-me")
        assert refused.status.value == "error_validation"
        assert f"seen {bed.prefix}refuse-me active private RegionA" in refused.reason
        again = facade.status(["RegionA"]).plans["master:RegionA"]
        assert again.status_of(bed.prefix + "refuse-me").status.value == "error_validation"
        assert again.status_of(bed.prefix + "good").status.value == "ok"
        assert again.status_of(bed.prefix + "good").reason.endswith("same id as the master image")
    copies = {image.name[len(bed.prefix):]: image for image in bed.mine("RegionA")}
    assert copies["good"].id == good.id and copies["good"].visibility == "public"
    assert copies["good"].marks[MARK_VALIDATION] == "passed"
    assert copies["refuse-me"].visibility == "private"
    assert copies["refuse-me"].marks[MARK_VALIDATION] == "failed"
