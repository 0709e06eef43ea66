# SPDX-License-Identifier: MIT
"""The notify protocol (systemd's sd_notify(3)) in pure Python: one datagram of
"KEY=VALUE" lines to $NOTIFY_SOCKET. corral gives each worker of a server pool
its own socket; without one (a plain run, a test) every call is a no-op."""
import os
import socket

__all__ = ["notify", "ready", "status", "watchdog"]


def _address():
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return None
    if addr[0] == "@":          # the abstract namespace
        return "\0" + addr[1:]
    if addr[0] == "/":
        return addr
    raise ValueError(f"corral.notify: NOTIFY_SOCKET={addr!r} is neither a path nor an abstract "
                     "socket ('@...'); other transports are not supported")


def notify(state):
    """Sends state ("READY=1", or several "KEY=VALUE" lines) to $NOTIFY_SOCKET.
    Returns True when sent, False when NOTIFY_SOCKET is unset (no-op). A socket
    that cannot be reached raises OSError: a pool that waits for READY=1 would
    otherwise wait in vain."""
    addr = _address()
    if addr is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.sendto(state.encode(), addr)
    return True


def ready():
    """Tells corral (or systemd) that this worker is ready to serve: READY=1."""
    return notify("READY=1")


def status(text):
    """A one-line status shown for this worker (STATUS=...). Newlines become spaces."""
    return notify("STATUS=" + " ".join(str(text).splitlines()))


def watchdog():
    """A liveness ping (WATCHDOG=1), for pools with workers.watchdog."""
    return notify("WATCHDOG=1")
