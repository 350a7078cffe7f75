"""Console authentication: argon2 password hashes, database sessions, CSRF, roles.

Every route declares the least role it needs with ``@require_role``; the
middleware resolves the session cookie once per request. State-changing
requests (POST/PUT/PATCH/DELETE) must carry the session's CSRF token in the
``X-CSRF-Token`` header or a ``csrf_token`` form field.

Failed logins are counted per (account name, client address) and forgotten after
``FAILURE_WINDOW``: past ``FREE_FAILURES`` the address must wait longer and longer
between attempts on that account, while the owner logs in from their own address as
usual, so nobody can lock someone else out. Every refusal (unknown user, inactive
user, wrong password, too soon) shows one message after the same argon2 work, so the
answer does not tell which accounts exist.

Sessions end after ``console_session_idle_minutes`` without a request and at the
latest ``console_session_max_hours`` after the login (server-side; the cookie is a
browser-session cookie).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from askagency.clock import now_utc
from askagency.config import Settings
from askagency.staff import Role, User, team_name
from console.models import LoginFailure, WebSession

SESSION_COOKIE = "askagency_session"
FREE_FAILURES = 5  # failures per (account, address) before attempts are paced
FAILURE_WINDOW = timedelta(minutes=15)  # a failure older than this no longer counts
DELAY_BASE = timedelta(seconds=2)  # wait after the first paced failure; doubles with each
DELAY_MAX = timedelta(minutes=5)
SESSION_TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often
LOGIN_REFUSED = (
    "Wrong username or password. After several failed attempts, wait a few minutes "
    "before trying again."
)
ROLE_RANK = {Role.VIEWER: 0, Role.AGENT: 1, Role.EDITOR: 2, Role.ADMIN: 3}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_hasher = PasswordHasher()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class SessionPolicy:
    """How long a console session lives: ``idle`` without requests, ``lifetime`` at most."""

    idle: timedelta
    lifetime: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            idle=timedelta(minutes=settings.console_session_idle_minutes),
            lifetime=timedelta(hours=settings.console_session_max_hours),
        )


class AuthError(Exception):
    """A login that did not succeed; the message is safe to show."""


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    display_name: str
    role: Role
    languages: tuple[str, ...]
    csrf_token: str

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

    def at_least(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


USER_KEY = web.RequestKey("user", object)  # CurrentUser | None, set by the auth middleware


def current_user(request: web.Request) -> CurrentUser | None:
    user = request.get(USER_KEY)
    return user if isinstance(user, CurrentUser) else None


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise ValueError("passwords must have at least 10 characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    display_name: str | None = None,
    languages: list[str] | None = None,
    team: str | None = None,
) -> User:
    if session.scalar(select(User).where(User.username == username)):
        raise ValueError(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=Role(role).value,
        languages=languages or ["en"],
        team=team_name(team),
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def _address_hash(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()


def failure_delay(failures: int) -> timedelta:
    """How long after the last failure the next attempt must wait (zero for the free ones)."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(DELAY_BASE * 2 ** min(failures - FREE_FAILURES, 20), DELAY_MAX)


def _live_failures(row: LoginFailure | None, now: datetime) -> int:
    """The row's count, or 0 once the last failure is older than the window (decay)."""
    if row is None or now - row.last_failure_at > FAILURE_WINDOW:
        return 0
    return row.failures


