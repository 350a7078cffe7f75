"""A tiny round-robin HTTP reverse proxy for the scale profile.

Rasa accepts one ``action_endpoint`` URL and channels post to one webhook address, yet the scale
profile runs several action servers and several Rasa replicas. In containers a Kubernetes Service
or any load balancer does this job (deploy/kubernetes.md); on one machine without one, this
process does: it spreads requests over its upstreams in turn and, when an upstream refuses the
connection (restarting, crashed), retries the next one, so a replica going away costs no request.
A request that reached an upstream is never retried: Rasa turns are not idempotent.

Run: ``python -m deploy.proxy --listen 0.0.0.0:8443 --upstream http://127.0.0.1:5005 ...``.
``GET /_proxy/health`` reports the proxy's own view of its upstreams (counts, no addresses).

Only allow-listed path prefixes are forwarded; everything else is answered 404 here. The default
is the public face of Rasa: ``/webhooks/`` (REST and platform channels), ``/socket.io/`` (the
widget) and ``/health``. Rasa's HTTP API (``/conversations/...``, ``/model``, ``/status``,
``/version``, ``/``) shares Rasa's listener, so a proxy that other machines reach must never
forward it. ``--allow PREFIX`` (repeatable) chooses other prefixes (the action servers'
balancer: ``/webhook``, ``/health``, ``/ready``); ``--allow-all`` is for a balancer that is itself
internal (loopback or a private network), such as the one the console reaches Rasa's API through.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time
from dataclasses import dataclass, field

from aiohttp import ClientConnectorError, ClientSession, ClientTimeout, TCPConnector, web

logger = logging.getLogger("deploy.proxy")

HEALTH_PATH = "/_proxy/health"
# What may reach Rasa from the internet (docs/security.md): channels, the widget, a probe.
PUBLIC_PREFIXES = ("/webhooks/", "/socket.io/", "/health")
SERVER_HEADER = "askagency-proxy"  # aiohttp's default names its version
SESSION_KEY = web.AppKey("session", ClientSession)
# Headers that describe one hop, not the message (RFC 9110 section 7.6.1), plus those aiohttp
# recomputes for the body it sends. Bodies pass through undecoded, so Content-Encoding stays.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass
class Upstream:
    """One backend; ``down_until`` skips it for a while after a refused connection."""

    base_url: str
    down_until: float = 0.0
    requests: int = 0
    failures: int = 0

    def available(self, now: float) -> bool:
        return now >= self.down_until


@dataclass
class Balancer:
    """Round-robin choice among the upstreams that are not marked down."""

    upstreams: list[Upstream]
    down_seconds: float = 2.0
    _cycle: itertools.cycle[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.upstreams:
            raise ValueError("the proxy needs at least one upstream")
        self._cycle = itertools.cycle(range(len(self.upstreams)))

    def order(self) -> list[Upstream]:
        """Every upstream once, starting with the next in turn; marked-down ones last, so a
        request still has somewhere to go when all of them were marked down."""
        start = next(self._cycle)
        rotated = self.upstreams[start:] + self.upstreams[:start]
        now = time.monotonic()
        return [u for u in rotated if u.available(now)] + [
            u for u in rotated if not u.available(now)
        ]

    def mark_down(self, upstream: Upstream) -> None:
        upstream.failures += 1
        upstream.down_until = time.monotonic() + self.down_seconds


def path_allowed(raw_path: str, allow: tuple[str, ...] | None) -> bool:
    """Whether the request path (raw, as received) is under an allowed prefix.

    Checked on the raw path *and* refused when it holds anything an upstream could decode or
    normalise into another path (``..`` segments, percent-escapes of ``/ . \\``, backslashes),
    so ``/webhooks/../conversations/x/tracker`` cannot slip through. ``allow`` None: all paths.
    A prefix ending without ``/`` matches itself exactly or followed by ``/``.
    """
    if allow is None:
        return True
    lowered = raw_path.lower()
    if "\\" in raw_path or any(e in lowered for e in ("%2f", "%2e", "%5c", "%00")):
        return False
    if any(seg in (".", "..") for seg in raw_path.split("/")):
        return False
    for prefix in allow:
        if prefix.endswith("/"):
            if raw_path.startswith(prefix) or raw_path == prefix.rstrip("/"):
                return True
        elif raw_path == prefix or raw_path.startswith(prefix + "/"):
            return True
    return False


def forward_headers(request: web.Request) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    peer = request.remote or ""
    prior = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    return headers


def create_app(
    upstreams: list[str],
    timeout_s: float = 120.0,
    down_s: float = 2.0,
    allow: tuple[str, ...] | None = PUBLIC_PREFIXES,
) -> web.Application:
    """The proxy as an aiohttp application (tests run it in-process); ``allow``: forwarded
    path prefixes, None for every path (internal balancers only)."""
    balancer = Balancer([Upstream(u.rstrip("/")) for u in upstreams], down_seconds=down_s)
    app = web.Application(client_max_size=16 * 1024 * 1024)

    async def server_header(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = SERVER_HEADER

    async def open_session(app: web.Application) -> None:
        app[SESSION_KEY] = ClientSession(
            connector=TCPConnector(limit=0, keepalive_timeout=30),
            timeout=ClientTimeout(total=timeout_s),
            auto_decompress=False,
        )

    async def close_session(app: web.Application) -> None:
        await app[SESSION_KEY].close()

    async def health(_request: web.Request) -> web.Response:
        now = time.monotonic()
        return web.json_response(
            {
                "status": "ok",
                "upstreams": [
                    {
                        "index": i,
                        "available": u.available(now),
                        "requests": u.requests,
                        "failures": u.failures,
                    }
                    for i, u in enumerate(balancer.upstreams)
                ],
            }
        )

    async def proxy(request: web.Request) -> web.StreamResponse:
        # The request line as received and as aiohttp parsed it: both must be allowed.
        if not (
            path_allowed(request.raw_path.split("?", 1)[0], allow)
            and path_allowed(request.rel_url.raw_path, allow)
        ):
            return web.json_response({"error": "not found"}, status=404)
        body = await request.read()
        headers = forward_headers(request)
        session = request.app[SESSION_KEY]
        refused: list[str] = []
        for upstream in balancer.order():
            url = upstream.base_url + request.rel_url.raw_path_qs
            try:
                async with session.request(
                    request.method, url, headers=headers, data=body or None, allow_redirects=False
                ) as resp:
                    payload = await resp.read()
                    upstream.requests += 1
                    out_headers = {
                        k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP
                    }
                    return web.Response(status=resp.status, body=payload, headers=out_headers)
            except ClientConnectorError as exc:
                # Nothing was sent: safe to try the next upstream.
                balancer.mark_down(upstream)
                refused.append(f"{upstream.base_url}: {exc.os_error or exc}")
                logger.warning("upstream %s refused the connection; trying the next", url)
            except TimeoutError:
                logger.warning("upstream %s timed out", url)
                return web.json_response({"error": "upstream timed out"}, status=504)
        logger.error("no upstream accepted the connection: %s", "; ".join(refused))
        return web.json_response({"error": "no upstream accepted the connection"}, status=502)

    app.on_response_prepare.append(server_header)
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen wants HOST:PORT, got {value!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Round-robin reverse proxy (scale profile).")
    parser.add_argument("--listen", type=parse_listen, required=True, help="HOST:PORT")
    parser.add_argument(
        "--upstream", action="append", required=True, help="base URL; repeat for each backend"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    paths = parser.add_mutually_exclusive_group()
    paths.add_argument(
        "--allow",
        action="append",
        metavar="PREFIX",
        help=f"forward only paths under PREFIX (repeat); default: {' '.join(PUBLIC_PREFIXES)}",
    )
    paths.add_argument(
        "--allow-all",
        action="store_true",
        help="forward every path: only for a proxy that is not reachable from outside",
    )
    args = parser.parse_args(argv)
    allow = None if args.allow_all else tuple(args.allow or PUBLIC_PREFIXES)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    host, port = args.listen
    logger.info(
        "proxy on http://%s:%d -> %s, forwarding %s",
        host,
        port,
        ", ".join(args.upstream),
        "every path" if allow is None else " ".join(allow),
    )
    web.run_app(
        create_app(args.upstream, timeout_s=args.timeout, allow=allow),
        host=host,
        port=port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
