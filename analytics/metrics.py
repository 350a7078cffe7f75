"""Every leadership metric, defined once (docs/metrics.md lists the definitions).

The dashboard, the JSON API, the CSV exports, the ``askagency report`` command and the tests
all call :func:`analytics.dashboard.compute_dashboard` (or :func:`conversation_records`), so a
number means the same thing everywhere. Definitions:

* A **conversation** is one Rasa session of one sender with at least one citizen message; it
  belongs to the day its first message was sent, in the agency's time zone (the setting
  ``staffed_timezone``, UTC by default; the heat map uses the same zone). Filters apply to the
  conversation's channel and language (of its first message) and location (the first known
  location its messages' metadata name, else the first one the citizen names; see
  ``knowledge_base.locations``).
* **Bot response time**: citizen message event -> first bot event of that turn, in ms;
  percentiles use linear interpolation between closest ranks (numpy's default). Turns where
  the bot stays silent (a person has the conversation) have no response time.
* **Containment**: share of conversations with no handoff.
* **Resolution** (each conversation is exactly one of): *bot-resolved* = at least one FAQ
  answer, no handoff, no negative feedback and no FAQ answered twice (positive feedback makes
  it *confirmed*);
  *agent-resolved* = handed off and the ticket closed as resolved; *unresolved* = the rest.
* **Handoff rate**: handed-off conversations / conversations; reasons as the bot reported them.
* **Human first-response time** = ticket created -> first agent reply; **time to close** =
  ticket created -> closed; both in seconds over the tickets created in the period (channel and
  language of the ticket, location of its conversation). Tickets come from the handoff tables;
  a handoff without a ticket row, from its conversation's handoff events.
* **CSAT** = conversations whose last feedback was positive / conversations with feedback.
* **Mission value**: staff hours saved = bot-resolved conversations x minutes per
  human-handled contact / 60 (optionally x cost per contact for a money figure); FTE
  equivalent = hours saved / (hours per FTE per week x weeks in the period).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel
from sqlalchemy import Float, String, cast, extract, func, select
from sqlalchemy.orm import Session

from analytics.models import AnalyticsConversation, AnalyticsTurn
from analytics.sentiment import SentimentSummary, summarise_sentiment
from askagency.clock import now_utc
from askagency.numbers import row_id
from askagency.staff import User
from handoff.hours import StaffedHours, build_hours
from handoff.models import Status, Ticket
from knowledge_base.locations.matching import UNKNOWN_LOCATION, normalise_code
from knowledge_base.models import Faq
from knowledge_base.unanswered import UnansweredQuestion, taken_by_an_entry

Resolution = Literal["bot", "agent", "unresolved"]
RESOLUTIONS: tuple[Resolution, ...] = ("bot", "agent", "unresolved")
# Staffed around the clock: first response in staffed hours equals the wall-clock one.
ALWAYS_STAFFED = build_hours("UTC", "")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 731
TOP_N = 10


class FilterError(ValueError):
    """A date range or filter the user must correct; the message says how."""


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; a FilterError that says what is wrong otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise FilterError(
            f"unknown time zone {name!r}: use an IANA name such as America/Denver"
        ) from exc


def _location_code(value: str | None) -> str | None:
    """A location filter value: a code (any case), ``unknown``, or empty for all locations."""
    value = (value or "").strip()
    if not value:
        return None
    if value.lower() == UNKNOWN_LOCATION:
        return UNKNOWN_LOCATION
    code = normalise_code(value)
    if code is None:
        raise FilterError(f"{value[:40]!r} is not a location code (for example DEN)")
    return code


@dataclass(frozen=True)
class MetricFilter:
    """Inclusive date range of the agency's calendar days (in ``zone``, an IANA time zone such
    as America/Denver), plus optional channel, language and location (a location code)."""

    start: date
    end: date
    channel: str | None = None
    language: str | None = None
    zone: str = "UTC"
    location: str | None = None

    @classmethod
    def parse(
        cls,
        start: str | None,
        end: str | None,
        channel: str | None = None,
        language: str | None = None,
        today: date | None = None,
        zone: str = "UTC",
        location: str | None = None,
    ) -> MetricFilter:
        """From query-string values; default: the last 30 days including today (in ``zone``)."""
        tz = time_zone(zone)
        today = today or now_utc().astimezone(tz).date()
        try:
            end_date = date.fromisoformat(end) if end else today
            start_date = (
                date.fromisoformat(start)
                if start
                else end_date - timedelta(days=DEFAULT_RANGE_DAYS - 1)
            )
        except ValueError as exc:
            raise FilterError(f"dates must look like 2026-01-31: {exc}") from exc
        if start_date > end_date:
            raise FilterError(f"'from' ({start_date}) is after 'to' ({end_date})")
        if (end_date - start_date).days + 1 > MAX_RANGE_DAYS:
            raise FilterError(f"the range may span at most {MAX_RANGE_DAYS} days")
        return cls(
            start=start_date,
            end=end_date,
            channel=(channel or "").strip() or None,
            language=(language or "").strip().lower() or None,
            zone=zone,
            location=_location_code(location),
        )

    @property
    def tz(self) -> ZoneInfo:
        return time_zone(self.zone)

    def local(self, moment: datetime) -> datetime:
        """``moment`` on the agency's clock (days, weekdays and hours are counted there)."""
        return moment.astimezone(self.tz)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_dt(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=self.tz)

    @property
    def end_dt(self) -> datetime:
        """Exclusive upper bound: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=self.tz)

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


# --- the elementary definitions ---------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None for no values."""
    return percentile_of_sorted(sorted(values), q)


