"""The location list (airports, offices) that analytics attributes conversations to: list,
create-or-replace, delete, CSV import and export.

Validation is the location store's (``knowledge_base.locations.store``): a malformed code, an
empty name or an alias another location already uses is a 400 with the store's message, and
nothing is written. Codes come from the path (``/api/kb/locations/{code}``, any case; stored
upper case); a body may repeat the code but not change it: to rename, create the new code and
delete the old one. Every change is in the audit log (``entity_type`` ``location``) with the
console username, which is also the location's ``updated_by``. Changes need no publish: analytics
reads the list directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiohttp import web
from sqlalchemy.orm import Session

from askagency.clock import now_utc
from console.jsonapi import in_transaction, json_error, json_model, parse_json, read_upload
from console.kb.runtime import actor, readers, writers
from console.kb.schemas import (
    LocationDeletedOut,
    LocationImportOut,
    LocationListOut,
    LocationPutIn,
)
from console.keys import SETTINGS_KEY
from knowledge_base.locations import store as locations
from knowledge_base.locations.matching import normalise_code
from knowledge_base.locations.store import LocationError, LocationIn, LocationOut

T = TypeVar("T")


async def _run(request: web.Request, work: Callable[[Session], T], refused: str = "{}") -> T:
    """``work`` in one transaction off the loop; a refused location rolls it back and is a 400
    whose message is ``refused`` with the store's reason in it."""
    url = request.app[SETTINGS_KEY].database_url

    def to_http(exc: Exception) -> web.HTTPException:
        return json_error(400, refused.format(exc))

    return await in_transaction(work, url, (LocationError,), to_http)


def _path_code(request: web.Request) -> str | None:
    return normalise_code(request.match_info["code"])


def list_out(session: Session) -> LocationListOut:
    """Every location, by code (shared by the API and the Locations page)."""
    return LocationListOut(items=[locations.to_out(r) for r in locations.list_locations(session)])


@readers
async def api_list(request: web.Request) -> web.Response:
    return json_model(await _run(request, list_out))


@writers
async def api_put(request: web.Request) -> web.Response:
    code = _path_code(request)
    if code is None:
        raise json_error(
            400,
            "not a location code",
            [{"field": "code", "reason": "1-16 letters, digits, '-' or '_' (for example DEN)"}],
        )
    body = await parse_json(request, LocationPutIn)
    if body.code not in (None, code):
        raise json_error(
            400,
            "location codes cannot be changed",
            [{"field": "code", "reason": "must match the URL"}],
        )
    item = LocationIn(code=code, name=body.name, aliases=body.aliases, active=body.active)
    who = actor(request)

    def work(session: Session) -> tuple[LocationOut, bool]:
        row, created = locations.save(session, item, who)
        return locations.to_out(row), created

    out, created = await _run(request, work)
    return json_model(out, 201 if created else 200)


@writers
async def api_delete(request: web.Request) -> web.Response:
    code = _path_code(request) or ""  # a malformed code names no location either
    who = actor(request)
    if not await _run(request, lambda s: locations.delete(s, code, actor=who)):
        raise json_error(404, f"no location {request.match_info['code']!r}")
    return json_model(LocationDeletedOut(deleted=code))


async def _csv_body(request: web.Request) -> str:
    what = "the CSV file (code,name,aliases,active)"
    limit = f"{locations.MAX_CSV_BYTES // 1000} kB"
    data = await read_upload(request, locations.MAX_CSV_BYTES, what, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise json_error(400, "the file is not UTF-8 text; save it as CSV UTF-8") from exc


@writers
async def api_import(request: web.Request) -> web.Response:
    text = await _csv_body(request)
    try:
        items = locations.read_csv(text)
    except LocationError as exc:
        raise json_error(400, f"{exc}; nothing was imported") from exc
    if not items:
        raise json_error(400, "the file has no locations; nothing was imported")
    who = actor(request)

    def work(session: Session) -> LocationImportOut:
        existing = {row.code for row in locations.list_locations(session)}
        count = locations.import_items(session, items, who)
        created = sum(item.code not in existing for item in items)
        return LocationImportOut(imported=count, created=created, updated=count - created)

    out = await _run(request, work, refused="{}; nothing was imported")
    return json_model(out)


@readers
async def api_export(request: web.Request) -> web.StreamResponse:
    text = await _run(request, lambda s: locations.write_csv(locations.list_locations(s)))
    filename = f"locations-{now_utc():%Y%m%d}.csv"
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
