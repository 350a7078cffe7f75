"""Console authentication: argon2 password hashes, database sessions, CSRF, roles.

Every route declares the least role it needs with ``@require_role``; the
middleware resolves the session cookie once per request. State-changing
requests (POST/PUT/PATCH/DELETE) must carry the session's CSRF token in the
``X-CSRF-Token`` header or a ``csrf_token`` form field. Repeated failed logins
lock the account with exponential backoff.
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
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from askagency.clock import now_utc
from console.models import Role, User, WebSession

SESSION_COOKIE = "askagency_session"
SESSION_TTL = timedelta(hours=12)
LOCKOUT_AFTER = 5  # failed attempts before the first lock
LOCKOUT_BASE = timedelta(seconds=30)  # doubles with each further failure, capped below
LOCKOUT_MAX = timedelta(minutes=30)
ROLE_RANK = {Role.VIEWER: 0, Role.AGENT: 1, Role.EDITOR: 2, Role.ADMIN: 3}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_hasher = PasswordHasher()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
) -> User:
    if session.scalar(select(User).where(User.username == username)):
        raise ValueError(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=Role(role).value,
        languages=languages or ["en"],
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(
    session: Session, username: str, password: str, now: datetime | None = None
) -> User:
    """Checks credentials and applies the lock-out rule; raises AuthError."""
    now = now or now_utc()
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        # Same work and message as a wrong password: no user enumeration.
        verify_password(_DUMMY_HASH, password)
        raise AuthError("Wrong username or password.")
    if user.locked_until and user.locked_until > now:
        wait = int((user.locked_until - now).total_seconds()) + 1
        raise AuthError(f"Too many failed attempts. Try again in {wait} seconds.")
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= LOCKOUT_AFTER:
            factor = 2 ** (user.failed_logins - LOCKOUT_AFTER)
            user.locked_until = now + min(LOCKOUT_BASE * factor, LOCKOUT_MAX)
        raise AuthError("Wrong username or password.")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


_DUMMY_HASH = _hasher.hash("not-a-real-password-0")


def start_session(session: Session, user: User) -> tuple[str, WebSession]:
    """Returns the cookie value (only its hash is stored) and the session row."""
    token = secrets.token_urlsafe(32)
    now = now_utc()
    row = WebSession(
        token_hash=_token_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + SESSION_TTL,
        last_seen_at=now,
    )
    session.add(row)
    return token, row


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def load_user(session: Session, token: str | None) -> CurrentUser | None:
    if not token:
        return None
    row = session.get(WebSession, _token_hash(token))
    if row is None or row.expires_at <= now_utc():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
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
