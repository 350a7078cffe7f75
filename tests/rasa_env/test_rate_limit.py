"""bot/channels/ratelimit.py: token buckets, repeats, configuration, and the REST and socket.io
channels enforcing them over real HTTP / socket.io."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from channel_kit import FakeBot, SocketCitizen, serve, signed

from askagency.client_address import parse_networks
from bot.channels.common import ConfigError
from bot.channels.ratelimit import (
    ALLOW,
    RATE_LIMITED,
    REPEATED,
    SILENT,
    Limits,
    RateLimiter,
    client_ip,
)
from bot.channels.rest import RestInput
from bot.channels.socketio import SocketIOInput


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sender_bucket_allows_a_burst_then_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(Limits(sender_per_minute=60, sender_burst=3, repeat_limit=0), clock)
    assert [limiter.check("s", None, f"q{i}") for i in range(4)] == [ALLOW] * 3 + [RATE_LIMITED]
    assert limiter.check("other", None, "q") == ALLOW  # per sender
    clock.now += 1.0  # 60/min = one token per second
    assert limiter.check("s", None, "q9") == ALLOW
    assert limiter.check("s", None, "q10") == RATE_LIMITED


def test_ip_bucket_spans_senders_and_exempts_loopback() -> None:
    limiter = RateLimiter(Limits(ip_per_minute=60, ip_burst=2, exempt_ips=frozenset({"::1"})))
    assert [limiter.check(f"s{i}", "203.0.113.9", "q") for i in range(3)] == [
        ALLOW,
        ALLOW,
        RATE_LIMITED,
    ]
    assert all(limiter.check(f"t{i}", "::1", "q") == ALLOW for i in range(10))


def test_identical_text_is_answered_then_one_notice_then_silence() -> None:
    clock = Clock()
    limiter = RateLimiter(Limits(repeat_limit=3, repeat_window_s=30), clock)
    verdicts = [limiter.check("s", None, text) for text in ("Hi", "hi ", " HI", "hi", "hi")]
    assert verdicts == [ALLOW, ALLOW, REPEATED, SILENT, SILENT]
    assert limiter.check("s", None, "something else") == ALLOW
    assert limiter.check("other", None, "hi") == ALLOW
    clock.now += 31  # the window passed
    assert limiter.check("s", None, "hi") == ALLOW


def test_disabled_limits_allow_everything() -> None:
    limiter = RateLimiter(Limits(enabled=False, sender_burst=1))
    assert {limiter.check("s", "1.2.3.4", "x") for _ in range(50)} == {ALLOW}


def test_configuration_from_credentials_and_environment() -> None:
    limits = Limits.from_credentials(
        {"sender_burst": 5, "exempt_ips": "10.0.0.1, 10.0.0.2", "repeat_limit": "4"},
        environ={"ASKAGENCY_RATE_LIMIT_SENDER_BURST": "7"},
    )
    assert limits.sender_burst == 7.0  # the environment wins
    assert limits.exempt_ips == frozenset({"10.0.0.1", "10.0.0.2"})
    assert limits.repeat_limit == 4
    assert Limits.from_credentials(None, environ={}) == Limits()


def test_client_ip_trusts_forwarded_for_only_from_our_proxies() -> None:
    trusted = parse_networks("127.0.0.1")
    assert client_ip("127.0.0.1", "198.51.100.1, 203.0.113.5", trusted) == "203.0.113.5"
    assert client_ip("198.51.100.7", "1.1.1.1", trusted) == "198.51.100.7"  # spoof ignored
    assert client_ip("127.0.0.1", None, trusted) == "127.0.0.1"


def test_client_ip_takes_the_right_most_hop_outside_our_proxy_ranges() -> None:
    """M2: behind a chain of our own proxies (compose's edge, an Ingress) the client is the
    right-most untrusted hop; what the client wrote to the left of it is not its key."""
    trusted = parse_networks("127.0.0.1/32, 10.0.0.0/8, fd00::/8")
    # client 203.0.113.9 claims to be 1.2.3.4; ingress 10.1.1.1 appended the real address,
    # then the internal proxy 10.0.0.5 appended the ingress.
    chain = "1.2.3.4, 203.0.113.9, 10.1.1.1"
    assert client_ip("10.0.0.5", chain, trusted) == "203.0.113.9"
    assert client_ip("::ffff:10.0.0.5", chain, trusted) == "203.0.113.9"  # IPv4-mapped peer
    assert client_ip("10.0.0.5", "garbage, 10.1.1.1", trusted) == "10.1.1.1"
    assert client_ip("203.0.113.77", chain, trusted) == "203.0.113.77"  # untrusted peer
    limits = Limits.from_credentials(None, environ={"ASKAGENCY_TRUSTED_PROXIES": "10.0.0.0/8"})
    assert client_ip("10.9.9.9", "198.51.100.2", limits.trusted_proxies) == "198.51.100.2"
    with pytest.raises(ConfigError, match="not-an-ip"):
        Limits.from_credentials({"trusted_proxies": "not-an-ip"}, environ={})


async def _post(base: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/webhooks/rest/webhook", json=body, headers=headers) as resp,
    ):
        return resp.status, json.loads(await resp.text()), resp.headers.get("Retry-After")


def test_rest_channel_enforces_limits_over_http() -> None:
    bot = FakeBot()
    channel = RestInput.from_credentials(
        {"rate_limit": {"sender_burst": 2, "sender_per_minute": 1, "ip_burst": 3}}
    )

    async def scenario() -> list[Any]:
        server, base = await serve(bot, channel)
        try:
            results = [await _post(base, signed("a", message=f"q{i}")) for i in range(3)]
            # Behind our proxy (loopback): the forwarded client address is limited per IP.
            proxied = {"X-Forwarded-For": "203.0.113.50"}
            for i in range(4):
                results.append(await _post(base, signed(f"p{i}", message="x"), proxied))
            return results
        finally:
            server.close()
            await server.wait_closed()

    results = asyncio.run(scenario())
    assert [r[0] for r in results[:3]] == [200, 200, 429]
    status, body, retry_after = results[2]
    assert retry_after == "60"
    assert body == [
        {
            "recipient_id": "a",
            "text": body[0]["text"],
            "custom": {"type": "fallback", "reason": "rate_limited"},
        }
    ]
    assert "slow down" in body[0]["text"]
    assert [r[0] for r in results[3:]] == [200, 200, 200, 429]
    assert [m.text for m in bot.seen] == ["q0", "q1", "x", "x", "x"]  # Rasa never saw the rest


def test_clients_behind_a_trusted_proxy_range_get_their_own_buckets() -> None:
    """M2: behind a chain of our proxies (an ingress on 10.x that appends the client, then the
    local proxy on loopback that appends the ingress), each client address has its own bucket
    (old code: every citizen shared the ingress's bucket), and a client cannot pick its key by
    writing its own X-Forwarded-For entries."""
    bot = FakeBot()
    block = {
        "ip_burst": 2,
        "ip_per_minute": 1,
        "exempt_ips": "",
        "trusted_proxies": "127.0.0.0/8,10.0.0.0/8",
    }
    channel = RestInput.from_credentials({"rate_limit": block})

    async def scenario() -> list[int]:
        server, base = await serve(bot, channel)
        try:
            statuses = []
            for i, chain in enumerate(
                [
                    "203.0.113.1, 10.1.1.1",
                    "203.0.113.1, 10.1.1.1",
                    "198.51.100.99, 203.0.113.1, 10.1.1.1",  # A pretends to be someone else
                    "203.0.113.2, 10.1.1.1",  # another citizen behind the same ingress
                ]
            ):
                status, _, _ = await _post(
                    base, signed(f"m2-{i}", message="hi"), {"X-Forwarded-For": chain}
                )
                statuses.append(status)
            return statuses
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(scenario()) == [200, 200, 429, 200]


def test_rest_channel_does_not_re_answer_a_loop() -> None:
    bot = FakeBot()
    channel = RestInput.from_credentials({})

    async def scenario() -> list[Any]:
        server, base = await serve(bot, channel)
        try:
            return [await _post(base, signed("loop", message="hello")) for _ in range(5)]
        finally:
            server.close()
            await server.wait_closed()

    results = asyncio.run(scenario())
    assert [r[0] for r in results] == [200] * 5
    assert results[2][1][0]["custom"] == {"type": "fallback", "reason": "repeated"}
    assert results[3][1] == [] and results[4][1] == []
    assert len(bot.seen) == 2


def test_socketio_channel_answers_politely_when_rate_limited() -> None:
    bot = FakeBot()
    channel = SocketIOInput.from_credentials(
        {"session_persistence": True, "rate_limit": {"sender_burst": 1, "sender_per_minute": 1}}
    )

    async def scenario() -> list[Any]:
        server, base = await serve(bot, channel)
        citizen = SocketCitizen()
        try:
            await citizen.start(base, "rl-1")
            for text in ("first", "second"):
                await citizen.say(text)
            return await citizen.wait_for(2)
        finally:
            await citizen.close()
            server.close()
            await server.wait_closed()

    received = asyncio.run(scenario())
    assert received[0]["text"] == "You said: first"
    assert received[1]["custom"] == {"type": "fallback", "reason": "rate_limited"}
    assert [m.text for m in bot.seen] == ["first"]


@pytest.mark.parametrize("bad", [{"enabled": "maybe"}, {"sender_burst": "lots"}])
def test_bad_configuration_is_a_clear_error(bad: dict[str, Any]) -> None:
    from bot.channels.common import ConfigError

    with pytest.raises(ConfigError):
        Limits.from_credentials(bad, environ={})
