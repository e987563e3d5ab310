"""The watcher's health and metrics endpoint on a loopback address.

``GET /metrics``: the Prometheus text format (prometheus_client);
``GET /health``: a JSON object (``status`` ``ok``, ``bus`` ``up`` or
``down``, ``leader``, ``last_reconciliation_end``), status 200 while the
watcher runs. Anything else is a 404. Only loopback addresses are
accepted: the metrics are for a local scraper or a proxy.
"""
from __future__ import annotations

import ipaddress
import json
import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any, Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from glancesync.errors import UsageError


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        """No access log on stderr."""


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a loopback host and a port.

    :raises UsageError: not ``HOST:PORT``, a port out of 0-65535, or a host that is
        not a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``).
    """
    host, sep, port = value.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"watch_listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9465")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise UsageError(f"watch_listen {value!r}: only a loopback address (127.0.0.1,"
                             " ::1, localhost) is served; put a proxy in front to expose it")
    return host, int(port)


class HealthServer:
    """The endpoint, served by daemon threads until :meth:`close`.

    ``health`` returns the ``/health`` object. ``address``: the bound host and
    port (port 0 asks for a free one).

    :raises UsageError: the address cannot be bound (in use, not local).
    """

    def __init__(self, listen: str, registry: CollectorRegistry,
                 health: Callable[[], dict[str, Any]]) -> None:
        host, port = parse_listen(listen)
        metrics = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                return metrics(environ, start)
            if path == "/health":
                body = json.dumps(health(), sort_keys=True).encode()
                start("200 OK", [("Content-Type", "application/json"),
                                 ("Content-Length", str(len(body)))])
                return [body]
            start("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: /health or /metrics\n"]

        server_class = _Server
        if ":" in host:
            server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            self._server = make_server(host, port, app, server_class=server_class,
                                       handler_class=_Quiet)
        except OSError as error:
            raise UsageError(f"watch_listen {listen}: cannot listen there:"
                             f" {error.strerror or error}") from None
        self.address = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="glancesync-watch-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