def percentile_of_sorted(ordered: Sequence[float], q: float) -> float | None:
    """:func:`percentile` of values already in ascending order (several percentiles of one
    list sort it once: a year's 57,000 first responses)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def rate(numerator: int, denominator: int) -> float | None:
    """A share in [0, 1]; None when there is nothing to divide by."""
    return None if denominator == 0 else numerator / denominator


def is_bot_resolved(conv: ConversationFacts) -> bool:
    """The bot settled it: at least one answer, and no handoff, no thumbs-down and no
    question asked again (an FAQ answered twice). A greeting-only or fallback-only
    conversation has no answer, so it is never resolved by the bot."""
    return (
        not conv.handed_off
        and conv.answers > 0
        and conv.feedback != "bad"
        and conv.repeated_answers == 0
    )


def resolution_of(conv: ConversationFacts) -> Resolution:
    if conv.handed_off:
        return "agent" if conv.ticket_resolved else "unresolved"
    return "bot" if is_bot_resolved(conv) else "unresolved"


def staff_hours_saved(resolved: int, minutes_per_contact: float) -> float:
    """Each conversation the bot resolved is one contact staff did not have to handle."""
    return resolved * minutes_per_contact / 60.0


def fte_equivalent(hours_saved: float, hours_per_fte: float, days: int) -> float:
    """Hours saved over the period / hours one full-time employee works in that period."""
    return hours_saved / (hours_per_fte * days / 7.0)


# --- facts loaded from the database -----------------------------------------------------------


@dataclass
class ConversationFacts:
    key: str
    sender_id: str
    started_at: datetime
    ended_at: datetime
    channel: str
    language: str
    user_messages: int
    questions: int
    answers: int
    handed_off: bool
    handoff_reason: str | None
    ticket_id: str | None
    feedback: str | None
    first_question: str | None
    ticket_resolved: bool | None
    first_response_s: float | None
    time_to_close_s: float | None
    handoff_at: datetime | None = None  # from the conversation's own events
    first_agent_reply_at: datetime | None = None
    closed_at: datetime | None = None
    repeated_answers: int = 0
    location: str = UNKNOWN_LOCATION
    sentiment_start: float | None = None
    sentiment_end: float | None = None
    sentiment_messages: int = 0
    negative_messages: int = 0

    @property
    def resolution(self) -> Resolution:
        return resolution_of(self)


class TicketFacts(NamedTuple):
    """One handoff as the figures read it: its timings in seconds from its opening (a tuple:
    a year's dashboard makes 57,000 of them)."""

    first_response_s: float | None  # to the first agent reply (None: no reply yet)
    time_to_close_s: float | None  # to its closing (None: still open)
    resolved: bool | None
    agent: str | None = None  # the assigned agent's username (None: nobody took it)
    team: str | None = None  # the assigned agent's team today (None: no agent, or no team)
    # Seconds of staffed hours until the first agent reply (None: no reply yet).
    first_response_staffed_s: float | None = None


@dataclass(frozen=True)
class TurnFacts:
    started_at: datetime
    response_ms: float | None
    outcome: str
    faq_id: str | None
    score: float | None
    channel: str  # of the conversation, like every filter
    language: str
    text: str | None
    location: str = UNKNOWN_LOCATION  # of the conversation
    sentiment: float | None = None
    related_offered: int = 0  # related-FAQ buttons offered with the answer
    related_from: str | None = None  # the answer whose related button this turn pressed


def _filtered(query, model, flt: MetricFilter):  # type: ignore[no-untyped-def]
    if flt.channel:
        query = query.where(model.channel == flt.channel)
    if flt.language:
        query = query.where(model.language == flt.language)
    if flt.location:
        query = query.where(_at_location(model, flt.location))
    return query


def _at_location(model, location: str):  # type: ignore[no-untyped-def]
    """The condition "about ``location``" for a table. A ticket is about the location of the
    conversation it was opened from; the unanswered queue has no conversation, so a location
    filter reads unanswered questions from the conversations' turns instead (top_unanswered)."""
    if model is AnalyticsConversation:
        return AnalyticsConversation.location == location
    if model is Ticket:
        of_location = select(AnalyticsConversation.ticket_id).where(
            AnalyticsConversation.location == location,
            AnalyticsConversation.ticket_id.is_not(None),
        )
        return cast(Ticket.id, String).in_(of_location)
    raise FilterError(f"{model.__name__} cannot be filtered by location")


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def _elapsed_s(session: Session, start: Any, end: Any) -> Any:
    """Seconds from ``start`` to ``end`` computed by PostgreSQL (None when either is NULL):
    fetching a year's tickets' timestamps cost three times fetching these numbers. SQLite keeps
    its times as text to the microsecond and computes in milliseconds, so there the times are
    read and subtracted in Python (:func:`_ticket_rows`)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(extract("epoch", end - start), Float)
    return None


# (id, first response s, time to close s, stored staffed first response s, status, agent id)
TicketRow = tuple[int, float | None, float | None, float | None, str, int | None]


def _tickets_of(query, ids: Iterable[int] | None, flt: MetricFilter | None):  # type: ignore[no-untyped-def]
    """``query`` narrowed to the tickets ``ids``, or those created in ``flt``'s period and
    dimensions."""
    if ids is not None:
        query = query.where(Ticket.id.in_(list(ids)))
    if flt is not None:
        query = _filtered(
            query.where(Ticket.created_at >= flt.start_dt, Ticket.created_at < flt.end_dt),
            Ticket,
            flt,
        )
    return query


def _ticket_rows(
    session: Session, ids: Iterable[int] | None, flt: MetricFilter | None
) -> Sequence[TicketRow]:
    """Per ticket the numbers metrics read, as plain tuples (a year has tens of thousands of
    tickets; the agents are looked up once each, :func:`_agents`), all at once through the
    session's connection (row by row through the ORM cost thirty times the query)."""
    t = Ticket
    first_response = _elapsed_s(session, t.created_at, t.first_agent_reply_at)
    rest = (t.first_response_staffed_s, t.status, t.assigned_agent_id)
    connection = session.connection()
    if first_response is not None:
        to_close = _elapsed_s(session, t.created_at, t.closed_at)
        query = _tickets_of(select(t.id, first_response, to_close, *rest), ids, flt)
        result = connection.execute(query)
        try:
            # The driver's own tuples: none of these columns needs SQLAlchemy's result
            # processing, and building 57,000 Row objects cost more than the query.
            return result.cursor.fetchall()  # type: ignore[union-attr]
        finally:
            result.close()
    times = (t.created_at, t.first_agent_reply_at, t.closed_at)
    query = _tickets_of(select(t.id, *times, *rest), ids, flt)
    return [
        (ticket, _seconds(created, replied), _seconds(created, closed), *others)
        for ticket, created, replied, closed, *others in connection.execute(query).all()
    ]


def _unstored_staffed_s(
    session: Session, ids: Iterable[int], staffed: StaffedHours
) -> dict[int, float | None]:
    """The staffed first response of replied tickets whose reply did not store it (answered
    before migration 0021), computed under ``staffed`` from their times."""
    t = Ticket
    query = select(t.id, t.created_at, t.first_agent_reply_at).where(t.id.in_(list(ids)))
    return {
        ticket: _staffed_s(staffed, created, replied)
        for ticket, created, replied in session.execute(query).tuples()
    }


_CLOSED = {Status.CLOSED_RESOLVED.value: True, Status.CLOSED_UNRESOLVED.value: False}


def _agents(session: Session, rows: Sequence[TicketRow]) -> dict[int, tuple[str, str | None]]:
    """The username and team of every agent assigned in ``rows`` (a handful of people)."""
    ids = {row[5] for row in rows} - {None}
    if not ids:
        return {}
    query = select(User.id, User.username, User.team).where(User.id.in_(ids))
    return {user: (name, team) for user, name, team in session.execute(query).tuples()}


def _ticket_facts(
    session: Session, rows: Sequence[TicketRow], staffed: StaffedHours | None
) -> list[TicketFacts]:
    """:func:`_ticket_rows` as figures (a plain loop over tuples: a year's 57,000 tickets).
    The staffed first response is the stored one, or computed under ``staffed`` for a ticket
    answered before it was stored (None: not needed)."""
    computed: dict[int, float | None] = {}
    if staffed is not None:
        unstored = [row[0] for row in rows if row[3] is None and row[1] is not None]
        computed = _unstored_staffed_s(session, unstored, staffed) if unstored else {}
    agents = _agents(session, rows)
    nobody = (None, None)
    facts = []
    for ticket, first_response, to_close, in_hours, status, agent_id in rows:
        agent, team = agents.get(agent_id, nobody)  # type: ignore[arg-type]
        if in_hours is None:
            in_hours = computed.get(ticket)
        facts.append(
            TicketFacts(first_response, to_close, _CLOSED.get(status), agent, team, in_hours)
        )
    return facts


def load_conversations(session: Session, flt: MetricFilter) -> list[ConversationFacts]:
    """The conversations of the period, each joined with its ticket when there is one."""
    query = _filtered(
        select(AnalyticsConversation).where(
            AnalyticsConversation.started_at >= flt.start_dt,
            AnalyticsConversation.started_at < flt.end_dt,
        ),
        AnalyticsConversation,
        flt,
    ).order_by(AnalyticsConversation.started_at, AnalyticsConversation.id)
    rows = list(session.scalars(query))
    tickets: dict[str, tuple[bool | None, float | None, float | None]] = {}
    ticket_ids = {i for r in rows if (i := row_id(r.ticket_id)) is not None}
    if ticket_ids:
        for ticket, first_response, to_close, _, status, _ in _ticket_rows(
            session, ticket_ids, None
        ):
            tickets[str(ticket)] = (_CLOSED.get(status), first_response, to_close)
    facts = []
    for r in rows:
        if r.ticket_id in tickets:
            resolved, first_response, to_close = tickets[r.ticket_id]
        else:  # no ticket row: what the conversation's own handoff events say
            resolved = r.closed_resolved
            first_response = _seconds(r.handoff_at, r.first_agent_reply_at)
            to_close = _seconds(r.handoff_at, r.closed_at)
        facts.append(
            ConversationFacts(
                key=r.conversation_key,
                sender_id=r.sender_id,
                started_at=r.started_at,
                ended_at=r.ended_at,
                channel=r.channel,
                language=r.language,
                user_messages=r.user_messages,
                questions=r.questions,
                answers=r.answers,
                handed_off=r.handed_off,
                handoff_reason=r.handoff_reason,
                ticket_id=r.ticket_id,
                feedback=r.feedback,
                first_question=r.first_question,
                ticket_resolved=resolved if r.handed_off else None,
                first_response_s=first_response if r.handed_off else None,
                time_to_close_s=to_close if r.handed_off else None,
                handoff_at=r.handoff_at,
                first_agent_reply_at=r.first_agent_reply_at,
                closed_at=r.closed_at,
                repeated_answers=r.repeated_answers,
                location=r.location,
                sentiment_start=r.sentiment_start,
                sentiment_end=r.sentiment_end,
                sentiment_messages=r.sentiment_messages,
                negative_messages=r.negative_messages,
            )
        )
    return facts


def load_tickets(
    session: Session,
    flt: MetricFilter,
    convs: Sequence[ConversationFacts] | None = None,
    staffed: StaffedHours = ALWAYS_STAFFED,
) -> list[TicketFacts]:
    """Handoffs of the period with their human timings. The first response in staffed hours is
    the one stored with the ticket's first reply; under ``staffed`` for a ticket answered
    before it was stored, and for a handoff counted from its conversation's events.

    Ticket rows (created in the period) are the source of truth; a handed-off conversation of
    the period whose ticket is not in the handoff tables is counted
    from its own handoff events, so every handoff is counted exactly once.
    """
    known: set[str] = set()
    convs = load_conversations(session, flt) if convs is None else convs
    tickets = _ticket_facts(session, _ticket_rows(session, None, flt), staffed)
    wanted = {i for c in convs if (i := row_id(c.ticket_id)) is not None}
    if wanted:
        known = {str(i) for i in session.scalars(select(Ticket.id).where(Ticket.id.in_(wanted)))}
    for c in convs:
        if c.handed_off and c.ticket_id not in known and c.handoff_at is not None:
            tickets.append(
                TicketFacts(
                    first_response_s=_seconds(c.handoff_at, c.first_agent_reply_at),
                    time_to_close_s=_seconds(c.handoff_at, c.closed_at),
                    resolved=c.ticket_resolved,
                    first_response_staffed_s=_staffed_s(
                        staffed, c.handoff_at, c.first_agent_reply_at
                    ),
                )
            )
    return tickets


def _staffed_s(staffed: StaffedHours, start: datetime, reply: datetime | None) -> float | None:
    return None if reply is None else staffed.staffed_seconds(start, reply)


def load_turns(session: Session, flt: MetricFilter) -> list[TurnFacts]:
    """Turns of the period's conversations (the conversation's filters apply)."""
    query = _filtered(
        select(
            AnalyticsTurn,
            AnalyticsConversation.channel,
            AnalyticsConversation.language,
            AnalyticsConversation.location,
        )
        .join(AnalyticsConversation)
        .where(
            AnalyticsConversation.started_at >= flt.start_dt,
            AnalyticsConversation.started_at < flt.end_dt,
        ),
        AnalyticsConversation,
        flt,
    ).order_by(AnalyticsTurn.started_at, AnalyticsTurn.id)
    return [
        TurnFacts(
            started_at=t.started_at,
            response_ms=t.response_ms,
            outcome=t.outcome,
            faq_id=t.faq_id,
            score=t.score,
            channel=channel,
            language=language,
            text=t.text,
            location=location,
            sentiment=t.sentiment,
            related_offered=t.related_offered,
            related_from=t.related_from,
        )
        for t, channel, language, location in session.execute(query).tuples()
    ]


# --- the output shape (also the JSON API's schema) -------------------------------------------


class Percentiles(BaseModel):
    count: int
    p50: float | None
    p90: float | None
    p99: float | None


class MissionValue(BaseModel):
    minutes_per_contact: float
    hours_per_fte: float
    resolved_conversations: int  # resolved by the bot (is_bot_resolved), the only ones counted
    staff_hours_saved: float
    fte_equivalent: float
    cost_per_contact: float | None  # optional: what one staff-handled contact costs
    currency: str
    cost_saved: float | None  # resolved conversations x cost per contact
    method: str  # which conversations count, printed next to the number
    assumption: str  # the assumed minutes, hours and cost

    def money(self) -> str | None:
        """The money figure as leadership reads it ("1,234.00 USD"), None without a cost."""
        return None if self.cost_saved is None else f"{self.cost_saved:,.2f} {self.currency}"


class Summary(BaseModel):
    conversations: int
    user_messages: int
    contained: int
    containment_rate: float | None
    handoffs: int
    handoff_rate: float | None
    bot_resolved: int
    bot_resolved_confirmed: int
    bot_resolution_rate: float | None
    agent_resolved: int
    agent_resolution_rate: float | None
    unresolved: int
    bot_response_ms: Percentiles
    human_first_response_s: Percentiles
    # Only the time inside staffed hours (handoff.hours): a ticket opened on Friday night and
    # answered at Monday's opening waited 0 s of anybody's working time.
    human_first_response_staffed_s: Percentiles
    time_to_close_s: Percentiles
    tickets: int
    feedback_good: int
    feedback_bad: int
    csat: float | None
    sentiment: SentimentSummary
    mission: MissionValue


class DayPoint(BaseModel):
    day: str
    conversations: int
    by_channel: dict[str, int]
    response_p50_ms: float | None
    response_p90_ms: float | None
    response_p99_ms: float | None
    resolution: dict[str, int]
    handoffs_by_reason: dict[str, int]


class HandoffFigures(BaseModel):
    """A group's handoffs of the period (one agent's, one team's), for supervisors."""

    tickets: int
    replied: int
    first_response_p50_s: float | None
    first_response_staffed_p50_s: float | None
    resolved: int
    resolution_rate: float | None  # resolved / closed


class AgentFigures(HandoffFigures):
    agent: str  # username, or "unassigned"


class TeamFigures(HandoffFigures):
    team: str  # the assigned agent's team today, "no team", or "unassigned"


class Breakdown(BaseModel):
    key: str
    conversations: int
    containment_rate: float | None
    bot_resolution_rate: float | None
    handoff_rate: float | None
    response_p50_ms: float | None
    response_p90_ms: float | None
    negative_rate: float | None  # conversations with a negative message / scored ones


class TopFaq(BaseModel):
    faq_id: str
    question: str | None
    answers: int
    mean_score: float | None


class RelatedPair(BaseModel):
    """Citizens pressed the related question ``to_faq`` under ``from_faq``'s answer."""

    from_faq: str
    from_question: str | None
    to_faq: str
    to_question: str | None
    clicks: int


class RelatedFigures(BaseModel):
    """Related-FAQ buttons (issue 21, item 2): answers that offered them, buttons pressed, and
    the pairs pressed most."""

    offers: int = 0  # FAQ answers that came with related-question buttons
    clicks: int = 0  # related-question buttons pressed (each answered that FAQ)
    click_rate: float | None = None  # clicks / offers
    top_pairs: list[RelatedPair] = []


class Unanswered(BaseModel):
    question: str
    count: int
    last_seen: str
    source: str  # "queue" (knowledge_base.unanswered); kept in the JSON API and CSV


class OutOfScope(BaseModel):
    """Questions one out-of-scope entry of the knowledge base took in the period."""

    entry: str  # the entry's id (knowledge_base: kind out_of_scope)
    count: int


class Dashboard(BaseModel):
    start: str
    end: str
    days: int
    time_zone: str  # the agency's zone: days, weekdays and hours are counted in it
    channel: str | None
    language: str | None
    location: str | None
    channels: list[str]
    languages: list[str]
    locations: list[str]
    summary: Summary
    daily: list[DayPoint]
    handoff_reasons: dict[str, int]
    heatmap: list[list[int]]  # [weekday Mon..Sun][hour 0..23] conversations started (time_zone)
    by_channel: list[Breakdown]
    by_language: list[Breakdown]
    by_location: list[Breakdown]
    top_faqs: list[TopFaq]
    related: RelatedFigures = RelatedFigures()
    top_unanswered: list[Unanswered]
    # What citizens asked that the service does not answer by design, by the entry that took it
    # (empty under a location filter: the queue does not record the conversation).
    out_of_scope: list[OutOfScope] = []
    by_agent: list[AgentFigures]
    by_team: list[TeamFigures]


# --- computing -------------------------------------------------------------------------------


def _percentiles(values: Sequence[float]) -> Percentiles:
    ordered = sorted(values)

    def rounded(q: float) -> float | None:
        value = percentile_of_sorted(ordered, q)
        return None if value is None else round(value, 3)

    return Percentiles(count=len(values), p50=rounded(50), p90=rounded(90), p99=rounded(99))


MISSION_METHOD = (
    "Counts only conversations the bot resolved: at least one answer, and no handoff, no "
    "thumbs-down and no question asked again. Greeting-only and fallback-only conversations, "
    "and every handed-off one, count for nothing."
)


@dataclass(frozen=True)
class Assumptions:
    """What the value figures assume, and the staffed hours first responses are counted in:
    one value, from the settings or the request, for every computation (docs/metrics.md)."""

    minutes_per_contact: float  # staff time one resolved conversation saves
    hours_per_fte: float  # a full-time equivalent's working week
    cost_per_contact: float | None = None  # optional: what one staff-handled contact costs
    currency: str = "USD"
    staffed: StaffedHours = ALWAYS_STAFFED  # handoff.hours.hours_from_settings

    def check(self) -> None:
        """FilterError (a 400 for the API) for values no agency means."""
        if self.minutes_per_contact < 0 or self.hours_per_fte <= 0:
            raise FilterError("minutes per contact must be >= 0 and hours per FTE > 0")
        if self.cost_per_contact is not None and self.cost_per_contact < 0:
            raise FilterError("cost per contact must be >= 0")


def mission_value(resolved: int, days: int, assumptions: Assumptions) -> MissionValue:
    minutes_per_contact, hours_per_fte = assumptions.minutes_per_contact, assumptions.hours_per_fte
    cost_per_contact, currency = assumptions.cost_per_contact, assumptions.currency
    hours = staff_hours_saved(resolved, minutes_per_contact)
    fte = fte_equivalent(hours, hours_per_fte, days)
    period_hours = hours_per_fte * days / 7.0
    assumption = (
        f"Assumes each resolved conversation saves {minutes_per_contact:g} minutes of staff "
        f"time (one human-handled contact) and one FTE works {hours_per_fte:g} hours a week "
        f"({period_hours:.1f} hours in these {days} days)."
    )
    cost_saved = None
    if cost_per_contact is not None:
        cost_saved = round(resolved * cost_per_contact, 2)
        assumption += f" One staff-handled contact costs {cost_per_contact:,.2f} {currency}."
    return MissionValue(
        minutes_per_contact=minutes_per_contact,
        hours_per_fte=hours_per_fte,
        resolved_conversations=resolved,
        staff_hours_saved=round(hours, 3),
        fte_equivalent=round(fte, 4),
        cost_per_contact=cost_per_contact,
        currency=currency,
        cost_saved=cost_saved,
        method=MISSION_METHOD,
        assumption=assumption,
    )


UNASSIGNED = "unassigned"
NO_TEAM = "no team"


def _handoff_groups(
    tickets: Sequence[TicketFacts], key: Callable[[TicketFacts], str]
) -> list[tuple[str, dict[str, Any]]]:
    """Tickets grouped by ``key`` (most tickets first, then by name), each with the
    HandoffFigures fields: volume, first response (wall clock and staffed hours only) and
    resolution of closed tickets."""
    groups: dict[str, list[TicketFacts]] = defaultdict(list)
    for t in tickets:
        groups[key(t)].append(t)
    rows = []
    for name, items in groups.items():
        replied = [t for t in items if t.first_response_s is not None]
        closed = [t for t in items if t.resolved is not None]
        resolved = sum(1 for t in closed if t.resolved)
        wall = _percentiles([v for t in replied if (v := t.first_response_s) is not None])
        in_hours = _percentiles(
            [v for t in replied if (v := t.first_response_staffed_s) is not None]
        )
        figures = {
            "tickets": len(items),
            "replied": len(replied),
            "first_response_p50_s": wall.p50,
            "first_response_staffed_p50_s": in_hours.p50,
            "resolved": resolved,
            "resolution_rate": rate(resolved, len(closed)),
        }
        rows.append((name, figures))
    return sorted(rows, key=lambda row: (-row[1]["tickets"], row[0]))


def by_agent(tickets: Sequence[TicketFacts]) -> list[AgentFigures]:
    """Per assigned agent: their handoff figures."""
    groups = _handoff_groups(tickets, lambda t: t.agent or UNASSIGNED)
    return [AgentFigures(agent=name, **figures) for name, figures in groups]


def _team_of(ticket: TicketFacts) -> str:
    if ticket.agent is None:
        return UNASSIGNED
    return ticket.team or NO_TEAM


def by_team(tickets: Sequence[TicketFacts]) -> list[TeamFigures]:
    """Per team of the assigned agent (the team the person is in today: moving someone moves
    their history with them, as a supervisor reading "my team" expects)."""
    groups = _handoff_groups(tickets, _team_of)
    return [TeamFigures(team=name, **figures) for name, figures in groups]


def summarise(
    convs: Sequence[ConversationFacts],
    turns: Sequence[TurnFacts],
    tickets: Sequence[TicketFacts],
    days: int,
    assumptions: Assumptions,
) -> Summary:
    n = len(convs)
    handed_off = [c for c in convs if c.handed_off]
    contained = n - len(handed_off)
    resolutions = Counter(c.resolution for c in convs)
    confirmed = sum(1 for c in convs if c.resolution == "bot" and c.feedback == "good")
    good = sum(1 for c in convs if c.feedback == "good")
    bad = sum(1 for c in convs if c.feedback == "bad")
    response = [t.response_ms for t in turns if t.response_ms is not None]
    first_response = [v for t in tickets if (v := t.first_response_s) is not None]
    to_close = [v for t in tickets if (v := t.time_to_close_s) is not None]
    return Summary(
        conversations=n,
        user_messages=sum(c.user_messages for c in convs),
        contained=contained,
        containment_rate=rate(contained, n),
        handoffs=len(handed_off),
        handoff_rate=rate(len(handed_off), n),
        bot_resolved=resolutions["bot"],
        bot_resolved_confirmed=confirmed,
        bot_resolution_rate=rate(resolutions["bot"], n),
        agent_resolved=resolutions["agent"],
        agent_resolution_rate=rate(resolutions["agent"], len(handed_off)),
        unresolved=resolutions["unresolved"],
        bot_response_ms=_percentiles(response),
        human_first_response_s=_percentiles(first_response),
        human_first_response_staffed_s=_percentiles(
            [v for t in tickets if (v := t.first_response_staffed_s) is not None]
        ),
        time_to_close_s=_percentiles(to_close),
        tickets=len(tickets),
        feedback_good=good,
        feedback_bad=bad,
        csat=rate(good, good + bad),
        sentiment=summarise_sentiment(convs, turns),
        mission=mission_value(resolutions["bot"], days, assumptions),
    )


def _daily(
    flt: MetricFilter, convs: Sequence[ConversationFacts], turns: Sequence[TurnFacts]
) -> list[DayPoint]:
    conv_by_day: dict[date, list[ConversationFacts]] = defaultdict(list)
    for c in convs:
        conv_by_day[flt.local(c.started_at).date()].append(c)
    response_by_day: dict[date, list[float]] = defaultdict(list)
    for t in turns:
        if t.response_ms is not None:
            response_by_day[flt.local(t.started_at).date()].append(t.response_ms)
    points = []
    for day in flt.dates():
        day_convs = conv_by_day.get(day, [])
        responses = sorted(response_by_day.get(day, []))
        resolution = Counter(c.resolution for c in day_convs)

        def pct(q: float, responses: list[float] = responses) -> float | None:
            value = percentile_of_sorted(responses, q)
            return None if value is None else round(value, 3)

        points.append(
            DayPoint(
                day=day.isoformat(),
                conversations=len(day_convs),
                by_channel=dict(sorted(Counter(c.channel for c in day_convs).items())),
                response_p50_ms=pct(50),
                response_p90_ms=pct(90),
                response_p99_ms=pct(99),
                resolution={r: resolution[r] for r in RESOLUTIONS},
                handoffs_by_reason=dict(
                    sorted(
                        Counter(
                            c.handoff_reason or "unknown" for c in day_convs if c.handed_off
                        ).items()
                    )
                ),
            )
        )
    return points


def _breakdown(
    key_of: Callable[[ConversationFacts], str],
    convs: Sequence[ConversationFacts],
    turn_key_of: Callable[[TurnFacts], str],
    turns: Sequence[TurnFacts],
) -> list[Breakdown]:
    groups: dict[str, list[ConversationFacts]] = defaultdict(list)
    for c in convs:
        groups[key_of(c)].append(c)
    responses: dict[str, list[float]] = defaultdict(list)
    for t in turns:
        if t.response_ms is not None:
            responses[turn_key_of(t)].append(t.response_ms)
    rows = []
    for key, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        n = len(members)
        handed = sum(1 for c in members if c.handed_off)
        p50 = percentile(responses.get(key, []), 50)
        p90 = percentile(responses.get(key, []), 90)
        rows.append(
            Breakdown(
                key=key,
                conversations=n,
                containment_rate=rate(n - handed, n),
                bot_resolution_rate=rate(sum(1 for c in members if c.resolution == "bot"), n),
                handoff_rate=rate(handed, n),
                response_p50_ms=None if p50 is None else round(p50, 3),
                response_p90_ms=None if p90 is None else round(p90, 3),
                negative_rate=summarise_sentiment(members, ()).negative_rate,
            )
        )
    return rows


def heatmap(flt: MetricFilter, convs: Sequence[ConversationFacts]) -> list[list[int]]:
    """Conversations started per weekday and hour on the agency's clock."""
    grid = [[0] * 24 for _ in WEEKDAYS]
    for c in convs:
        local = flt.local(c.started_at)
        grid[local.weekday()][local.hour] += 1
    return grid


def top_faqs(session: Session, turns: Sequence[TurnFacts], limit: int = TOP_N) -> list[TopFaq]:
    counts: Counter[str] = Counter()
    scores: dict[str, list[float]] = defaultdict(list)
    for t in turns:
        if t.outcome == "answer" and t.faq_id:
            counts[t.faq_id] += 1
            if t.score is not None:
                scores[t.faq_id].append(t.score)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    titles: dict[str, str] = {}
    if ranked:
        ids = [faq_id for faq_id, _ in ranked]
        rows = session.execute(select(Faq.id, Faq.question).where(Faq.id.in_(ids)))
        titles = {faq_id: question for faq_id, question in rows.tuples()}
    return [
        TopFaq(
            faq_id=faq_id,
            question=titles.get(faq_id),
            answers=n,
            mean_score=round(sum(scores[faq_id]) / len(scores[faq_id]), 4)
            if scores[faq_id]
            else None,
        )
        for faq_id, n in ranked
    ]


# Separates the two FAQ ids of a related click in a roll-up label (ids are slugs: never ">").
RELATED_PAIR_SEPARATOR = ">"


def related_figures(
    session: Session, offers: int, pairs: Counter[tuple[str, str]], limit: int = TOP_N
) -> RelatedFigures:
    """The figures from the counts, whichever path counted them (rows or roll-ups), so both
    rank and round the same way."""
    ranked = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:limit]
    titles: dict[str, str] = {}
    ids = sorted({faq_id for pair, _ in ranked for faq_id in pair})
    if ids:
        rows = session.execute(select(Faq.id, Faq.question).where(Faq.id.in_(ids)))
        titles = {faq_id: question for faq_id, question in rows.tuples()}
    clicks = sum(pairs.values())
    return RelatedFigures(
        offers=offers,
        clicks=clicks,
        click_rate=rate(clicks, offers),
        top_pairs=[
            RelatedPair(
                from_faq=source,
                from_question=titles.get(source),
                to_faq=target,
                to_question=titles.get(target),
                clicks=n,
            )
            for (source, target), n in ranked
        ],
    )


