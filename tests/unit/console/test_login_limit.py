"""Per-address limit on POST /console/login (console/login_limit.py) over real HTTP."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from askagency.config import Settings
from console.app import create_app
from console.login_limit import LoginLimiter
from tests.unit.console.test_auth import PASSWORD, users  # noqa: F401 (fixture)


def test_bucket_allows_a_burst_then_paces() -> None:
    now = [100.0]
    limiter = LoginLimiter(burst=3, per_minute=6, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(10.0)  # 6/min: one every 10 s
    assert limiter.take("b") == 0.0  # per address
    now[0] += 10.0
    assert limiter.take("a") == 0.0


async def test_login_attempts_per_address_are_limited(
    tmp_settings: Settings,
    users: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = tmp_settings.model_copy(update={"login_burst": 3, "login_per_minute": 1.0})
    async with TestClient(TestServer(create_app(settings))) as client:

        async def attempt(user: str, password: str, address: str | None = None) -> int:
            headers = {"X-Forwarded-For": address} if address else {}
            resp = await client.post(
                "/console/login",
                data={"username": user, "password": password},
                headers=headers,
                allow_redirects=False,
            )
            return resp.status

        # Password spraying: different accounts, one address.
        assert [await attempt(u, "wrong password!") for u in ("admin", "editor", "agent")] == [
            401
        ] * 3
        resp = await client.post(
            "/console/login", data={"username": "viewer", "password": PASSWORD}
        )
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) > 0
        assert "Too many login attempts" in await resp.text()
        # Behind our proxy another client is keyed by its forwarded address and may log in.
        assert await attempt("viewer", PASSWORD, "198.51.100.4") == 302


async def test_clients_behind_a_trusted_proxy_chain_are_keyed_by_their_own_address(
    tmp_settings: Settings,
    users: None,  # noqa: F811
) -> None:
    """M2 (issue 17): behind an ingress on 10.x (trusted as a CIDR range) and the local proxy,
    the key is the right-most untrusted hop (old code: the ingress's address, shared by every
    client; a CIDR entry was not even understood)."""
    settings = tmp_settings.model_copy(
        update={
            "login_burst": 1,
            "login_per_minute": 1.0,
            "trusted_proxies": "127.0.0.0/8,10.0.0.0/8",
        }
    )
    async with TestClient(TestServer(create_app(settings))) as client:

        async def attempt(chain: str) -> int:
            resp = await client.post(
                "/console/login",
                data={"username": "admin", "password": "wrong password!"},
                headers={"X-Forwarded-For": chain},
                allow_redirects=False,
            )
            return resp.status

        assert await attempt("203.0.113.1, 10.1.1.1") == 401
        assert await attempt("198.51.100.9, 203.0.113.1, 10.1.1.1") == 429  # still 203.0.113.1
        assert await attempt("203.0.113.2, 10.1.1.1") == 401  # another citizen, own bucket
