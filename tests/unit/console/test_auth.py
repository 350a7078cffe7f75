"""Console login, sessions, CSRF, lock-out and role checks over real HTTP."""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from typer.testing import CliRunner

import console.auth as auth
from askagency.clock import FakeClock
from askagency.config import Settings
from askagency.db import session_scope
from askagency.staff import Role, User
from console.app import create_app
from console.auth import (
    FAILURE_WINDOW,
    FREE_FAILURES,
    LOGIN_REFUSED,
    AuthError,
    authenticate,
    create_user,
    failure_delay,
)
from console.cli import app as users_cli
from console.models import LoginFailure, WebSession
from tests.console_helpers import PASSWORD, login

ATTACKER, OWNER = "203.0.113.9", "198.51.100.7"
ERROR = re.compile(r'<p class="error" role="alert">([^<]*)</p>')


@pytest.fixture
def users(db_url: str) -> None:
    with session_scope() as session:
        for role in Role:
            create_user(session, role.value, PASSWORD, role)


@pytest.fixture
async def client(tmp_settings: Settings, users: None) -> AsyncIterator[TestClient]:
    # A generous per-address bucket: these tests are about the per-account rules.
    settings = tmp_settings.model_copy(update={"login_burst": 1000, "login_per_minute": 1000.0})
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def post_login(
    client: TestClient, username: str, password: str, address: str = "", **extra: str
) -> tuple[int, str]:
    """POST the login form as the client at ``address`` (the test server's peer is a trusted
    proxy, so X-Forwarded-For names the client); returns the status and the error shown."""
    headers = {"X-Forwarded-For": address} if address else {}
    resp = await client.post(
        "/console/login",
        data={"username": username, "password": password, **extra},
        headers=headers,
        allow_redirects=False,
    )
    match = ERROR.search(await resp.text())
    return resp.status, match.group(1) if match else ""


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


def test_short_password_refused(db_url: str) -> None:
    with session_scope() as session, pytest.raises(ValueError, match="at least 10"):
        create_user(session, "shorty", "abc", Role.AGENT)


# --- M4: lock-out that decays and cannot lock out someone else; no enumeration ------------------


async def test_guessing_from_one_address_does_not_lock_out_the_owner(
    client: TestClient, clock: FakeClock
) -> None:
    """M4 attack: an attacker's failures used to lock the account for everyone, even its owner
    with the right password. Now they only slow down the attacker's own address."""
    for _ in range(FREE_FAILURES + 3):
        assert (await post_login(client, "admin", "wrong password!", ATTACKER))[0] == 401
        clock.advance(seconds=1)
    status, _ = await post_login(client, "admin", PASSWORD, OWNER)
    assert status == 302
    # The attacker's address, even with the right password, waits out its delay first.
    assert (await post_login(client, "admin", PASSWORD, ATTACKER))[0] == 401


async def test_every_refusal_reads_the_same(client: TestClient, clock: FakeClock) -> None:
    """M4 enumeration: a locked real account answered "Too many failed attempts", an unknown
    one "Wrong username or password"; now both get one message, after the same work."""
    answers: dict[str, set[tuple[int, str]]] = {"admin": set(), "nosuchuser": set()}
    for name in answers:
        for _ in range(FREE_FAILURES + 2):
            answers[name].add(await post_login(client, name, "wrong password!", ATTACKER))
    assert answers["admin"] == answers["nosuchuser"] == {(401, LOGIN_REFUSED)}