def authenticate(
    session: Session, username: str, password: str, address: str, now: datetime | None = None
) -> User:
    """The user whose credentials these are, or AuthError(LOGIN_REFUSED).

    ``address`` is the client address (console/login_limit.client_address). The argon2
    verification runs in every case, against a dummy hash for unknown or inactive users, so
    neither the message nor the time tells an existing account from a missing one.
    """
    now = now or now_utc()
    session.execute(delete(LoginFailure).where(LoginFailure.last_failure_at < now - FAILURE_WINDOW))
    user = session.scalar(select(User).where(User.username == username))
    known = user is not None and user.active
    password_ok = verify_password(user.password_hash if known else _DUMMY_HASH, password)
    key = (username, _address_hash(address))
    row = session.get(LoginFailure, key)
    failures = _live_failures(row, now)
    if row is not None and failures and now < row.last_failure_at + failure_delay(failures):
        raise AuthError(LOGIN_REFUSED)  # too soon: not counted, so waiting is enough
    if not (known and password_ok):
        if row is None:
            session.add(
                LoginFailure(
                    username=username, address_hash=key[1], failures=1, last_failure_at=now
                )
            )
        else:
            row.failures = failures + 1
            row.last_failure_at = now
        raise AuthError(LOGIN_REFUSED)
    assert user is not None
    if row is not None:
        session.delete(row)
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def unlock(session: Session, username: str) -> int:
    """Forgets every recorded failure of ``username`` (all addresses); returns how many."""
    rows = session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    return int(rows.rowcount or 0)


_DUMMY_HASH = _hasher.hash("not-a-real-password-0")


def start_session(session: Session, user: User, policy: SessionPolicy) -> tuple[str, WebSession]:
    """Returns the cookie value (only its hash is stored) and the session row. Sessions that
    have run out (anyone's) are deleted here, so the table does not grow."""
    token = secrets.token_urlsafe(32)
    now = now_utc()
    purge_sessions(session, policy, now)
    row = WebSession(
        token_hash=_token_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + policy.lifetime,
        last_seen_at=now,
    )
    session.add(row)
    return token, row


def purge_sessions(session: Session, policy: SessionPolicy, now: datetime | None = None) -> int:
    """Deletes sessions past their lifetime or idle for longer than allowed."""
    now = now or now_utc()
    result = session.execute(
        delete(WebSession).where(
            or_(WebSession.expires_at <= now, WebSession.last_seen_at <= now - policy.idle)
        )
    )
    return int(result.rowcount or 0)


def revoke_sessions(session: Session, user_id: int) -> int:
    """Logs the user out everywhere (password change, deactivation, role change)."""
    result = session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(result.rowcount or 0)


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def load_user(session: Session, token: str | None, policy: SessionPolicy) -> CurrentUser | None:
    """The session's user, or None when the session is unknown, idle too long, past its
    lifetime or its user inactive. Records activity at most once a minute (one write)."""
    if not token:
        return None
    row = session.get(WebSession, _token_hash(token))
    if row is None:
        return None
    now = now_utc()
    if row.expires_at <= now or now - row.last_seen_at >= policy.idle:
        session.delete(row)
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if now - row.last_seen_at >= SESSION_TOUCH_EVERY:
        row.last_seen_at = now
    return CurrentUser(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        languages=tuple(user.languages or ()),
        csrf_token=row.csrf_token,
    )


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def require_role(*roles: Role) -> Callable[[Handler], Handler]:
    """Route decorator: 401 when logged out (login redirect for pages), 403 for a
    role not in ``roles``. An admin may do everything."""

    allowed = set(roles) | {Role.ADMIN}

    def decorator(handler: Handler) -> Handler:
        @wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            user = current_user(request)
            if user is None:
                if wants_json(request):
                    raise web.HTTPUnauthorized(
                        text='{"error": "login required"}', content_type="application/json"
                    )
                raise web.HTTPFound(f"/console/login?next={request.path_qs}")
            if user.role not in allowed:
                if wants_json(request):
                    raise web.HTTPForbidden(
                        text='{"error": "your role may not do this"}',
                        content_type="application/json",
                    )
                raise web.HTTPForbidden(text="Your role may not open this page.")
            return await handler(request)

        wrapper.__dict__["required_roles"] = allowed
        return wrapper

    return decorator


def csrf_ok(request: web.Request, user: CurrentUser, form: dict[str, Any] | None) -> bool:
    sent = request.headers.get("X-CSRF-Token") or (form or {}).get("csrf_token", "")
    return bool(sent) and secrets.compare_digest(str(sent), user.csrf_token)