def related_from_turns(session: Session, turns: Sequence[TurnFacts]) -> RelatedFigures:
    """Related-FAQ offers and clicks of the period's turns: an answer turn offering buttons is
    one offer; an answer turn that came from pressing one is one click of (from, to)."""
    offers = sum(1 for t in turns if t.outcome == "answer" and t.related_offered > 0)
    pairs: Counter[tuple[str, str]] = Counter(
        (t.related_from, t.faq_id)
        for t in turns
        if t.outcome == "answer" and t.related_from and t.faq_id
    )
    return related_figures(session, offers, pairs)


def top_unanswered(session: Session, flt: MetricFilter, limit: int = TOP_N) -> list[Unanswered]:
    """The most frequent questions the bot could not answer well, grouped by wording.

    Source: the knowledge base's unanswered queue (it also holds handoff and thumbs-down
    questions, which the analytics turns do not show). The queue does not know which
    conversation a question came from, so under a location filter the questions are the
    location's fallback and clarify turns (source ``turns``). Both are counted in SQL by their
    stored wording (a year is ~1M queue rows, or 100,000 turns of one location). Neither counts
    a question an out-of-scope entry took: the service does not answer it by design.
    """
    if flt.location:
        return _turns_top(session, flt, limit)
    return _queue_top(session, flt, limit)


