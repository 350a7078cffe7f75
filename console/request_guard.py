"""Rejects request bodies aiohttp cannot even start to parse, with a 400 instead of a 500.

Found by schemathesis: ``Content-Type: multipart/form-data`` without a ``boundary`` makes
``request.post()`` raise ``ValueError`` wherever a form is read (CSRF check, login, import).
"""

from __future__ import annotations

from aiohttp import web

from console.auth import Handler, wants_json
from console.jsonapi import json_error

MESSAGE = "multipart/form-data body without a boundary"


@web.middleware
async def request_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.content_type.startswith("multipart/") and "boundary=" not in request.headers.get(
        "Content-Type", ""
    ):
        if wants_json(request) or request.path.startswith("/api/"):
            raise json_error(400, MESSAGE)
        raise web.HTTPBadRequest(text=MESSAGE)
    return await handler(request)
