"""The test bed's process and port primitives, on real processes and loopback sockets.

The case that made region restarts fail by chance: a killed multi-threaded
uWSGI worker whose main thread is already a zombie while another thread
still holds the listening socket.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from glancesync.testbed import ports, procs

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the test bed reads /proc")

#: Listens on a free port, prints it, then only its main thread exits; the
#: other thread keeps the process (and the socket) until stdin closes.
ZOMBIE_MAIN_THREAD = textwrap.dedent("""
    import ctypes, socket, sys, threading
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    libc = ctypes.CDLL(None)
    def linger():
        sys.stdin.read()
        libc._exit(0)
    threading.Thread(target=linger).start()
    print(listener.getsockname()[1], flush=True)
    libc.pthread_exit(None)
""")


def _main_thread_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def half_exited() -> Iterator[tuple[subprocess.Popen, int]]:
    """A process whose main thread is a zombie and whose other thread listens on a port."""
    proc = subprocess.Popen([sys.executable, "-c", ZOMBIE_MAIN_THREAD],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        deadline = time.monotonic() + 120  # a hang guard: a loaded machine is slow
        while _main_thread_state(proc.pid) != "Z":
            assert time.monotonic() < deadline, "the main thread did not exit"
            time.sleep(0.01)
        yield proc, port
    finally:
        proc.kill()
        proc.wait()


def test_a_zombie_main_thread_with_a_live_thread_is_alive(half_exited):
    proc, port = half_exited
    assert procs.is_alive(proc.pid, procs.start_time(proc.pid))
    assert ports.wait_bindable(port, time.monotonic() + 0.2) is None
    # Found through the live thread: the zombie main thread has no files.
    (line,) = ports.holders(port)
    assert line.startswith(f"LISTEN 127.0.0.1:{port} held by pid {proc.pid} (")

    proc.stdin.close()  # the last thread exits: the process and its socket are gone
    proc.wait(timeout=10)
    assert not procs.is_alive(proc.pid, None)
    reservation = ports.wait_bindable(port, time.monotonic() + 120)
    assert reservation is not None
    reservation.close()


def test_stop_groups_waits_for_every_thread(tmp_path):
    leader = subprocess.Popen([sys.executable, "-c", ZOMBIE_MAIN_THREAD],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        port = int(leader.stdout.readline())
        while _main_thread_state(leader.pid) != "Z":
            time.sleep(0.01)
        assert procs.group_members(leader.pid) == [leader.pid]
        # SIGTERM is not handled by the lingering thread's process: it dies.
        assert procs.stop_groups({leader.pid: None}, grace=5,
                                 children={leader.pid: leader}) == []
        assert procs.group_members(leader.pid) == []
        assert leader.returncode is not None, "the leader was reaped"
        reservation = ports.wait_bindable(port, time.monotonic())
        assert reservation is not None, ports.holders(port)
        reservation.close()
    finally:
        leader.kill()
        leader.wait()


def test_a_reservation_lets_only_a_reuseaddr_server_bind_beside_it():
    reservation = ports.reserve()
    port = reservation.getsockname()[1]
    server = socket.socket()
    try:
        with pytest.raises(OSError):  # a bind without SO_REUSEADDR
            socket.socket().bind(("127.0.0.1", port))
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))  # what uWSGI does
        server.listen(1)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            accepted, _ = server.accept()
            accepted.sendall(b"ok")
            assert client.recv(2) == b"ok"
            accepted.close()
        # While it listens the port is not bindable, and its holder is named.
        assert ports.wait_bindable(port, time.monotonic() + 0.1) is None
        assert any(line.startswith(f"LISTEN 127.0.0.1:{port} held by pid ")
                   for line in ports.holders(port))
    finally:
        server.close()
        reservation.close()


def test_the_kernel_never_hands_out_a_reserved_port():
    reserved = [ports.reserve() for _ in range(200)]
    taken = [ports.reserve() for _ in range(200)]
    try:
        assert not ({s.getsockname()[1] for s in reserved}
                    & {s.getsockname()[1] for s in taken})
    finally:
        for sock in reserved + taken:
            sock.close()


def test_wait_bindable_returns_once_the_listener_closes():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    closed = threading.Event()

    def close() -> None:
        closed.set()
        listener.close()

    closer = threading.Timer(0.3, close)
    closer.start()
    # Generous: a loaded machine may run the timer late; no time is asserted.
    reservation = ports.wait_bindable(port, time.monotonic() + 120)
    try:
        assert reservation is not None
        assert closed.is_set(), "bindable while the listener was still open"
    finally:
        closer.join()
        if reservation is not None:
            reservation.close()
