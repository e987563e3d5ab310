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
import urllib.parse
from typing import Any, Callable, Iterable

import requests
from keystoneauth1.session import TCPKeepAliveAdapter

from glancesync.errors import ServiceError

__all__ = ["OriginGuard", "guarded_session", "origin_of"]

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

    def __init__(self, allowed: Callable[[], Iterable[str | None]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._allowed = allowed

    def allows(self, url: str | None) -> bool:
        """True when a request to ``url`` may go: its origin is one ``allowed()`` names."""
        origin = origin_of(url)
        return origin is not None and origin in {origin_of(known) for known in self._allowed()}

    def send(self, request: requests.PreparedRequest, *args: Any,
             **kwargs: Any) -> requests.Response:
        if not self.allows(request.url):
            where = request.url.split("?", 1)[0] if request.url else "(no URL)"
            LOG.debug("refused a request to %s: not an origin of the catalog", where)
            raise ServiceError(
                f"refused to send a request to {where}: neither Keystone (auth_url) nor"
                " the service catalog names that host and port (a redirection by the"
                " server?); credentials are never sent there", transient=False)
        return super().send(request, *args, **kwargs)


def guarded_session(allowed: Callable[[], Iterable[str | None]]) -> requests.Session:
    """A requests session whose every request goes through an :class:`OriginGuard`."""
    session = requests.Session()
    guard = OriginGuard(allowed)
    for scheme in list(session.adapters):
        session.mount(scheme, guard)
    return session
