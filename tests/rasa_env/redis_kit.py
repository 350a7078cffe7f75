"""The real Redis on 127.0.0.1:6379 for the tests of the scale profile's shared state."""

from __future__ import annotations

import socket

from tests.services import unavailable

REDIS = ("127.0.0.1", 6379)


def require_redis() -> None:
    """Skips the test when Redis is unreachable, fails it instead when CI is set."""
    try:
        socket.create_connection(REDIS, timeout=2).close()
    except OSError as exc:
        message = f"Redis is unreachable at {REDIS[0]}:{REDIS[1]}: {exc}"
        unavailable(message)
