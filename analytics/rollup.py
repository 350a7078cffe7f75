"""Daily roll-ups: the additive figures of each agency day, kept up to date by ingest.

Why: the dashboard and the weekly report used to load every conversation and turn of the
period into Python; at AskTSA's scale (1M conversations, 5M messages a year) that takes
minutes. The roll-up tables (analytics.models: ``analytics_daily``, ``analytics_daily_count``)
hold, per day in the agency's time zone and (channel, language, location), the counts and
sums the dashboard adds up, plus a fixed log-spaced histogram of bot response times for the
percentiles (analytics.rollup_read.bucket_of; analytics.rollup_dashboard turns them into the
dashboard). The labelled counts are also kept per calendar month
(``analytics_monthly_count``) and per day over every dimension (``analytics_daily_total_count``),
so that a year is read from twelve months' rows and an unfiltered period from one row per day
and label (:data:`LABEL_TABLES`; analytics.rollup_read.label_sums picks them).

How they stay right: a conversation's contribution is a pure function of its row and its
turns (:meth:`Delta.add`). When ingest rebuilds a sender's conversations it subtracts the old
rows' contribution and adds the new rows' one, in the same transaction, with
``INSERT .. ON CONFLICT DO UPDATE SET n = n + excluded.n`` so concurrent consumers add up
instead of overwriting each other. Re-delivered and out-of-order events therefore leave the
roll-ups exactly where a full :func:`rebuild` from the rows puts them. The state table records
the time zone the days are in; when it is not the agency's zone any more the dashboard reads
the rows instead until :func:`rebuild` (``askagency analytics rollup
--rebuild``) runs, which the analytics consumer also does at start-up (:func:`ensure`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from analytics.metrics import RELATED_PAIR_SEPARATOR, ConversationFacts, is_bot_resolved
from analytics.models import (
    HOURS,
    LABEL_MAX_LEN,
    AnalyticsConversation,
    AnalyticsDaily,
    AnalyticsDailyCount,
    AnalyticsDailyTotalCount,
    AnalyticsMonthlyCount,
    AnalyticsRollupState,
    AnalyticsTurn,
)
from analytics.rollup_read import (
    DAILY_FIELDS,
    SCORE_UNIT,
    SCORED_KIND,
    SENTIMENT_UNIT,
    ZONE,
    bucket_of,
    built_zone,
)
from analytics.sentiment import CHANGE, is_negative, topic_words
from askagency.clock import now_utc
from knowledge_base.sentiment import NEGATIVE_UPTO

log = logging.getLogger(__name__)

KINDS = ("response", "faq", "reason", "topic", "related_offer", "related_click")
KEY_FIELDS = ("day", "channel", "language", "location")
LABEL_PK = (*KEY_FIELDS, "kind", "label")
MONTHLY_PK = ("month", *KEY_FIELDS[1:], "kind", "label")
DAY_TOTAL_PK = ("day", "kind", "label")
REBUILD_DAYS = 7  # days of conversations loaded at a time by a rebuild

Key = tuple[date, str, str, str]  # agency day, channel, language, location
LabelKey = tuple[date, str, str, str, str, str]  # ... kind, label


class ConversationRow(Protocol):
    """What a contribution reads of a conversation (an ORM row or a lean query row)."""

    started_at: datetime
    channel: str
    language: str
    location: str
    user_messages: int
    answers: int
    handed_off: bool
    handoff_reason: str | None
    feedback: str | None
    repeated_answers: int
    sentiment_start: float | None
    sentiment_end: float | None
    sentiment_messages: int
    negative_messages: int


class TurnRow(Protocol):
    response_ms: float | None
    outcome: str
    faq_id: str | None
    score: float | None
    sentiment: float | None
    text: str | None
    related_offered: int
    related_from: str | None


def _units(value: float | None, unit: int) -> int:
    return 0 if value is None else round(value * unit)


@dataclass
class Delta:
    """Changes to the roll-up rows, by key: conversations added (+1) or taken away (-1)."""

    zone: ZoneInfo
    daily: dict[Key, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    labels: dict[LabelKey, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )

    def add(self, conv: ConversationRow, turns: Iterable[TurnRow], sign: int = 1) -> None:
        """Adds (``sign`` 1) or subtracts (-1) one conversation's contribution."""
        local = conv.started_at.astimezone(self.zone)
        key: Key = (local.date(), conv.channel, conv.language, conv.location)
        row = self.daily[key]
        for name, value in self._figures(conv).items():
            row[name] += sign * value
        row[HOURS[local.hour]] += sign
        if conv.handed_off:
            self._label(key, "reason", conv.handoff_reason or "unknown", sign)
        for t in turns:
            if t.response_ms is not None:
                self._label(key, "response", str(bucket_of(t.response_ms)), sign)
            if t.outcome == "answer" and t.faq_id:
                scored = t.score is not None
                score = _units(t.score, SCORE_UNIT)
                self._label(key, SCORED_KIND, t.faq_id, sign, score, int(scored))
                # The same rules as analytics.metrics.related_from_turns.
                if t.related_offered > 0:
                    self._label(key, "related_offer", t.faq_id, sign)
                if t.related_from:
                    pair = f"{t.related_from}{RELATED_PAIR_SEPARATOR}{t.faq_id}"
                    self._label(key, "related_click", pair, sign)
            if is_negative(t.sentiment) and t.text:
                for word in topic_words(t.text):
                    self._label(key, "topic", word[:LABEL_MAX_LEN], sign)

    @staticmethod
    def _figures(conv: ConversationRow) -> dict[str, int]:
        """The conversation's additive figures; each definition is analytics.metrics' or
        analytics.sentiment's (``is_bot_resolved``, negative, improved, worsened)."""
        bot = is_bot_resolved(cast(ConversationFacts, conv))
        scored = conv.sentiment_messages > 0
        start, end = conv.sentiment_start, conv.sentiment_end
        both = scored and conv.sentiment_messages >= 2 and start is not None and end is not None
        return {
            "conversations": 1,
            "user_messages": conv.user_messages,
            "handoffs": int(conv.handed_off),
            "bot_resolved": int(bot),
            "bot_resolved_confirmed": int(bot and conv.feedback == "good"),
            "feedback_good": int(conv.feedback == "good"),
            "feedback_bad": int(conv.feedback == "bad"),
            "scored_conversations": int(scored),
            "negative_conversations": int(scored and conv.negative_messages > 0),
            "scored_messages": conv.sentiment_messages if scored else 0,
            "negative_messages": conv.negative_messages if scored else 0,
            "sentiment_start_sum": _units(start, SENTIMENT_UNIT) if scored else 0,
            "sentiment_start_count": int(scored and start is not None),
            "sentiment_end_sum": _units(end, SENTIMENT_UNIT) if scored else 0,
            "sentiment_end_count": int(scored and end is not None),
            "improved": int(both and end - start >= CHANGE),  # type: ignore[operator]
            "worsened": int(both and start - end >= CHANGE),  # type: ignore[operator]
        }

    def _label(
        self, key: Key, kind: str, label: str, sign: int, score: int = 0, scored: int = 0
    ) -> None:
        counts = self.labels[(*key, kind, label)]
        counts[0] += sign
        counts[1] += sign * score
        counts[2] += sign * scored

    def clear(self) -> None:
        self.daily.clear()
        self.labels.clear()


