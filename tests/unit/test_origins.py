"""The origin guard of Keystone targets' sessions (issue 15, case 7).

The end-to-end cases (a Glance or a Keystone redirecting elsewhere) are in
tests/integration/test_hostile_servers.py; here the rules, with a real
loopback server and no mock between the guard and the socket.
"""
from __future__ import annotations

import pytest

from glancesync.backends.openstack.origins import guarded_session, origin_of
from glancesync.errors import ServiceError
from tests.faultproxy import Recorder


@pytest.mark.parametrize("url, origin", [
    ("http://127.0.0.1:5000/v3", ("http", "127.0.0.1", 5000)),
    ("HTTP://Keystone.Example/v3", ("http", "keystone.example", 80)),
    ("https://glance.example/v2/images?x=1", ("https", "glance.example", 443)),
    ("https://[::1]:9292/", ("https", "::1", 9292)),
    ("http://user:pw@127.0.0.1:9/", ("http", "127.0.0.1", 9)),
    ("ftp://127.0.0.1/", None), ("/v2/images", None), ("", None), (None, None),
    ("http://127.0.0.1:notaport/", None),
])
def test_origin_of(url, origin):
    assert origin_of(url) == origin


def test_a_request_to_an_origin_not_named_is_refused_before_connecting():
    with Recorder() as recorder:
        session = guarded_session(lambda: ["http://127.0.0.1:1/v3", None])
        with pytest.raises(ServiceError, match=f"refused to send a request to {recorder.url}"
                                               "/secret: neither Keystone") as info:
            session.get(recorder.url + "/secret?token=x", headers={"X-Auth-Token": "t0k3n"})
        assert not info.value.transient
        assert "token=x" not in str(info.value)  # the query is not repeated
    assert recorder.received == []


def test_a_request_to_a_named_origin_goes_out():
    with Recorder() as recorder:
        session = guarded_session(lambda: [recorder.url.upper() + "/v2"])
        assert session.get(recorder.url + "/v2/images", timeout=10).status_code == 404
    assert len(recorder.received) == 1 and recorder.received[0].startswith(b"GET /v2/images")