def _queue_rows(query, flt: MetricFilter):  # type: ignore[no-untyped-def]
    """``query`` narrowed to the queue rows of the period, channel and language (rows whose
    wording is empty, such as "???", are no question and were never counted; questions an
    out-of-scope entry took were handed off by design and are no gap)."""
    return _filtered(
        query.where(
            UnansweredQuestion.created_at >= flt.start_dt,
            UnansweredQuestion.created_at < flt.end_dt,
            UnansweredQuestion.wording != "",
            taken_by_an_entry(False),
        ),
        UnansweredQuestion,
        flt,
    )


def _codepoint_order(session: Session, column):  # type: ignore[no-untyped-def]
    """``column`` compared by code point on every backend, so ties rank the same on SQLite
    (BINARY already) and PostgreSQL (whose default collation is the locale's)."""
    return column.collate("C") if session.get_bind().dialect.name == "postgresql" else column


def _top_wordings(
    session: Session, narrowed: Callable[[Any], Any], wording: Any, when: Any, limit: int
) -> list[tuple[str, int, datetime]]:
    """(wording, count, last seen) of the most frequent wordings of the rows ``narrowed``
    selects, counted by the database: most asked first, then the most recently asked, then the
    wording in code-point order."""
    count = func.count().label("n")
    last_seen = func.max(when).label("last_seen")  # UtcDateTime
    ranked = (
        narrowed(select(wording, count, last_seen))
        .group_by(wording)
        .order_by(count.desc(), last_seen.desc(), _codepoint_order(session, wording))
        .limit(limit)
    )
    return [tuple(row) for row in session.execute(ranked)]  # type: ignore[misc]