# --- writing ---------------------------------------------------------------------------------


def _upsert(session: Session, model: Any, pk: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """``INSERT .. ON CONFLICT (pk) DO UPDATE SET x = x + excluded.x`` for every other column:
    atomic per row, so two transactions that touch one row both count."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(model)
    table = model.__table__
    added = {name: table.c[name] + stmt.excluded[name] for name in rows[0] if name not in set(pk)}
    session.execute(stmt.on_conflict_do_update(index_elements=list(pk), set_=added), rows)


def apply(session: Session, delta: Delta) -> None:
    """Writes ``delta`` (in key order, so concurrent writers lock rows in the same order and do
    not deadlock) and removes rows nothing counts towards any more."""
    daily = [
        {**dict(zip(KEY_FIELDS, key, strict=True)), **{f: d.get(f, 0) for f in DAILY_FIELDS}}
        for key, d in sorted(delta.daily.items())
        if any(d.values())
    ]
    label_tables = [
        (model, pk, _label_rows(pk, regroup(delta.labels))) for model, pk, regroup in LABEL_TABLES
    ]
    _upsert(session, AnalyticsDaily, KEY_FIELDS, daily)
    for model, pk, rows in label_tables:
        _upsert(session, model, pk, rows)
    _drop_empty(session, daily, label_tables)
    delta.clear()


def month_of(day: date) -> date:
    return day.replace(day=1)


Labels = dict[tuple[Any, ...], list[int]]


def _regrouped(
    labels: dict[LabelKey, list[int]], key: Callable[[LabelKey], tuple[Any, ...]]
) -> Labels:
    grouped: Labels = defaultdict(lambda: [0, 0, 0])
    for label_key, counts in labels.items():
        total = grouped[key(label_key)]
        for i, value in enumerate(counts):
            total[i] += value
    return grouped


def by_month(labels: dict[LabelKey, list[int]]) -> Labels:
    """Label changes of days added up by their month (the key's day becomes its month's first)."""
    return _regrouped(labels, lambda k: (month_of(k[0]), *k[1:]))


def day_totals(labels: dict[LabelKey, list[int]]) -> Labels:
    """Label changes added up over channel, language and location: (day, kind, label)."""
    return _regrouped(labels, lambda k: (k[0], k[4], k[5]))


# Every labelled-count table: its model, primary key and how a delta's day rows map onto it.
LABEL_TABLES: tuple[
    tuple[Any, tuple[str, ...], Callable[[dict[LabelKey, list[int]]], Labels]], ...
] = (
    (AnalyticsDailyCount, LABEL_PK, lambda labels: labels),
    (AnalyticsMonthlyCount, MONTHLY_PK, by_month),
    (AnalyticsDailyTotalCount, DAY_TOTAL_PK, day_totals),
)


def _label_rows(pk: Sequence[str], labels: Labels) -> list[dict[str, Any]]:
    return [
        {**dict(zip(pk, key, strict=True)), "n": n, "score_sum": s, "scored": k}
        for key, (n, s, k) in sorted(labels.items())
        if n or s or k
    ]


def _drop_empty(
    session: Session,
    daily: list[dict[str, Any]],
    label_tables: list[tuple[Any, tuple[str, ...], list[dict[str, Any]]]],
) -> None:
    """Rows whose conversations all moved away (a rebuilt conversation changed day, channel or
    location): a full rebuild would not have them."""
    table = AnalyticsDaily.__table__
    if any(r["conversations"] < 0 for r in daily):
        keys = [tuple(r[k] for k in KEY_FIELDS) for r in daily if r["conversations"] < 0]
        for key in keys:
            session.execute(
                delete(AnalyticsDaily).where(
                    and_(*(table.c[k] == v for k, v in zip(KEY_FIELDS, key, strict=True))),
                    AnalyticsDaily.conversations == 0,
                )
            )
    for model, pk, rows in label_tables:
        counts = model.__table__
        for r in rows:
            if r["n"] < 0:
                session.execute(
                    delete(model).where(and_(*(counts.c[k] == r[k] for k in pk)), model.n == 0)
                )


# --- state -----------------------------------------------------------------------------------


class Maintainer:
    """Collects the contributions ingest removes and adds, and writes them (no-op when the
    roll-ups were never built: a rebuild will count everything)."""

    def __init__(self, zone: str | None) -> None:
        self.delta = Delta(ZoneInfo(zone)) if zone else None

    @classmethod
    def of(cls, session: Session) -> Maintainer:
        return cls(built_zone(session))

    def subtract_stored(self, session: Session, conversation_ids: Sequence[int]) -> None:
        """The contribution of stored conversations about to be deleted and rebuilt."""
        if self.delta is None or not conversation_ids:
            return
        for conv, turns in _stored(session, conversation_ids):
            self.delta.add(conv, turns, -1)

    def add_new(self, rows: Iterable[AnalyticsConversation]) -> None:
        if self.delta is None:
            return
        for row in rows:
            self.delta.add(row, row.turns)

    def write(self, session: Session) -> None:
        if self.delta is not None:
            apply(session, self.delta)


def _conversation_columns() -> list[Any]:
    c = AnalyticsConversation
    return [
        c.id,
        c.started_at,
        c.channel,
        c.language,
        c.location,
        c.user_messages,
        c.answers,
        c.handed_off,
        c.handoff_reason,
        c.feedback,
        c.repeated_answers,
        c.sentiment_start,
        c.sentiment_end,
        c.sentiment_messages,
        c.negative_messages,
    ]


def _turn_columns() -> list[Any]:
    t = AnalyticsTurn
    # Only a negative message's text is read (its topic words): the rest stays in the database.
    negative_text = case((t.sentiment <= NEGATIVE_UPTO, t.text), else_=None).label("text")
    return [
        t.conversation_id,
        t.response_ms,
        t.outcome,
        t.faq_id,
        t.score,
        t.sentiment,
        negative_text,
        t.related_offered,
        t.related_from,
    ]


def _with_turns(session: Session, convs: list[Any], turn_query: Any) -> list[tuple[Any, list[Any]]]:
    turns: dict[int, list[Any]] = defaultdict(list)
    for t in session.execute(turn_query):
        turns[t.conversation_id].append(t)
    return [(c, turns.get(c.id, [])) for c in convs]


def _stored(session: Session, ids: Sequence[int]) -> list[tuple[Any, list[Any]]]:
    convs = list(
        session.execute(select(*_conversation_columns()).where(AnalyticsConversation.id.in_(ids)))
    )
    query = select(*_turn_columns()).where(AnalyticsTurn.conversation_id.in_(ids))
    return _with_turns(session, convs, query)


# --- rebuilding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RebuildResult:
    zone: str
    conversations: int
    daily_rows: int
    count_rows: int


def _lock(session: Session) -> None:
    """PostgreSQL: consumers wait (their deltas queue behind the lock) while the roll-ups are
    rebuilt, so no contribution is counted twice or lost; readers keep reading."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "LOCK TABLE analytics_daily, analytics_daily_count, analytics_daily_total_count,"
                " analytics_monthly_count IN EXCLUSIVE MODE"
            )
        )


