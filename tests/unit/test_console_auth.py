"""Console login, sessions, CSRF, lock-out and role checks over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from askagency.config import Settings
from askagency.db import session_scope
from console.app import create_app
from console.auth import LOCKOUT_AFTER, AuthError, authenticate, create_user
from console.models import Role, User
from tests.console_helpers import PASSWORD, login


@pytest.fixture
def users(db_url: str) -> None:
    with session_scope() as session:
        for role in Role:
            create_user(session, role.value, PASSWORD, role)


@pytest.fixture
async def client(tmp_settings: Settings, users: None) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(tmp_settings))) as test_client:
        yield test_client


async def test_login_page_and_protected_redirect(client: TestClient) -> None:
    resp = await client.get("/console", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/console/login")
    page = await client.get("/console/login")
    assert page.status == 200
    assert "Content-Security-Policy" in page.headers
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"].split("script-src")[1]


async def test_wrong_password_is_rejected_without_user_enumeration(client: TestClient) -> None:
    wrong = await client.post("/console/login", data={"username": "agent", "password": "nope"})
    unknown = await client.post("/console/login", data={"username": "ghost", "password": "nope"})
    assert wrong.status == unknown.status == 401
    assert "Wrong username or password." in await wrong.text()
    assert "Wrong username or password." in await unknown.text()


async def test_login_sets_secure_session_cookie(client: TestClient) -> None:
    resp = await client.post(
        "/console/login",
        data={"username": "agent", "password": PASSWORD},
        allow_redirects=False,
    )
    assert resp.status == 302
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    home = await client.get("/console")
    assert home.status == 200
    assert "agent (agent)" in await home.text()


async def test_logout_requires_csrf_token(client: TestClient) -> None:
    token = await login(client, "viewer")
    forged = await client.post("/console/logout", allow_redirects=False)
    assert forged.status == 403
    ok = await client.post("/console/logout", data={"csrf_token": token}, allow_redirects=False)
    assert ok.status == 302
    after = await client.get("/console", allow_redirects=False)
    assert after.status == 302  # session is gone server-side


async def test_open_redirect_after_login_is_refused(client: TestClient) -> None:
    resp = await client.post(
        "/console/login",
        data={"username": "agent", "password": PASSWORD, "next": "https://evil.example/"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/console"


def test_lockout_with_backoff(db_url: str) -> None:
    now = datetime.now(UTC)
    with session_scope() as session:
        create_user(session, "clerk", PASSWORD, Role.EDITOR)
    for _ in range(LOCKOUT_AFTER):
        with session_scope() as session, pytest.raises(AuthError):
            try:
                authenticate(session, "clerk", "bad password", now=now)
            finally:
                session.commit()
    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == "clerk"))
        assert user is not None and user.locked_until is not None
        first_lock = user.locked_until - now
    # Even the right password is refused while locked ...
    with session_scope() as session, pytest.raises(AuthError, match="Too many failed attempts"):
        authenticate(session, "clerk", PASSWORD, now=now)
    # ... and accepted once the lock has expired; a later failure streak locks longer.
    later = now + first_lock + timedelta(seconds=1)
    with session_scope() as session:
        authenticate(session, "clerk", PASSWORD, now=later)
    assert first_lock >= timedelta(seconds=30)


def test_short_password_refused(db_url: str) -> None:
    with session_scope() as session, pytest.raises(ValueError, match="at least 10"):
        create_user(session, "shorty", "abc", Role.AGENT)
