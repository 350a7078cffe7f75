"""Week over week and the 8-week trend: the numbers a leadership team reads every Monday.

AskTSA's team sent leadership a weekly trend report; this is its core. Weeks run Monday to
Sunday on the agency's clock (the filter's time zone), and the newest week is the last full
one: a report made on a Wednesday compares last week with the week before, not three days
with seven. Every figure comes from :func:`analytics.dashboard.compute_dashboard` (or its
headline figures alone, :func:`analytics.dashboard.compute_summary`), so a weekly number means
exactly what the same number means on the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

from pydantic import BaseModel
from sqlalchemy.orm import Session

from analytics.dashboard import compute_dashboard, compute_summary
from analytics.metrics import Assumptions, Breakdown, Dashboard, MetricFilter, Summary
from analytics.tables import Table
from askagency.location_codes import UNKNOWN_LOCATION

DEFAULT_WEEKS = 8


class WeekPoint(BaseModel):
    week: str  # the Monday, ISO date
    conversations: int
    bot_resolved: int
    bot_resolution_rate: float | None
    handoffs: int
    human_first_response_staffed_p50_s: float | None
    csat: float | None
    negative_rate: float | None  # conversations with a negative message / scored ones
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
    location: str | None
    weeks: list[WeekPoint]  # oldest first; the last one is the newest full week
    changes: list[Change]
    by_channel: list[Change]  # conversations per channel, this week against the previous
    by_language: list[Change]
    by_location: list[Change]
    # Every headline figure per location (the locations of either week), this week against
    # the previous: "handoffs at DEN rose 30%".
    location_changes: dict[str, list[Change]]
    # Sentences for the top of the report: how negative sentiment moved, overall and at each
    # location, and what the negative messages were mostly about.
    highlights: list[str]


def last_full_week_end(day: date) -> date:
    """The Sunday that ends the newest full week on or before ``day``."""
    return day - timedelta(days=(day.weekday() + 1) % 7)


def relative_change(now: float | None, before: float | None) -> float | None:
    if now is None or before is None or before == 0:
        return None
    return (now - before) / before


def _point(monday: date, s: Summary) -> WeekPoint:
    return WeekPoint(
        week=monday.isoformat(),
        conversations=s.conversations,
        bot_resolved=s.bot_resolved,
        bot_resolution_rate=s.bot_resolution_rate,
        handoffs=s.handoffs,
        human_first_response_staffed_p50_s=s.human_first_response_staffed_s.p50,
        csat=s.csat,
        negative_rate=s.sentiment.negative_rate,
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
        "negative_rate",
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


def sentiment_highlight(location: str | None, now: Summary, before: Summary) -> str | None:
    """ "Negative sentiment at DEN rose 30% (12.0% of conversations, from 9.2%), mostly about
    line, wait." None when this week has no scored conversation."""
    s, p = now.sentiment, before.sentiment
    if s.negative_rate is None:
        return None
    where = {None: "", UNKNOWN_LOCATION: " with no known location"}.get(location, f" at {location}")
    if p.negative_rate is None:
        moved, since = "was", " (no scored conversation the week before)"
    elif s.negative_rate == p.negative_rate:
        moved, since = "held at", ""
    else:
        direction = "rose" if s.negative_rate > p.negative_rate else "fell"
        change = relative_change(s.negative_rate, p.negative_rate)  # None from 0%
        moved = f"{direction} {abs(change):.0%} to" if change is not None else f"{direction} to"
        since = f" (from {p.negative_rate:.1%})"
    about = f", mostly about {', '.join(s.negative_topics[:3])}" if s.negative_topics else ""
    return (
        f"Negative sentiment{where} {moved} {s.negative_rate:.1%} of conversations{since}{about}."
    )


def _negative_now_or_before(now: Summary, before: Summary) -> bool:
    rates = (now.sentiment.negative_rate, before.sentiment.negative_rate)
    return any(rate for rate in rates)


