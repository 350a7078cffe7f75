"""Rasa events -> analytics turns and conversations.

Why rebuild instead of updating counters: an event can arrive twice (a RabbitMQ redelivery after
a consumer crash, a replayed broker table) or late. Each event is stored once under a hash of
its content; then every conversation of the sender that the new events touch is rebuilt from
the stored events. Replaying any number of events therefore changes nothing, and the result
does not depend on batch boundaries.

A conversation is one Rasa session of one sender (``session_started`` or ``restart`` starts a
new one). A turn is one citizen message; its bot response time runs from the user event to the
first bot event of that turn. Messages that agents send (``agent_message``) or closing notices
(``handoff_closed``) are not bot responses and never end a turn's timer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from analytics import rollup
from analytics.models import (
    CHANNEL_MAX_LEN,
    INTENT_MAX_LEN,
    LABEL_MAX_LEN,
    SENDER_MAX_LEN,
    AnalyticsConversation,
    AnalyticsEvent,
    AnalyticsRejectedEvent,
    AnalyticsTurn,
    turn_wording,
)
from askagency.bot_messages import (
    FIELD_OUT_OF_SCOPE,
    SCORED_TYPES,
    VIA_RELATED,
    MessageType,
    type_of,
)
from askagency.rasa_events import is_external_event
from knowledge_base import sentiment
from knowledge_base.language import normalise as normalise_language
from knowledge_base.locations import store as location_store
from knowledge_base.locations.matching import UNKNOWN_LOCATION, LocationMatcher, normalise_code

log = logging.getLogger(__name__)

RELEVANT_KINDS = frozenset({"user", "bot", "session_started", "restart"})
# Rasa's trigger_intent API records a user event with this text prefix; it is not a citizen
# message (agent replies and reminders use it) and is stored as kind "external".

BOUNDARY_KINDS = ("session_started", "restart")
FEEDBACK_INTENTS = {"feedback_good": "good", "feedback_bad": "bad"}
# Bot events that come from a person or close a handoff: they are not the bot's response.
AGENT_TYPES = frozenset({"agent_message", "handoff_closed"})
QUESTION_OUTCOMES = frozenset({"answer", "clarify", "fallback"})
UNKNOWN = "unknown"
MAX_TEXT_CHARS = 2000
MAX_RAW_CHARS = 20_000
_IN_CHUNK = 500
# Rasa's timestamps are epoch seconds; outside these bounds datetime cannot represent them and a
# conversation rebuild would fail on every retry (year 1970 to year 9999 minus a day).
MIN_TS = 0.0
MAX_TS = 253_402_214_400.0
# The keys of a bot event's ``custom`` payload that metrics read. Nothing else is stored: agent
# messages and other custom payloads may quote what a citizen wrote.
CUSTOM_KEYS = (
    "type",
    "faq_id",
    "score",
    "language",
    "reason",
    "after_hours",
    "ticket_id",
    "resolved",
    "via",
    "from_faq",
    FIELD_OUT_OF_SCOPE,
)
# ``custom.related`` (the related FAQs offered with an answer) is stored as how many there were.
RELATED_KEY = "related"
MAX_RELATED = 100
# What a database refuses because of one event's content (a value too long, a NUL byte, a
# constraint): that event is quarantined. Anything else (the database unreachable, a missing
# table) fails the batch, which the consumer retries; quarantining then would lose good events.
EVENT_ERRORS: tuple[type[Exception], ...] = (
    DataError,
    IntegrityError,
    ValueError,
    TypeError,
    OverflowError,
    ArithmeticError,
)


class EventError(ValueError):
    """An event that is not a Rasa event; the message says what is wrong with it."""


@dataclass(frozen=True)
class ParsedEvent:
    """The parts of a Rasa event the metrics need (citizen text already redacted)."""

    event_key: str
    sender_id: str
    ts: float
    kind: str
    intent: str | None = None
    text: str | None = None
    channel: str | None = None
    language: str | None = None
    location: str | None = None
    custom: dict[str, Any] | None = None


class EventLike(Protocol):
    sender_id: str
    ts: float
    kind: str
    intent: str | None
    text: str | None
    channel: str | None
    language: str | None
    location: str | None
    custom: dict[str, Any] | None


def redact_text(text: str) -> str:
    """Citizen text as analytics may store it: personal data replaced, length capped.

    Imported lazily so that reading events never depends on the privacy module's import cost.
    """
    from askagency.privacy import redact

    return redact(text[:MAX_TEXT_CHARS])


def clean_label(value: Any, max_len: int) -> str | None:
    """A short label (channel, intent, faq id) as a column of ``max_len`` can hold it: text
    without NUL or other control characters, whitespace trimmed, cut to ``max_len``; None when
    nothing is left. The channel and intent come from the client or the NLU, so any length or
    byte can arrive; PostgreSQL refuses NUL and over-long values and would fail the batch."""
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, str | int | float):
        return None
    text = "".join(ch for ch in str(value) if ch.isprintable()).strip()
    return text[:max_len] or None


def clean_text(text: str) -> str:
    """Citizen text without NUL bytes (PostgreSQL text cannot hold them)."""
    return text.replace("\x00", "")


def _clean_custom(custom: Mapping[str, Any]) -> dict[str, Any]:
    """Only the keys metrics read, each a bounded scalar."""
    kept: dict[str, Any] = {}
    for key in CUSTOM_KEYS:
        value = custom.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            kept[key] = value
        elif isinstance(value, int):
            kept[key] = value if abs(value) < 2**53 else None
        elif isinstance(value, float):
            kept[key] = value if math.isfinite(value) else None
        else:
            kept[key] = clean_label(value, LABEL_MAX_LEN)
    related = custom.get(RELATED_KEY)
    if isinstance(related, list) and related:
        kept[RELATED_KEY] = min(len(related), MAX_RELATED)
    return {k: v for k, v in kept.items() if v is not None}


def event_key(event: Mapping[str, Any]) -> str:
    """Content hash of an event: equal events (a replay) get equal keys."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _decode(raw: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EventError(f"expected a JSON object, got {type(data).__name__}")
    return data


