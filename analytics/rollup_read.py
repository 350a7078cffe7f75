"""Reading the daily roll-ups (analytics.rollup): sums, labelled counts and histograms of a
period, and the few lean row queries the roll-up dashboard needs besides.

Why a module of its own: analytics.rollup_dashboard turns these figures into the dashboard (with
analytics.metrics' definitions), and analytics.rollup, which maintains the tables, builds on
analytics.metrics' definitions too; this module sits below all three and imports none. The
dashboard uses the roll-ups when they are in the filter's time zone and the period holds more
than :data:`EXACT_UP_TO` conversations (docs/metrics.md, "Speed at volume").
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Date, Integer, String, and_, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from analytics.models import (
    AnalyticsConversation,
    AnalyticsDaily,
    AnalyticsDailyCount,
    AnalyticsDailyTotalCount,
    AnalyticsMonthlyCount,
    AnalyticsRollupState,
)
from handoff.models import Status, Ticket

# Periods with at most this many conversations are computed from the rows (exact percentiles):
# the exact path takes well under a second there (docs/scale.md, "Analytics at volume").
EXACT_UP_TO = 2_000
ID_CHUNK = 5_000  # ids per IN (...) list: SQLite allows 32,766 bound parameters
ZONE = "zone"  # the state row naming the time zone the roll-up days are in
# Bot response-time histogram: bucket 0 holds [0, 1) ms, bucket i (1..MAX_BUCKET-1) holds
# [10^((i-1)/20), 10^(i/20)) ms, the last everything from 10^6 ms (16.7 minutes) on.
BUCKETS_PER_DECADE = 20
MAX_BUCKET = 6 * BUCKETS_PER_DECADE + 1
SENTIMENT_UNIT = 10_000  # sentiment scores are stored rounded to 4 places
SCORE_UNIT = 1_000_000  # retrieval scores summed in micro-units
DAILY_FIELDS = tuple(
    c.name
    for c in AnalyticsDaily.__table__.columns
    if c.name not in ("day", "channel", "language", "location")
)

Histogram = dict[int, int]


class Period(Protocol):
    """A dashboard filter (analytics.metrics.MetricFilter): days, bounds and dimensions."""

    start: date
    end: date
    zone: str
    channel: str | None
    language: str | None
    location: str | None

    @property
    def start_dt(self) -> datetime: ...

    @property
    def end_dt(self) -> datetime: ...

    def local(self, moment: datetime) -> datetime: ...


def built_zone(session: Session) -> str | None:
    """The time zone the roll-ups' days are in; None when they were never built."""
    query = select(AnalyticsRollupState.value).where(AnalyticsRollupState.name == ZONE)
    return session.scalar(query)


def bucket_of(ms: float) -> int:
    """The histogram bucket of a response time (negative times, clock skew, go to bucket 0)."""
    if not ms >= 1.0:  # also NaN
        return 0
    return min(int(math.floor(math.log10(ms) * BUCKETS_PER_DECADE)) + 1, MAX_BUCKET)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """[low, high) of a bucket in ms; the overflow bucket reports its lower bound only."""
    if bucket <= 0:
        return 0.0, 1.0
    low = 10 ** ((bucket - 1) / BUCKETS_PER_DECADE)
    if bucket >= MAX_BUCKET:
        return low, low
    return low, 10 ** (bucket / BUCKETS_PER_DECADE)


def _filtered(query: Any, model: Any, flt: Period) -> Any:
    """The roll-up rows of the period's days and the filter's dimensions."""
    return _dimensions(query.where(model.day >= flt.start, model.day <= flt.end), model, flt)


def daily_sums(session: Session, flt: Period, *by: str) -> dict[tuple[Any, ...], Counter[str]]:
    """Every additive figure of the period, grouped by the key columns ``by``."""
    keys = [getattr(AnalyticsDaily, name) for name in by]
    sums = [func.sum(getattr(AnalyticsDaily, f)).label(f) for f in DAILY_FIELDS]
    query = _filtered(select(*keys, *sums), AnalyticsDaily, flt).group_by(*keys)
    result: dict[tuple[Any, ...], Counter[str]] = {}
    for row in session.execute(query).all():
        values = row._mapping
        result[tuple(values[name] for name in by)] = Counter(
            {f: int(values[f] or 0) for f in DAILY_FIELDS}
        )
    return result


