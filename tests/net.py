"""Network helpers for tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that is known to refuse connections while the block runs.

    The port is bound but never listened on, so a connection gets "connection refused" and no other
    process can start listening there meanwhile. A default port (5055, 8080) or a port that merely
    looked free a moment ago is not enough: a developer's ``make run`` may be listening on it.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
