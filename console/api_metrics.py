"""JSON API of the leadership metrics: the whole dashboard, and the conversations behind it.

Both routes take the dashboard's filters as query parameters (``from``, ``to`` as ISO dates,
``channel``, ``language``, ``location``, and optionally ``minutes_per_contact`` /
``hours_per_fte`` to try other mission-value assumptions) and are open to viewers, editors
and admins. Numbers come from :mod:`analytics.metrics` only. Conversation ids are
pseudonymous and citizen text is redacted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from analytics import metrics, tables
from analytics.dashboard import compute_dashboard
from analytics.metrics import Assumptions, Dashboard, FilterError, MetricFilter
from askagency.db import session_scope
from askagency.staff import Role
from console.auth import require_role
from console.jsonapi import QueryError, json_error, validate_query
from console.keys import SETTINGS_KEY
from console.openapi import api_route
from handoff.hours import HoursConfigError, StaffedHours, hours_from_settings

TAGS = ("metrics",)
ALLOWED = (Role.VIEWER, Role.EDITOR)  # require_role adds admin; agents get 403
MAX_CONVERSATIONS = 10_000


class FilterParams(BaseModel):
    """The dashboard's filters, as the API and the page take them."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: str | None = Field(
        None, alias="from", description="First day, ISO date (default: 29 days before 'to')"
    )
    to: str | None = Field(None, description="Last day, ISO date, inclusive (default: today)")
    channel: str | None = Field(None, description="Only this channel (e.g. rest, socketio)")
    language: str | None = Field(None, description="Only this language (e.g. en)")
    location: str | None = Field(
        None, max_length=16, description="Only this location: a code (e.g. DEN) or unknown"
    )
    minutes_per_contact: float | None = Field(
        None, ge=0.0, le=100_000, description="Staff minutes per contact (default: settings)"
    )
    hours_per_fte: float | None = Field(
        None, ge=0.1, le=100_000, description="Working hours per FTE per week (default: settings)"
    )
    cost_per_contact: float | None = Field(
        None,
        ge=0.0,
        le=1_000_000,
        description="Cost of one staff-handled contact, for the money figure (default: settings)",
    )


class ConversationParams(FilterParams):
    offset: int = Field(0, ge=0, le=10_000_000, description="Skip this many conversations")
    limit: int = Field(1000, ge=0, le=MAX_CONVERSATIONS, description="At most this many")


@dataclass(frozen=True)
class MetricsQuery:
    """A validated request for metrics: the filter and the mission-value assumptions."""

    flt: MetricFilter
    assumptions: Assumptions

    def query_string(self) -> str:
        from urllib.parse import urlencode

        params = {"from": self.flt.start.isoformat(), "to": self.flt.end.isoformat()}
        if self.flt.channel:
            params["channel"] = self.flt.channel
        if self.flt.language:
            params["language"] = self.flt.language
        if self.flt.location:
            params["location"] = self.flt.location
        a = self.assumptions
        params["minutes_per_contact"] = f"{a.minutes_per_contact:g}"
        params["hours_per_fte"] = f"{a.hours_per_fte:g}"
        if a.cost_per_contact is not None:
            params["cost_per_contact"] = f"{a.cost_per_contact:g}"
        return urlencode(params)


def parse_query(request: web.Request) -> MetricsQuery:
    """The request's filters; raises FilterError with a message the user can act on."""
    settings = request.app[SETTINGS_KEY]
    try:
        params = validate_query(request, FilterParams)
    except QueryError as exc:
        raise FilterError(str(exc)) from exc
    flt = MetricFilter.parse(
        params.from_,
        params.to,
        params.channel,
        params.language,
        zone=settings.staffed_timezone,
        location=params.location,
    )
    minutes = params.minutes_per_contact
    hours = params.hours_per_fte
    assumptions = Assumptions(
        minutes_per_contact=settings.metrics_minutes_per_contact if minutes is None else minutes,
        hours_per_fte=settings.metrics_hours_per_fte if hours is None else hours,
        cost_per_contact=(
            settings.metrics_cost_per_contact
            if params.cost_per_contact is None
            else params.cost_per_contact
        ),
        currency=settings.metrics_currency,
        staffed=_staffed_hours(settings),
    )
    return MetricsQuery(flt=flt, assumptions=assumptions)


def _staffed_hours(settings: object) -> StaffedHours:
    try:
        return hours_from_settings(settings)
    except HoursConfigError as exc:  # a configuration mistake: say which setting
        raise FilterError(f"staffed hours setting: {exc}") from exc


def compute(query: MetricsQuery) -> Dashboard:
    with session_scope() as session:
        return compute_dashboard(session, query.flt, query.assumptions)


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
    location: str
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
        page = validate_query(request, ConversationParams)
        offset, limit = page.offset, page.limit
    except (FilterError, QueryError) as exc:
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
        response_model=Dashboard,
        query_model=FilterParams,
    )
    api_route(
        app,
        "GET",
        "/api/metrics/conversations",
        get_conversations,
        summary="Per-conversation facts (pseudonymous ids, PII redacted)",
        tags=TAGS,
        response_model=ConversationList,
        query_model=ConversationParams,
    )
