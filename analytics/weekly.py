"""Week over week and the 8-week trend: the numbers a leadership team reads every Monday.

AskTSA's team sent leadership a weekly trend report; this is its core. Weeks run Monday to
Sunday on the agency's clock (the filter's time zone), and the newest week is the last full
one: a report made on a Wednesday compares last week with the week before, not three days
with seven. Every figure comes from :func:`analytics.metrics.compute_dashboard`, so a weekly
number means exactly what the same number means on the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from pydantic import BaseModel
from sqlalchemy.orm import Session

from analytics.metrics import (
    ALWAYS_STAFFED,
    Breakdown,
    Dashboard,
    MetricFilter,
    compute_dashboard,
)
from analytics.tables import Table
from handoff.hours import StaffedHours

DEFAULT_WEEKS = 8


class WeekPoint(BaseModel):
    week: str  # the Monday, ISO date
    conversations: int
    bot_resolved: int
    bot_resolution_rate: float | None
    handoffs: int
    human_first_response_staffed_p50_s: float | None
    csat: float | None
    staff_hours_saved: float


class Change(BaseModel):
    """One figure, the newest full week against the week before."""

    metric: str
    this_week: int | float | None
    previous_week: int | float | None
    change: float | None  # relative (0.3 = +30%); None when the previous week had none


class WeeklyTrend(BaseModel):
    time_zone: str
    channel: str | None
    language: str | None
    weeks: list[WeekPoint]  # oldest first; the last one is the newest full week
    changes: list[Change]
    by_channel: list[Change]  # conversations per channel, this week against the previous
    by_language: list[Change]


def last_full_week_end(day: date) -> date:
    """The Sunday that ends the newest full week on or before ``day``."""
    return day - timedelta(days=(day.weekday() + 1) % 7)


def relative_change(now: float | None, before: float | None) -> float | None:
    if now is None or before is None or before == 0:
        return None
    return (now - before) / before


def _point(monday: date, d: Dashboard) -> WeekPoint:
    s = d.summary
    return WeekPoint(
        week=monday.isoformat(),
        conversations=s.conversations,
        bot_resolved=s.bot_resolved,
        bot_resolution_rate=s.bot_resolution_rate,
        handoffs=s.handoffs,
        human_first_response_staffed_p50_s=s.human_first_response_staffed_s.p50,
        csat=s.csat,
        staff_hours_saved=s.mission.staff_hours_saved,
    )


def _changes(now: WeekPoint, before: WeekPoint) -> list[Change]:
    fields = (
        "conversations",
        "bot_resolved",
        "bot_resolution_rate",
        "handoffs",
        "human_first_response_staffed_p50_s",
        "csat",
        "staff_hours_saved",
    )
    return [
        Change(
            metric=name,
            this_week=getattr(now, name),
            previous_week=getattr(before, name),
            change=relative_change(getattr(now, name), getattr(before, name)),
        )
        for name in fields
    ]


def _split(now: list[Breakdown], before: list[Breakdown]) -> list[Change]:
    current = {b.key: b.conversations for b in now}
    previous = {b.key: b.conversations for b in before}
    keys = sorted(set(current) | set(previous), key=lambda k: (-current.get(k, 0), k))
    return [
        Change(
            metric=key,
            this_week=current.get(key, 0),
            previous_week=previous.get(key, 0),
            change=relative_change(current.get(key, 0), previous.get(key, 0)),
        )
        for key in keys
    ]


def weekly_trend(
    flt: MetricFilter,
    dashboard_of: Callable[[MetricFilter], Dashboard],
    weeks: int = DEFAULT_WEEKS,
) -> WeeklyTrend:
    """``weeks`` full weeks ending with the last full week on or before ``flt.end``, with the
    filter's channel, language and time zone (its start is not used)."""
    if weeks < 2:
        raise ValueError("a trend needs at least 2 weeks")
    last_sunday = last_full_week_end(flt.end)
    mondays = [last_sunday - timedelta(days=6 + 7 * i) for i in reversed(range(weeks))]
    boards = [
        dashboard_of(MetricFilter(m, m + timedelta(days=6), flt.channel, flt.language, flt.zone))
        for m in mondays
    ]
    points = [_point(m, d) for m, d in zip(mondays, boards, strict=True)]
    return WeeklyTrend(
        time_zone=flt.zone,
        channel=flt.channel,
        language=flt.language,
        weeks=points,
        changes=_changes(points[-1], points[-2]),
        by_channel=_split(boards[-1].by_channel, boards[-2].by_channel),
        by_language=_split(boards[-1].by_language, boards[-2].by_language),
    )


def compute_weekly(
    session: Session,
    flt: MetricFilter,
    minutes_per_contact: float,
    hours_per_fte: float,
    *,
    weeks: int = DEFAULT_WEEKS,
    cost_per_contact: float | None = None,
    currency: str = "USD",
    staffed: StaffedHours = ALWAYS_STAFFED,
) -> WeeklyTrend:
    """:func:`weekly_trend` over the database, with the dashboard's assumptions."""

    def dashboard_of(week: MetricFilter) -> Dashboard:
        return compute_dashboard(
            session,
            week,
            minutes_per_contact,
            hours_per_fte,
            cost_per_contact,
            currency,
            staffed,
        )

    return weekly_trend(flt, dashboard_of, weeks)


def trend_table(t: WeeklyTrend) -> Table:
    columns = tuple(WeekPoint.model_fields)
    rows = tuple(tuple(getattr(p, c) for c in columns) for p in t.weeks)
    return Table("weekly_trend", f"Weekly trend ({t.time_zone} weeks)", columns, rows)


def change_table(name: str, title: str, changes: list[Change]) -> Table:
    columns = ("metric", "this_week", "previous_week", "change_rate")
    rows = tuple((c.metric, c.this_week, c.previous_week, c.change) for c in changes)
    return Table(name, title, columns, rows)


def weekly_tables(t: WeeklyTrend) -> dict[str, Table]:
    tables = [
        change_table("week_over_week", "Week over week", t.changes),
        change_table("week_over_week_by_channel", "Conversations by channel", t.by_channel),
        change_table("week_over_week_by_language", "Conversations by language", t.by_language),
        trend_table(t),
    ]
    return {table.name: table for table in tables}