def parse_event(raw: str | bytes | Mapping[str, Any]) -> ParsedEvent | None:
    """A broker payload -> ParsedEvent; None for event kinds metrics do not use.

    Every field comes out in a shape every column can store (review finding M5): labels are
    cut to their column's size and stripped of NUL and control characters, citizen text loses
    NUL bytes, bot ``custom`` keeps only what metrics read. Raises EventError when the payload
    is not a Rasa event (no sender, kind or timestamp) or its sender id or timestamp cannot be
    stored as they are: a sender id is an identity, so it is never cut (two senders would merge).
    """
    data = _decode(raw)
    kind = data.get("event")
    if not isinstance(kind, str) or not kind:
        raise EventError("missing 'event' (the event kind)")
    sender = data.get("sender_id")
    if not isinstance(sender, str) or not sender:
        raise EventError("missing 'sender_id'")
    timestamp = data.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise EventError("missing or non-numeric 'timestamp'")
    if kind not in RELEVANT_KINDS:
        return None
    if len(sender) > SENDER_MAX_LEN or not sender.isprintable():
        raise EventError(
            f"'sender_id' longer than {SENDER_MAX_LEN} characters or with control characters"
        )
    ts = float(timestamp)
    if not MIN_TS <= ts <= MAX_TS:  # also refuses NaN
        raise EventError("'timestamp' out of range (epoch seconds, 1970 to 9999)")
    key = event_key(data)
    if kind == "user":
        parse = data.get("parse_data") if isinstance(data.get("parse_data"), dict) else {}
        intent = (parse.get("intent") or {}).get("name") if isinstance(parse, dict) else None
        metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        text = data.get("text")
        if is_external_event(text, metadata):
            return ParsedEvent(event_key=key, sender_id=sender, ts=ts, kind="external")
        cleaned = redact_text(clean_text(text)) if isinstance(text, str) else ""
        return ParsedEvent(
            event_key=key,
            sender_id=sender,
            ts=ts,
            kind=kind,
            intent=clean_label(intent, INTENT_MAX_LEN) if intent else None,
            text=cleaned or None,
            channel=clean_label(data.get("input_channel"), CHANNEL_MAX_LEN),
            language=normalise_language(metadata.get("language")),
            location=normalise_code(metadata.get("location")),
        )
    if kind == "bot":
        payload = data.get("data") if isinstance(data.get("data"), dict) else {}
        raw_custom = payload.get("custom") if isinstance(payload.get("custom"), dict) else None
        # Handoff messages keep the ticket number in the event's metadata, out of the citizen's
        # sight (handoff/conversation.py); older events have it in custom.
        internal = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        if raw_custom is not None and "ticket_id" not in raw_custom and "ticket_id" in internal:
            raw_custom = {**raw_custom, "ticket_id": internal["ticket_id"]}
        custom = _clean_custom(raw_custom) if raw_custom is not None else None
        return ParsedEvent(
            event_key=key,
            sender_id=sender,
            ts=ts,
            kind=kind,
            custom=custom,
            language=normalise_language((custom or {}).get("language")),
        )
    return ParsedEvent(event_key=key, sender_id=sender, ts=ts, kind=kind)


