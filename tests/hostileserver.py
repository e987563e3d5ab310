"""A loopback HTTP server that answers as a hostile (or broken) Glance would.

:class:`HostileServer` listens on 127.0.0.1 (a free port); for each request
it calls ``answer(method, path, headers)``, which returns an iterable of
bytes: the raw HTTP answer (status line, headers, body), sent piece by
piece, so that an answer can be endless, huge, compressed or trickling.
It records the requests (``requests``: method, path, headers) and counts
the bytes it managed to send (``sent``): a client that stops reading makes
the sending fail, and the count shows how far it went.

Bounded like :class:`tests.faultproxy.FaultProxy`: it stops listening after
``lifetime`` seconds, every socket has a timeout, all threads are daemons,
and :meth:`stop` ends the connections in flight.
"""
from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from typing import Callable, Iterable, Iterator

__all__ = ["HostileServer", "answer", "chunked", "endless", "gzip_bomb", "trickle"]

Answer = Callable[[str, str, dict[str, str]], Iterable[bytes]]


def answer(status: str, headers: dict[str, str], body: Iterable[bytes]) -> Iterator[bytes]:
    """An HTTP/1.1 answer: the head, then ``body`` as it comes."""
    head = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()),
            "Connection: close", "", ""]
    yield "\r\n".join(head).encode()
    yield from body


def chunked(body: Iterable[bytes]) -> Iterator[bytes]:
    """``body`` in chunked transfer encoding."""
    for part in body:
        if part:
            yield b"%x\r\n%s\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


def endless(piece: bytes = b"\0" * 65536, total: int = 1 << 40) -> Iterator[bytes]:
    """Up to ``total`` bytes (a TiB by default), made as they are sent."""
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


def trickle(data: bytes, seconds: float) -> Iterator[bytes]:
    """``data`` one byte at a time, ``seconds`` apart."""
    for byte in data:
        time.sleep(seconds)
        yield bytes([byte])


def gzip_bomb(size: int) -> bytes:
    """A gzip stream of ``size`` zero bytes (compressed about 1000 times)."""
    return gzip.compress(b"\0" * size, compresslevel=9)


def json_bomb_listing(size: int) -> bytes:
    """A gzip JSON listing that expands to about ``size`` bytes."""
    padding = " " * size
    return gzip.compress(json.dumps({"images": [], "pad": padding}).encode(), compresslevel=9)


class HostileServer:
    """See the module docstring. Use as a context manager."""

    def __init__(self, respond: Answer, *, lifetime: float = 120.0, timeout: float = 30.0):
        self.respond = respond
        self.lifetime = lifetime
        self.timeout = timeout
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._open: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "HostileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(self.timeout)
            with self._lock:
                self._open.add(client)
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        try:
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = client.recv(65536)
                if not chunk:
                    return
                data += chunk
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            method, path = head[0].split()[:2]
            headers = {}
            for line in head[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            with self._lock:
                self.requests.append((method, path, headers))
            for piece in self.respond(method, path, headers):
                if self._stop.is_set():
                    return
                client.sendall(piece)
                with self._lock:
                    self.sent += len(piece)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(client)
            client.close()