def _queue_top(session: Session, flt: MetricFilter, limit: int) -> list[Unanswered]:
    """The queue's most frequent wordings (a year is ~1M rows; reading them into Python took
    seconds)."""
    q = UnansweredQuestion
    top = _top_wordings(
        session, lambda query: _queue_rows(query, flt), q.wording, q.created_at, limit
    )
    shown = _most_common_texts(session, flt, [row[0] for row in top])
    return [
        Unanswered(question=shown[key], count=n, last_seen=last.isoformat(), source="queue")
        for key, n, last in top
    ]


def out_of_scope_by_entry(session: Session, flt: MetricFilter) -> list[OutOfScope]:
    """How many questions each out-of-scope entry took in the period, most first: demand the
    agency sends elsewhere (airline bookings, passports, ...), which the top unanswered
    questions leave out because it is no gap in the knowledge base. From the unanswered queue
    (reason ``out_of_scope``, the entry in ``top_faq_id``), by channel and language; nothing
    under a location filter, since the queue does not know the conversation."""
    if flt.location:
        return []
    q = UnansweredQuestion
    count = func.count().label("n")
    query = _filtered(
        select(q.top_faq_id, count).where(
            q.created_at >= flt.start_dt,
            q.created_at < flt.end_dt,
            taken_by_an_entry(),
            q.top_faq_id.is_not(None),
        ),
        q,
        flt,
    ).group_by(q.top_faq_id)
    ranked = query.order_by(count.desc(), _codepoint_order(session, q.top_faq_id))
    return [OutOfScope(entry=entry, count=n) for entry, n in session.execute(ranked)]


