"""Helpers every JSON API route uses: parse and validate bodies, uniform errors.

Errors always look like ``{"error": "...", "details": ...}`` with a 4xx status,
so CMS integrations and the console's own scripts handle them one way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, TypeVar

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from askagency.db import session_scope
from askagency.numbers import MAX_ROW_ID

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
MAX_JSON_BYTES = 1024 * 1024
# A database row id in a request body: beyond 64 bits SQLite raises OverflowError and
# PostgreSQL an out-of-range error inside the query (a 500, found by schemathesis); here it is a
# validation error (askagency.numbers.row_id does the same for ids in paths).
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def json_error(status: int, message: str, details: object = None) -> web.HTTPException:
    """An aiohttp HTTP exception carrying the uniform JSON error body."""
    body = json.dumps({"error": message, "details": details})
    exc_cls = web.HTTPException
    for cls in (
        web.HTTPBadRequest,
        web.HTTPUnauthorized,
        web.HTTPForbidden,
        web.HTTPNotFound,
        web.HTTPConflict,
        web.HTTPRequestEntityTooLarge,
        web.HTTPUnprocessableEntity,
        web.HTTPTooManyRequests,
        web.HTTPServiceUnavailable,
    ):
        if cls.status_code == status:
            exc_cls = cls
            break
    if exc_cls is web.HTTPRequestEntityTooLarge:
        return web.HTTPRequestEntityTooLarge(
            max_size=MAX_JSON_BYTES, actual_size=0, text=body, content_type="application/json"
        )
    if exc_cls is web.HTTPException:
        exc = web.HTTPException(text=body, content_type="application/json")
        exc.set_status(status)
        return exc
    return exc_cls(text=body, content_type="application/json")


class QueryError(ValueError):
    """A query string that does not fit its model; ``details`` lists field and reason."""

    def __init__(self, message: str, details: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.details = details


def validate_query(request: web.Request, model: type[M]) -> M:
    """The query string validated against ``model`` (empty values count as absent). Pages use
    it directly to show the message; the JSON API goes through :func:`parse_query`."""
    data = {key: value for key, value in request.query.items() if value != ""}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        details = [
            {"field": ".".join(str(p) for p in err["loc"]), "reason": err["msg"]} for err in errors
        ]
        first = details[0]
        raise QueryError(f"query parameter {first['field']}: {first['reason']}", details) from exc


def parse_query(request: web.Request, model: type[M]) -> M:
    """:func:`validate_query`, with a 400 of the same shape as a bad body. The model is also what
    OpenAPI documents (``openapi.api_route(query_model=...)``), so the two cannot disagree."""
    try:
        return validate_query(request, model)
    except QueryError as exc:
        raise json_error(400, str(exc), exc.details) from exc


async def parse_json(request: web.Request, model: type[M]) -> M:
    """The request body validated against ``model``; 400 with field errors otherwise."""
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise json_error(413, f"JSON body larger than {MAX_JSON_BYTES} bytes")
    raw = await request.read()
    if len(raw) > MAX_JSON_BYTES:
        raise json_error(413, f"JSON body larger than {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise json_error(400, f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # "[[[[..." thousands deep (found by fuzzing)
        raise json_error(400, "body is not valid JSON: nested too deeply") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in err["loc"]), "reason": err["msg"]}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise json_error(400, "invalid request body", details) from exc


async def read_upload(request: web.Request, max_bytes: int, what: str, limit: str) -> bytes:
    """The request body of a file upload: 400 naming ``what`` to send when it is empty, 413
    naming ``limit`` (e.g. "2 MB") when it is larger than ``max_bytes``."""
    data = await request.read()
    if not data:
        raise json_error(400, f"send {what} as the request body")
    if len(data) > max_bytes:
        raise json_error(413, f"file larger than {limit}")
    return data


def json_model(model: BaseModel, status: int = 200) -> web.Response:
    """A response model as the JSON body (pydantic's own serialisation: dates as ISO text)."""
    return web.json_response(text=model.model_dump_json(), status=status)


async def in_transaction(
    work: Callable[[Session], T],
    database_url: str | None,
    errors: tuple[type[Exception], ...],
    to_http: Callable[[Exception], web.HTTPException],
) -> T:
    """Runs ``work(session)`` in one transaction off the event loop (the database calls block);
    an exception of the ``errors`` types (the domain's "not found", "conflict", ...) becomes
    the uniform JSON error ``to_http`` maps it to, and the transaction is rolled back."""

    def run() -> T:
        with session_scope(database_url) as session:
            return work(session)

    try:
        return await asyncio.to_thread(run)
    except errors as exc:
        raise to_http(exc) from exc
