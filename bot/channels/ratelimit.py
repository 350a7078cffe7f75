"""Abuse limits for the REST and socket.io channels: per-sender and per-IP token buckets, and
no re-answering of the same text in a loop.

In memory, per Rasa process (the scale profile's N replicas each allow the configured rate; the
numbers are per replica). Configuration: keys under the channel in bot/credentials.yml, or
``ASKAGENCY_RATE_LIMIT_<KEY>`` in the environment (environment wins):

* ``sender_per_minute`` (30) / ``sender_burst`` (15): one conversation;
* ``ip_per_minute`` (300) / ``ip_burst`` (100): one client address;
* ``exempt_ips`` ("127.0.0.1,::1"): addresses never limited per IP: the operator's own tools,
  tests and the local proxy. Behind a reverse proxy on such an address the client address is
  taken from ``X-Forwarded-For`` (last entry, the one the proxy added) and limited;
* ``repeat_limit`` (3) / ``repeat_window_s`` (30): the N-th identical text of one sender within
  the window gets one short notice, further copies get no reply until the window passes;
* ``enabled`` (true).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.channels.common import Option, resolve_options

OPTIONS = (
    Option("enabled", True, bool),
    Option("sender_per_minute", 30.0, float),
    Option("sender_burst", 15.0, float),
    Option("ip_per_minute", 300.0, float),
    Option("ip_burst", 100.0, float),
    Option("exempt_ips", "127.0.0.1,::1"),
    Option("repeat_limit", 3, int),
    Option("repeat_window_s", 30.0, float),
)
MAX_KEYS = 50_000  # bounded memory: the least recently seen keys are forgotten first

ALLOW = "allow"
RATE_LIMITED = "rate_limited"
REPEATED = "repeated"  # first blocked copy: a short notice
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
    return {"text": TEXTS[reason], "custom": {"type": "fallback", "reason": reason}}


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; one message costs one token."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, burst, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class Limits:
    enabled: bool = True
    sender_per_minute: float = 30.0
    sender_burst: float = 15.0
    ip_per_minute: float = 300.0
    ip_burst: float = 100.0
    exempt_ips: frozenset[str] = frozenset({"127.0.0.1", "::1"})
    repeat_limit: int = 3
    repeat_window_s: float = 30.0

    @classmethod
    def from_credentials(
        cls, credentials: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
    ) -> Limits:
        values = resolve_options(("RATE_LIMIT",), credentials, OPTIONS, environ)
        exempt = frozenset(ip.strip() for ip in str(values.pop("exempt_ips")).split(",") if ip)
        return cls(exempt_ips=exempt, **values)


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


class RateLimiter:
    """Decides, before Rasa sees a message, whether it is processed."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._senders = _Lru()
        self._ips = _Lru()
        self._repeats = _Lru()
        self._lock = threading.Lock()

    def check(self, sender: str | None, ip: str | None, text: str) -> str:
        """``ALLOW``, ``RATE_LIMITED``, ``REPEATED`` (notice) or ``SILENT`` (no reply)."""
        limits = self.limits
        if not limits.enabled:
            return ALLOW
        now = self.clock()
        with self._lock:
            if ip and ip not in limits.exempt_ips:
                bucket = self._ips.touch(
                    ip, lambda: TokenBucket(limits.ip_per_minute / 60, limits.ip_burst, now)
                )
                if not bucket.take(now):
                    return RATE_LIMITED
            if sender:
                bucket = self._senders.touch(
                    sender,
                    lambda: TokenBucket(limits.sender_per_minute / 60, limits.sender_burst, now),
                )
                if not bucket.take(now):
                    return RATE_LIMITED
                return self._repeat(sender, text, now)
        return ALLOW

    def _repeat(self, sender: str, text: str, now: float) -> str:
        limits = self.limits
        if limits.repeat_limit < 2:
            return ALLOW
        key = f"{sender}\x00{' '.join(text.lower().split())}"
        stamps: list[float] = self._repeats.touch(key, list)
        stamps[:] = [t for t in stamps if now - t < limits.repeat_window_s]
        stamps.append(now)
        if len(stamps) < limits.repeat_limit:
            return ALLOW
        return REPEATED if len(stamps) == limits.repeat_limit else SILENT


def client_ip(remote: str | None, forwarded_for: str | None, trusted: frozenset[str]) -> str:
    """The address to limit: ``X-Forwarded-For``'s last entry when the direct peer is one of
    our own (exempt) proxies, otherwise the peer itself (a header from anyone else is ignored,
    so clients cannot choose their own key)."""
    remote = remote or ""
    if remote in trusted and forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return remote
