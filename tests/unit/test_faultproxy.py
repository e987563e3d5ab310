"""The fault tests' proxy: stop() ends what is in flight, on loopback sockets."""
from __future__ import annotations

import socket

import pytest

from tests.faultproxy import FaultProxy

HEAD = (b"PUT /v2/images/1/file HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 10000000\r\n\r\n")


@pytest.fixture
def upstream():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(10)
    yield server
    server.close()


def test_stop_ends_the_connections_in_flight_and_refuses_new_ones(upstream):
    proxy = FaultProxy(upstream.getsockname()[1], lifetime=60, timeout=30).start()
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    client.sendall(HEAD + b"x" * 1000)  # an upload in flight
    forwarded, _ = upstream.accept()
    forwarded.settimeout(10)
    received = b""
    while not received.endswith(b"x" * 1000):
        received += forwarded.recv(65536)
    assert received.startswith(b"PUT /v2/images/1/file")

    proxy.stop()
    # Both sides see the end at once, not after the proxy's 30 s timeout.
    assert forwarded.recv(65536) == b""
    client.settimeout(10)
    try:
        assert client.recv(65536) == b""
    except ConnectionResetError:
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    forwarded.close()
    client.close()


def test_prefix_strips_the_path_prefix_and_refuses_other_paths(upstream):
    with FaultProxy(upstream.getsockname()[1], prefix="/image/", lifetime=60,
                    timeout=30) as proxy:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        client.sendall(b"GET /image/v2/images?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        forwarded, _ = upstream.accept()
        forwarded.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            head += forwarded.recv(65536)
        assert head.startswith(b"GET /v2/images?limit=1 HTTP/1.1\r\n")
        assert b"\r\nX-Forwarded-Prefix: /image\r\n" in head
        forwarded.close()
        client.close()
        for path in (b"/v2/images", b"/imagefoo/v2"):
            other = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            other.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = other.recv(65536)
            other.close()
            assert answer.startswith(b"HTTP/1.1 404 ")
        assert proxy.outside_prefix == 2
