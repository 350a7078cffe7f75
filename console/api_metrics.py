"""JSON API of the leadership metrics: the whole dashboard, and the conversations behind it.

Both routes take the dashboard's filters as query parameters (``from``, ``to`` as ISO dates,
``channel``, ``language``, and optionally ``minutes_per_contact`` / ``hours_per_fte`` to try
other mission-value assumptions) and are open to viewers, editors and admins. Numbers come from
:mod:`analytics.metrics` only. Conversation ids are pseudonymous and citizen text is redacted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from analytics import metrics, tables
from analytics.metrics import Dashboard, FilterError, MetricFilter
from askagency.db import session_scope
from askagency.staff import Role
from console.auth import require_role
from console.jsonapi import json_error
from console.keys import SETTINGS_KEY
from console.openapi import api_route

TAGS = ("metrics",)
ROLES = ("viewer", "editor", "admin")
ALLOWED = (Role.VIEWER, Role.EDITOR)  # require_role adds admin; agents get 403
MAX_CONVERSATIONS = 10_000

FILTER_QUERY = (
    ("from", "First day, ISO date (default: 29 days before 'to')", False),
    ("to", "Last day, ISO date, inclusive (default: today, UTC)", False),
    ("channel", "Only this channel (e.g. rest, socketio)", False),
    ("language", "Only this language (e.g. en)", False),
    ("minutes_per_contact", "Staff minutes per human-handled contact (default: settings)", False),
    ("hours_per_fte", "Working hours per FTE per week (default: settings)", False),
)


@dataclass(frozen=True)
class MetricsQuery:
    """A validated request for metrics: the filter and the mission-value assumptions."""

    flt: MetricFilter
    minutes_per_contact: float
    hours_per_fte: float

    def query_string(self) -> str:
        from urllib.parse import urlencode

        params = {"from": self.flt.start.isoformat(), "to": self.flt.end.isoformat()}
        if self.flt.channel:
            params["channel"] = self.flt.channel
        if self.flt.language:
            params["language"] = self.flt.language
        params["minutes_per_contact"] = f"{self.minutes_per_contact:g}"
        params["hours_per_fte"] = f"{self.hours_per_fte:g}"
        return urlencode(params)


def _number(request: web.Request, name: str, default: float, minimum: float) -> float:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise FilterError(f"{name} must be a number, got {raw!r}") from exc
    if not value >= minimum or value > 100_000:
        raise FilterError(f"{name} must be between {minimum:g} and 100000")
    return value


def parse_query(request: web.Request) -> MetricsQuery:
    """The request's filters; raises FilterError with a message the user can act on."""
    settings = request.app[SETTINGS_KEY]
    flt = MetricFilter.parse(
        request.query.get("from"),
        request.query.get("to"),
        request.query.get("channel"),
        request.query.get("language"),
    )
    return MetricsQuery(
        flt=flt,
        minutes_per_contact=_number(
            request, "minutes_per_contact", settings.metrics_minutes_per_contact, 0.0
        ),
        hours_per_fte=_number(request, "hours_per_fte", settings.metrics_hours_per_fte, 0.1),
    )


def compute(query: MetricsQuery) -> Dashboard:
    with session_scope() as session:
        return metrics.compute_dashboard(
            session, query.flt, query.minutes_per_contact, query.hours_per_fte
        )


def conversations(query: MetricsQuery) -> list[metrics.ConversationFacts]:
    with session_scope() as session:
        return metrics.conversation_records(session, query.flt)


async def load_dashboard(request: web.Request) -> tuple[MetricsQuery, Dashboard]:
    """Parses the filters and computes the dashboard off the event loop."""
    query = parse_query(request)
    return query, await asyncio.to_thread(compute, query)


class ConversationRecord(BaseModel):
    conversation: str
    started_at: str
    ended_at: str
    channel: str
    language: str
    user_messages: int
    questions: int
    answers: int
    handed_off: bool
    handoff_reason: str | None
    resolution: str
    feedback: str | None
    human_first_response_s: float | None
    time_to_close_s: float | None
    first_question: str | None


class ConversationList(BaseModel):
    total: int
    offset: int
    limit: int
    conversations: list[ConversationRecord]


def _int_param(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > maximum:
        raise FilterError(f"{name} must be a whole number from 0 to {maximum}")
    return int(raw)


@require_role(*ALLOWED)
async def get_metrics(request: web.Request) -> web.Response:
    try:
        _query, dashboard = await load_dashboard(request)
    except FilterError as exc:
        raise json_error(400, str(exc)) from exc
    return web.json_response(dashboard.model_dump(mode="json"))


@require_role(*ALLOWED)
async def get_conversations(request: web.Request) -> web.Response:
    try:
        query = parse_query(request)
        offset = _int_param(request, "offset", 0, 10_000_000)
        limit = _int_param(request, "limit", 1000, MAX_CONVERSATIONS)
    except FilterError as exc:
        raise json_error(400, str(exc)) from exc
    records = await asyncio.to_thread(conversations, query)
    table = tables.conversations_table(records[offset : offset + limit])
    items = [
        ConversationRecord.model_validate(dict(zip(table.columns, row, strict=True)))
        for row in table.rows
    ]
    body = ConversationList(total=len(records), offset=offset, limit=limit, conversations=items)
    return web.json_response(body.model_dump(mode="json"))


def setup(app: web.Application) -> None:
    api_route(
        app,
        "GET",
        "/api/metrics",
        get_metrics,
        summary="Every dashboard metric for a date range and filters",
        tags=TAGS,
        roles=ROLES,
        response_model=Dashboard,
        query=FILTER_QUERY,
    )
    api_route(
        app,
        "GET",
        "/api/metrics/conversations",
        get_conversations,
        summary="Per-conversation facts (pseudonymous ids, PII redacted)",
        tags=TAGS,
        roles=ROLES,
        response_model=ConversationList,
        query=(
            *FILTER_QUERY,
            ("offset", "Skip this many conversations", False),
            ("limit", f"At most this many (default 1000, max {MAX_CONVERSATIONS})", False),
        ),
    )