# --- turns and conversations from one sender's events --------------------------------------


@dataclass
class TurnFacts:
    seq: int
    user_ts: float
    intent: str | None
    text: str | None
    channel: str
    language: str | None
    relay: bool
    location_hint: str | None = None  # the message's ``location`` metadata, not yet checked
    first_bot_ts: float | None = None
    bot_types: list[str] = field(default_factory=list)
    faq_id: str | None = None
    score: float | None = None
    related_offered: int = 0  # related-FAQ buttons offered with the answer
    related_from: str | None = None  # the answer whose related button this turn pressed
    # An out-of-scope entry took the question (the fallback named it): no answer by design,
    # so not one of the top unanswered questions.
    out_of_scope: bool = False

    @property
    def response_ms(self) -> float | None:
        if self.first_bot_ts is None:
            return None
        return round((self.first_bot_ts - self.user_ts) * 1000.0, 3)

    @property
    def outcome(self) -> str:
        types = set(self.bot_types)
        if "handoff" in types:
            return "handoff"
        if "faq_answer" in types:
            return "answer"
        if "clarify" in types:
            return "clarify"
        if "fallback" in types:
            return "fallback"
        if self.intent in FEEDBACK_INTENTS:
            return "feedback"
        if types or self.first_bot_ts is not None:
            return "control"
        return "relay" if self.relay else "none"


@dataclass
class ConversationFacts:
    sender_id: str
    start_ts: float
    end_ts: float
    turns: list[TurnFacts] = field(default_factory=list)
    bot_language: str | None = None
    handed_off: bool = False
    handoff_reason: str | None = None
    handoff_after_hours: bool | None = None
    ticket_id: str | None = None
    handoff_ts: float | None = None
    first_agent_reply_ts: float | None = None
    closed_ts: float | None = None
    closed_resolved: bool | None = None
    feedback: str | None = None

    @property
    def key(self) -> str:
        return f"{self.sender_id}@{self.start_ts:.6f}"

    @property
    def channel(self) -> str:
        return next((t.channel for t in self.turns if t.channel != UNKNOWN), UNKNOWN)

    @property
    def language(self) -> str:
        first = next((t.language for t in self.turns if t.language), None)
        return first or self.bot_language or UNKNOWN

    def location(self, places: LocationMatcher) -> str:
        """The location this conversation is about: the first known location its messages'
        metadata name (the widget's page, the channel's configuration: deliberate settings),
        else the first location a citizen's message names, else ``unknown``. A code that is
        not in the agency's list (forged, retired) is ignored."""
        for turn in self.turns:
            known = places.known(turn.location_hint)
            if known:
                return known
        for turn in self.turns:
            named = places.find(turn.text)
            if named:
                return named
        return UNKNOWN_LOCATION


def _split_sessions(events: Sequence[EventLike]) -> list[list[EventLike]]:
    sessions: list[list[EventLike]] = []
    current: list[EventLike] = []
    for event in events:
        if event.kind in BOUNDARY_KINDS and current:
            sessions.append(current)
            current = []
        current.append(event)
    if current:
        sessions.append(current)
    return sessions