def label_sums(
    session: Session, flt: Period, kind: str, *by: str
) -> dict[tuple[Any, ...], dict[str, tuple[int, int, int]]]:
    """Labelled counts of one kind: key columns ``by`` -> label -> (n, score sum, scored).
    The period's whole calendar months come from the monthly rows, the days around them (all
    days when ``by`` holds ``day``) from the daily ones, or from the days' totals when neither
    the filter nor ``by`` names a channel, language or location."""
    result: dict[tuple[Any, ...], dict[str, tuple[int, int, int]]] = defaultdict(dict)
    months, days = (None, [(flt.start, flt.end)]) if "day" in by else split_months(flt)
    every_dimension = not any(getattr(flt, name) for name in DIMENSIONS)
    day_rows: Any = (
        AnalyticsDailyTotalCount if every_dimension and set(by) <= {"day"} else AnalyticsDailyCount
    )
    parts = [(day_rows, day_rows.day, low, high) for low, high in days]
    if months is not None:
        parts.append((AnalyticsMonthlyCount, AnalyticsMonthlyCount.month, *months))
    for model, period, low, high in parts:
        keys = [getattr(model, name) for name in by]
        query = _dimensions(
            select(
                *keys,
                model.label,
                func.sum(model.n),
                _sum_or_zero(model, kind, "score_sum"),
                _sum_or_zero(model, kind, "scored"),
            )
            .where(model.kind == kind, period >= low, period <= high)
            .group_by(*keys, model.label),
            model,
            flt,
        )
        width = len(by)
        for row in session.connection().execute(query).all():
            key, label = tuple(row[:width]), row[width]
            n, score, scored = row[width + 1], int(row[width + 2] or 0), row[width + 3] or 0
            labels = result[key]
            if label in labels:
                before = labels[label]
                n, score, scored = before[0] + n, before[1] + score, before[2] + scored
            labels[label] = (n, score, scored)
    return {
        key: {label: v for label, v in labels.items() if v[0]}
        for key, labels in result.items()
        if any(v[0] for v in labels.values())
    }


# The only kind whose rows carry retrieval scores (analytics.rollup.Delta.add). Summing the
# others' zero columns (``score_sum`` is a BIGINT, which PostgreSQL sums in NUMERIC) took a
# third of the year's response-time query.
SCORED_KIND = "faq"


def _sum_or_zero(model: Any, kind: str, column: str) -> Any:
    return func.sum(getattr(model, column)) if kind == SCORED_KIND else literal(0)


def split_months(flt: Period) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """The period as its whole calendar months (first and last month, by their first days;
    None when it holds none) and the days before and after them."""
    first = flt.start if flt.start.day == 1 else _next_month(flt.start)
    after = _next_month(flt.end)  # the first day after the last whole month
    if flt.end != after - timedelta(days=1):
        after = flt.end.replace(day=1)
    if first >= after:
        return None, [(flt.start, flt.end)]
    days = []
    if flt.start < first:
        days.append((flt.start, first - timedelta(days=1)))
    if after <= flt.end:
        days.append((after, flt.end))
    last_month = (after - timedelta(days=1)).replace(day=1)
    return (first, last_month), days


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def histograms(session: Session, flt: Period, by: str) -> dict[Any, Histogram]:
    """Bot response-time histograms of the period per value of the key column ``by``."""
    return {
        key[0]: {int(label): n for label, (n, _, _) in labels.items()}
        for key, labels in label_sums(session, flt, "response", by).items()
    }


DIMENSIONS = ("channel", "language", "location")


def dimension_histograms(session: Session, flt: Period) -> dict[str, dict[Any, Histogram]]:
    """Bot response-time histograms per channel, per language and per location, from one
    query (one scan of the period's response rows instead of one per dimension)."""
    result: dict[str, dict[Any, Histogram]] = {name: defaultdict(dict) for name in DIMENSIONS}
    for key, labels in label_sums(session, flt, "response", *DIMENSIONS).items():
        for name, value in zip(DIMENSIONS, key, strict=True):
            hist = result[name][value]
            for label, (n, _, _) in labels.items():
                hist[int(label)] = hist.get(int(label), 0) + n
    return {name: dict(hists) for name, hists in result.items()}


def _rank_value(ordered: list[tuple[int, int]], rank: int) -> float:
    """The estimated ``rank``-th smallest value (0-based): its bucket, and inside the bucket
    its place among the bucket's values, log-linearly (linearly in the [0, 1) ms bucket)."""
    seen = 0
    for bucket, count in ordered:
        if rank < seen + count:
            low, high = bucket_bounds(bucket)
            share = (rank - seen + 0.5) / count
            if low == high:
                return low
            return share * high if low == 0 else float(low * (high / low) ** share)
        seen += count
    return bucket_bounds(ordered[-1][0])[0]


