"""Liveness/readiness of the console and the alerts staff must see when a dependency fails.

* ``GET /ready``: 200 when the database answers, 503 with the reason otherwise (the launcher
  waits for it).
* ``GET /api/health/index`` (editors, admins): the action server's view of the knowledge-base
  index. Only the action server knows whether a new index failed to load while the previous one
  keeps serving, so the console asks its ``/ready`` instead of guessing from the files.
* ``GET /api/health/spool`` (agents, editors, admins): whether the database answers and how many
  writes of the action server wait in the write spool (``askagency.spool``) or were
  dead-lettered, so staff know tickets may appear late instead of thinking none were opened.
* ``GET /api/health/processes`` (agents, editors, admins): the state of every process of the
  stack as its supervisor (supervisord, started by ``make run``) reports it, and one sentence
  for the banner when a process is restarting after a crash or was given up after crashing
  repeatedly (askagency/supervision.py).
* :func:`database_errors_middleware`: a database outage answers 503 with a clear message (JSON
  for API calls) instead of a 500 with a traceback, and logs one clear line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from askagency.readiness import database_status
from askagency.spool import get_spool
from askagency.staff import Role
from askagency.supervision import process_states
from console.auth import Handler, require_role, wants_json
from console.jsonapi import json_error
from console.keys import SETTINGS_KEY
from console.openapi import api_route

logger = logging.getLogger(__name__)

DB_UNAVAILABLE = (
    "The database is unavailable right now; nothing was changed. Please try again in a minute."
)
ACTION_SERVER_TIMEOUT_S = 3.0


@web.middleware
async def database_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SQLAlchemyError as exc:
        logger.error(
            "database unavailable during %s %s: %s: %s",
            request.method,
            request.path,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
        )
        if wants_json(request) or request.path.startswith("/api/"):
            raise json_error(503, DB_UNAVAILABLE, {"retry_after_s": 30}) from exc
        raise web.HTTPServiceUnavailable(
            text=DB_UNAVAILABLE, headers={"Retry-After": "30"}
        ) from exc


async def ready(_request: web.Request) -> web.Response:
    database = await asyncio.to_thread(database_status)
    ok = bool(database["ok"])
    return web.json_response(
        {"status": "ready" if ok else "not_ready", "database": database}, status=200 if ok else 503
    )


class IndexHealth(BaseModel):
    ok: bool
    serving: str | None = None
    last_error: str | None = None
    error: str | None = None


async def fetch_index_status(action_ready_url: str) -> dict[str, Any]:
    """The ``index`` block of the action server's ``/ready``, or why it could not be read."""
    timeout = aiohttp.ClientTimeout(total=ACTION_SERVER_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(action_ready_url) as resp,
        ):
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return {
            "ok": False,
            "serving": None,
            "last_error": None,
            "error": f"the action server is not reachable ({type(exc).__name__})",
        }
    index = body.get("index") if isinstance(body, dict) else None
    if not isinstance(index, dict):
        return {"ok": False, "error": "the action server sent no index status"}
    serving, last_error = index.get("serving"), index.get("last_error")
    return {
        "ok": serving is not None and not last_error,
        "serving": serving,
        "last_error": last_error,
        "error": None if serving else "no index is loaded: the bot cannot answer questions",
    }


@require_role(Role.EDITOR)
async def index_health(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    url = f"http://127.0.0.1:{settings.action_server_port}/ready"
    return web.json_response(await fetch_index_status(url))


class SpoolHealth(BaseModel):
    ok: bool
    database: dict[str, Any]
    pending: int
    dead: int
    message: str | None = None


def spool_health(settings: Any) -> dict[str, Any]:
    """The database state and the spool's counts, with one sentence for the console banner."""
    database = database_status()
    counts = get_spool(settings).status()
    pending, dead = int(counts["pending"]), int(counts["dead"])
    parts = []
    if not database["ok"]:
        parts.append("The database is unavailable: the bot keeps answering and keeps its writes.")
    if pending:
        parts.append(
            f"{pending} writes (tickets, citizen messages, unanswered questions) are spooled "
            "and will appear when the database is back."
        )
    if dead:
        parts.append(f"{dead} spooled writes could not be stored; see `askagency spool status`.")
    ok = bool(database["ok"]) and not pending and not dead
    return {
        "ok": ok,
        "database": database,
        "pending": pending,
        "dead": dead,
        "message": " ".join(parts) or None,
    }


@require_role(Role.AGENT, Role.EDITOR)
async def spool_health_route(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    return web.json_response(await asyncio.to_thread(spool_health, settings))


class ProcessState(BaseModel):
    name: str
    state: str  # supervisord's: STARTING, RUNNING, BACKOFF, STOPPED, EXITED, FATAL, ...
    pid: int | None = None
    uptime_s: int | None = None
    exit_status: int | None = None


class ProcessesHealth(BaseModel):
    ok: bool
    supervised: bool
    processes: list[ProcessState]
    message: str | None = None


@require_role(Role.AGENT, Role.EDITOR)
async def processes_health(_request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(process_states))


def setup(app: web.Application) -> None:
    app.router.add_get("/ready", ready)
    api_route(
        app,
        "GET",
        "/api/health/index",
        index_health,
        summary="Knowledge-base index status as the action server sees it",
        tags=["health"],
        response_model=IndexHealth,
    )
    api_route(
        app,
        "GET",
        "/api/health/spool",
        spool_health_route,
        summary="Database state and writes waiting in the action server's write spool",
        tags=["health"],
        response_model=SpoolHealth,
    )
    api_route(
        app,
        "GET",
        "/api/health/processes",
        processes_health,
        summary="State of every process of the stack, as its supervisor reports it",
        tags=["health"],
        response_model=ProcessesHealth,
    )
