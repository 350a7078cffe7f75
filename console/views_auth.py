"""Login and logout pages of the console."""

from __future__ import annotations

from urllib.parse import urlparse

import aiohttp_jinja2
from aiohttp import web

from askagency.db import session_scope
from console.auth import (
    SESSION_COOKIE,
    SESSION_TTL,
    AuthError,
    authenticate,
    end_session,
    start_session,
)
from console.keys import SETTINGS_KEY


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an attacker cannot bounce a fresh login elsewhere."""
    if not target:
        return "/console"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/console"
    return target


async def login_form(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template(
        "login.html", request, {"next": _safe_next(request.query.get("next")), "error": None}
    )


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:1024]
    target = _safe_next(str(form.get("next", "")))
    try:
        with session_scope() as session:
            try:
                user = authenticate(session, username, password)
            except AuthError:
                session.commit()  # keep the failed-attempt count
                raise
            token, _row = start_session(session, user)
    except AuthError as exc:
        return aiohttp_jinja2.render_template(
            "login.html", request, {"next": target, "error": str(exc)}, status=401
        )
    response = web.HTTPFound(target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS_KEY].cookie_secure,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
    )
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with session_scope() as session:
            end_session(session, token)
    response = web.HTTPFound("/console/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def setup(app: web.Application) -> None:
    app.router.add_get("/console/login", login_form)
    app.router.add_post("/console/login", login_submit)
    app.router.add_post("/console/logout", logout)