def _note_related(turn: TurnFacts, custom: Mapping[str, Any]) -> None:
    """Related FAQs of the turn's answer (actions/faq.py): how many were offered, and which
    answer's related button the citizen pressed to get this one."""
    offered = custom.get(RELATED_KEY)  # a count once stored (_clean_custom)
    if isinstance(offered, list):
        offered = len(offered)
    if isinstance(offered, int) and not isinstance(offered, bool) and offered > 0:
        turn.related_offered = min(offered, MAX_RELATED)
    from_faq = custom.get("from_faq")
    if custom.get("via") == VIA_RELATED and isinstance(from_faq, str) and from_faq:
        turn.related_from = from_faq[:LABEL_MAX_LEN]


def _handle_bot(conv: ConversationFacts, turn: TurnFacts | None, event: EventLike) -> None:
    """Applies one bot event to the conversation and to the open turn."""
    custom = event.custom or {}
    kind = type_of(custom)
    if event.language and not conv.bot_language:
        conv.bot_language = event.language
    if kind == MessageType.AGENT_MESSAGE:
        if conv.handed_off and conv.first_agent_reply_ts is None:
            conv.first_agent_reply_ts = event.ts
        return
    if kind == MessageType.HANDOFF_CLOSED:
        conv.closed_ts = event.ts
        conv.closed_resolved = bool(custom.get("resolved"))
        return
    if turn is not None:
        if turn.first_bot_ts is None:
            turn.first_bot_ts = event.ts
        if isinstance(kind, str):
            turn.bot_types.append(kind)
        if kind == MessageType.FAQ_ANSWER and turn.faq_id is None:
            faq_id = custom.get("faq_id")
            turn.faq_id = str(faq_id) if faq_id not in (None, "") else None
            _note_related(turn, custom)
        if kind == MessageType.FALLBACK and custom.get(FIELD_OUT_OF_SCOPE):
            turn.out_of_scope = True
        if kind in SCORED_TYPES and turn.score is None:
            score = custom.get("score")
            if isinstance(score, int | float) and not isinstance(score, bool):
                turn.score = float(score)
    if kind == MessageType.HANDOFF and not conv.handed_off:
        conv.handed_off = True
        conv.handoff_ts = event.ts
        reason = custom.get("reason")
        conv.handoff_reason = str(reason) if reason else UNKNOWN
        after_hours = custom.get("after_hours")
        conv.handoff_after_hours = bool(after_hours) if after_hours is not None else None
        ticket = custom.get("ticket_id")
        conv.ticket_id = str(ticket) if ticket not in (None, "") else None


def build_conversations(events: Sequence[EventLike]) -> list[ConversationFacts]:
    """One sender's events (sorted by time) -> its conversations with their turns.

    Sessions without any citizen message (e.g. only a session start) are not conversations.
    """
    result: list[ConversationFacts] = []
    for session_events in _split_sessions(events):
        conv = ConversationFacts(
            sender_id=session_events[0].sender_id,
            start_ts=session_events[0].ts,
            end_ts=session_events[-1].ts,
        )
        turn: TurnFacts | None = None
        handoff_active = False
        for event in session_events:
            if event.kind == "user":
                turn = TurnFacts(
                    seq=len(conv.turns) + 1,
                    user_ts=event.ts,
                    intent=event.intent,
                    text=event.text,
                    channel=event.channel or UNKNOWN,
                    language=event.language,
                    relay=handoff_active,
                    location_hint=event.location,
                )
                conv.turns.append(turn)
                verdict = FEEDBACK_INTENTS.get(event.intent or "")
                if verdict:
                    conv.feedback = verdict
            elif event.kind == "external":
                turn = None  # what follows answers the trigger, not the citizen's last message
            elif event.kind == "bot":
                custom_type = type_of(event.custom)
                if custom_type == MessageType.HANDOFF:
                    handoff_active = True
                elif custom_type == MessageType.HANDOFF_CLOSED:
                    handoff_active = False
                _handle_bot(conv, turn, event)
        if conv.turns:
            result.append(conv)
    return result


