"""Abuse limits and redelivery checks shared by Rasa replicas through the real Redis on
127.0.0.1:6379 (bot/channels/shared_state.py).

Two limiter instances with separate connections stand for two replicas behind the proxy: they
must enforce ONE limit. Each test uses its own key prefix. Skips when Redis is unreachable,
unless CI is set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import aiohttp
import pytest
import redis
from channel_kit import FakeBot, free_port, serve, signed
from redis_kit import URL

from bot.channels.ratelimit import ALLOW, RATE_LIMITED, REPEATED, SILENT, Limits, RateLimiter
from bot.channels.rest import RestInput
from bot.channels.shared_state import LocalState, RedisState, shared_redis_url
from bot.channels.telegram import TelegramInput


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def replicas(prefix: str, clock: Clock, **limits: Any) -> list[RateLimiter]:
    """Two limiters, each with its own Redis connection, as two Rasa processes have."""
    config = Limits(redis_url=URL, redis_key_prefix=prefix, **limits)
    return [RateLimiter(config, clock, RedisState(URL, prefix)) for _ in range(2)]


def test_two_replicas_enforce_one_sender_limit(prefix: str) -> None:
    clock = Clock()
    a, b = replicas(prefix, clock, sender_per_minute=60, sender_burst=4, repeat_limit=0)
    verdicts = [(a if i % 2 else b).check("s", None, f"q{i}") for i in range(6)]
    assert verdicts == [ALLOW] * 4 + [RATE_LIMITED] * 2  # in memory each would allow 4
    assert a.check("other", None, "q") == ALLOW  # per sender
    clock.now += 1.0  # 60/min: one token per second, whichever replica takes it
    assert b.check("s", None, "q") == ALLOW
    assert a.check("s", None, "q") == RATE_LIMITED


def test_two_replicas_enforce_one_ip_limit(prefix: str) -> None:
    a, b = replicas(prefix, Clock(), ip_per_minute=60, ip_burst=3, repeat_limit=0)
    verdicts = [(a, b)[i % 2].check(f"s{i}", "203.0.113.9", "q") for i in range(5)]
    assert verdicts == [ALLOW] * 3 + [RATE_LIMITED] * 2


def test_repeat_detection_is_shared(prefix: str) -> None:
    clock = Clock()
    a, b = replicas(prefix, clock, repeat_limit=3, repeat_window_s=30)
    assert [a.check("s", None, "hi"), b.check("s", None, "Hi "), a.check("s", None, "HI")] == [
        ALLOW,
        ALLOW,
        REPEATED,
    ]
    assert b.check("s", None, "hi") == SILENT
    assert b.check("s", None, "something else") == ALLOW
    clock.now += 31  # the window passed
    assert a.check("s", None, "hi") == ALLOW


def test_concurrent_checks_never_exceed_the_burst(prefix: str) -> None:
    """Many replicas taking tokens at the same moment: the Lua script makes each take atomic."""
    import threading

    clock = Clock()
    config = Limits(redis_url=URL, redis_key_prefix=prefix, sender_burst=25, repeat_limit=0)
    limiters = [RateLimiter(config, clock, RedisState(URL, prefix)) for _ in range(4)]
    verdicts: list[str] = []
    start = threading.Barrier(8)

    def run(limiter: RateLimiter) -> None:
        start.wait()
        for i in range(10):
            verdicts.append(limiter.check("busy", None, f"q{i}"))

    threads = [threading.Thread(target=run, args=(lim,)) for lim in limiters for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verdicts.count(ALLOW) == 25 and verdicts.count(RATE_LIMITED) == 55


def test_keys_expire_and_hold_no_citizen_text(prefix: str) -> None:
    (a, _) = replicas(prefix, Clock(), sender_burst=15, sender_per_minute=30)
    a.check("+15551234567", "203.0.113.9", "my passport number is X1234567")
    client = redis.Redis.from_url(URL)
    keys = [k.decode() for k in client.scan_iter(f"{prefix}:*")]
    assert len(keys) == 3  # ip bucket, sender bucket, repeat counter
    for key in keys:
        assert 0 < client.pttl(key) <= 61_000  # 15 tokens at 0.5/s refill in 30 s; window 30 s
        assert "1555" not in key and "203.0" not in key and "passport" not in key


def test_redis_down_fails_open_to_per_process_limits(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listens on the port: every check is answered, once with a WARNING, and the
    process falls back to its own (per-replica) counts instead of allowing everything."""
    dead = f"redis://127.0.0.1:{free_port()}/2"
    limiter = RateLimiter(
        Limits(redis_url=dead, sender_burst=3, repeat_limit=0), Clock(), RedisState(dead)
    )
    with caplog.at_level(logging.WARNING, logger="bot.channels.shared_state"):
        verdicts = [limiter.check("s", None, f"q{i}") for i in range(5)]
    assert verdicts == [ALLOW] * 3 + [RATE_LIMITED] * 2
    warnings = [r for r in caplog.records if "failing open" in r.getMessage()]
    assert len(warnings) == 1  # one per outage, not one per message


