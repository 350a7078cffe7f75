"""Where the channels keep abuse-limit and redelivery state: in this process, or in Redis so
that every Rasa replica of the scale profile sees the same counts.

Kept in memory, N replicas behind the proxy would each allow the configured rate (a client gets
N times the limit) and each answer a platform's redelivery once. With Redis configured, one
state serves all replicas:

* token buckets: one Lua script per check (read, refill, take, write, expire), so two replicas
  taking the last token at the same moment cannot both succeed. A token bucket rather than an
  INCR+EXPIRE window because it is the algorithm of the in-memory limiter: the configured
  ``*_per_minute`` / ``*_burst`` mean the same in both profiles, and a fixed window would let a
  client send twice the limit across a window boundary;
* repeated texts: a sorted set of timestamps per sender and text, trimmed, added to and counted
  in one MULTI/EXEC transaction;
* platform message ids: ``SET NX PX``, true only for the first replica that sees the id;
* button tokens (bot/channels/buttons.py): ``SET PX`` / ``GET``, so a button sent by one
  replica works when the platform delivers the press to another;
* numbered choices (bot/channels/choices.py): ``SET PX`` / ``GETDEL`` (Redis 6.2 or later), so
  the "2" a citizen texts back selects option 2 whichever replica receives it, and only once.

Every key has a TTL (a bucket's: the time to refill it completely, after which it equals a new
one), so Redis holds only what is still needed. Keys contain a hash of the sender, address and
text, never the citizen's text or number itself.

Redis down or slow (250 ms timeout): the check *fails open* to this process's own memory (the
per-replica limits of the embedded profile), one WARNING is logged, Redis is tried again
after :data:`RETRY_AFTER_S`, and recovery is logged. Citizens keep being answered.

The client is the synchronous ``redis`` package Rasa itself depends on: the scale profile's
lock store already makes several synchronous round trips to the same Redis for every message,
and the 250 ms timeout plus the retry pause bound what an outage costs the event loop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from bot.channels.common import TtlMap, TtlSet

logger = logging.getLogger(__name__)

T = TypeVar("T")

REDIS_URL_ENV = "ASKAGENCY_RATE_LIMIT_REDIS_URL"
# The scale profile's lock store uses db 1 of the same Redis; abuse state gets its own db.
DERIVED_DB = 2
DEFAULT_PREFIX = "askagency:abuse"
TIMEOUT_S = 0.25
RETRY_AFTER_S = 5.0
MAX_KEYS = 50_000  # in-memory state is bounded: the least recently seen keys are forgotten first

TOKEN_BUCKET_LUA = """
local rate, burst, now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
    tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens, stamp = tonumber(state[1]), tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens, stamp = burst, now
end
if now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * rate)
  stamp = now
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(stamp))
redis.call('PEXPIRE', KEYS[1], ttl)
return allowed
"""


def shared_redis_url(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The Redis that holds shared state, or "" for in-process state.

    ``configured`` (``ASKAGENCY_RATE_LIMIT_REDIS_URL`` or ``redis_url`` in credentials.yml)
    wins; ``memory`` forces in-process state. Otherwise the scale profile's Redis
    (``ASKAGENCY_REDIS_HOST`` / ``_PORT``, set by the launcher, deploy/scale.env and
    docker-compose for the lock store) is used, so the scale profile shares limits without
    extra configuration and the embedded profile (no Redis) keeps them in memory.
    """
    environ = os.environ if environ is None else environ
    configured = (configured or environ.get(REDIS_URL_ENV, "")).strip()
    if configured:
        return "" if configured.lower() == "memory" else configured
    host = environ.get("ASKAGENCY_REDIS_HOST", "").strip()
    if not host:
        return ""
    port = environ.get("ASKAGENCY_REDIS_PORT", "").strip() or "6379"
    return f"redis://{host}:{port}/{DERIVED_DB}"


def digest(*parts: str) -> str:
    """A short, stable key part that does not reveal the sender, address or text."""
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=12).hexdigest()