def queue_figures(session: Session, flt: MetricFilter) -> tuple[list[Unanswered], list[OutOfScope]]:
    """The two figures read from the unanswered queue (one connection runs both alongside the
    roll-ups: analytics.alongside)."""
    return top_unanswered(session, flt), out_of_scope_by_entry(session, flt)


def _location_turns(query, flt: MetricFilter):  # type: ignore[no-untyped-def]
    """``query`` over turns narrowed to the unanswered ones (with a wording) of the period's
    conversations at the filter's location, channel and language."""
    return _filtered(
        query.join(AnalyticsConversation).where(
            AnalyticsConversation.started_at >= flt.start_dt,
            AnalyticsConversation.started_at < flt.end_dt,
            AnalyticsTurn.wording.is_not(None),
            AnalyticsTurn.wording != "",
        ),
        AnalyticsConversation,
        flt,
    )


def _turns_top(session: Session, flt: MetricFilter, limit: int) -> list[Unanswered]:
    """The location's most frequent unanswered wordings, ranked as the queue's."""
    t, wording = AnalyticsTurn, AnalyticsTurn.wording
    top = _top_wordings(
        session, lambda query: _location_turns(query, flt), wording, t.started_at, limit
    )
    typed = _location_turns(select(wording, AnalyticsTurn.text, AnalyticsTurn.started_at), flt)
    shown = _most_typed(session.execute(typed.where(wording.in_([row[0] for row in top]))))
    return [
        Unanswered(question=shown[key], count=n, last_seen=last.isoformat(), source="turns")
        for key, n, last in top
    ]


