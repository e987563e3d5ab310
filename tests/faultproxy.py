"""A loopback HTTP proxy that breaks things on purpose, for fault tests.

:class:`FaultProxy` listens on 127.0.0.1 (a free port) and forwards each
connection to one upstream server on 127.0.0.1, one request per
connection (it asks both sides for ``Connection: close``). It can:

* ``reset_uploads=N``: cut the first N image uploads (``PUT .../file``)
  after some body bytes, with a TCP reset, as a broken link does;
* ``flip_uploads=N``: flip one bit of the first N uploaded bodies, so the
  image becomes ``active`` with the wrong checksum;
* ``unavailable=N``: answer the first N requests ``503`` without
  forwarding them, as a restarting service behind a balancer does;
* ``redirect_to=URL``, ``redirects=N``: answer the first N requests whose
  path starts with ``redirect_prefix`` ``307 Temporary Redirect`` to
  ``URL`` + the same path, without forwarding them, as a hostile server
  (or a misconfigured balancer) does;
* ``too_many=N``: answer the first N requests that ``too_many_match(method,
  path)`` accepts (default: every request) ``429 Too Many Requests`` with
  ``Retry-After: retry_after``, without forwarding them, as a rate-limiting
  front does;
* ``min_interval=S``: answer ``429`` (``Retry-After: retry_after``) to any
  request that arrives less than S seconds after the last one it let
  through, as a per-second request limit does (``too_many_done`` counts
  both kinds);
* ``slow_finalise=N``, ``gateway_timeout=G``, ``finalise_seconds=F``: for the
  first N image uploads (with ``Content-Length``), take the whole body from
  the client, hand the upstream all of it but its last bytes, answer the
  client ``504 Gateway Timeout`` G seconds later and hand the upstream the
  rest F seconds after the body came: from the client's side every byte
  was sent, while the image stays ``saving`` for F seconds, as with a store
  slow to finalise behind a gateway with a shorter time-out
  (``finalised`` counts those completed);
* ``rewrite=f``: give the client ``f(method, path, body)`` instead of the
  upstream's response body (for instance a Keystone token whose catalog
  names hostile regions or endpoints);
* ``prefix="/image"``: serve the upstream under a path prefix, as a
  reverse proxy does: a request for ``/image/X`` is forwarded as ``/X``
  with ``X-Forwarded-Prefix: /image`` (so that the upstream's links name
  the prefix), any other path is answered ``404`` without forwarding.

:class:`SlowUploadProxy` is a forward proxy (what ``http_proxy`` names) for
loopback origins that sends image uploads upstream at a bounded rate: a
slow link to a region, for a process that cannot be given a proxy URL in
its configuration (a script under test).

:class:`Recorder` is the other end of a hostile redirection: a loopback
server that records what it receives (a token, a password), answers
``404`` and forwards nothing.

It is bounded: it stops listening after ``lifetime`` seconds, every
socket has a timeout, and all threads are daemons. ``stop()`` also ends the
connections in flight and waits for their threads, so nothing it forwarded
reaches the upstream after it returns. Counters say what it did.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
import urllib.parse
from typing import Callable

__all__ = ["FaultProxy", "Recorder", "SlowUploadProxy"]

_HEAD_LIMIT = 64 * 1024
_BUFFER = 256 * 1024
#: Body bytes an upload sends before a reset cuts it.
_RESET_AFTER = 512 * 1024
#: Body bytes held back before forwarding, to find where to flip one.
_FLIP_WINDOW = 4096
_FLIP_OFFSET = 100
#: Body bytes of a slow-finalising upload held back from the upstream.
_HOLD = 64 * 1024


def _drop_connection_headers(head: bytes, *extra: bytes) -> bytes:
    """``head`` with any Connection/Keep-Alive header replaced by ``Connection: close``.

    ``extra`` header lines are added.
    """
    lines = head.split(b"\r\n")
    kept = [line for line in lines[1:] if line and not line.lower().startswith(
        (b"connection:", b"keep-alive:"))]
    return b"\r\n".join([lines[0], *kept, *extra, b"Connection: close", b"", b""])


def _answer(client: socket.socket, status: bytes, message: bytes) -> None:
    """Send a short plain-text answer and let the caller close the connection."""
    client.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain"
                   b"\r\nContent-Length: " + str(len(message)).encode() +
                   b"\r\nConnection: close\r\n\r\n" + message)


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST (SO_LINGER 0) instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class FaultProxy:
    """See the module docstring. Use as a context manager, or start()/stop()."""

    def __init__(self, upstream_port: int, *, reset_uploads: int = 0,
                 flip_uploads: int = 0, unavailable: int = 0, prefix: str = "",
                 redirect_to: str | None = None, redirects: int = 0,
                 redirect_status: int = 307, redirect_prefix: bytes = b"/",
                 rewrite: Callable[[bytes, bytes, bytes], bytes] | None = None,
                 too_many: int = 0,
                 too_many_match: Callable[[bytes, bytes], bool] | None = None,
                 min_interval: float = 0.0, retry_after: str = "1",
                 slow_finalise: int = 0, gateway_timeout: float = 2.0,
                 finalise_seconds: float = 10.0,
                 lifetime: float = 300.0, timeout: float = 60.0) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.prefix = prefix.rstrip("/").encode()
        self.outside_prefix = 0
        self.reset_uploads = reset_uploads
        self.flip_uploads = flip_uploads
        self.unavailable = unavailable
        self.redirect_to = redirect_to
        self.redirects = redirects
        self.redirect_status = redirect_status
        self.redirect_prefix = redirect_prefix
        self.rewrite = rewrite
        self.redirects_done = 0
        self.rewrites_done = 0
        self.too_many = too_many
        self.too_many_match = too_many_match
        self.min_interval = min_interval
        self.retry_after = retry_after
        self.too_many_done = 0
        self._last_through: float | None = None
        self.slow_finalise = slow_finalise
        self.gateway_timeout = gateway_timeout
        self.finalise_seconds = finalise_seconds
        self.finalised = 0
        self.lifetime = lifetime
        self.timeout = timeout
        self.requests = 0
        #: (monotonic time, method, path) of every request, in arrival order.
        self.seen: list[tuple[float, bytes, bytes]] = []
        self.uploads = 0
        self.resets_done = 0
        self.flips_done = 0
        self.unavailable_done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        #: Open connections (client and upstream sides) and their handler threads.
        self._open: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(32)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name=f"faultproxy-{self.port}",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end the connections in flight, wait for their threads."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            sockets, handlers = list(self._open), list(self._handlers)
        for sock in sockets:
            # shutdown wakes the threads blocked on the socket; they close it.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for handler in handlers:
            handler.join(timeout=5)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            client.settimeout(self.timeout)
            handler = threading.Thread(target=self._handle, args=(client,), daemon=True)
            with self._lock:
                if self._stop.is_set():
                    client.close()
                    break
                self._open.add(client)
                self._handlers.add(handler)
            handler.start()
        # Past the lifetime new clients are refused rather than left waiting.
        self._listener.close()

    def _take(self, counter: str) -> bool:
        """Use one of the faults left in ``counter``; False if none is left."""
        with self._lock:
            left = getattr(self, counter)
            if left <= 0:
                return False
            setattr(self, counter, left - 1)
            return True

    def _handle(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            head, body = self._read_head(client)
            if head is None:
                return
            with self._lock:
                self.requests += 1
            request_line = head.split(b"\r\n", 1)[0].split()
            method, path = request_line[0], request_line[1] if len(request_line) > 1 else b""
            with self._lock:
                self.seen.append((time.monotonic(), method, path))
            if self._take("unavailable"):
                with self._lock:
                    self.unavailable_done += 1
                _answer(client, b"503 Service Unavailable",
                        b"503 Service Unavailable: the fault proxy says so\n")
                return
            if self._limited(method, path):
                client.sendall(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: %s\r\n"
                               b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                               % self.retry_after.encode())
                return
            if (self.redirect_to is not None and path.startswith(self.redirect_prefix)
                    and self._take("redirects")):
                with self._lock:
                    self.redirects_done += 1
                location = self.redirect_to.encode() + path
                client.sendall(b"HTTP/1.1 %d Redirect\r\nLocation: %s\r\nContent-Length: 0\r\n"
                               b"Connection: close\r\n\r\n" % (self.redirect_status, location))
                return
            extra: tuple[bytes, ...] = ()
            if self.prefix:
                inside = path[len(self.prefix):]
                if not path.startswith(self.prefix) or inside[:1] not in (b"", b"/", b"?"):
                    with self._lock:
                        self.outside_prefix += 1
                    _answer(client, b"404 Not Found", b"404 Not Found: outside the prefix\n")
                    return
                path = inside if inside.startswith(b"/") else b"/" + inside
                head = b" ".join([method, path, *request_line[2:]]) + \
                    head[head.index(b"\r\n"):]
                extra = (b"X-Forwarded-Prefix: " + self.prefix,)
            upload = method == b"PUT" and path.split(b"?", 1)[0].endswith(b"/file")
            mode = None
            if upload:
                with self._lock:
                    self.uploads += 1
                if self._take("reset_uploads"):
                    mode = "reset"
                elif self._take("flip_uploads"):
                    mode = "flip"
                elif _content_length(head) is not None and self._take("slow_finalise"):
                    mode = "slow"
            upstream = socket.create_connection(self.upstream, timeout=self.timeout)
            with self._lock:
                if self._stop.is_set():
                    return
                self._open.add(upstream)
            upstream.sendall(_drop_connection_headers(head, *extra))
            if mode == "slow":
                self._slow_finalise(client, upstream, body, _content_length(head) or 0)
                return
            chunked = b"transfer-encoding: chunked" in head.lower()
            pump = threading.Thread(target=self._forward_body,
                                    args=(client, upstream, body, mode, chunked), daemon=True)
            pump.start()
            if self.rewrite is not None:
                self._rewritten(upstream, client, method, path)
            else:
                self._copy(upstream, client)
            pump.join(timeout=self.timeout)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.difference_update((client, upstream))
                self._handlers.discard(threading.current_thread())
            if upstream is not None:
                upstream.close()
            client.close()

    def _slow_finalise(self, client: socket.socket, upstream: socket.socket, first: bytes,
                       length: int) -> None:
        """See ``slow_finalise`` in the module docstring."""
        data = first
        while len(data) < length:
            chunk = client.recv(_BUFFER)
            if not chunk:
                return
            data += chunk
        held = min(len(data), _HOLD)
        upstream.sendall(data[:len(data) - held])
        came = time.monotonic()
        if self._stop.wait(self.gateway_timeout):
            return
        _answer(client, b"504 Gateway Timeout", b"504 Gateway Timeout: the upstream is slow\n")
        if self._stop.wait(max(0.0, came + self.finalise_seconds - time.monotonic())):
            return
        upstream.sendall(data[len(data) - held:])
        while upstream.recv(_BUFFER):
            pass
        with self._lock:
            self.finalised += 1

    def _limited(self, method: bytes, path: bytes) -> bool:
        """Whether this request gets a 429 (counted in ``too_many_done``)."""
        with self._lock:
            now = time.monotonic()
            if ((self.too_many_match is None or self.too_many_match(method, path))
                    and self.too_many > 0):
                self.too_many -= 1
            elif (self.min_interval > 0 and self._last_through is not None
                    and now - self._last_through < self.min_interval):
                pass
            else:
                self._last_through = now
                return False
            self.too_many_done += 1
            return True

    @staticmethod
    def _read_head(client: socket.socket) -> tuple[bytes | None, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(_BUFFER)
            if not chunk or len(data) > _HEAD_LIMIT:
                return None, b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n", body

    def _forward_body(self, client: socket.socket, upstream: socket.socket, first: bytes,
                      mode: str | None, chunked: bool) -> None:
        """Client to upstream: the request body, altered as ``mode`` says."""
        sent = 0
        pending = first
        try:
            if mode == "flip":
                while len(pending) < _FLIP_WINDOW:
                    chunk = client.recv(_BUFFER)
                    if not chunk:
                        break
                    pending += chunk
                pending = self._flip(pending, chunked)
            while True:
                if pending:
                    if mode == "reset" and sent + len(pending) >= _RESET_AFTER:
                        upstream.sendall(pending[:max(0, _RESET_AFTER - sent)])
                        with self._lock:
                            self.resets_done += 1
                        _reset(client)
                        upstream.shutdown(socket.SHUT_RDWR)
                        return
                    upstream.sendall(pending)
                    sent += len(pending)
                pending = client.recv(_BUFFER)
                if not pending:
                    return
        except OSError:
            return

    def _flip(self, data: bytes, chunked: bool) -> bytes:
        start = 0
        if chunked:
            line_end = data.find(b"\r\n")
            if line_end < 0:
                return data
            size = int(data[:line_end].split(b";")[0], 16)
            start = line_end + 2
            offset = start + min(_FLIP_OFFSET, size - 1)
        else:
            offset = _FLIP_OFFSET
        if offset >= len(data) or (chunked and offset < start):
            return data
        with self._lock:
            self.flips_done += 1
        return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]

    def _rewritten(self, upstream: socket.socket, client: socket.socket, method: bytes,
                   path: bytes) -> None:
        """Upstream to client: the whole response, its body given to :attr:`rewrite`."""
        data = b""
        while chunk := upstream.recv(_BUFFER):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if any(line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower()
               for line in lines[1:]):
            body = _dechunk(body)
        assert self.rewrite is not None
        body = self.rewrite(method, path, body)
        with self._lock:
            self.rewrites_done += 1
        kept = [line for line in lines[1:] if not line.lower().startswith(
            (b"content-length:", b"transfer-encoding:", b"connection:"))]
        client.sendall(b"\r\n".join([lines[0], *kept, b"Content-Length: %d" % len(body),
                                     b"Connection: close", b"", b""]) + body)

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket) -> None:
        """Upstream to client, until the upstream closes."""
        while True:
            try:
                chunk = source.recv(_BUFFER)
            except OSError:
                return
            if not chunk:
                return
            sink.sendall(chunk)


def _content_length(head: bytes) -> int | None:
    """The ``Content-Length`` of a request head, or None."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None


