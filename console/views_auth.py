"""Login and logout pages of the console.

Login CSRF: the form carries a random token that is also set as a cookie when the form is
shown (double submit). A cross-site page can make a browser post the form, but cannot read or
set that cookie, so it cannot log the victim's browser into the attacker's account. Clients
that are not browsers (scripts, ``curl``) send neither ``Origin`` nor ``Referer`` and cannot be
driven by another site; they may log in without the token.
"""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlparse

import aiohttp_jinja2
from aiohttp import web

from askagency.db import session_scope
from console.auth import (
    SESSION_COOKIE,
    AuthError,
    SessionPolicy,
    authenticate,
    end_session,
    start_session,
)
from console.keys import SETTINGS_KEY
from console.login_limit import TRUSTED_KEY, client_address

LOGIN_CSRF_COOKIE = "askagency_login_csrf"
LOGIN_CSRF_FIELD = "login_csrf"
LOGIN_FORM_EXPIRED = "The login form has expired. Please reload the page and log in again."


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an attacker cannot bounce a fresh login elsewhere."""
    if not target:
        return "/console"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/console"
    return target


def _render_form(
    request: web.Request, target: str, error: str | None, status: int = 200
) -> web.Response:
    """The form with a fresh pre-session token, in the page and in a cookie."""
    token = secrets.token_urlsafe(32)
    response = aiohttp_jinja2.render_template(
        "login.html",
        request,
        {"next": target, "error": error, "login_csrf": token},
        status=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.app[SETTINGS_KEY].cookie_secure,
        path="/console/login",
    )
    return response


def login_csrf_ok(request: web.Request, form_token: str) -> bool:
    """A browser post must echo the cookie's token; a non-browser one carries no Origin or
    Referer and needs none."""
    if "Origin" not in request.headers and "Referer" not in request.headers:
        return True
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(cookie and form_token) and secrets.compare_digest(cookie, form_token)


async def login_form(request: web.Request) -> web.Response:
    return _render_form(request, _safe_next(request.query.get("next")), None)


def _login(username: str, password: str, address: str, policy: SessionPolicy) -> str:
    """Checks the credentials and opens a session (blocking: argon2 and the database);
    returns the cookie value or raises AuthError after recording the failure."""
    with session_scope() as session:
        try:
            user = authenticate(session, username, password, address)
        except AuthError:
            session.commit()  # keep the failure count
            raise
        token, _row = start_session(session, user, policy)
        return token


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:1024]
    target = _safe_next(str(form.get("next", "")))
    settings = request.app[SETTINGS_KEY]
    if not login_csrf_ok(request, str(form.get(LOGIN_CSRF_FIELD, ""))):
        return _render_form(request, target, LOGIN_FORM_EXPIRED, status=403)
    address = client_address(request, request.app[TRUSTED_KEY])
    policy = SessionPolicy.from_settings(settings)
    try:
        # argon2 takes ~50-100 ms of CPU: in a thread, so the loop keeps serving others.
        token = await asyncio.to_thread(_login, username, password, address, policy)
    except AuthError as exc:
        return _render_form(request, target, str(exc), status=401)
    response = web.HTTPFound(target)
    # No max_age: the cookie dies with the browser session (shared front-desk PCs); the
    # server ends the session after the idle timeout or the absolute lifetime anyway.
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=settings.cookie_secure,
        path="/",
    )
    if LOGIN_CSRF_COOKIE in request.cookies:
        response.del_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token:

        def work() -> None:
            with session_scope() as session:
                end_session(session, token)

        await asyncio.to_thread(work)
    response = web.HTTPFound("/console/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def setup(app: web.Application) -> None:
    app.router.add_get("/console/login", login_form)
    app.router.add_post("/console/login", login_submit)
    app.router.add_post("/console/logout", logout)