def test_same_argon2_work_for_unknown_and_paced_accounts(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old lock check returned before argon2 (a timing oracle); now every attempt verifies
    exactly one hash: the account's or a dummy one."""
    with session_scope() as session:
        create_user(session, "clerk", PASSWORD, Role.EDITOR)
    verified: list[str] = []
    real_verify = auth.verify_password

    def counting(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    for name in ("clerk", "ghost"):
        for attempt in range(FREE_FAILURES + 2):
            verified.clear()
            with session_scope() as session, pytest.raises(AuthError):
                authenticate(session, name, "bad password", ATTACKER)
            assert len(verified) == 1, (name, attempt)


def test_failures_pace_then_decay(db_url: str, clock: FakeClock) -> None:
    """Past the free attempts the address waits a growing delay; without new failures the
    count is forgotten after the window, and the right password works again."""

    def attempt(password: str) -> bool:
        try:
            with session_scope() as session:
                try:
                    authenticate(session, "clerk", password, ATTACKER)
                except AuthError:
                    session.commit()
                    raise
            return True
        except AuthError:
            return False

    with session_scope() as session:
        create_user(session, "clerk", PASSWORD, Role.EDITOR)
    for _ in range(FREE_FAILURES):
        assert not attempt("bad password")
    assert not attempt(PASSWORD)  # within the delay: refused, not counted
    clock.advance(failure_delay(FREE_FAILURES))
    assert not attempt("bad password")  # the 6th failure doubles the delay
    clock.advance(failure_delay(FREE_FAILURES))
    assert not attempt(PASSWORD)  # half the new delay: still too soon
    clock.advance(failure_delay(FREE_FAILURES + 1))
    assert attempt(PASSWORD)
    # Failures older than the window are forgotten (and their rows purged).
    for _ in range(FREE_FAILURES):
        assert not attempt("bad password")
    clock.advance(FAILURE_WINDOW + timedelta(seconds=1))
    assert attempt(PASSWORD)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(LoginFailure)) == 0
    assert failure_delay(FREE_FAILURES + 60) == auth.DELAY_MAX


async def test_users_unlock_clears_the_delay(
    client: TestClient, clock: FakeClock, tmp_settings: Settings
) -> None:
    for _ in range(FREE_FAILURES + 4):
        await post_login(client, "agent", "wrong password!", OWNER)
    assert (await post_login(client, "agent", PASSWORD, OWNER))[0] == 401
    result = CliRunner().invoke(users_cli, ["unlock", "agent"])
    assert result.exit_code == 0, result.output
    assert (await post_login(client, "agent", PASSWORD, OWNER))[0] == 302


# --- L2: argon2 and the session lookup run off the event loop -------------------------------


async def test_login_and_session_lookup_run_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """L2: argon2 (~50-100 ms) and the synchronous database work stalled every other request
    (SSE streams, health) while a login ran; they now run in worker threads."""
    loop_thread = threading.current_thread()
    threads: dict[str, threading.Thread] = {}
    real_verify, real_load = auth.verify_password, auth.load_user

    def verify(password_hash: str, password: str) -> bool:
        threads["verify"] = threading.current_thread()
        return real_verify(password_hash, password)

    def load(*args: object, **kwargs: object) -> object:
        threads["load_user"] = threading.current_thread()
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(auth, "verify_password", verify)
    monkeypatch.setattr("console.middleware.load_user", load)
    await login(client, "agent")
    assert set(threads) == {"verify", "load_user"}
    assert all(thread is not loop_thread for thread in threads.values())


# --- L4: session lifecycle -----------------------------------------------------------------


async def test_session_cookie_is_not_persistent(client: TestClient) -> None:
    resp = await client.post(
        "/console/login", data={"username": "agent", "password": PASSWORD}, allow_redirects=False
    )
    cookie = resp.headers["Set-Cookie"].lower()
    assert "askagency_session=" in cookie
    assert "max-age" not in cookie and "expires" not in cookie


async def test_idle_sessions_end_and_activity_keeps_them(
    client: TestClient, clock: FakeClock, tmp_settings: Settings
) -> None:
    """L4: last_seen_at was never updated and there was no idle timeout."""
    idle = timedelta(minutes=tmp_settings.console_session_idle_minutes)
    await login(client, "agent")
    for _ in range(3):  # activity more often than the idle timeout keeps the session
        clock.advance(idle - timedelta(minutes=1))
        assert (await client.get("/console", allow_redirects=False)).status == 200
    clock.advance(idle)
    assert (await client.get("/console", allow_redirects=False)).status == 302
    with session_scope() as session:  # the idle session is gone server-side too
        assert session.scalar(select(func.count()).select_from(WebSession)) == 0


async def test_sessions_have_an_absolute_lifetime_and_are_purged(
    client: TestClient, clock: FakeClock, tmp_settings: Settings
) -> None:
    lifetime = timedelta(hours=tmp_settings.console_session_max_hours)
    step = timedelta(minutes=tmp_settings.console_session_idle_minutes / 2)
    await login(client, "agent")
    elapsed = timedelta(0)
    while elapsed + step < lifetime:
        clock.advance(step)
        elapsed += step
        assert (await client.get("/console", allow_redirects=False)).status == 200
    clock.advance(step)
    assert (await client.get("/console", allow_redirects=False)).status == 302
    # An abandoned session (never used again) is purged by the next login of anyone.
    async with TestClient(TestServer(client.server.app)) as other:
        await login(other, "viewer")
        clock.advance(lifetime)
        await login(client, "editor")
    with session_scope() as session:
        users = session.scalars(
            select(User.username).join(WebSession, WebSession.user_id == User.id)
        ).all()
    assert users == ["editor"]


@pytest.mark.parametrize(
    "command",
    [
        ["set-password", "agent"],
        ["deactivate", "agent"],
        ["set-role", "agent", "--role", "viewer"],
        ["revoke-sessions", "agent"],
    ],
)
async def test_admin_commands_end_the_users_sessions(
    client: TestClient, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """L4: `users set-password` left the old sessions alive; deactivating, changing the role
    and revoking had no command at all."""
    await login(client, "agent")
    monkeypatch.setenv("ASKAGENCY_NEW_PASSWORD", "a brand new password")
    result = CliRunner().invoke(users_cli, command)
    assert result.exit_code == 0, result.output
    assert (await client.get("/console", allow_redirects=False)).status == 302


async def test_deactivated_user_cannot_log_in_until_activated(client: TestClient) -> None:
    assert CliRunner().invoke(users_cli, ["deactivate", "agent"]).exit_code == 0
    assert await post_login(client, "agent", PASSWORD) == (401, LOGIN_REFUSED)
    assert CliRunner().invoke(users_cli, ["activate", "agent"]).exit_code == 0
    assert (await post_login(client, "agent", PASSWORD))[0] == 302
    result = CliRunner().invoke(users_cli, ["unlock", "nobody"])
    assert result.exit_code == 1 and "no user" in result.output


async def test_users_set_team_and_create_with_a_team(client: TestClient) -> None:
    """Teams for per-team figures (issue 22, item 5): a name is trimmed, blank removes it, a
    bad one is refused and changes nothing."""
    runner = CliRunner()

    def team_of(username: str) -> str | None:
        with session_scope() as session:
            return session.scalar(select(User.team).where(User.username == username))

    assert runner.invoke(users_cli, ["set-team", "agent", "  DEN   checkpoint "]).exit_code == 0
    assert team_of("agent") == "DEN checkpoint"
    bad = runner.invoke(users_cli, ["set-team", "agent", "x" * 65])
    assert bad.exit_code == 1 and "at most 64 characters" in bad.output
    assert runner.invoke(users_cli, ["set-team", "agent", "night\x1bshift"]).exit_code == 1
    assert team_of("agent") == "DEN checkpoint"
    assert runner.invoke(users_cli, ["set-team", "agent", " "]).exit_code == 0
    assert team_of("agent") is None
    assert runner.invoke(users_cli, ["set-team", "nobody", "DEN"]).exit_code == 1

    created = runner.invoke(
        users_cli,
        ["create", "newbie", "--role", "agent", "--team", "MIA", "--password-stdin"],
        input="a long enough password\n",
    )
    assert created.exit_code == 0, created.output
    assert team_of("newbie") == "MIA"
    listing = runner.invoke(users_cli, ["list"])
    assert "MIA" in listing.output


# --- L5: login CSRF ------------------------------------------------------------------------


async def test_cross_site_login_post_is_refused(client: TestClient) -> None:
    """L5: a cross-site auto-submitting form logged the victim's browser into the attacker's
    account. A browser post (it carries Origin) now needs the form's pre-session token."""
    forged = await client.post(
        "/console/login",
        data={"username": "agent", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert forged.status == 403
    assert "askagency_session" not in forged.headers.get("Set-Cookie", "")
    assert "login form has expired" in await forged.text()
    # A token the attacker made up does not match the victim's cookie either.
    forged = await client.post(
        "/console/login",
        data={"username": "agent", "password": PASSWORD, "login_csrf": "made-up"},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert forged.status == 403


async def test_login_form_round_trip_with_its_token(client: TestClient) -> None:
    page = await (await client.get("/console/login")).text()
    match = re.search(r'name="login_csrf" value="([^"]+)"', page)
    assert match
    resp = await client.post(
        "/console/login",
        data={"username": "agent", "password": PASSWORD, "login_csrf": match.group(1)},
        headers={"Origin": str(client.make_url("")).rstrip("/")},
        allow_redirects=False,
    )
    assert resp.status == 302
    assert (await client.get("/console", allow_redirects=False)).status == 200
