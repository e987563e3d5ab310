"""The log redactor: what it masks, what it keeps (issues 6 and 15)."""
from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.redaction import REDACTOR, RedactingFilter

PROJECT = "redaction-project"

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
    # Masked since the patterns became linear (missed before).
    # A JSON string holds the other quote and escaped quotes: masked whole.
    ('{"password": "it\'s", "user": "bob"}', '{"password": "***", "user": "bob"}'),
    ('{"password": "a\\"b", "user": "bob"}', '{"password": "***", "user": "bob"}'),
    # A value ending with a backslash (a Windows path) is still masked.
    ("password='C:\\dir\\' next", "password='***' next"),
    # Whatever comes before ://, the password of a URL is masked.
    ("_https://bob:hunter2@127.0.0.1/", "_https://bob:***@127.0.0.1/"),
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


def test_the_shared_redactor_masks_every_record_once_installed(caplog):
    """install() masks records of any logger when they are created, with the secrets
    fed to the shared REDACTOR (issue 27: the former test checked only a type)."""
    from glancesync import redaction
    secret = "Shared-" + os.urandom(6).hex()
    redaction.install()
    REDACTOR.add_secrets([secret])
    with caplog.at_level(logging.INFO):
        logging.getLogger("anything.else").info("sent %s and password=%s", secret, "pw1234")
    (record,) = [r for r in caplog.records if r.name == "anything.else"]
    assert record.getMessage() == "sent *** and password=***"
    assert secret not in caplog.text


@pytest.mark.parametrize("secret, masked", [
    ("abcd", True),       # the shortest secret masked: 4 characters
    ("ab3d", True),
    ("abc", False),       # 3 characters: too short to mask without masking words
    ("", False),
])
def test_the_shortest_secret_masked_has_four_characters(secret, masked):
    redactor = RedactingFilter([secret])
    text = f"value {secret} end"
    assert (redactor.redact(text) == "value *** end") is masked
    if not masked:
        assert redactor.redact(text) == text


def test_a_four_character_secret_is_masked_in_every_encoding():
    secret = "p@s/"
    redactor = RedactingFilter([secret])
    for encoded in (secret, base64.b64encode(secret.encode()).decode(),
                    base64.b64encode(secret.encode()).decode().rstrip("="),
                    urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
        assert redactor.redact(f"x {encoded} y") == "x *** y", encoded


MB = 1_000_000

#: Texts on which a backtracking pattern is quadratic or worse: long runs of
#: word characters (with and without keywords), of quotes, of separators.
HOSTILE = {
    "word characters": "a" * MB,
    "dotted words": "a." * (MB // 2),
    "dashed words": "a-" * (MB // 2),
    "password repeated": "password" * (MB // 8),
    "keys without values": "os_password=" * (MB // 12),
    "unclosed quoted value": 'password="' + "x" * MB,
    "unclosed quoted value with escapes": 'password="' + "\\x" * (MB // 2),
    "quoted keys": "'password'=\"a'" * (MB // 14),
    "many equal signs": "password" + "=" * MB,
    "spaces after a header": "authorization:" + " " * MB,
    "spaces after a key": "password" + " " * MB,
    "quotes": "'\"" * (MB // 2),
    "URL without @": "a://" + "b:" * (MB // 2),
    "URL user without password end": "http://bob:" + "c" * MB,
    "URLs repeated": "a://b:c" * (MB // 7),
    "credential repeated": "credential= " * (MB // 12),
    "headers repeated": "x-auth-token " * (MB // 13),
}


@pytest.mark.timeout(10)  # a hang guard: each text takes well under a second
@pytest.mark.parametrize("name", HOSTILE)
def test_redaction_of_hostile_megabyte_texts_ends(name):
    redactor = RedactingFilter(["hunter2hunter2"])
    text = HOSTILE[name]
    result = redactor.redact(text)
    # Masking shortens or keeps: nothing is built out of proportion.
    assert len(result) <= len(text) + 8


@pytest.mark.timeout(10)
def test_redaction_keeps_masking_within_a_long_text():
    text = "a" * MB + " password=hunter2 " + "b." * (MB // 2) + " https://u:pw@127.0.0.1/"
    result = RedactingFilter().redact(text)
    assert "hunter2" not in result and ":pw@" not in result
    assert result.endswith(" https://u:***@127.0.0.1/")


@pytest.mark.timeout(120)  # a hang guard: the sync takes about a second
def test_sync_with_huge_property_keys_is_not_slowed_by_redaction(tmp_path):
    """A quiet sync logs the keys of a metadata update: 2 x 50,000 characters.

    With a quadratic redactor this single record took minutes (issue 15).
    """
    regions = tmp_path / "regions"
    long_keys = {"k" * 50_000: "v", "description_" + "d" * 50_000: "x" * 50_000}
    data = b"same data" * 100
    for name, properties in (("Master", long_keys), ("RegionA", {})):
        region = LocalRegionAdapter(f"master:{name}", regions / name, PROJECT)
        image = region.create_image("big-keys", disk_format="raw", container_format="bare",
                                    visibility="public", properties=properties)
        region.upload_data(image.id, [data], len(data))
        region.close()
    config = tmp_path / "glancesync.conf"
    config.write_text(f"[main]\nmaster_region = Master\ncache_dir = {tmp_path / 'cache'}\n"
                      f"[master]\ntype = local\npath = {regions}\nproject = {PROJECT}\n")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OS_", "GLANCESYNC_"))}
    env.update(GLANCESYNC_LOCK_DIR=str(tmp_path / "locks"), HOME=str(tmp_path))
    log = tmp_path / "sync.log"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "glancesync-sync"), "--quiet",
         "--config-file", str(config), "--log-file", str(log), "RegionA"],
        capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 updated" in result.stdout
    # The long record was logged (and went through the redactor).
    assert "k" * 50_000 in log.read_text()
    region = LocalRegionAdapter("master:RegionA", regions / "RegionA", PROJECT)
    [image] = region.list_images()
    assert image.properties == long_keys
    region.close()