def hist_percentile(hist: Histogram, q: float) -> float | None:
    """The q-th percentile of a histogram with the exact path's rule (linear interpolation
    between the ranks around (n-1)·q/100), each rank's value estimated inside its bucket: the
    result is within one bucket's ratio (10^(1/20), 12.2%) of the exact percentile."""
    ordered = sorted((b, n) for b, n in hist.items() if n > 0)
    total = sum(n for _, n in ordered)
    if total == 0:
        return None
    position = (total - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    below = _rank_value(ordered, low)
    if low == high:
        return below
    return below + (_rank_value(ordered, high) - below) * (position - low)


def merge(hists: Iterable[Histogram]) -> Histogram:
    total: dict[int, int] = defaultdict(int)
    for h in hists:
        for bucket, n in h.items():
            total[bucket] += n
    return dict(total)


def _dimensions(query: Any, model: Any, flt: Period) -> Any:
    for name in ("channel", "language", "location"):
        value = getattr(flt, name)
        if value:
            query = query.where(getattr(model, name) == value)
    return query


@dataclass(frozen=True)
class Handoffs:
    """The period's handed-off conversations as the roll-up dashboard needs them."""

    agent_resolved_by_day: Counter[date]  # agent-resolved conversations per agency day started
    without_ticket_row: list[Any]  # whole rows of those whose ticket is not in the tables


def handoffs(session: Session, flt: Period) -> Handoffs:
    """The handed-off conversations of the period that an agent resolved, per agency day, and
    whole rows of those whose ticket is not in the tables, in one query: the partial index on
    handed-off conversations (covering on PostgreSQL) joined with the tickets. As
    analytics.metrics.load_conversations, a conversation is agent-resolved by its ticket row's
    status when there is one (its ``ticket_id`` is the ticket's id as text), else by what its
    own close event said. PostgreSQL counts them per day itself (a year's 35,000 start times
    cost more to fetch and convert than the join); SQLite has no time zones, so there Python
    does."""
    c, t = AnalyticsConversation, Ticket
    period = _dimensions(
        select()
        .select_from(c)
        # A ticket is opened from its conversation, never before it started: the bound lets
        # a week's query read a week's tickets (by index), not every ticket ever opened.
        .outerjoin(t, and_(_ticket_of_conversation(session), t.created_at >= flt.start_dt))
        .where(c.handed_off, c.started_at >= flt.start_dt, c.started_at < flt.end_dt)
        .where(or_(t.status == Status.CLOSED_RESOLVED.value, t.id.is_(None))),
        c,
        flt,
    )
    connection = session.connection()
    by_day: Counter[date] = Counter()
    ticketless: list[int] = []
    day = _agency_day(session, c.started_at, flt.zone)
    if day is None:
        rows = connection.execute(period.add_columns(c.id, c.started_at, c.closed_resolved, t.id))
        for conversation, started, closed_resolved, ticket in rows:
            if ticket is not None or closed_resolved:
                by_day[flt.local(started).date()] += 1
            if ticket is None:
                ticketless.append(conversation)
    else:
        resolved = or_(t.id.is_not(None), c.closed_resolved.is_(True))
        grouped = period.add_columns(
            day, func.count().filter(resolved), func.array_agg(c.id).filter(t.id.is_(None))
        ).group_by(day)
        for started_on, n, ids in connection.execute(grouped):
            by_day[started_on] += n
            ticketless += ids or []
    return Handoffs(+by_day, _whole_rows(session, ticketless))


def _agency_day(session: Session, moment: Any, zone: str) -> Any | None:
    """The agency day of a timestamp column as PostgreSQL computes it; None on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return func.date(func.timezone(zone, moment), type_=Date)


def _ticket_of_conversation(session: Session) -> Any:
    """The join condition "this ticket row is the conversation's ticket": its id as text equals
    the conversation's ``ticket_id``. PostgreSQL hashes the tickets on that text. SQLite would
    compare every pair, so there the ticket is looked up by primary key first (a text that is no
    number casts to 0, no ticket) and the text comparison keeps the match exact ("007" is not
    ticket 7)."""
    c, t = AnalyticsConversation, Ticket
    same_text = cast(t.id, String) == c.ticket_id
    if session.get_bind().dialect.name == "sqlite":
        return and_(t.id == cast(c.ticket_id, Integer), same_text)
    return same_text


def _whole_rows(session: Session, ids: list[int]) -> list[Any]:
    c = AnalyticsConversation
    columns = (
        c.conversation_key,
        c.sender_id,
        c.started_at,
        c.ended_at,
        c.channel,
        c.language,
        c.location,
        c.handoff_reason,
        c.ticket_id,
        c.handoff_at,
        c.first_agent_reply_at,
        c.closed_at,
        c.closed_resolved,
    )
    rows: list[Any] = []
    for i in range(0, len(ids), ID_CHUNK):
        chunk = select(*columns).where(c.id.in_(ids[i : i + ID_CHUNK]))
        rows += session.connection().execute(chunk).all()
    return rows


def options(session: Session) -> tuple[list[str], list[str], list[str]]:
    """Every channel, language and location the roll-ups have (the filter menus)."""

    def seen(column: Any) -> list[str]:
        return sorted(session.scalars(select(column).distinct()))

    d = AnalyticsDaily
    return seen(d.channel), seen(d.language), seen(d.location)