def repeated_answers(turns: Sequence[TurnFacts]) -> int:
    """Answer turns whose FAQ an earlier answer of the same conversation already gave: the
    citizen asked again (the same count the 0008 migration computes for stored turns)."""
    answered = [t.faq_id for t in turns if t.outcome == "answer" and t.faq_id]
    return len(answered) - len(set(answered))


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def message_sentiment(text: str | None, language: str | None) -> float | None:
    """The sentiment of a citizen's message (``knowledge_base.sentiment``); None for a button
    press (its text is a payload) or a language without a lexicon."""
    if not text or text.lstrip().startswith("/"):
        return None
    score = sentiment.compound(text, language)
    return None if score is None else round(score, 4)


def _conversation_row(conv: ConversationFacts, places: LocationMatcher) -> AnalyticsConversation:
    language = conv.language
    scores = [message_sentiment(t.text, t.language or language) for t in conv.turns]
    scored = [s for s in scores if s is not None]
    outcomes = [t.outcome for t in conv.turns]
    first_question = next(
        (t.text for t in conv.turns if t.outcome in QUESTION_OUTCOMES and t.text), None
    )
    row = AnalyticsConversation(
        conversation_key=conv.key,
        sender_id=conv.sender_id,
        start_ts=conv.start_ts,
        started_at=_dt(conv.turns[0].user_ts),
        ended_at=_dt(conv.end_ts),
        channel=conv.channel,
        language=language,
        location=conv.location(places),
        user_messages=len(conv.turns),
        questions=sum(o in QUESTION_OUTCOMES for o in outcomes),
        answers=outcomes.count("answer"),
        fallbacks=outcomes.count("fallback"),
        clarifies=outcomes.count("clarify"),
        repeated_answers=repeated_answers(conv.turns),
        handed_off=conv.handed_off,
        handoff_reason=conv.handoff_reason,
        handoff_after_hours=conv.handoff_after_hours,
        ticket_id=conv.ticket_id,
        handoff_at=_dt(conv.handoff_ts),
        first_agent_reply_at=_dt(conv.first_agent_reply_ts),
        closed_at=_dt(conv.closed_ts),
        closed_resolved=conv.closed_resolved,
        feedback=conv.feedback,
        first_question=first_question,
        sentiment_start=scored[0] if scored else None,
        sentiment_end=scored[-1] if scored else None,
        sentiment_messages=len(scored),
        negative_messages=sum(1 for s in scored if s <= sentiment.NEGATIVE_UPTO),
    )
    row.turns = [
        AnalyticsTurn(
            seq=t.seq,
            user_ts=t.user_ts,
            started_at=_dt(t.user_ts),
            response_ms=t.response_ms,
            outcome=t.outcome,
            intent=t.intent,
            faq_id=t.faq_id,
            score=t.score,
            channel=t.channel,
            language=t.language or language,
            text=t.text,
            sentiment=score,
            related_offered=t.related_offered,
            related_from=t.related_from,
            # "" is counted nowhere, as for a text with no words (None would let the column's
            # default compute the wording again).
            wording="" if t.out_of_scope else turn_wording(t.outcome, t.text),
        )
        for t, score in zip(conv.turns, scores, strict=True)
    ]
    return row


# --- storing ---------------------------------------------------------------------------------


@dataclass
class IngestResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: int = 0
    conversations_rebuilt: int = 0

    def add(self, other: IngestResult) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


RawEvent = tuple[str | None, str | bytes | Mapping[str, Any]]  # (position in source, payload)


def _raw_text(payload: str | bytes | Mapping[str, Any]) -> str:
    if isinstance(payload, Mapping):
        return json.dumps(payload, sort_keys=True, default=str)
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    return payload


