"""Hostile answers from a loopback server: every read is bounded (issue 21, cases 7, 8, 12).

The region adapter talks to :class:`tests.hostileserver.HostileServer`
through the transport every Keystone target uses (the origin guard), as a
hostile or broken Glance would answer: image data beyond the declared size
(plain and chunked), compressed bodies, a huge listing, a listing page and
image data that trickle. Every case stops at once (or within its time) and
the server's count of bytes sent shows how far the client read.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1 import token_endpoint

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.backends.openstack.origins import guarded_session
from glancesync.errors import ChecksumMismatchError, GlanceSyncError, ServiceError, TransferError
from glancesync.image import Image
from glancesync.transfer import ImageCache, MasterImageSource
from tests.hostileserver import (HostileServer, answer, chunked, endless, gzip_bomb,
                                 json_bomb_listing, trickle)

MIB = 1024 * 1024
DATA = b"eight hundred bytes " * 40  # 800 bytes
IMAGE = Image(id="11111111-2222-3333-4444-555555555555", name="small", status="active",
              size=len(DATA), checksum="0" * 32, disk_format="raw", container_format="bare")
#: Bytes a client may have let the server send before stopping: the socket
#: buffers of both ends and one chunk.
SLACK = 32 * MIB
#: The largest answer read whole (origins.MAX_BODY).
MAX_BODY = 64 * MIB


def adapter_of(server: HostileServer, **kw) -> GlanceRegionAdapter:
    session = ksa_session.Session(auth=token_endpoint.Token(server.url, "tok"),
                                  session=guarded_session(lambda: [server.url]), timeout=20)
    return GlanceRegionAdapter("master:Hostile", session, "Hostile", "p",
                               endpoint_override=server.url, **kw)


def download_into_cache(server: HostileServer, tmp_path: Path) -> MasterImageSource:
    source = MasterImageSource(adapter_of(server), ImageCache(tmp_path / "cache"), progress=False)
    source.path(IMAGE)
    return source


# --- case 7: downloads bounded by the declared size ---------------------------------

@pytest.mark.timeout(120)
@pytest.mark.parametrize("encoding", ["content-length", "chunked"])
def test_a_download_stops_at_the_first_byte_beyond_the_declared_size(tmp_path, encoding):
    def respond(method, path, headers):
        body = endless()
        if encoding == "chunked":
            return answer("200 OK", {"Content-Type": "application/octet-stream",
                                     "Transfer-Encoding": "chunked"}, chunked(body))
        return answer("200 OK", {"Content-Type": "application/octet-stream",
                                 "Content-Length": str(1 << 40)}, body)

    with HostileServer(respond) as server:
        with pytest.raises(ChecksumMismatchError, match="more than the 800 bytes"):
            download_into_cache(server, tmp_path)
        time.sleep(0.5)  # the server notices the closed connection (bytes sent only grow)
        assert server.sent < SLACK
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.timeout(120)
def test_image_data_is_never_decompressed(tmp_path):
    bomb = gzip_bomb(64 * MIB)  # 2 GiB in the issue; the same kind

    def respond(method, path, headers):
        return answer("200 OK", {"Content-Type": "application/octet-stream",
                                 "Content-Encoding": "gzip",
                                 "Content-Length": str(len(bomb))}, [bomb])

    with HostileServer(respond) as server:
        with pytest.raises(GlanceSyncError, match="Content-Encoding gzip"):
            download_into_cache(server, tmp_path)
        assert server.requests[0][2].get("accept-encoding") == "identity"
    assert list((tmp_path / "cache").iterdir()) == []


# --- case 8: every JSON body is bounded --------------------------------------------

@pytest.mark.timeout(120)
def test_a_compressed_listing_is_refused_unread():
    bomb = json_bomb_listing(256 * MIB)

    def respond(method, path, headers):
        return answer("200 OK", {"Content-Type": "application/json",
                                 "Content-Encoding": "gzip",
                                 "Content-Length": str(len(bomb))}, [bomb])

    with HostileServer(respond) as server:
        with pytest.raises(ServiceError, match="Content-Encoding gzip") as caught:
            adapter_of(server).list_images()
        assert not caught.value.transient
        assert server.requests[0][2].get("accept-encoding") == "identity"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("encoding", ["content-length", "chunked"])
def test_a_listing_larger_than_the_bound_is_refused(encoding):
    def respond(method, path, headers):
        body = (part for part in [b'{"images": [], "pad": "', *endless(b"x" * 65536)])
        if encoding == "chunked":
            return answer("200 OK", {"Content-Type": "application/json",
                                     "Transfer-Encoding": "chunked"}, chunked(body))
        return answer("200 OK", {"Content-Type": "application/json",
                                 "Content-Length": str(1 << 40)}, body)

    with HostileServer(respond) as server:
        with pytest.raises(ServiceError, match=f"more than the {MAX_BODY}|more than {MAX_BODY}"):
            adapter_of(server).list_images()
        time.sleep(0.5)
        assert server.sent < MAX_BODY + SLACK


# --- case 12: timeouts are bounds ---------------------------------------------------

@pytest.mark.timeout(60)  # before the fix, the page trickles for 10 minutes
def test_list_images_timeout_bounds_a_trickling_page():
    page = json.dumps({"images": []}).encode().ljust(3000)

    def respond(method, path, headers):
        return answer("200 OK", {"Content-Type": "application/json",
                                 "Content-Length": str(len(page))}, trickle(page, 0.2))

    with HostileServer(respond) as server:
        adapter = adapter_of(server, list_timeout=2)
        with pytest.raises(ServiceError, match="listing images took longer than 2 s") as caught:
            adapter.list_images()
        assert not caught.value.transient  # not retried from the start
        assert len(server.requests) == 1


@pytest.mark.timeout(60)  # before the fix, the master trickles for 25 minutes
def test_a_trickling_master_is_given_up_at_the_minimum_rate(tmp_path):
    def respond(method, path, headers):
        return answer("200 OK", {"Content-Type": "application/octet-stream",
                                 "Content-Length": str(len(DATA))}, trickle(DATA, 2.0))

    with HostileServer(respond) as server:
        master = adapter_of(server, min_rate=100, min_rate_window=3)
        source = MasterImageSource(master, ImageCache(tmp_path / "cache"), progress=False)
        with pytest.raises(TransferError, match="slower than 0.0976562 KiB/s: given up"):
            source.path(IMAGE)
    assert list((tmp_path / "cache").iterdir()) == []