def rebuild(session: Session, zone: str, since: date | None = None) -> RebuildResult:
    """Recomputes the roll-ups from the conversation and turn rows (all days, or the days from
    the first of ``since``'s month on, so each month's row is recounted whole) in time zone
    ``zone``, and records the zone. A different zone than the one they were built in always
    rebuilds every day. Runs in the caller's transaction."""
    tz = ZoneInfo(zone)
    _lock(session)
    if built_zone(session) != zone:
        since = None
    since = None if since is None else month_of(since)
    for model, day in (
        (AnalyticsDaily, AnalyticsDaily.day),
        (AnalyticsDailyCount, AnalyticsDailyCount.day),
        (AnalyticsDailyTotalCount, AnalyticsDailyTotalCount.day),
        (AnalyticsMonthlyCount, AnalyticsMonthlyCount.month),
    ):
        query = delete(model)
        if since is not None:
            query = query.where(day >= since)
        session.execute(query)
    counted = sum(
        _rebuild_window(session, tz, start, end) for start, end in _windows(session, tz, since)
    )
    _set_state(session, zone)
    session.flush()
    return RebuildResult(
        zone=zone,
        conversations=counted,
        daily_rows=session.scalar(select(func.count()).select_from(AnalyticsDaily)) or 0,
        count_rows=session.scalar(select(func.count()).select_from(AnalyticsDailyCount)) or 0,
    )