def reject(session: Session, source: str, position: str | None, payload: Any, error: str) -> bool:
    """Keeps a malformed event (redacted) with its reason; False if it was already kept."""
    raw = _raw_text(payload)
    raw_key = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
    exists = session.scalar(
        select(AnalyticsRejectedEvent.id).where(AnalyticsRejectedEvent.raw_key == raw_key)
    )
    if exists is not None:
        return False
    from askagency.privacy import redact

    session.add(
        AnalyticsRejectedEvent(
            raw_key=raw_key,
            source=clean_text(source)[:255],
            position=clean_text(position)[:64] if position is not None else None,
            error=redact(clean_text(error)[:500]),
            raw=redact(clean_text(raw[:MAX_RAW_CHARS])),
        )
    )
    log.warning("rejected event at %s %s: %s", source, position, error)
    return True


def _existing_keys(session: Session, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start : start + _IN_CHUNK]
        found.update(
            session.scalars(
                select(AnalyticsEvent.event_key).where(AnalyticsEvent.event_key.in_(chunk))
            )
        )
    return found


def rebuild_sender(
    session: Session,
    sender_id: str,
    since_ts: float,
    places: LocationMatcher | None = None,
    rollups: rollup.Maintainer | None = None,
) -> int:
    """Rebuilds the sender's conversations from the session containing ``since_ts`` onwards;
    returns how many conversations were written. ``places``: the agency's locations (default:
    read from the database). The daily roll-ups lose the old conversations' contribution and
    gain the new ones' (analytics.rollup); a caller that passes ``rollups`` writes them itself
    (once for a batch of senders)."""
    places = places if places is not None else location_store.matcher(session)
    own = rollups is None
    rollups = rollups if rollups is not None else rollup.Maintainer.of(session)
    boundary = session.scalar(
        select(func.max(AnalyticsEvent.ts)).where(
            AnalyticsEvent.sender_id == sender_id,
            AnalyticsEvent.kind.in_(BOUNDARY_KINDS),
            AnalyticsEvent.ts <= since_ts,
        )
    )
    lower = float("-inf") if boundary is None else boundary
    old_ids = list(
        session.scalars(
            select(AnalyticsConversation.id).where(
                AnalyticsConversation.sender_id == sender_id,
                AnalyticsConversation.start_ts >= lower,
            )
        )
    )
    if old_ids:
        session.flush()  # rows of this transaction count towards what is subtracted
        rollups.subtract_stored(session, old_ids)
        session.execute(delete(AnalyticsTurn).where(AnalyticsTurn.conversation_id.in_(old_ids)))
        session.execute(delete(AnalyticsConversation).where(AnalyticsConversation.id.in_(old_ids)))
    query = select(AnalyticsEvent).where(AnalyticsEvent.sender_id == sender_id)
    if boundary is not None:
        query = query.where(AnalyticsEvent.ts >= boundary)
    events = list(session.scalars(query.order_by(AnalyticsEvent.ts, AnalyticsEvent.id)))
    conversations = build_conversations(events)
    rows = [_conversation_row(c, places) for c in conversations]
    session.add_all(rows)
    rollups.add_new(rows)
    session.flush()
    if own:
        rollups.write(session)
    return len(conversations)


def rebuild_since(session: Session, since: datetime, senders_per_commit: int = 500) -> int:
    """Rebuilds every conversation that started at or after ``since`` from its stored events,
    with the location list as it is now (staff added an alias, or a location): the consumer
    rebuilds a conversation only when new events of it arrive. Commits every
    ``senders_per_commit`` senders so that a year of traffic does not become one transaction;
    returns how many conversations were written."""
    places = location_store.matcher(session)
    firsts = session.execute(
        select(AnalyticsConversation.sender_id, func.min(AnalyticsConversation.start_ts))
        .where(AnalyticsConversation.started_at >= since)
        .group_by(AnalyticsConversation.sender_id)
        .order_by(AnalyticsConversation.sender_id)
    ).all()
    written = 0
    for done, (sender_id, first_ts) in enumerate(firsts, start=1):
        written += rebuild_sender(session, sender_id, first_ts, places)
        if done % senders_per_commit == 0:
            session.commit()
    session.commit()
    return written


@dataclass(frozen=True)
class _Pending:
    """A parsed event with where it came from, so a refused one can be quarantined as sent."""

    event: ParsedEvent
    position: str | None
    payload: str | bytes | Mapping[str, Any]


