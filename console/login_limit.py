"""Per-address limit on POST /console/login, on top of the per-account lock-out.

The lock-out (console/auth.py) stops guessing one account's password; this stops one client
from trying many accounts (password spraying). A token bucket per client address, in memory per
console process: ``login_burst`` attempts at once, then ``login_per_minute``. Over the limit the
client gets 429 with ``Retry-After`` and the form is not even checked.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

from askagency.client_address import Network, parse_networks
from askagency.client_address import client_address as shared_client_address
from askagency.config import Settings

MAX_ADDRESSES = 10_000
# The trusted proxy addresses, parsed once; the login view keys failures by the same address.
TRUSTED_KEY = web.AppKey("trusted_proxies", tuple)


class LoginLimiter:
    def __init__(
        self, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst, self.rate, self.clock = float(burst), per_minute / 60.0, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, address: str) -> float:
        """0 when the attempt may go ahead, else the seconds until the next one may."""
        now = self.clock()
        with self._lock:
            tokens, stamp = self._buckets.pop(address, (self.burst, now))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate if self.rate > 0 else 3600.0
            self._buckets[address] = (tokens, now)
            if len(self._buckets) > MAX_ADDRESSES:
                self._buckets.popitem(last=False)
        return wait


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The client behind our trusted proxies (askagency/client_address.py, one rule for all)."""
    return shared_client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted)


def trusted_proxies(settings: Settings) -> tuple[Network, ...]:
    """Our own reverse proxies (addresses or CIDR ranges), parsed once per app."""
    return parse_networks(settings.trusted_proxies)


def login_limit_middleware(settings: Settings):  # type: ignore[no-untyped-def]
    limiter = LoginLimiter(settings.login_burst, settings.login_per_minute)
    trusted = trusted_proxies(settings)

    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.method == "POST" and request.path == "/console/login":
            wait = limiter.take(client_address(request, trusted))
            if wait > 0:
                raise web.HTTPTooManyRequests(
                    text="Too many login attempts from your address. Please wait and try again.",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
        return await handler(request)

    return middleware
