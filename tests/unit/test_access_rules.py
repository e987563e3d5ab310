"""glancesync.backends.openstack.access: which calls access rules allow."""
from __future__ import annotations

import pytest

from glancesync.backends.openstack import access

RULES = [{"service": "image", "method": "GET", "path": "/v2/images"},
         {"service": "image", "method": "PUT", "path": "/v2/images/*/file"},
         {"service": "identity", "method": "GET", "path": "/v3/projects/**"}]


@pytest.mark.parametrize("service, method, path, allowed", [
    ("image", "GET", "/v2/images", True),
    ("image", "GET", "/v2/images?limit=1000&visibility=all", True),
    ("image", "get", "/v2/images/", True),
    ("image", "GET", "/v2/images/abc", False),
    ("image", "PUT", "/v2/images/abc/file", True),
    ("image", "PUT", "/v2/images/abc/stage", False),
    ("image", "PUT", "/v2/images/a/b/file", False),  # * is one segment
    ("identity", "GET", "/v3/projects/a/b", True),  # ** any number
    ("identity", "GET", "/v3/domains/a", False),
    ("compute", "GET", "/v2/images", False),
    ("image", "DELETE", "/v2/images", False),
])
def test_rules_allow_by_service_method_and_path_template(service, method, path, allowed):
    assert access.allows(RULES, service, method, path) is allowed


def test_regex_characters_of_a_rule_are_literal():
    assert not access.allows([{"service": "image", "method": "GET", "path": "/v2/im.ges"}],
                             "image", "GET", "/v2/images")


def test_describe_and_an_unrestricted_session():
    assert access.describe(RULES[:1]) == "image GET /v2/images"
    assert access.describe([]) == "none"

    class Auth:
        auth_ref = None

    class Session:
        auth = Auth()

    assert access.restricted_rules(Session()) is None