def _windows(session: Session, tz: ZoneInfo, since: date | None) -> list[tuple[datetime, datetime]]:
    """Spans of REBUILD_DAYS agency days (whole days, so a day's key is written once)."""
    first, last = session.execute(
        select(
            func.min(AnalyticsConversation.started_at), func.max(AnalyticsConversation.started_at)
        )
    ).one()
    if first is None:
        return []
    day = max(first.astimezone(tz).date(), since) if since else first.astimezone(tz).date()
    end_day = last.astimezone(tz).date()
    spans = []
    while day <= end_day:
        following = day + timedelta(days=REBUILD_DAYS)
        spans.append(
            (
                datetime.combine(day, time.min, tzinfo=tz),
                datetime.combine(following, time.min, tzinfo=tz),
            )
        )
        day = following
    return spans


def _rebuild_window(session: Session, tz: ZoneInfo, start: datetime, end: datetime) -> int:
    in_window = and_(
        AnalyticsConversation.started_at >= start, AnalyticsConversation.started_at < end
    )
    convs = list(session.execute(select(*_conversation_columns()).where(in_window)))
    turns = select(*_turn_columns()).join(AnalyticsConversation).where(in_window)
    delta = Delta(tz)
    for conv, conv_turns in _with_turns(session, convs, turns):
        delta.add(conv, conv_turns)
    apply(session, delta)
    return len(convs)


def _set_state(session: Session, zone: str) -> None:
    row = session.get(AnalyticsRollupState, ZONE)
    if row is None:
        session.add(AnalyticsRollupState(name=ZONE, value=zone, updated_at=now_utc()))
    else:
        row.value, row.updated_at = zone, now_utc()


def ensure(session: Session, zone: str) -> RebuildResult | None:
    """Rebuilds the roll-ups when they were never built or are in another time zone than
    ``zone`` (the agency's setting changed); None when they are current."""
    if built_zone(session) == zone:
        return None
    log.info("analytics roll-ups: building them in %s (were: %s)", zone, built_zone(session))
    return rebuild(session, zone)
