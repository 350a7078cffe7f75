"""Abuse limits for the REST and socket.io channels: per-sender and per-IP token buckets, and
no re-answering of the same text in a loop.

The counts live in Redis when one is configured, shared by every Rasa replica of the scale
profile (one limit for the whole service), else in this process (bot/channels/shared_state.py;
Redis down: fail open to per-process counts). Configuration: keys under the channel in
bot/credentials.yml, or ``ASKAGENCY_RATE_LIMIT_<KEY>`` in the environment (environment wins):

* ``sender_per_minute`` (30) / ``sender_burst`` (15): one conversation;
* ``ip_per_minute`` (300) / ``ip_burst`` (100): one client address;
* ``exempt_ips`` ("127.0.0.1,::1"): client addresses never limited per IP: the operator's own
  tools and tests;
* ``trusted_proxies`` (unset: ``ASKAGENCY_TRUSTED_PROXIES``, else loopback): addresses or CIDR
  ranges of our own reverse proxies (compose's ``rasa-lb`` network, a k8s Ingress). Behind them
  the client is the right-most ``X-Forwarded-For`` hop that is not one of them
  (askagency/client_address.py); the header from any other peer is ignored;
* ``repeat_limit`` (3) / ``repeat_window_s`` (30): the N-th identical text of one sender within
  the window gets one short notice, further copies get no reply until the window passes;
* ``redis_url`` (unset): where the shared counts live; unset: the scale profile's Redis
  (``ASKAGENCY_REDIS_HOST``/``_PORT``, db 2) when set, else memory; ``memory`` forces memory;
* ``redis_key_prefix`` ("askagency:abuse");
* ``enabled`` (true).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from askagency.bot_messages import FallbackReason, fallback
from askagency.client_address import DEFAULT_TRUSTED_PROXIES, Network, parse_networks
from askagency.client_address import client_address as _client_address
from bot.channels.common import ConfigError, Option, resolve_options
from bot.channels.shared_state import DEFAULT_PREFIX, State, shared_redis_url, state_for

OPTIONS = (
    Option("enabled", True, bool),
    Option("sender_per_minute", 30.0, float),
    Option("sender_burst", 15.0, float),
    Option("ip_per_minute", 300.0, float),
    Option("ip_burst", 100.0, float),
    Option("exempt_ips", "127.0.0.1,::1"),
    Option("trusted_proxies", ""),
    Option("repeat_limit", 3, int),
    Option("repeat_window_s", 30.0, float),
    Option("redis_url", ""),
    Option("redis_key_prefix", DEFAULT_PREFIX),
)

ALLOW = "allow"
RATE_LIMITED = FallbackReason.RATE_LIMITED.value
REPEATED = FallbackReason.REPEATED.value  # first blocked copy: a short notice
SILENT = "silent"  # later copies: no reply

TEXTS = {
    RATE_LIMITED: (
        "You're sending messages faster than I can answer. Please slow down and try again "
        "in a minute."
    ),
    REPEATED: (
        "I've received that same message several times. I answered it above; please "
        "rephrase it or ask to talk to a person."
    ),
}


def notice(reason: str) -> dict[str, Any]:
    """The one bot message a blocked citizen gets (same shape as every bot message)."""
    return {"text": TEXTS[reason], "custom": fallback(FallbackReason(reason))}


@dataclass(frozen=True)
class Limits:
    enabled: bool = True
    sender_per_minute: float = 30.0
    sender_burst: float = 15.0
    ip_per_minute: float = 300.0
    ip_burst: float = 100.0
    exempt_ips: frozenset[str] = frozenset({"127.0.0.1", "::1"})
    trusted_proxies: tuple[Network, ...] = parse_networks(DEFAULT_TRUSTED_PROXIES)
    repeat_limit: int = 3
    repeat_window_s: float = 30.0
    redis_url: str = ""  # "": counts in this process
    redis_key_prefix: str = DEFAULT_PREFIX

    @classmethod
    def from_credentials(
        cls, credentials: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
    ) -> Limits:
        values = resolve_options(("RATE_LIMIT",), credentials, OPTIONS, environ)
        exempt = frozenset(ip.strip() for ip in str(values.pop("exempt_ips")).split(",") if ip)
        environ = os.environ if environ is None else environ
        proxies = str(values.pop("trusted_proxies") or "").strip()
        proxies = proxies or environ.get("ASKAGENCY_TRUSTED_PROXIES", "").strip()
        try:
            values["trusted_proxies"] = parse_networks(proxies or DEFAULT_TRUSTED_PROXIES)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        values["redis_url"] = shared_redis_url(values["redis_url"], environ)
        return cls(exempt_ips=exempt, **values)


class RateLimiter:
    """Decides, before Rasa sees a message, whether it is processed.

    ``clock`` is wall-clock time: with Redis, buckets are shared between processes (and hosts),
    so their timestamps must be comparable; a clock stepping back never adds tokens.
    """

    def __init__(
        self,
        limits: Limits,
        clock: Callable[[], float] = time.time,
        state: State | None = None,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.state = state or state_for(limits.redis_url, limits.redis_key_prefix)

    def check(self, sender: str | None, ip: str | None, text: str) -> str:
        """``ALLOW``, ``RATE_LIMITED``, ``REPEATED`` (notice) or ``SILENT`` (no reply)."""
        limits = self.limits
        if not limits.enabled:
            return ALLOW
        now = self.clock()
        ip_rate = limits.ip_per_minute / 60
        if (
            ip
            and ip not in limits.exempt_ips
            and not self.state.take(f"ip\x00{ip}", ip_rate, limits.ip_burst, now)
        ):
            return RATE_LIMITED
        if sender:
            rate = limits.sender_per_minute / 60
            if not self.state.take(f"sender\x00{sender}", rate, limits.sender_burst, now):
                return RATE_LIMITED
            return self._repeat(sender, text, now)
        return ALLOW

    def _repeat(self, sender: str, text: str, now: float) -> str:
        limits = self.limits
        if limits.repeat_limit < 2:
            return ALLOW
        key = f"{sender}\x00{' '.join(text.lower().split())}"
        count = self.state.hit(key, limits.repeat_window_s, now)
        if count < limits.repeat_limit:
            return ALLOW
        return REPEATED if count == limits.repeat_limit else SILENT


def limiter_for(credentials: Any) -> RateLimiter:
    """The limiter of a channel, from the ``rate_limit:`` block under it in credentials.yml
    (``credentials`` may be None or anything else when the channel has no block)."""
    block = credentials.get("rate_limit") if isinstance(credentials, dict) else None
    return RateLimiter(Limits.from_credentials(block))


def client_ip(remote: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The address to limit: the right-most ``X-Forwarded-For`` hop that is not one of our
    trusted proxies when the direct peer is one, otherwise the peer itself (a header from
    anyone else is ignored, so clients cannot choose their own key)."""
    return _client_address(remote, forwarded_for, trusted)
