"""The log redactor: what it masks, what it keeps (issues 6 and 15)."""
from __future__ import annotations

import base64
import logging
import sys
import urllib.parse

import pytest

from glancesync.redaction import REDACTOR, RedactingFilter

SECRET = "S3cr et/Pa+ss"


@pytest.fixture
def redactor() -> RedactingFilter:
    return RedactingFilter([SECRET])


@pytest.mark.parametrize("encoded", [
    SECRET,
    base64.b64encode(SECRET.encode()).decode(),
    base64.b64encode(SECRET.encode()).decode().rstrip("="),
    urllib.parse.quote(SECRET, safe=""),
    urllib.parse.quote_plus(SECRET),
])
def test_configured_secret_masked_in_every_encoding(redactor, encoded):
    assert redactor.redact(f"sent {encoded} to x") == "sent *** to x"


def test_short_secrets_are_not_registered_and_longest_wins():
    redactor = RedactingFilter(["abc", "", "hunter22", "hunter2222"])
    assert redactor.redact("abc hunter2222 hunter22") == "abc *** ***"


@pytest.mark.parametrize("text, expected", [
    # Token headers, as keystoneauth and requests log them.
    ("X-Auth-Token: gAAAAAB1234", "X-Auth-Token: ***"),
    ("{'X-Auth-Token': 'gAAAAAB1234', 'Accept': 'x'}",
     "{'X-Auth-Token': '***', 'Accept': 'x'}"),
    ('-H "X-Subject-Token: abcdef"', '-H "X-Subject-Token: ***"'),
    ("x-service-token=abc", "x-service-token=***"),
    ("Authorization: Bearer abc.def", "Authorization: ***"),
    ("authorization: basic dXNlcjpwYXNz", "authorization: ***"),
    # keystoneauth's own digests are not secrets: kept.
    ("X-Auth-Token: {SHA256}0123abcd", "X-Auth-Token: {SHA256}0123abcd"),
    ('"X-Auth-Token": "{SHA256}0123abcd"', '"X-Auth-Token": "{SHA256}0123abcd"'),
    # The legacy credential line holds the base64 password: all masked.
    ("credential = admin,cGFzcw==,http://127.0.0.1:5000/v3,demo", "credential = ***"),
    ('{"credential": "admin,cGFzcw==,x,y"}', '{"credential": "***"}'),
    # key=value and JSON pairs whose key names a secret.
    ("password=hunter2 user=bob", "password=*** user=bob"),
    ("os_password : hunter2", "os_password : ***"),
    ('{"password": "hunter 2", "user": "bob"}', '{"password": "***", "user": "bob"}'),
    ("{'password': 'hunter2'}", "{'password': '***'}"),
    ("application_credential_secret=abc,next", "application_credential_secret=***,next"),
    ("my.api-token: abc}", "my.api-token: ***}"),
    ("PASSWORD=abc", "PASSWORD=***"),
    ("passwordtoken=abc", "passwordtoken=***"),
    ("token=password=abc", "token=***"),
    # Values that are not secrets: JSON objects and lists, nulls, digests.
    ('{"token": {"expires_at": "2030"}}', '{"token": {"expires_at": "2030"}}'),
    ('"password": null', '"password": null'),
    ("password=None", "password=None"),
    ("tokens: [1, 2]", "tokens: [1, 2]"),
    ('"token": "{SHA256}abc"', '"token": "{SHA256}abc"'),
    ("password is wrong", "password is wrong"),
    ("password:", "password:"),
    # Passwords in URLs.
    ("https://bob:hunter2@127.0.0.1/v3", "https://bob:***@127.0.0.1/v3"),
    ("mysql+pymysql://glance:pw@127.0.0.1/glance", "mysql+pymysql://glance:***@127.0.0.1/glance"),
    ("https://127.0.0.1:5000/v3 and http://a@b", "https://127.0.0.1:5000/v3 and http://a@b"),
    ("nothing secret here: a=b", "nothing secret here: a=b"),
])
def test_patterns(text, expected):
    assert RedactingFilter().redact(text) == expected


def test_record_message_arguments_and_traceback_are_masked(redactor):
    try:
        raise ValueError(f"bad password={SECRET.split()[0]}")
    except ValueError:
        record = logging.LogRecord("glancesync", logging.ERROR, __file__, 1,
                                   "login with %s failed: %s", ("hunter2", "X-Auth-Token: abc"),
                                   sys.exc_info())
    redactor.add_secrets(["hunter2"])
    assert redactor.filter(record) is True
    assert record.getMessage() == "login with *** failed: X-Auth-Token: ***"
    assert "password=***" in record.exc_text and "S3cr" not in record.exc_text


def test_the_shared_redactor_is_a_filter():
    assert isinstance(REDACTOR, RedactingFilter)