def weekly_trend(
    flt: MetricFilter,
    dashboard_of: Callable[[MetricFilter], Dashboard],
    summary_of: Callable[[MetricFilter], Summary],
    weeks: int = DEFAULT_WEEKS,
) -> WeeklyTrend:
    """``weeks`` full weeks ending with the last full week on or before ``flt.end``, with the
    filter's channel, language, location and time zone (its start is not used); without a
    location filter, also every location's figures for the newest two weeks. The newest two
    weeks are whole dashboards (their channels, languages and locations are compared); the
    other weeks and the locations need only the headline figures (``summary_of``)."""
    if weeks < 2:
        raise ValueError("a trend needs at least 2 weeks")
    last_sunday = last_full_week_end(flt.end)
    mondays = [last_sunday - timedelta(days=6 + 7 * i) for i in reversed(range(weeks))]

    def week(monday: date, location: str | None) -> MetricFilter:
        return replace(flt, start=monday, end=monday + timedelta(days=6), location=location)

    newest = [dashboard_of(week(m, flt.location)) for m in mondays[-2:]]
    summaries = [summary_of(week(m, flt.location)) for m in mondays[:-2]]
    summaries += [board.summary for board in newest]
    points = [_point(m, s) for m, s in zip(mondays, summaries, strict=True)]
    by_location = _split(newest[-1].by_location, newest[-2].by_location)
    highlights = [sentiment_highlight(flt.location, summaries[-1], summaries[-2])]
    location_changes = {}
    noteworthy: list[tuple[float, str]] = []
    for change in by_location if flt.location is None else []:
        now, before = (summary_of(week(m, change.metric)) for m in (mondays[-1], mondays[-2]))
        location_changes[change.metric] = _changes(
            _point(mondays[-1], now), _point(mondays[-2], before)
        )
        if _negative_now_or_before(now, before):
            sentence = sentiment_highlight(change.metric, now, before)
            noteworthy.append((now.sentiment.negative_rate or 0.0, sentence or ""))
    # Locations where citizens were unhappy this week come first; one where nobody was
    # negative either week has nothing to say.
    highlights += [sentence for _, sentence in sorted(noteworthy, key=lambda n: -n[0])]
    return WeeklyTrend(
        time_zone=flt.zone,
        channel=flt.channel,
        language=flt.language,
        location=flt.location,
        weeks=points,
        changes=_changes(points[-1], points[-2]),
        by_channel=_split(newest[-1].by_channel, newest[-2].by_channel),
        by_language=_split(newest[-1].by_language, newest[-2].by_language),
        by_location=by_location,
        location_changes=location_changes,
        highlights=[h for h in highlights if h],
    )


def compute_weekly(
    session: Session,
    flt: MetricFilter,
    assumptions: Assumptions,
    *,
    weeks: int = DEFAULT_WEEKS,
) -> WeeklyTrend:
    """:func:`weekly_trend` over the database, with the dashboard's assumptions."""

    def dashboard_of(week: MetricFilter) -> Dashboard:
        return compute_dashboard(session, week, assumptions)

    def summary_of(week: MetricFilter) -> Summary:
        return compute_summary(session, week, assumptions)

    return weekly_trend(flt, dashboard_of, summary_of, weeks)


def trend_table(t: WeeklyTrend) -> Table:
    columns = tuple(WeekPoint.model_fields)
    rows = tuple(tuple(getattr(p, c) for c in columns) for p in t.weeks)
    return Table("weekly_trend", f"Weekly trend ({t.time_zone} weeks)", columns, rows)


def change_table(name: str, title: str, changes: list[Change]) -> Table:
    columns = ("metric", "this_week", "previous_week", "change_rate")
    rows = tuple((c.metric, c.this_week, c.previous_week, c.change) for c in changes)
    return Table(name, title, columns, rows)


def location_changes_table(t: WeeklyTrend) -> Table:
    columns = ("location", "metric", "this_week", "previous_week", "change_rate")
    rows = tuple(
        (location, c.metric, c.this_week, c.previous_week, c.change)
        for location, changes in t.location_changes.items()
        for c in changes
    )
    return Table("week_over_week_per_location", "Each location, week over week", columns, rows)


def weekly_tables(t: WeeklyTrend) -> dict[str, Table]:
    tables = [
        change_table("week_over_week", "Week over week", t.changes),
        change_table("week_over_week_by_channel", "Conversations by channel", t.by_channel),
        change_table("week_over_week_by_language", "Conversations by language", t.by_language),
        change_table("week_over_week_by_location", "Conversations by location", t.by_location),
        location_changes_table(t),
        trend_table(t),
    ]
    return {table.name: table for table in tables}
