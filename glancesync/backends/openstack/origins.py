"""A target's requests go only where its Keystone and its catalog point.

keystoneauth follows HTTP redirections itself and sends every header again,
the ``X-Auth-Token`` included (and, for a 307 during authentication, the
password in the body), to whatever ``Location`` names. A Glance endpoint,
or anything in front of it, answering ``307`` to another host would receive
the token. :class:`OriginGuard` is the transport of a target's requests
session: before a byte leaves, it refuses a request to an *origin*
(scheme, host, port) that is neither Keystone's (``auth_url``) nor an
endpoint of the token's service catalog. A redirection inside an allowed
origin still works; one to another origin fails at once with a
non-transient :class:`~glancesync.errors.ServiceError` saying so.
"""
from __future__ import annotations

import logging
import re
import time
import urllib.parse
from typing import Any, Callable, Iterable

import requests
import urllib3
from keystoneauth1.session import TCPKeepAliveAdapter

from glancesync.errors import ServiceError, SlowAnswerError
from glancesync.pacing import RatePacer
from glancesync.redaction import REDACTOR

__all__ = ["MAX_BODY", "OriginGuard", "SlowAnswerError", "guarded_session", "origin_of"]

LOG = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str | None) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of ``url``, lower case, default port filled; None if none."""
    if not url:
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is no number
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in _DEFAULT_PORTS:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


class OriginGuard(TCPKeepAliveAdapter):
    """keystoneauth's transport, refusing origins that ``allowed()`` does not name.

    ``allowed`` returns the URLs whose origins may be reached (asked at every
    request: the catalog changes when the token is renewed).
    """

    def __init__(self, allowed: Callable[[], Iterable[str | None]],
                 pacer: RatePacer | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._allowed = allowed
        #: The pace of the target's requests (``requests_per_second``).
        self.pacer = pacer if pacer is not None else RatePacer(0.0)

    def allows(self, url: str | None) -> bool:
        """True when a request to ``url`` may go: its origin is one ``allowed()`` names."""
        origin = origin_of(url)
        return origin is not None and origin in {origin_of(known) for known in self._allowed()}

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, *args: Any, **kwargs: Any) -> requests.Response:
        where = request.url.split("?", 1)[0] if request.url else "(no URL)"
        if not self.allows(request.url):
            LOG.debug("refused a request to %s: not an origin of the catalog", where)
            raise ServiceError(
                f"refused to send a request to {where}: neither Keystone (auth_url) nor"
                " the service catalog names that host and port (a redirection by the"
                " server?); credentials are never sent there", transient=False)
        # Never a compressed answer: it could expand without bound (and image
        # data must arrive as it is hashed).
        request.headers["Accept-Encoding"] = "identity"
        # Every token in use is masked in every output, even where nothing
        # says it is a token (a server's error echoing it).
        REDACTOR.add_secrets([request.headers.get("X-Auth-Token") or ""])
        self.pacer.wait()
        started = time.monotonic()
        response = super().send(request, stream, timeout, *args, **kwargs)
        REDACTOR.add_secrets([response.headers.get("X-Subject-Token") or ""])
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            response.close()
            raise ServiceError(f"{where} answered with Content-Encoding {encoding}, although"
                               " identity was asked: refused (a compressed answer may expand"
                               " without bound)", transient=False)
        if not _is_image_data(request):
            # Read whole here, even when streamed (glanceclient streams every
            # answer): image data alone is read by its reader, as it comes.
            seconds = _read_timeout(timeout)
            deadline = started + seconds if seconds is not None else None
            response._content = _bounded_body(response, where, deadline, seconds)
            response._content_consumed = True
        return response


_IMAGE_DATA = re.compile(r"/v2/images/[^/]+/file$")


def _is_image_data(request: requests.PreparedRequest) -> bool:
    """True for a download of image data (``GET /v2/images/{id}/file``)."""
    path = urllib.parse.urlsplit(request.url or "").path
    return request.method == "GET" and _IMAGE_DATA.search(path) is not None


#: The largest answer read whole (JSON: a listing page, a token's catalog): bytes.
MAX_BODY = 64 * 1024 * 1024
#: Bytes asked of the socket at a time while reading an answer whole.
_READ = 64 * 1024


def _read_timeout(timeout: Any) -> float | None:
    """The read part of a requests ``timeout`` (a number or ``(connect, read)``)."""
    if isinstance(timeout, tuple):
        timeout = timeout[-1]
    return float(timeout) if isinstance(timeout, (int, float)) else None


def _bounded_body(response: requests.Response, where: str, deadline: float | None,
                  seconds: float | None) -> bytes:
    """The whole body of ``response``: at most :data:`MAX_BODY` bytes, by ``deadline``.

    The request's read timeout bounds each wait for bytes; here it also
    bounds the whole answer (a server sending one byte at a time keeps
    every wait short). Read as it came (never decoded).

    :raises ServiceError: the answer is larger, or slower (not transient: a
        new attempt from the start would meet the same server).
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        response.close()
        raise ServiceError(f"{where} announced an answer of {declared} bytes, more than"
                           f" the {MAX_BODY} read: refused", transient=False)
    raw = response.raw
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise SlowAnswerError(f"{where} took longer than {seconds:g} s to send its"
                                      " answer: given up", transient=False)
            try:
                chunk = raw.read1(_READ, decode_content=False)
            except urllib3.exceptions.ReadTimeoutError as exc:
                raise requests.exceptions.ReadTimeout(exc) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise requests.exceptions.ConnectionError(exc) from exc
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > MAX_BODY:
                raise ServiceError(f"{where} sent an answer of more than {MAX_BODY} bytes:"
                                   " refused", transient=False)
            parts.append(chunk)
    except BaseException:
        response.close()
        raise


def guarded_session(allowed: Callable[[], Iterable[str | None]],
                    pacer: RatePacer | None = None) -> requests.Session:
    """A requests session whose every request goes through an :class:`OriginGuard`
    (paced by ``pacer``, if any)."""
    session = requests.Session()
    guard = OriginGuard(allowed, pacer)
    for scheme in list(session.adapters):
        session.mount(scheme, guard)
    return session


_REASONS = re.compile(r"\[SSL[^\]]*\][^'\")]*|certificate verify failed[^'\")]*|"
                      r"Connection refused|Name or service not known|timed out|"
                      r"Connection reset by peer|wrong version number")


def short_reason(exc: Exception) -> str:
    """The useful end of a long urllib3 error chain."""
    text = str(exc)
    found = _REASONS.findall(text)
    if found:
        return found[-1].strip()
    return text if len(text) <= 160 else "..." + text[-160:]