class State(Protocol):
    """The operations the limiter and the channels need; ``now`` is wall-clock seconds."""

    def take(self, key: str, rate: float, burst: float, now: float) -> bool:
        """Takes one token of bucket ``key`` (``rate`` tokens/s up to ``burst``)."""

    def hit(self, key: str, window_s: float, now: float) -> int:
        """Records one occurrence of ``key``; returns how many fell within ``window_s``."""

    def first_seen(self, key: str, ttl_s: float) -> bool:
        """True the first time ``key`` is seen within ``ttl_s`` seconds."""

    def remember(self, key: str, value: str, ttl_s: float) -> None:
        """Keeps ``value`` under ``key`` for ``ttl_s`` seconds."""

    def recall(self, key: str) -> str | None:
        """The value kept under ``key``, or None when there is none (or it expired)."""

    def pop(self, key: str) -> str | None:
        """Like :meth:`recall`, and removes the value in the same step: of two callers (two
        replicas) popping the same key at once, only one gets it."""


class _Lru(OrderedDict[str, Any]):
    def touch(self, key: str, make: Callable[[], Any]) -> Any:
        value = self.get(key)
        if value is None:
            value = make()
            self[key] = value
            if len(self) > MAX_KEYS:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return value


class LocalState:
    """State of this process only (the embedded profile, and the fallback while Redis is down)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # expiry of first_seen / remember (tests pass a fake clock)
        self._buckets = _Lru()
        self._hits = _Lru()
        self._seen: dict[float, TtlSet] = {}
        self._kept: dict[float, TtlMap[str]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, burst: float, now: float) -> bool:
        with self._lock:
            bucket = self._buckets.touch(key, lambda: [burst, now])
            tokens, stamp = bucket
            if now > stamp:
                tokens, stamp = min(burst, tokens + (now - stamp) * rate), now
            allowed = tokens >= 1.0
            bucket[:] = [tokens - 1.0 if allowed else tokens, stamp]
            return allowed

    def hit(self, key: str, window_s: float, now: float) -> int:
        with self._lock:
            stamps: list[float] = self._hits.touch(key, list)
            stamps[:] = [t for t in stamps if now - t < window_s]
            stamps.append(now)
            return len(stamps)

    def first_seen(self, key: str, ttl_s: float) -> bool:
        with self._lock:
            seen = self._seen.get(ttl_s)
            if seen is None:
                seen = self._seen[ttl_s] = TtlSet(ttl_s, clock=self.clock)
            return seen.add(key)

    def remember(self, key: str, value: str, ttl_s: float) -> None:
        with self._lock:
            for ttl, kept in self._kept.items():
                if ttl != ttl_s:
                    kept.pop(key)
            kept = self._kept.get(ttl_s)
            if kept is None:
                kept = self._kept[ttl_s] = TtlMap(ttl_s, max_entries=MAX_KEYS, clock=self.clock)
            kept.set(key, value)

    def recall(self, key: str) -> str | None:
        with self._lock:
            for kept in self._kept.values():
                value = kept.get(key)
                if value is not None:
                    return value
            return None

    def pop(self, key: str) -> str | None:
        with self._lock:
            for kept in self._kept.values():
                value = kept.pop(key)
                if value is not None:  # remember keeps a key under one TTL only
                    return value
            return None


class RedisState:
    """State in Redis, shared by every process using the same URL and prefix; falls back to a
    :class:`LocalState` (fail open) while Redis cannot be reached."""

    def __init__(
        self,
        url: str,
        prefix: str = DEFAULT_PREFIX,
        retry_after_s: float = RETRY_AFTER_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.retry_after_s = retry_after_s
        self.timeout_s = timeout_s
        self.fallback = LocalState()
        self._client: Any = None
        self._script: Any = None
        self._down_until = 0.0  # monotonic; 0: Redis is believed up
        self._lock = threading.Lock()

    def _redis(self) -> Any:
        if self._client is None:
            import redis  # a dependency of rasa, so present wherever the channels run

            self._client = redis.Redis.from_url(
                self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
            )
            self._script = self._client.register_script(TOKEN_BUCKET_LUA)
        return self._client

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}:{kind}:{digest(key)}"

    def _call(self, remote: Callable[[Any], T], local: Callable[[], T]) -> T:
        """``remote(client)``, or ``local()`` when Redis failed within the last retry pause."""
        import redis

        if self._down_until and time.monotonic() < self._down_until:
            return local()
        try:
            result = remote(self._redis())
        except (redis.RedisError, OSError) as exc:
            with self._lock:
                first = not self._down_until
                self._down_until = time.monotonic() + self.retry_after_s
            if first:
                logger.warning(
                    "Redis for shared abuse limits is unreachable (%s: %s); failing open: "
                    "limits and redelivery checks are per replica until it is back",
                    type(exc).__name__,
                    exc,
                )
            return local()
        if self._down_until:
            with self._lock:
                self._down_until = 0.0
            logger.warning("Redis for shared abuse limits is reachable again; limits are shared")
        return result

    def take(self, key: str, rate: float, burst: float, now: float) -> bool:
        # A full refill takes burst/rate seconds; after that the bucket equals a new one.
        ttl_ms = int(1000 * (burst / rate if rate > 0 else 86400.0)) + 1000
        name = self._key("bucket", key)
        return self._call(
            lambda r: bool(
                self._script(keys=[name], args=[repr(rate), repr(burst), repr(now), ttl_ms])
            ),
            lambda: self.fallback.take(key, rate, burst, now),
        )

    def hit(self, key: str, window_s: float, now: float) -> int:
        name = self._key("hits", key)

        def remote(client: Any) -> int:
            with client.pipeline(transaction=True) as pipe:
                # Same window as LocalState: keeps stamps with now - t < window_s.
                pipe.zremrangebyscore(name, "-inf", repr(now - window_s))
                pipe.zadd(name, {uuid.uuid4().hex: now})
                pipe.zcard(name)
                pipe.pexpire(name, int(window_s * 1000) + 1000)
                return int(pipe.execute()[2])

        return self._call(remote, lambda: self.fallback.hit(key, window_s, now))

    def first_seen(self, key: str, ttl_s: float) -> bool:
        name = self._key("seen", key)
        return self._call(
            lambda r: bool(r.set(name, b"1", nx=True, px=max(1, int(ttl_s * 1000)))),
            lambda: self.fallback.first_seen(key, ttl_s),
        )

    def remember(self, key: str, value: str, ttl_s: float) -> None:
        name = self._key("kept", key)
        self._call(
            lambda r: r.set(name, value.encode(), px=max(1, int(ttl_s * 1000))),
            lambda: self.fallback.remember(key, value, ttl_s),
        )

    def recall(self, key: str) -> str | None:
        name = self._key("kept", key)

        def remote(client: Any) -> str | None:
            raw = client.get(name)
            return None if raw is None else raw.decode()

        # While Redis is down, what this replica kept meanwhile is still found.
        return self._call(remote, lambda: self.fallback.recall(key))

    def pop(self, key: str) -> str | None:
        name = self._key("kept", key)

        def remote(client: Any) -> str | None:
            raw = client.getdel(name)  # atomic: one replica gets the value, the others None
            return None if raw is None else raw.decode()

        # As recall: while Redis is down, what this replica kept meanwhile is still found.
        return self._call(remote, lambda: self.fallback.pop(key))


_shared: dict[tuple[str, str], RedisState] = {}
_shared_lock = threading.Lock()


def state_for(url: str, prefix: str = DEFAULT_PREFIX) -> State:
    """One :class:`RedisState` per URL and prefix in this process (one connection pool shared
    by the REST, socket.io and platform channels), or a new :class:`LocalState` for ``""``."""
    if not url:
        return LocalState()
    with _shared_lock:
        state = _shared.get((url, prefix))
        if state is None:
            state = _shared[(url, prefix)] = RedisState(url, prefix)
        return state
