"""The leadership dashboard page and its CSV exports.

The page is rendered on the server with every number and a data table behind every chart, so
it is complete without JavaScript and for screen readers; ``dashboard.js`` then draws the
charts (vendored Chart.js) from the JSON API with the same filters. Viewers, editors and admins
may open it; agents get 403.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from analytics import tables
from analytics.dashboard import compute_dashboard
from analytics.metrics import WEEKDAYS, Dashboard, FilterError
from analytics.pdf import render_pdf
from analytics.sentiment import SentimentSummary
from analytics.tables import NEGATIVE_RATE, Table, fmt, pct
from analytics.weekly import compute_weekly
from askagency.db import session_scope
from console.api_metrics import ALLOWED, MetricsQuery, conversations, load_dashboard, parse_query
from console.auth import require_role
from console.keys import SETTINGS_KEY
from console.nav import page_context

HEAT_LEVELS = 5


def duration(seconds: float | None) -> str:
    """210 -> "3 min 30 s"; people read minutes and hours better than seconds."""
    if seconds is None:
        return "–"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{seconds:.1f} s" if seconds < 10 else f"{secs} s"


def millis(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


def _sentiment_hint(s: SentimentSummary) -> str:
    """ "of 40 scored conversations; mostly about line, wait": where the tile's number comes
    from and what the negative messages were about."""
    hint = f"of {s.scored_conversations} scored conversations"
    if s.negative_topics:
        hint += "; mostly about " + ", ".join(s.negative_topics[:3])
    return hint


def tiles(d: Dashboard) -> list[dict[str, Any]]:
    """The headline tiles: label, shown value, raw value (for tests/scripts) and a hint."""
    s = d.summary
    m = s.mission
    return [
        {
            "key": "conversations",
            "label": "Conversations",
            "value": fmt(s.conversations),
            "raw": s.conversations,
            "hint": f"{fmt(s.user_messages)} citizen messages",
        },
        {
            "key": "containment_rate",
            "label": "Containment",
            "value": pct(s.containment_rate),
            "raw": s.containment_rate,
            "hint": f"{s.contained} of {s.conversations} without a handoff",
        },
        {
            "key": "bot_resolution_rate",
            "label": "Bot-resolution rate",
            "value": pct(s.bot_resolution_rate),
            "raw": s.bot_resolution_rate,
            "hint": f"{s.bot_resolved} resolved, {s.bot_resolved_confirmed} confirmed by a "
            "thumbs-up",
        },
        {
            "key": "handoff_rate",
            "label": "Handoff rate",
            "value": pct(s.handoff_rate),
            "raw": s.handoff_rate,
            "hint": f"{s.handoffs} handoffs, {s.agent_resolved} resolved by staff",
        },
        {
            "key": "bot_response_p50",
            "label": "Bot response time (median)",
            "value": millis(s.bot_response_ms.p50),
            "raw": s.bot_response_ms.p50,
            "hint": f"over {s.bot_response_ms.count} bot replies",
        },
        {
            "key": "bot_response_p90",
            "label": "Bot response time (p90)",
            "value": millis(s.bot_response_ms.p90),
            "raw": s.bot_response_ms.p90,
            "hint": f"p99 {millis(s.bot_response_ms.p99)}",
        },
        {
            "key": "human_first_response_p50",
            "label": "Human first response (median)",
            "value": duration(s.human_first_response_s.p50),
            "raw": s.human_first_response_s.p50,
            "hint": f"{s.tickets} tickets; median time to close {duration(s.time_to_close_s.p50)}",
        },
        {
            "key": "human_first_response_staffed_p50",
            "label": "Human first response in staffed hours (median)",
            "value": duration(s.human_first_response_staffed_s.p50),
            "raw": s.human_first_response_staffed_s.p50,
            "hint": "nights, weekends and holidays not counted",
        },
        {
            "key": "csat",
            "label": "CSAT",
            "value": pct(s.csat),
            "raw": s.csat,
            "hint": f"{s.feedback_good} positive, {s.feedback_bad} negative",
        },
        {
            "key": "negative_rate",
            "label": "Negative sentiment",
            "value": pct(s.sentiment.negative_rate),
            "raw": s.sentiment.negative_rate,
            "hint": _sentiment_hint(s.sentiment),
        },
        {
            "key": "staff_hours_saved",
            "label": "Staff hours saved",
            "value": f"{m.staff_hours_saved:,.1f} h",
            "raw": m.staff_hours_saved,
            "hint": f"{m.resolved_conversations} resolved by the bot x "
            f"{m.minutes_per_contact:g} min" + (f" = {m.money()}" if m.money() else ""),
        },
        {
            "key": "fte_equivalent",
            "label": "FTE equivalent",
            "value": f"{m.fte_equivalent:,.2f}",
            "raw": m.fte_equivalent,
            "hint": f"at {m.hours_per_fte:g} h per FTE per week",
        },
    ]


def cell(column: str, value: tables.Cell) -> str:
    if column.endswith("_rate") or column == "csat":
        return pct(value if isinstance(value, float | int) else None)
    if column.endswith("_ms"):
        return millis(value if isinstance(value, float | int) else None)
    return fmt(value)


def display(table: Table) -> dict[str, Any]:
    return {
        "name": table.name,
        "title": table.title,
        "columns": table.columns,
        "rows": [
            [cell(c, v) for c, v in zip(table.columns, row, strict=True)] for row in table.rows
        ],
    }


def heat_rows(d: Dashboard) -> list[dict[str, Any]]:
    """Weekday rows of (count, shade level 0-5) for the heat map table."""
    peak = max((n for row in d.heatmap for n in row), default=0)
    return [
        {
            "day": day,
            "cells": [
                (n, 0 if n == 0 or peak == 0 else max(1, round(n / peak * HEAT_LEVELS)))
                for n in counts
            ],
        }
        for day, counts in zip(WEEKDAYS, d.heatmap, strict=True)
    ]


def _headline_table(d: Dashboard) -> dict[str, Any]:
    table = tables.headline(d)
    rows = []
    for metric, value, note in table.rows:
        name = str(metric)
        if name in ("Containment", "Bot-resolution rate", "Handoff rate", "CSAT", NEGATIVE_RATE):
            shown = pct(value if isinstance(value, float) else None)
        elif "(ms)" in name:
            shown = millis(value if isinstance(value, float) else None)
        elif "(s)" in name:
            shown = duration(value if isinstance(value, float) else None)
        else:
            shown = fmt(value)
        rows.append([name, shown, note or ""])
    return {"name": table.name, "title": table.title, "columns": table.columns, "rows": rows}


@require_role(*ALLOWED)
async def dashboard_page(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    try:
        query, d = await load_dashboard(request)
    except FilterError as exc:
        context = page_context(request, error=str(exc), query=request.query, settings=settings)
        response = aiohttp_jinja2.render_template("dashboard_error.html", request, context)
        response.set_status(400)
        return response
    all_tables = tables.all_tables(d)
    context = page_context(
        request,
        d=d,
        q=query,
        query_string=query.query_string(),
        tiles=tiles(d),
        headline=_headline_table(d),
        tables={name: display(t) for name, t in all_tables.items()},
        heat=heat_rows(d),
        exports=list(all_tables),
    )
    return aiohttp_jinja2.render_template("dashboard.html", request, context)


def _csv_response(text: str, filename: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _filename(query: MetricsQuery, name: str) -> str:
    parts = [name, query.flt.start.isoformat(), query.flt.end.isoformat()]
    parts += [p for p in (query.flt.channel, query.flt.language, query.flt.location) if p]
    safe = "_".join("".join(ch for ch in p if ch.isalnum() or ch in "-_") for p in parts)
    return f"askagency_{safe}.csv"


@require_role(*ALLOWED)
async def export_csv(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        if name == "conversations":
            import asyncio

            query = parse_query(request)
            records = await asyncio.to_thread(conversations, query)
            return _csv_response(
                tables.conversations_table(records).to_csv(), _filename(query, name)
            )
        query, d = await load_dashboard(request)
    except FilterError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    table = tables.all_tables(d).get(name)
    if table is None:
        raise web.HTTPNotFound(text=f"no metric table named {name!r}")
    return _csv_response(table.to_csv(), _filename(query, name))


# matplotlib's pyplot keeps global state: one PDF is drawn at a time.
_PDF_LOCK = threading.Lock()


def report_pdf_bytes(query: MetricsQuery, weeks: int) -> bytes:
    """The one-page report of ``askagency report`` for the dashboard's filter: the period's
    figures and a trend of ``weeks`` full weeks ending on or before its last day."""
    with session_scope() as session:
        d = compute_dashboard(session, query.flt, query.assumptions)
        weekly = compute_weekly(session, query.flt, query.assumptions, weeks=weeks)
    with tempfile.TemporaryDirectory(prefix="askagency-pdf-") as folder, _PDF_LOCK:
        return render_pdf(d, weekly, Path(folder) / "report.pdf").read_bytes()


@require_role(*ALLOWED)
async def report_pdf(request: web.Request) -> web.Response:
    """``GET /console/dashboard/report.pdf?<the dashboard's filters>``: the one-page report."""
    weeks = request.app[SETTINGS_KEY].report_weeks
    try:
        query = parse_query(request)
        data = await asyncio.to_thread(report_pdf_bytes, query, weeks)
    except FilterError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    filename = _filename(query, "report").removesuffix(".csv") + ".pdf"
    return web.Response(
        body=data,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/console/dashboard", dashboard_page)
    app.router.add_get("/console/dashboard/export/{name}.csv", export_csv)
    app.router.add_get("/console/dashboard/report.pdf", report_pdf)