def _most_typed(rows: Iterable[tuple[str, str, datetime]]) -> dict[str, str]:
    """Per wording, the text typed most often (a tie: the one typed first), from (wording, text,
    time) rows (the times come with the index that answers the query; row ids would not)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    first: dict[tuple[str, str], datetime] = {}
    for key, typed, when in rows:
        counts[key][typed] += 1
        first[(key, typed)] = min(when, first.get((key, typed), when))
    return {
        key: min(texts, key=lambda t: (-texts[t], first[(key, t)])) for key, texts in counts.items()
    }


def _most_common_texts(session: Session, flt: MetricFilter, wordings: list[str]) -> dict[str, str]:
    """Per wording, the text citizens typed most often (a tie: the one asked first), read for
    the few wordings shown only."""
    if not wordings:
        return {}
    text, first_id = UnansweredQuestion.text, func.min(UnansweredQuestion.id)
    query = _queue_rows(
        select(UnansweredQuestion.wording, text, func.count(), first_id), flt
    ).where(UnansweredQuestion.wording.in_(wordings))
    best: dict[str, tuple[tuple[int, int], str]] = {}
    for key, typed, n, first in session.execute(query.group_by(UnansweredQuestion.wording, text)):
        rank = (-n, first)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, typed)
    return {key: typed for key, (_rank, typed) in best.items()}


@dataclass(frozen=True)
class FilterOptions:
    """Every channel, language and location seen, for the dashboard's filter menus."""

    channels: list[str]
    languages: list[str]
    locations: list[str]


