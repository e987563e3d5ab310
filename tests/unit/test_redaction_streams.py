"""The redactor's streams and encodings, in process (issue 27: mutation survivors).

The scripts' outputs are checked end to end in test_redaction_outputs.py,
in subprocesses; these pin the parts one by one.
"""
from __future__ import annotations

import base64
import html
import io
import json
import sys
import urllib.parse

import pytest

from glancesync.redaction import REDACTOR, RedactingFilter, RedactingStream, install_streams

#: A secret whose every encoding differs: a quote, '<', '/', '=' padding, non-ASCII.
SECRET = 'p"w<é/x'


@pytest.mark.parametrize("encoded", [
    SECRET,
    base64.b64encode(SECRET.encode()).decode(),
    base64.b64encode(SECRET.encode()).decode().rstrip("="),
    urllib.parse.quote(SECRET, safe=""),
    urllib.parse.quote_plus(SECRET),
    html.escape(SECRET),
    json.dumps(SECRET)[1:-1],
    json.dumps(SECRET, ensure_ascii=False)[1:-1],
])
def test_each_encoding_of_a_secret_is_masked_whole(encoded):
    assert RedactingFilter([SECRET]).redact(f"[{encoded}]") == "[***]"


def test_the_longest_secret_is_masked_first_not_the_last_in_order():
    redactor = RedactingFilter(["zzzz", "aazzzzaa"])
    assert redactor.redact("aazzzzaa zzzz") == "*** ***"


def test_a_stream_writes_masked_text_and_answers_for_its_inner_stream():
    REDACTOR.add_secrets(["Stream-secret-42"])
    inner = io.StringIO()
    stream = RedactingStream(inner)
    assert stream.write("x Stream-secret-42 y\n") == len("x Stream-secret-42 y\n")
    stream.flush()
    assert inner.getvalue() == "x *** y\n"
    assert stream.isatty() is False
    assert stream.encoding is inner.encoding


def test_a_stream_escapes_what_its_terminal_cannot_encode():
    raw = io.BytesIO()
    inner = io.TextIOWrapper(raw, encoding="ascii")
    stream = RedactingStream(inner)
    stream.write("café\n")
    stream.flush()
    assert raw.getvalue() == b"caf\\xe9\n"
    assert stream.encoding == "ascii"


def test_a_stream_of_a_real_file_has_its_descriptor(tmp_path):
    with open(tmp_path / "out", "w") as handle:
        assert RedactingStream(handle).fileno() == handle.fileno()


def test_install_streams_wraps_stdout_and_stderr_once(monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    install_streams()
    first_out, first_err = sys.stdout, sys.stderr
    assert isinstance(first_out, RedactingStream) and first_out.inner is out
    assert isinstance(first_err, RedactingStream) and first_err.inner is err
    install_streams()
    assert sys.stdout is first_out and sys.stderr is first_err
    REDACTOR.add_secrets(["Install-secret-43"])
    print("a Install-secret-43 b")
    print("c Install-secret-43 d", file=sys.stderr)
    assert out.getvalue() == "a *** b\n" and err.getvalue() == "c *** d\n"


def test_install_streams_leaves_missing_streams_missing(monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    install_streams()
    assert sys.stdout is None and sys.stderr is None


def test_a_masked_record_keeps_no_arguments():
    import logging
    redactor = RedactingFilter(["Record-secret"])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s b", ("Record-secret",),
                               None)
    redactor.filter(record)
    assert record.msg == "a *** b" and record.args is None
    assert record.getMessage() == "a *** b"


def test_only_the_secret_is_masked_not_a_part_of_its_encoding():
    """'hunteW' is 'aHVudGVX' in base64: no padding to strip, and a text holding only
    'aHVudGV' (not the secret) is left as it is."""
    redactor = RedactingFilter(["hunteW"])
    assert base64.b64encode(b"hunteW").decode() == "aHVudGVX"
    assert redactor.redact("aHVudGVX") == "***"
    assert redactor.redact("aHVudGVZ") == "aHVudGVZ"