def ingest(session: Session, items: Iterable[RawEvent], source: str) -> IngestResult:
    """Stores new events from ``items`` and rebuilds the conversations they touch.

    Runs inside the caller's transaction so that a consumer can commit its checkpoint with the
    rows. Malformed events are kept in ``analytics_rejected_event`` and do not stop the batch;
    neither does an event the database refuses (see :func:`_store`).
    """
    result = IngestResult()
    parsed: dict[str, _Pending] = {}
    for position, payload in items:
        result.received += 1
        try:
            event = parse_event(payload)
        except EventError as exc:
            reject(session, source, position, payload, str(exc))
            result.rejected += 1
            continue
        if event is None:
            result.ignored += 1
            continue
        if event.event_key in parsed:
            result.duplicates += 1
            continue
        parsed[event.event_key] = _Pending(event, position, payload)
    existing = _existing_keys(session, list(parsed))
    result.duplicates += len(existing)
    _store(session, [p for k, p in parsed.items() if k not in existing], source, result)
    return result


def _insert_and_rebuild(session: Session, events: Sequence[ParsedEvent]) -> int:
    session.add_all(
        AnalyticsEvent(
            event_key=e.event_key,
            sender_id=e.sender_id,
            ts=e.ts,
            kind=e.kind,
            intent=e.intent,
            text=e.text,
            channel=e.channel,
            language=e.language,
            location=e.location,
            custom=e.custom,
        )
        for e in events
    )
    session.flush()
    earliest: dict[str, float] = {}
    for e in events:
        earliest[e.sender_id] = min(e.ts, earliest.get(e.sender_id, e.ts))
    places = location_store.matcher(session)
    rollups = rollup.Maintainer.of(session)
    rebuilt = sum(
        rebuild_sender(session, sender_id, since, places, rollups)
        for sender_id, since in sorted(earliest.items())
    )
    rollups.write(session)
    return rebuilt


def _store(session: Session, pending: list[_Pending], source: str, result: IngestResult) -> None:
    """Stores ``pending`` and rebuilds its conversations under a savepoint.

    Why a savepoint and halving: one event the database refuses (review finding M5: a value
    too long, a NUL byte) used to fail the whole batch, which the consumer then retried forever
    while the queue grew. Now a refused group is rolled back to its savepoint and split in
    halves until the refused event is alone; it goes to ``analytics_rejected_event`` with the
    database's reason and every other event is stored. A batch without a bad event costs one
    savepoint; k bad events cost about 2·k·log2(n) savepoints. Errors that are not about one
    event's content (the database unreachable) are not caught: the batch fails and is retried.
    """
    if not pending:
        return
    if not _savepoints_work(session):
        # SQLite accepts any length and NUL, and parse_event refuses what rebuilding cannot
        # handle: store the batch as one, and let an unforeseen error fail it as before.
        result.conversations_rebuilt += _insert_and_rebuild(session, [p.event for p in pending])
        result.stored += len(pending)
        return
    try:
        with session.begin_nested():
            rebuilt = _insert_and_rebuild(session, [p.event for p in pending])
    except EVENT_ERRORS as exc:
        if len(pending) > 1:
            middle = len(pending) // 2
            _store(session, pending[:middle], source, result)
            _store(session, pending[middle:], source, result)
            return
        (item,) = pending
        if _existing_keys(session, [item.event.event_key]):
            result.duplicates += 1  # a concurrent consumer stored it first (unique key)
            return
        reject(session, source, item.position, item.payload, _refusal(exc))
        result.rejected += 1
        return
    result.stored += len(pending)
    result.conversations_rebuilt += rebuilt


def _savepoints_work(session: Session) -> bool:
    """False on SQLite: Python's sqlite3 driver opens no transaction before a SAVEPOINT, so
    releasing one would commit the rows ahead of the caller's checkpoint."""
    return session.get_bind().dialect.name != "sqlite"


def _refusal(exc: BaseException) -> str:
    """Why an event could not be stored, without the statement or its parameters (SQLAlchemy's
    message lists every value of the batch, citizen text included) and without PostgreSQL's
    DETAIL line (it quotes the refused row)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"not stored: {type(orig).__name__}: {lines[0] if lines else ''}"
