"""Masking secrets in logs and messages: one redactor for the library and the CLI.

:data:`REDACTOR` masks tokens, passwords, secret-looking ``key=value`` pairs
and, once told, the configuration's own secrets
(:meth:`~glancesync.config.Config.secrets`: the facade feeds them in). The
scripts install it for every log record with :func:`install` and pass their
error messages through :meth:`RedactingFilter.redact`.
"""
from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
import sys
import urllib.parse
from typing import Any, Iterable, TextIO

__all__ = ["REDACTOR", "RedactingFilter", "RedactingStream", "install", "install_streams"]

_MASK = "***"

#: ``(pattern, replacement)`` pairs masking secrets whatever their source:
#: token headers (keystoneauth's own ``{SHA256}`` digests are kept: they are
#: not secrets and tell requests apart), ``key=value`` or JSON pairs whose key
#: names a secret (not JSON objects such as a token response body), the whole
#: legacy ``credential`` value (it holds the base64 password), and passwords
#: in URLs.
#:
#: Each scan is linear in the length of the text: every pattern starts with a
#: fixed keyword (or ``://``), and each repetition stops at a delimiter, or is
#: made of alternatives that the next character tells apart. (A pattern such
#: as ``[\w.-]*password``, tried from every position of a long word, is
#: quadratic: a 50,000-character property took seconds per log record.)
_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b(x-auth-token|x-subject-token|x-service-token|authorization)"
                r"(['\"]?\s*[:=]\s*['\"]?)(?!\{SHA256\})(?:(?:basic|bearer)\s+)?"
                r"[^'\"\s,}]+"), r"\1\2" + _MASK),
    (re.compile(r"(?i)(['\"]?\bcredential['\"]?\s*[:=]\s*['\"]?)[^'\"\s}]+"),
     r"\1" + _MASK),
    # The key's own prefix (``os_password``, ``app.token``) is left as it is:
    # the match starts at the keyword. A quoted value may hold the other
    # quote and backslash escapes (JSON strings), else it ends at any quote.
    (re.compile(r"(?is)((?:password|secret|token)['\"]?\s*[:=]\s*)"
                r"(?:(\")(?!\{SHA256\})(?:[^\"\\]|\\.)+\""
                r"|(')(?!\{SHA256\})(?:[^'\\]|\\.)+'"
                r"|(['\"])(?!\{SHA256\})[^'\"]+\4"
                r"|(?![{\[]|null\b|none\b|\{SHA256\})[^'\"\s,}]+)"),
     lambda m: m.group(1) + (quote := m.group(2) or m.group(3) or m.group(4) or "")
     + _MASK + quote),
    # ``scheme://user:password@``: anchored at ``://``, the scheme's last
    # character checked behind it.
    (re.compile(r"(?i)://(?<=[a-z0-9+.-]://)([^/\s:@]+:)[^/\s@]+@"),
     r"://\1" + _MASK + "@"),
]


def _variants(secret: str) -> list[str]:
    """A secret and the encodings it may be written in (base64, URL-quoted, HTML, JSON)."""
    encoded = base64.b64encode(secret.encode()).decode()
    return list({secret, encoded, encoded.rstrip("="),
                 urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
                 html.escape(secret), json.dumps(secret)[1:-1],
                 json.dumps(secret, ensure_ascii=False)[1:-1]})


class RedactingFilter(logging.Filter):
    """Masks tokens, passwords and the configured secrets in log records.

    :func:`install` applies it to every record when the record is created,
    so that each handler (console, ``--log-file``, the per-region run logs)
    and a record's traceback receive the masked text.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self._known: set[str] = set()
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Mask these strings (and their base64 and URL encodings) from now on."""
        secrets = [secret for secret in secrets if secret not in self._known]
        if not secrets:
            return
        self._known.update(secrets)
        for secret in secrets:
            if secret and len(secret) >= 4:
                self.secrets.extend(v for v in _variants(secret) if v not in self.secrets)
        # Longest first: a secret that contains another is masked whole.
        self.secrets.sort(key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(_FORMATTER.formatException(record.exc_info))
        return True

    def redact(self, text: str) -> str:
        """``text`` with every known secret and secret-looking value masked."""
        for secret in self.secrets:
            text = text.replace(secret, _MASK)
        for pattern, replacement in _SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return text


_FORMATTER = logging.Formatter()

#: The filter :func:`install` applies to every log record; the facade feeds
#: it the configuration's secrets.
REDACTOR = RedactingFilter()
_BASE_RECORD_FACTORY = logging.getLogRecordFactory()


def _redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _BASE_RECORD_FACTORY(*args, **kwargs)
    REDACTOR.filter(record)
    return record


def install() -> None:
    """Mask every log record of the process when it is created (idempotent)."""
    logging.setLogRecordFactory(_redacted_record)


class RedactingStream(io.TextIOBase):
    """A text stream that masks secrets in what is written, then writes it to ``inner``.

    The scripts' standard output and error: status listings, reports
    printed, error lines. A character the stream cannot encode is written
    escaped (``\\xe9``) instead of failing (a non-UTF-8 terminal or pipe).
    """

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner
        reconfigure = getattr(inner, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, io.UnsupportedOperation):
                pass

    def write(self, text: str) -> int:
        self.inner.write(REDACTOR.redact(text))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")


def install_streams() -> None:
    """Write the process's standard output and error through :class:`RedactingStream`."""
    if not isinstance(sys.stdout, RedactingStream) and sys.stdout is not None:
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream) and sys.stderr is not None:
        sys.stderr = RedactingStream(sys.stderr)