def _dechunk(body: bytes) -> bytes:
    """The payload of a chunked transfer-encoded body."""
    payload = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        payload, body = payload + body[:size], body[size + 2:]
    return payload


class Recorder(FaultProxy):
    """A loopback server recording what it receives; it answers ``404`` and forwards nothing.

    ``received`` holds, per request, its head and what came with it (a
    token, a password in a body). Bounded like :class:`FaultProxy`.
    """

    def __init__(self, lifetime: float = 300.0, timeout: float = 10.0) -> None:
        super().__init__(0, lifetime=lifetime, timeout=timeout)
        self.received: list[bytes] = []

    def _handle(self, client: socket.socket) -> None:
        try:
            head, body = self._read_head(client)
            with self._lock:
                self.received.append((head or b"") + body)
            client.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                           b"Connection: close\r\n\r\n")
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(client)
                self._handlers.discard(threading.current_thread())
            client.close()


class SlowUploadProxy(FaultProxy):
    """A loopback forward HTTP proxy (``http_proxy=URL``) that slows image uploads.

    Each request names its origin in full (``PUT http://127.0.0.1:PORT/path``,
    as clients speak to a proxy); only ``127.0.0.1`` origins are served
    (anything else: ``403``). The body of an image upload (``PUT .../file``)
    goes upstream at ``upload_rate`` bytes per second at most; everything
    else is forwarded as it comes. ``uploads`` counts the uploads begun,
    ``upload_bytes`` the body bytes forwarded. Bounded like
    :class:`FaultProxy`.
    """

    def __init__(self, upload_rate: int, lifetime: float = 600.0,
                 timeout: float = 60.0) -> None:
        super().__init__(0, lifetime=lifetime, timeout=timeout)
        self.upload_rate = upload_rate
        self.upload_bytes = 0

    def _handle(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            head, body = self._read_head(client)
            if head is None:
                return
            line, _, rest = head.partition(b"\r\n")
            method, target, version = (line.split() + [b"", b""])[:3]
            url = urllib.parse.urlsplit(target.decode("latin-1"))
            if url.scheme != "http" or url.hostname != "127.0.0.1" or not url.port:
                _answer(client, b"403 Forbidden", b"403: loopback origins only\n")
                return
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            with self._lock:
                self.requests += 1
            upload = method == b"PUT" and url.path.endswith("/file")
            if upload:
                with self._lock:
                    self.uploads += 1
            kept = b"\r\n".join(h for h in rest.split(b"\r\n")
                                 if not h.lower().startswith(b"proxy-"))
            head = b" ".join([method, path.encode("latin-1"), version]) + b"\r\n" + kept
            upstream = socket.create_connection(("127.0.0.1", url.port), timeout=self.timeout)
            with self._lock:
                if self._stop.is_set():
                    return
                self._open.add(upstream)
            upstream.sendall(_drop_connection_headers(head))
            pump = threading.Thread(target=self._pump, args=(client, upstream, body, upload),
                                    daemon=True)
            pump.start()
            self._copy(upstream, client)
            pump.join(timeout=self.timeout)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.difference_update((client, upstream))
                self._handlers.discard(threading.current_thread())
            if upstream is not None:
                upstream.close()
            client.close()

    def _pump(self, client: socket.socket, upstream: socket.socket, first: bytes,
              upload: bool) -> None:
        """Client to upstream: the body, at ``upload_rate`` for an upload."""
        started, sent, pending = time.monotonic(), 0, first
        try:
            while True:
                if pending:
                    upstream.sendall(pending)
                    sent += len(pending)
                    if upload:
                        with self._lock:
                            self.upload_bytes += len(pending)
                        ahead = sent / self.upload_rate - (time.monotonic() - started)
                        if ahead > 0 and self._stop.wait(ahead):
                            return
                pending = client.recv(64 * 1024 if upload else _BUFFER)
                if not pending:
                    return
        except OSError:
            return