def filter_options(session: Session) -> FilterOptions:
    def seen(column) -> list[str]:  # type: ignore[no-untyped-def]
        return sorted(session.scalars(select(column).distinct()))

    return FilterOptions(
        channels=seen(AnalyticsConversation.channel),
        languages=seen(AnalyticsConversation.language),
        locations=seen(AnalyticsConversation.location),
    )


def period_fields(flt: MetricFilter) -> dict[str, Any]:
    """The Dashboard fields that say which period and filter it is, whichever path made it."""
    return {
        "start": flt.start.isoformat(),
        "end": flt.end.isoformat(),
        "days": flt.days,
        "time_zone": flt.zone,
        "channel": flt.channel,
        "language": flt.language,
        "location": flt.location,
    }


def exact_dashboard(session: Session, flt: MetricFilter, assumptions: Assumptions) -> Dashboard:
    """Every number of the dashboard from the period's conversation, turn and ticket rows:
    exact, and what small periods use (analytics.dashboard.compute_dashboard chooses)."""
    convs = load_conversations(session, flt)
    turns = load_turns(session, flt)
    tickets = load_tickets(session, flt, convs, assumptions.staffed)
    options = filter_options(session)
    reasons = Counter(c.handoff_reason or "unknown" for c in convs if c.handed_off)
    return Dashboard(
        **period_fields(flt),
        channels=options.channels,
        languages=options.languages,
        locations=options.locations,
        summary=summarise(convs, turns, tickets, flt.days, assumptions),
        daily=_daily(flt, convs, turns),
        handoff_reasons=dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        heatmap=heatmap(flt, convs),
        by_channel=_breakdown(lambda c: c.channel, convs, lambda t: t.channel, turns),
        by_language=_breakdown(lambda c: c.language, convs, lambda t: t.language, turns),
        by_location=_breakdown(lambda c: c.location, convs, lambda t: t.location, turns),
        top_faqs=top_faqs(session, turns),
        related=related_from_turns(session, turns),
        top_unanswered=top_unanswered(session, flt),
        out_of_scope=out_of_scope_by_entry(session, flt),
        by_agent=by_agent(tickets),
        by_team=by_team(tickets),
    )


def exact_summary(session: Session, flt: MetricFilter, assumptions: Assumptions) -> Summary:
    """Only the headline figures of :func:`exact_dashboard`, from the period's rows."""
    convs = load_conversations(session, flt)
    turns = load_turns(session, flt)
    tickets = load_tickets(session, flt, convs, assumptions.staffed)
    return summarise(convs, turns, tickets, flt.days, assumptions)


def conversation_records(session: Session, flt: MetricFilter) -> list[ConversationFacts]:
    """Per-conversation facts with their resolution (the per-conversation export)."""
    return load_conversations(session, flt)
