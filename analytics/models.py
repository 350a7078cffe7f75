"""Analytics tables: the stored events, and the turns and conversations derived from them.

Events are kept (compact, with citizen text already redacted) because turns and conversations
are *rebuilt* from them whenever new events of a conversation arrive. That makes ingestion
order-independent and idempotent: an event is identified by a hash of its content
(``event_key``), so a replayed or redelivered event is recognised and changes nothing.

Metric definitions do not live here: ``analytics.metrics`` derives every number from these
facts (and from handoff tickets), so one module owns what "resolved" or "contained" means.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from askagency.clock import now_utc
from askagency.db import Base, UtcDateTime
from askagency.location_codes import CODE_MAX_LEN, UNKNOWN_LOCATION
from knowledge_base.unanswered import QUESTION_MAX_LEN, wording_key

SENDER_MAX_LEN = 255
KEY_MAX_LEN = 300
# Column sizes that analytics.ingest cuts values to before storing them (PostgreSQL refuses a
# longer value and, before that cut, one such event failed its whole batch forever).
CHANNEL_MAX_LEN = 64
INTENT_MAX_LEN = 128
LABEL_MAX_LEN = 64  # faq id, ticket id, handoff reason
# A roll-up label: one of the above, or a related-FAQ click "<from faq id>><to faq id>".
ROLLUP_LABEL_MAX_LEN = 2 * LABEL_MAX_LEN + 1
LOCATION_MAX_LEN = CODE_MAX_LEN


class AnalyticsEvent(Base):
    """One Rasa event that matters for metrics (user, bot, session boundaries)."""

    __tablename__ = "analytics_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # sha256 of the canonical JSON of the whole event: the natural key for idempotency.
    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    sender_id: Mapped[str] = mapped_column(String(SENDER_MAX_LEN))
    # Rasa's epoch seconds, kept as a float so differences are exact to the microsecond.
    ts: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32))  # user, bot, external, session_started, restart
    intent: Mapped[str | None] = mapped_column(String(INTENT_MAX_LEN), nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)  # user text, PII-redacted
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_MAX_LEN), nullable=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A user event's ``location`` metadata (the widget's page, or the channel's configuration),
    # as sent: it is checked against the location list when conversations are built.
    location: Mapped[str | None] = mapped_column(String(LOCATION_MAX_LEN), nullable=True)
    custom: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)

    __table_args__ = (Index("ix_analytics_event_sender_ts", "sender_id", "ts"),)


class AnalyticsConversation(Base):
    """One Rasa session of one sender, with the facts metrics are computed from."""

    __tablename__ = "analytics_conversation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # "<sender_id>@<session start epoch seconds>": stable under replays and rebuilds.
    conversation_key: Mapped[str] = mapped_column(String(KEY_MAX_LEN), unique=True)
    sender_id: Mapped[str] = mapped_column(String(SENDER_MAX_LEN), index=True)
    start_ts: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime())
    channel: Mapped[str] = mapped_column(String(CHANNEL_MAX_LEN), index=True)
    language: Mapped[str] = mapped_column(String(16), index=True)
    # The location the conversation is about (analytics.ingest.conversation_location), or
    # "unknown".
    location: Mapped[str] = mapped_column(
        String(LOCATION_MAX_LEN),
        default=UNKNOWN_LOCATION,
        server_default=UNKNOWN_LOCATION,
    )
    user_messages: Mapped[int] = mapped_column(Integer)
    questions: Mapped[int] = mapped_column(Integer)  # turns answered, clarified or fallen back
    answers: Mapped[int] = mapped_column(Integer)
    fallbacks: Mapped[int] = mapped_column(Integer)
    clarifies: Mapped[int] = mapped_column(Integer)
    # Answer turns that gave an FAQ this conversation had already been given: the citizen asked
    # the same thing again, so the first answer did not settle it (analytics.metrics: such a
    # conversation is not resolved by the bot).
    repeated_answers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    handed_off: Mapped[bool] = mapped_column(Boolean)
    handoff_reason: Mapped[str | None] = mapped_column(String(LABEL_MAX_LEN), nullable=True)
    handoff_after_hours: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    ticket_id: Mapped[str | None] = mapped_column(String(LABEL_MAX_LEN), nullable=True, index=True)
    handoff_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    first_agent_reply_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    closed_resolved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    feedback: Mapped[str | None] = mapped_column(String(8), nullable=True)  # good | bad (last)
    # Sentiment of the citizen's messages (analytics.sentiment): the first and the last scored
    # message, how many were scored (English and Spanish) and how many of those were negative.
    sentiment_start: Mapped[float | None] = mapped_column(Float, nullable=True)
    sentiment_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    sentiment_messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    negative_messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_question: Mapped[str | None] = mapped_column(Text, nullable=True)  # redacted

    turns: Mapped[list[AnalyticsTurn]] = relationship(
        back_populates="conversation",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="AnalyticsTurn.seq",
    )

    # The handed-off conversations of a period, which the roll-up dashboard reads as rows (their
    # ticket's status changes outside analytics): a few percent of all, so a partial index, which
    # on PostgreSQL carries the columns read and filtered on (an index-only scan). Queries say
    # ``.where(handed_off)``: rendered as each database's predicate below (migration 0016).
    __table_args__ = (
        Index(
            "ix_analytics_conversation_handoff_started",
            "started_at",
            postgresql_where=text("handed_off"),
            postgresql_include=[
                "id",
                "ticket_id",
                "closed_resolved",
                "channel",
                "language",
                "location",
            ],
            sqlite_where=text("handed_off = 1"),
        ),
        # A location's conversations of a period (covering on PostgreSQL: what its unanswered
        # questions join on and filter by; migration 0023).
        Index(
            "ix_analytics_conversation_location_started",
            "location",
            "started_at",
            postgresql_include=["id", "channel", "language"],
        ),
    )


UNANSWERED_OUTCOMES = ("fallback", "clarify")  # the turns the bot could not answer well


def turn_wording(outcome: str, text: str | None) -> str | None:
    """The wording an unanswered turn is counted under in the top unanswered questions
    (knowledge_base.unanswered.wording_key, as for the queue); None for every other turn."""
    if outcome not in UNANSWERED_OUTCOMES or text is None:
        return None
    return wording_key(text)


def _turn_wording_of_insert(context: DefaultExecutionContext) -> str | None:
    """Column default for inserts that do not name ``wording`` (analytics.ingest does)."""
    params = context.get_current_parameters()
    return turn_wording(str(params.get("outcome") or ""), params.get("text"))


_HAS_WORDING = text("wording IS NOT NULL")  # (the class below has a column named ``text``)


class AnalyticsTurn(Base):
    """One citizen message and what the bot did with it."""

    __tablename__ = "analytics_turn"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("analytics_conversation.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    user_ts: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # user event -> first bot event of the turn; None when the bot stayed silent (relay).
    response_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    # answer | clarify | fallback | handoff | feedback | relay | control | none
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    intent: Mapped[str | None] = mapped_column(String(INTENT_MAX_LEN), nullable=True)
    faq_id: Mapped[str | None] = mapped_column(String(LABEL_MAX_LEN), nullable=True, index=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    channel: Mapped[str] = mapped_column(String(CHANNEL_MAX_LEN))
    language: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)  # redacted
    # VADER compound score of the citizen's message in [-1, 1]; None: not scored (another
    # language, or a button press).
    sentiment: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Related FAQs offered as buttons with this turn's answer (custom.related), and the FAQ
    # whose related button this turn pressed (custom.from_faq of an answer via "related").
    related_offered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    related_from: Mapped[str | None] = mapped_column(String(LABEL_MAX_LEN), nullable=True)
    # turn_wording(outcome, text): set for fallback and clarify turns with text only; "" (counted
    # nowhere) for a fallback whose question an out-of-scope entry took (analytics.ingest).
    wording: Mapped[str | None] = mapped_column(
        String(QUESTION_MAX_LEN), nullable=True, default=_turn_wording_of_insert
    )

    conversation: Mapped[AnalyticsConversation] = relationship(back_populates="turns")

    # A period's unanswered turns of a location's conversations, counted by wording, and the
    # texts typed for the few wordings shown, from the index alone on PostgreSQL (0023).
    __table_args__ = (
        Index(
            "ix_analytics_turn_unanswered",
            "conversation_id",
            postgresql_where=_HAS_WORDING,
            postgresql_include=["wording", "started_at", "text"],
            sqlite_where=_HAS_WORDING,
        ),
    )


class AnalyticsCheckpoint(Base):
    """How far a source has been consumed; written in the same transaction as the rows."""

    __tablename__ = "analytics_checkpoint"

    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    events_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)


class AnalyticsRejectedEvent(Base):
    """An event that could not be parsed: kept (redacted) with the reason, never dropped."""

    __tablename__ = "analytics_rejected_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # sha256 of the raw payload: a malformed event delivered twice is kept once.
    raw_key: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(255))
    position: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str] = mapped_column(String(500))
    raw: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)


# --- daily roll-ups (analytics.rollup) ----------------------------------------------------------
#
# Pre-aggregated figures per agency day and (channel, language, location), so the dashboard and the
# report read a few thousand rows instead of a year's conversations and turns. Maintained by
# analytics.ingest (each rebuilt conversation subtracts its old contribution and adds its new
# one), rebuildable from the rows at any time; docs/metrics.md, "Speed at volume".

ROLLUP_KIND_MAX_LEN = 16
HOURS = tuple(f"h{hour:02d}" for hour in range(24))  # the heat map's columns, on the agency clock


def _count() -> Any:
    return mapped_column(Integer, default=0, server_default="0")


class _Dimensions:
    """The channel, language and location a roll-up row counts (part of its key)."""

    # Right after the period column (sort_order -2) in every table, in this order.
    channel: Mapped[str] = mapped_column(String(CHANNEL_MAX_LEN), primary_key=True, sort_order=-1)
    language: Mapped[str] = mapped_column(String(16), primary_key=True, sort_order=-1)
    location: Mapped[str] = mapped_column(String(LOCATION_MAX_LEN), primary_key=True, sort_order=-1)


class _LabelledCount:
    """What a labelled-count row holds: its kind and label (the rest of its key), how many, and
    the sum of their scores with how many had one."""

    kind: Mapped[str] = mapped_column(String(ROLLUP_KIND_MAX_LEN), primary_key=True)
    label: Mapped[str] = mapped_column(String(ROLLUP_LABEL_MAX_LEN), primary_key=True)
    n: Mapped[int] = _count()
    score_sum: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    scored: Mapped[int] = _count()


class AnalyticsDaily(_Dimensions, Base):
    """Additive figures of the conversations that started on one agency day with one channel,
    language and location. Sentiment sums are in units of 1e-4 (scores are stored rounded to
    four places), so adding and subtracting contributions is exact."""

    __tablename__ = "analytics_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-2)
    conversations: Mapped[int] = _count()
    user_messages: Mapped[int] = _count()
    handoffs: Mapped[int] = _count()
    bot_resolved: Mapped[int] = _count()
    bot_resolved_confirmed: Mapped[int] = _count()
    feedback_good: Mapped[int] = _count()
    feedback_bad: Mapped[int] = _count()
    scored_conversations: Mapped[int] = _count()
    negative_conversations: Mapped[int] = _count()
    scored_messages: Mapped[int] = _count()
    negative_messages: Mapped[int] = _count()
    sentiment_start_sum: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    sentiment_start_count: Mapped[int] = _count()
    sentiment_end_sum: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    sentiment_end_count: Mapped[int] = _count()
    improved: Mapped[int] = _count()
    worsened: Mapped[int] = _count()
    # Conversations started in each hour of the day (agency clock): the heat map.
    h00: Mapped[int] = _count()
    h01: Mapped[int] = _count()
    h02: Mapped[int] = _count()
    h03: Mapped[int] = _count()
    h04: Mapped[int] = _count()
    h05: Mapped[int] = _count()
    h06: Mapped[int] = _count()
    h07: Mapped[int] = _count()
    h08: Mapped[int] = _count()
    h09: Mapped[int] = _count()
    h10: Mapped[int] = _count()
    h11: Mapped[int] = _count()
    h12: Mapped[int] = _count()
    h13: Mapped[int] = _count()
    h14: Mapped[int] = _count()
    h15: Mapped[int] = _count()
    h16: Mapped[int] = _count()
    h17: Mapped[int] = _count()
    h18: Mapped[int] = _count()
    h19: Mapped[int] = _count()
    h20: Mapped[int] = _count()
    h21: Mapped[int] = _count()
    h22: Mapped[int] = _count()
    h23: Mapped[int] = _count()


class AnalyticsDailyCount(_Dimensions, _LabelledCount, Base):
    """A labelled count of one agency day and (channel, language, location): ``kind`` says what
    the label is (``response``: a bot response-time bucket; ``faq``: an FAQ answered, with its
    scores' sum in units of 1e-6; ``reason``: a handoff reason; ``topic``: a word of a negative
    message, counted once per message; ``related_offer``: an FAQ answered with related-FAQ
    buttons; ``related_click``: a related button pressed, labelled ``<from>><to>``)."""

    __tablename__ = "analytics_daily_count"

    day: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-2)

    __table_args__ = (
        Index("ix_analytics_daily_count_kind_day", "kind", "day"),
        # One location's days (the weekly report reads every location's): on PostgreSQL an
        # index-only scan of its rows instead of every location's (migration 0022).
        Index(
            "ix_analytics_daily_count_kind_location_day",
            "kind",
            "location",
            "day",
            postgresql_include=["label", "n"],
        ),
    )


class AnalyticsMonthlyCount(_Dimensions, _LabelledCount, Base):
    """``analytics_daily_count`` added up by calendar month of agency days (``month``: its first
    day), written with the daily rows by analytics.rollup.apply. A year's dashboard reads twelve
    rows per key here instead of 365 (analytics.rollup_read.label_sums); what it needs day by
    day (the daily response-time chart, handoff reasons per day) still reads the days."""

    __tablename__ = "analytics_monthly_count"

    month: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-2)

    __table_args__ = (Index("ix_analytics_monthly_count_kind_month", "kind", "month"),)


class AnalyticsDailyTotalCount(_LabelledCount, Base):
    """``analytics_daily_count`` of one agency day added up over every channel, language and
    location, written with the daily rows by analytics.rollup.apply: the unfiltered dashboard's
    per-day figures (the daily response-time chart, handoff reasons per day) read a year's
    13,000 rows here instead of 430,000."""

    __tablename__ = "analytics_daily_total_count"

    day: Mapped[date] = mapped_column(Date, primary_key=True, sort_order=-2)

    __table_args__ = (Index("ix_analytics_daily_total_count_kind_day", "kind", "day"),)


class AnalyticsRollupState(Base):
    """What the roll-ups were built with: ``zone`` (the agency time zone their days are in).
    No row: the roll-ups were never built, and the dashboard reads the rows themselves."""

    __tablename__ = "analytics_rollup_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
