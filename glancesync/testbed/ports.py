"""Loopback ports of the test bed: reserve one, wait until it is bindable, name its holders.

A *reservation* is a socket bound to ``127.0.0.1:PORT`` with
``SO_REUSEADDR`` that never listens. uWSGI binds its listening socket with
``SO_REUSEADDR`` too, and Linux lets two such sockets share a port as long
as the other one does not listen, so a service starts beside the
reservation. Nobody else can take the port meanwhile: the kernel hands it
out neither to ``bind(0)`` nor as the ephemeral source port of a
``connect()``, and a bind without ``SO_REUSEADDR`` fails. So the port of a
region that is down (killed, restarting) stays the bed's.

A port is *bindable* when one more ``SO_REUSEADDR`` socket can bind it:
the very check the kernel makes when uWSGI binds. It fails while some
socket listens on the port (a process of the previous service has not
finished exiting) or while a socket without ``SO_REUSEADDR`` uses it (a
client given the port as its ephemeral source port).
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import time
from pathlib import Path

from glancesync.testbed.files import LOOPBACK

#: /proc/net/tcp state codes (include/net/tcp_states.h).
_TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
    "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
    "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING", "0C": "NEW_SYN_RECV",
}
_POLL = 0.01  # seconds between two bind attempts


def reserve(port: int = 0) -> socket.socket:
    """A reservation of loopback PORT (0: a free port the kernel picks).

    :raises OSError: the port is not bindable (``EADDRINUSE``) or no port is free.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        raise
    return sock


def wait_bindable(port: int, deadline: float) -> socket.socket | None:
    """A reservation of PORT once it is bindable; None if still not at DEADLINE.

    DEADLINE is a ``time.monotonic()`` value.
    """
    while True:
        try:
            return reserve(port)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
        if time.monotonic() > deadline:
            return None
        time.sleep(_POLL)


def holders(port: int) -> list[str]:
    """Who uses loopback TCP PORT: one line per socket, with its state and process.

    From ``/proc/net/tcp`` and the ``fd`` folders of every thread (the main
    thread of an exiting process may have left its files to another one).
    ``LISTEN`` comes first, ``TIME_WAIT`` last. A socket that no process
    holds any more (``TIME_WAIT``, or its process exiting just now) says so.
    """
    sockets = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if int(local.split(":")[1], 16) == port:
            sockets.append((_TCP_STATES.get(state, state), _address(local),
                            _address(remote), inode))
    owners = _socket_owners({inode for *_, inode in sockets if inode != "0"})
    sockets.sort(key=lambda entry: (entry[0] != "LISTEN", entry[0] == "TIME_WAIT"))
    lines = []
    for state, local, remote, inode in sockets:
        peer = "" if state == "LISTEN" else f" <-> {remote}"
        lines.append(f"{state} {local}{peer} held by {owners.get(inode, 'no process')}")
    return lines


def _address(hex_address: str) -> str:
    """``0100007F:1F90`` -> ``127.0.0.1:8080``."""
    host, port = hex_address.split(":")
    return f"{socket.inet_ntoa(struct.pack('<I', int(host, 16)))}:{int(port, 16)}"


def _socket_owners(inodes: set[str]) -> dict[str, str]:
    """Socket inode -> ``pid N (command)`` of a process that has it open."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    found: dict[str, str] = {}
    if not wanted:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            tasks = os.listdir(f"/proc/{entry.name}/task")
        except OSError:
            continue
        for task in tasks:
            fd_dir = f"/proc/{entry.name}/task/{task}/fd"
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue
            for fd in fds:
                try:
                    inode = wanted.get(os.readlink(f"{fd_dir}/{fd}"))
                except OSError:
                    continue
                if inode and inode not in found:
                    found[inode] = f"pid {entry.name} ({_command(entry.name)})"
            if fds:
                break  # the threads of a process share one file table
    return found


def _command(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
