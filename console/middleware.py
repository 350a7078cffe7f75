"""Request middlewares: who is logged in, CSRF on state changes, security headers."""

from __future__ import annotations

import asyncio

from aiohttp import web

from askagency.db import session_scope
from console.auth import (
    SESSION_COOKIE,
    UNSAFE_METHODS,
    USER_KEY,
    CurrentUser,
    Handler,
    SessionPolicy,
    csrf_ok,
    load_user,
    wants_json,
)
from console.keys import SETTINGS_KEY

FORM_KEY = web.RequestKey("form", dict)  # the parsed form, when the CSRF check read it

# Paths a browser may POST to without a console session (they carry their own checks: the
# login form has its own pre-session token, console/views_auth.py).
CSRF_EXEMPT_PREFIXES = ("/console/login", "/api/widget/")


def _session_user(token: str, policy: SessionPolicy) -> CurrentUser | None:
    with session_scope() as session:
        return load_user(session, token, policy)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE)
    user = None
    if token:
        # Blocking database I/O: off the event loop, so SSE streams and health keep answering.
        policy = SessionPolicy.from_settings(request.app[SETTINGS_KEY])
        user = await asyncio.to_thread(_session_user, token, policy)
    request[USER_KEY] = user
    if (
        request.method in UNSAFE_METHODS
        and user is not None
        and not request.path.startswith(CSRF_EXEMPT_PREFIXES)
    ):
        form = None
        # The form is read only when the token is not in the header: a script's upload (the
        # inbox's file reply) is then refused by its size before its body is read at all.
        if "X-CSRF-Token" not in request.headers and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = dict(await request.post())
            request[FORM_KEY] = form
        if not csrf_ok(request, user, form):
            if wants_json(request):
                raise web.HTTPForbidden(
                    text='{"error": "missing or wrong CSRF token"}', content_type="application/json"
                )
            raise web.HTTPForbidden(text="Missing or wrong CSRF token; reload the page.")
    return await handler(request)


def content_security_policy(rasa_url: str) -> str:
    """No inline script anywhere; the widget may talk to Rasa's socket.io."""
    ws_url = rasa_url.replace("http://", "ws://").replace("https://", "wss://")
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {rasa_url} {ws_url}; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'self'"
    )


def security_headers_middleware(rasa_url: str):  # type: ignore[no-untyped-def]
    csp = content_security_policy(rasa_url)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
            _apply(response, request, csp)
            raise
        _apply(response, request, csp)
        return response

    return middleware


def _apply(response: web.StreamResponse, request: web.Request, csp: str) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", csp)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    # The console must not be framed; the widget's static files may be.
    if request.path.startswith("/console"):
        headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(("/console", "/api/")):
        headers.setdefault("Cache-Control", "no-store")