def test_redis_recovery_shares_limits_again(prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    state = RedisState(URL, prefix, retry_after_s=0.0)
    good = state._redis()
    state._client = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/2", socket_timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="bot.channels.shared_state"):
        assert state.first_seen("m1", 60) is True  # Redis down: local memory
        state._client = good  # Redis back
        assert state.first_seen("m2", 60) is True
    assert RedisState(URL, prefix).first_seen("m2", 60) is False  # really stored in Redis
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_platform_redelivery_to_another_replica_is_dropped(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Telegram update redelivered to the other replica is not answered twice."""
    monkeypatch.setenv("ASKAGENCY_RATE_LIMIT_REDIS_URL", URL)
    replica_a, replica_b = TelegramInput(), TelegramInput()
    for replica in (replica_a, replica_b):  # own connection each, test prefix
        replica.state = RedisState(URL, prefix)
    key = f"telegram\x00update-{uuid.uuid4().hex}"
    assert replica_a.state.first_seen(key, 60) is True
    assert replica_b.state.first_seen(key, 60) is False
    assert isinstance(TelegramInput().state, RedisState)  # selected from the environment


def test_backend_selection_from_configuration() -> None:
    assert shared_redis_url(None, {}) == ""
    scale = {"ASKAGENCY_REDIS_HOST": "redis", "ASKAGENCY_REDIS_PORT": "6380"}
    assert shared_redis_url(None, scale) == "redis://redis:6380/2"  # the scale profile's Redis
    explicit = {**scale, "ASKAGENCY_RATE_LIMIT_REDIS_URL": "redis://r:1/5"}
    assert shared_redis_url(None, explicit) == "redis://r:1/5"
    assert shared_redis_url("memory", scale) == ""
    assert Limits.from_credentials(None, environ=scale).redis_url == "redis://redis:6380/2"
    assert Limits.from_credentials(None, environ={}).redis_url == ""
    assert isinstance(RateLimiter(Limits()).state, LocalState)


async def _post(base: str, body: dict[str, Any]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/webhooks/rest/webhook", json=body) as resp,
    ):
        json.loads(await resp.text())
        return resp.status


def test_two_rest_servers_share_one_limit_over_http(prefix: str) -> None:
    """Two real Sanic servers mounting the REST channel (two replicas) and one Redis."""
    bot = FakeBot()
    block = {"sender_burst": 3, "sender_per_minute": 1, "redis_url": URL}
    block["redis_key_prefix"] = prefix
    channels = [RestInput.from_credentials({"rate_limit": block}) for _ in range(2)]

    async def scenario() -> list[int]:
        servers = [await serve(bot, channel) for channel in channels]
        try:
            return [
                await _post(servers[i % 2][1], signed("+15551234567", message=f"q{i}"))
                for i in range(5)
            ]
        finally:
            for server, _ in servers:
                server.close()
                await server.wait_closed()

    assert asyncio.run(scenario()) == [200, 200, 200, 429, 429]
    assert [m.text for m in bot.seen] == ["q0", "q1", "q2"]
