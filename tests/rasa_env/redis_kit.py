"""The real Redis on 127.0.0.1:6379 for the tests of the scale profile's shared state."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import redis

from tests.services import unavailable

REDIS = ("127.0.0.1", 6379)
# The channels' shared state lives in db 2 (bot/channels/shared_state.py DERIVED_DB).
URL = f"redis://{REDIS[0]}:{REDIS[1]}/2"


def require_redis() -> None:
    """Skips the test when Redis is unreachable, fails it instead when CI is set."""
    try:
        socket.create_connection(REDIS, timeout=2).close()
    except OSError as exc:
        message = f"Redis is unreachable at {REDIS[0]}:{REDIS[1]}: {exc}"
        unavailable(message)


def fresh_prefix() -> Iterator[str]:
    """A key prefix of one test's own in the real Redis (so tests never see each other's keys),
    its keys deleted afterwards: the ``prefix`` fixture (conftest.py). Skips without Redis,
    fails under CI."""
    require_redis()
    prefix = f"askagency-test:{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
