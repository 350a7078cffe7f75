"""A known set of conversations, as Rasa's event broker emits them, and every metric asserted
exactly. The same scenario seeds the dashboard's browser test and its screenshot.

Day 1 is Monday 2026-03-02, day 2 Tuesday 2026-03-03 (UTC). Bot response times (ms):
A 20, 50, 10 | B 40, 30, 15 | C 60, 25 (then a silent relay turn) | D 100 | E 80, 35 | A2 20.

Sentiment (VADER compound): C's relayed message -0.5994 and E's second -0.3612 are negative,
A's second session +0.6808 is positive, every other scored message 0.0.

Locations (the sample list is loaded first): A's page says ``den`` (both sessions: DEN); C names
"el aeropuerto de Miami" (MIA); D's channel is configured for ORD; E's client sends a code that
is not in the list (``ZZZ``) and B names none: both unknown.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import ingest as ingest_mod
from analytics import metrics, tables
from analytics.dashboard import compute_dashboard
from analytics.ingest import ingest
from analytics.metrics import Assumptions, MetricFilter
from analytics.models import AnalyticsConversation, AnalyticsEvent, AnalyticsTurn
from analytics.report import render_markdown
from askagency.bot_messages import MessageType
from knowledge_base.locations import store as location_store

DAY1 = datetime(2026, 3, 2, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
MODEL = {"model_id": "m1", "assistant_id": "askagency"}
SCENARIO_FILTER = MetricFilter(DAY1.date(), DAY2.date())


class Conversation:
    """Builds one sender's events in Rasa 3.6's broker format, at controlled times."""

    def __init__(self, sender: str, start: datetime, location: str | None = None) -> None:
        self.sender = sender
        self.now = start.timestamp()
        self.events: list[dict[str, Any]] = []
        self.location = location  # the ``location`` metadata of every citizen message

    def _add(self, event: dict[str, Any]) -> None:
        self.events.append({"sender_id": self.sender, "timestamp": self.now, **event})

    def wait(self, seconds: float) -> Conversation:
        self.now += seconds
        return self

    def session_start(self) -> Conversation:
        self._add({"event": "action", "metadata": MODEL, "name": "action_session_start"})
        self._add({"event": "session_started", "metadata": MODEL})
        self._add({"event": "action", "metadata": MODEL, "name": "action_listen"})
        return self.wait(0.01)

    def user(
        self, text: str, intent: str, channel: str = "rest", language: str | None = "en"
    ) -> Conversation:
        metadata: dict[str, Any] = {"language": language} if language else {}
        if self.location:
            metadata["location"] = self.location
        self._add(
            {
                "event": "user",
                "metadata": {**metadata, **MODEL},
                "text": text,
                "parse_data": {
                    "intent": {"name": intent, "confidence": 0.99},
                    "entities": [],
                    "text": text,
                    "metadata": metadata,
                },
                "input_channel": channel,
                "message_id": f"{self.sender}-{len(self.events)}",
            }
        )
        return self

    def bot(self, after_ms: float, custom: dict[str, Any], text: str = "…") -> Conversation:
        self.now += after_ms / 1000.0
        self._add({"event": "action", "metadata": MODEL, "name": "action_answer_faq"})
        self._add(
            {
                "event": "bot",
                "metadata": MODEL,
                "text": text,
                "data": {"buttons": None, "custom": custom},
            }
        )
        self._add({"event": "action", "metadata": MODEL, "name": "action_listen"})
        return self.wait(1.0)


def answer(faq_id: str, score: float, language: str = "en") -> dict[str, Any]:
    return {
        "type": MessageType.FAQ_ANSWER,
        "faq_id": faq_id,
        "score": score,
        "source_url": f"https://example.gov/{faq_id}",
        "language": language,
    }


def scenario_events() -> list[dict[str, Any]]:
    """Six conversations (A, B, C on day 1; D, E and A's second session on day 2)."""
    a = Conversation("citizen-a", DAY1 + timedelta(hours=10), location="den").session_start()
    a.user("hello", "greet").bot(20, {"type": MessageType.GREETING})
    a.user("Can I bring liquids?", "ask_question").bot(50, answer("liquids", 0.82))
    a.user("/feedback_good", "feedback_good").bot(10, {"type": "feedback_thanks"})
    # A comes back the next morning: Rasa starts a new session for the same sender.
    a.now = (DAY2 + timedelta(hours=9)).timestamp()
    a.session_start().user("hi again, thanks for the help yesterday", "greet").bot(
        20, {"type": MessageType.GREETING}
    )

    b = Conversation("citizen-b", DAY1 + timedelta(hours=10, minutes=5)).session_start()
    b.user("laptop rules", "ask_question").bot(
        40, {"type": MessageType.CLARIFY, "options": [{"faq_id": "laptops"}, {"faq_id": "tablets"}]}
    )
    b.user('/choose_faq{"faq_id": "laptops"}', "choose_faq").bot(30, answer("laptops", 0.7))
    b.user("/feedback_bad", "feedback_bad").bot(15, {"type": "feedback_sorry"})

    c = Conversation("+15551234567", DAY1 + timedelta(hours=10, minutes=30)).session_start()
    c.user(
        "mi correo es ana@example.com, ¿puedo llevar un dron en el aeropuerto de Miami?",
        "ask_question",
        "socketio",
        "es",
    ).bot(60, {"type": MessageType.FALLBACK, "reason": "low_confidence", "score": 0.21})
    c.user("/ask_human", "ask_human", "socketio", "es").bot(
        25,
        {"type": MessageType.HANDOFF, "ticket_id": 1, "reason": "requested", "after_hours": False},
    )
    handoff_ts = c.now - 1.0
    # Relayed to the agent (the bot stays silent), and negative.
    c.user("¿hola? llevo una hora esperando, qué desastre", "greet", "socketio", "es")
    c.now = handoff_ts + 120
    c._add(
        {
            "event": "user",
            "text": "EXTERNAL: agent_reply",
            "parse_data": {},
            "metadata": {"is_external": True},
        }
    )
    c._add(
        {
            "event": "bot",
            "text": "Sí, con condiciones.",
            "data": {"custom": {"type": MessageType.AGENT_MESSAGE, "agent": "Ana", "ticket_id": 1}},
        }
    )
    c.now = handoff_ts + 600
    c._add(
        {
            "event": "bot",
            "text": "…",
            "data": {"custom": {"type": MessageType.HANDOFF_CLOSED, "resolved": True}},
        }
    )

    d = Conversation("citizen-d", DAY2 + timedelta(hours=22), location="ORD").session_start()
    d.user("liquids in carry on", "ask_question").bot(100, answer("liquids", 0.9))

    e = Conversation(
        "citizen-e", DAY2 + timedelta(hours=22, minutes=10), location="ZZZ"
    ).session_start()
    e.user("my phone is 555-234-5678 why was I flagged", "ask_question").bot(
        80, {"type": MessageType.FALLBACK, "reason": "low_confidence", "score": 0.1}
    )
    e.user("why was I flagged? this line is ridiculous", "ask_question").bot(
        35, {"type": MessageType.HANDOFF, "ticket_id": 2, "reason": "repeated_fallback"}
    )
    handoff_e = e.now - 1.0
    e.now = handoff_e + 300
    e._add({"event": "bot", "data": {"custom": {"type": MessageType.AGENT_MESSAGE, "agent": "Bo"}}})
    e.now = handoff_e + 3600
    e._add(
        {
            "event": "bot",
            "data": {"custom": {"type": MessageType.HANDOFF_CLOSED, "resolved": False}},
        }
    )

    # A sender who opened the widget and never wrote: not a conversation.
    idle = Conversation("citizen-idle", DAY2 + timedelta(hours=12)).session_start()
    return [ev for conv in (a, b, c, d, e, idle) for ev in conv.events]


def seed_tickets(session: Session) -> None:
    """Ticket rows for the two handoffs with known human timings."""
    from handoff.models import Ticket

    c_created = DAY1 + timedelta(hours=10, minutes=31)
    e_created = DAY2 + timedelta(hours=22, minutes=11)
    session.add_all(
        [
            Ticket(
                id=1,
                conversation_id="+15551234567",
                channel="socketio",
                language="es",
                reason="requested",
                status="closed_resolved",
                created_at=c_created,
                first_agent_reply_at=c_created + timedelta(seconds=120),
                closed_at=c_created + timedelta(seconds=600),
            ),
            Ticket(
                id=2,
                conversation_id="citizen-e",
                channel="rest",
                language="en",
                reason="repeated_fallback",
                status="closed_unresolved",
                created_at=e_created,
                first_agent_reply_at=e_created + timedelta(seconds=300),
                closed_at=e_created + timedelta(seconds=3600),
            ),
        ]
    )
    session.flush()


SAMPLE_LOCATIONS = Path(__file__).parents[3] / "knowledge_base" / "sample" / "locations.csv"


def seed_locations(session: Session) -> None:
    """The sample location list (ATL, DEN, JFK, LAX, MIA, ORD), as `kb load-sample` loads it."""
    items = location_store.read_csv(SAMPLE_LOCATIONS.read_text(encoding="utf-8"))
    location_store.import_items(session, items, "test")
    session.flush()


def seed(session: Session, with_tickets: bool = True) -> None:
    seed_locations(session)
    ingest(session, [(str(i), e) for i, e in enumerate(scenario_events())], "test")
    if with_tickets:
        seed_tickets(session)
    session.commit()


RESPONSES = [20, 50, 10, 40, 30, 15, 60, 25, 100, 80, 35, 20]


def assert_scenario_summary(d: metrics.Dashboard) -> None:
    """Every headline number of the scenario; shared with the end-to-end and browser tests."""
    s = d.summary
    assert s.conversations == 6
    assert s.user_messages == 13
    assert (s.contained, s.handoffs) == (4, 2)
    assert s.containment_rate == pytest.approx(4 / 6)
    assert s.handoff_rate == pytest.approx(2 / 6)
    assert (s.bot_resolved, s.bot_resolved_confirmed) == (2, 1)
    assert s.bot_resolution_rate == pytest.approx(2 / 6)
    assert (s.agent_resolved, s.unresolved) == (1, 3)
    assert s.agent_resolution_rate == pytest.approx(0.5)
    assert s.bot_response_ms.count == 12
    assert s.bot_response_ms.p50 == pytest.approx(32.5, abs=1e-3)
    assert s.bot_response_ms.p90 == pytest.approx(78.0, abs=1e-3)
    assert s.bot_response_ms.p99 == pytest.approx(97.8, abs=1e-3)
    assert (s.feedback_good, s.feedback_bad, s.csat) == (1, 1, 0.5)
    # Only the 2 conversations the bot resolved count, not the 4 without a handoff (one is
    # greeting-only, one ended with a thumbs-down).
    assert s.mission.resolved_conversations == 2
    assert s.mission.staff_hours_saved == pytest.approx(0.2)
    assert s.mission.fte_equivalent == pytest.approx(round(0.2 / (37.5 * 2 / 7), 4))
    assert s.mission.method.startswith("Counts only conversations the bot resolved")
    assert (s.mission.cost_saved, s.mission.money()) == (None, None)
    assert "6 minutes" in s.mission.assumption and "37.5 hours a week" in s.mission.assumption


def assert_scenario_sentiment(d: metrics.Dashboard) -> None:
    """Messages scored when conversations are built, through whichever consumer built them."""
    m = d.summary.sentiment
    # A 2 (the feedback press is not text), A2 1, B 1 (two presses), C 2, D 1, E 2.
    assert (m.scored_messages, m.negative_messages) == (9, 2)
    assert (m.scored_conversations, m.negative_conversations) == (6, 2)
    assert m.negative_rate == pytest.approx(0.3333)
    assert m.start_mean == pytest.approx(round(0.6808 / 6, 4))
    assert m.end_mean == pytest.approx(round((0.6808 - 0.5994 - 0.3612) / 6, 4))
    assert (m.improved, m.worsened) == (0, 2)  # C and E ended worse than they began
    # Function words ("this", "hola") and feelings ("ridiculous", "desastre") are not topics.
    assert m.negative_topics == ["esperando", "flagged", "hora", "line"]


def assert_scenario_human_times(d: metrics.Dashboard) -> None:
    s = d.summary
    assert s.tickets == 2
    assert (s.human_first_response_s.p50, s.human_first_response_s.p90) == (210.0, 282.0)
    # Always staffed by default: staffed-hours first response equals the wall-clock one.
    assert s.human_first_response_staffed_s.p50 == 210.0
    assert (s.time_to_close_s.p50, s.time_to_close_s.p90) == (2100.0, 3300.0)


@pytest.fixture
def seeded(db_session: Session) -> Session:
    seed(db_session)
    return db_session


def dashboard(session: Session, flt: MetricFilter = SCENARIO_FILTER) -> metrics.Dashboard:
    return compute_dashboard(session, flt, Assumptions(6.0, 37.5))


def test_every_headline_metric(seeded: Session) -> None:
    d = dashboard(seeded)
    assert_scenario_summary(d)
    assert_scenario_human_times(d)
    assert_scenario_sentiment(d)
    assert d.handoff_reasons == {"repeated_fallback": 1, "requested": 1}
    assert d.channels == ["rest", "socketio"] and d.languages == ["en", "es"]


def test_series_heatmap_and_breakdowns(seeded: Session) -> None:
    d = dashboard(seeded)
    day1, day2 = d.daily
    assert (day1.day, day1.conversations, day1.by_channel) == (
        "2026-03-02",
        3,
        {"rest": 2, "socketio": 1},
    )
    assert (day2.conversations, day2.by_channel) == (3, {"rest": 3})
    assert day1.resolution == {"bot": 1, "agent": 1, "unresolved": 1}
    assert day2.resolution == {"bot": 1, "agent": 0, "unresolved": 2}
    assert day1.handoffs_by_reason == {"requested": 1}
    assert day2.handoffs_by_reason == {"repeated_fallback": 1}
    # Day 1 responses: 20 50 10 40 30 15 60 25 -> median 27.5; day 2: 100 80 35 20 -> 57.5.
    assert (day1.response_p50_ms, day2.response_p50_ms) == (27.5, 57.5)
    assert d.heatmap[0][10] == 3 and d.heatmap[1][22] == 2 and d.heatmap[1][9] == 1
    assert sum(map(sum, d.heatmap)) == 6
    by_channel = {b.key: b for b in d.by_channel}
    assert by_channel["rest"].conversations == 5
    assert by_channel["socketio"].handoff_rate == 1.0
    assert by_channel["socketio"].response_p50_ms == 42.5  # 60 and 25
    by_language = {b.key: b for b in d.by_language}
    assert by_language["es"].conversations == 1 and by_language["en"].conversations == 5
    by_location = {b.key: b.conversations for b in d.by_location}
    assert by_location == {"DEN": 2, "MIA": 1, "ORD": 1, "unknown": 2}
    assert d.locations == ["DEN", "MIA", "ORD", "unknown"]
    negative = {b.key: b.negative_rate for b in d.by_location}
    assert negative == {"DEN": 0.0, "MIA": 1.0, "ORD": 0.0, "unknown": 0.5}
    turns = metrics.load_turns(seeded, SCENARIO_FILTER)
    assert [t.sentiment for t in turns if t.sentiment] == [-0.5994, 0.6808, -0.3612]


def test_top_faqs_and_unanswered(seeded: Session) -> None:
    d = dashboard(seeded)
    assert [(f.faq_id, f.answers, f.mean_score) for f in d.top_faqs] == [
        ("liquids", 2, 0.86),
        ("laptops", 1, 0.7),
    ]
    # The queue table exists (empty here): the dashboard shows the queue, not guesses.
    assert d.top_unanswered == []


def test_unanswered_from_the_queue(seeded: Session) -> None:
    from knowledge_base.unanswered import record_unanswered

    for text in ("Can I bring a drone?", "can i bring a drone", "Pets in cabin?"):
        record_unanswered(seeded, text, "low_confidence", now=DAY1 + timedelta(hours=11))
    record_unanswered(seeded, "Out of range", "low_confidence", now=DAY1 - timedelta(days=3))
    seeded.commit()
    d = dashboard(seeded)
    assert [(u.question, u.count, u.source) for u in d.top_unanswered] == [
        ("Can I bring a drone?", 2, "queue"),
        ("Pets in cabin?", 1, "queue"),
    ]
    assert d.out_of_scope == []


def test_what_out_of_scope_entries_took_is_counted_by_entry(seeded: Session) -> None:
    """Questions an out-of-scope entry took are not unanswered questions (no gap) but demand the
    agency sends elsewhere: counted by entry, most first, by channel and language; nothing under
    a location filter (the queue does not know the conversation)."""
    from knowledge_base.unanswered import record_unanswered

    asked = DAY1 + timedelta(hours=11)
    for text, entry, channel, language in [
        ("cancel my flight", "out-of-scope-bookings", "rest", "en"),
        ("refund my ticket", "out-of-scope-bookings", "socketio", "en"),
        ("cancelar mi vuelo", "out-of-scope-bookings-es", "rest", "es"),
        ("renew my passport", "out-of-scope-passports", "rest", "en"),
    ]:
        record_unanswered(
            seeded,
            text,
            "out_of_scope",
            language=language,
            channel=channel,
            top_faq_id=entry,
            now=asked,
        )
    record_unanswered(
        seeded, "cancel my flight", "out_of_scope", top_faq_id="x", now=DAY1 - timedelta(days=3)
    )
    seeded.commit()
    d = dashboard(seeded)
    assert [(o.entry, o.count) for o in d.out_of_scope] == [
        ("out-of-scope-bookings", 2),
        ("out-of-scope-bookings-es", 1),
        ("out-of-scope-passports", 1),
    ]
    assert d.top_unanswered == []  # none of them is a gap
    rest = dashboard(seeded, MetricFilter(DAY1.date(), DAY2.date(), channel="rest"))
    assert [(o.entry, o.count) for o in rest.out_of_scope] == [
        ("out-of-scope-bookings", 1),
        ("out-of-scope-bookings-es", 1),
        ("out-of-scope-passports", 1),
    ]
    spanish = dashboard(seeded, MetricFilter(DAY1.date(), DAY2.date(), language="es"))
    assert [(o.entry, o.count) for o in spanish.out_of_scope] == [("out-of-scope-bookings-es", 1)]
    denver = dashboard(seeded, MetricFilter(DAY1.date(), DAY2.date(), location="DEN"))
    assert denver.out_of_scope == []
    table = tables.all_tables(d)["out_of_scope"]
    assert table.to_csv().splitlines()[:2] == ["entry,count", "out-of-scope-bookings,2"]


def test_filters(seeded: Session) -> None:
    only_sockets = dashboard(seeded, MetricFilter(DAY1.date(), DAY2.date(), channel="socketio"))
    assert only_sockets.summary.conversations == 1
    assert only_sockets.summary.agent_resolved == 1
    assert only_sockets.summary.tickets == 1  # ticket 1 is a socketio ticket
    spanish = dashboard(seeded, MetricFilter(DAY1.date(), DAY2.date(), language="es"))
    assert spanish.summary.conversations == 1
    day2 = dashboard(seeded, MetricFilter(DAY2.date(), DAY2.date()))
    assert day2.summary.conversations == 3
    assert day2.summary.bot_response_ms.p50 == 57.5
    # one of day 2's two conversations without a handoff is resolved by the bot: 6 min
    assert day2.summary.mission.fte_equivalent == pytest.approx(round(0.1 / (37.5 / 7), 4))
    day1 = dashboard(seeded, MetricFilter(DAY1.date() - timedelta(days=9), DAY1.date()))
    assert day1.summary.conversations == 3 and day1.days == 10
    miami = dashboard(seeded, MetricFilter(DAY1.date(), DAY2.date(), location="MIA"))
    assert (miami.summary.conversations, miami.summary.agent_resolved) == (1, 1)
    assert miami.summary.tickets == 1  # ticket 1 was opened from the Miami conversation
    assert miami.summary.human_first_response_s.p50 == 120.0
    unknown = dashboard(seeded, MetricFilter(DAY1.date(), DAY2.date(), location="unknown"))
    assert unknown.summary.conversations == 2  # B (named none) and E (a code not in the list)
    assert (unknown.summary.tickets, unknown.summary.handoffs) == (1, 1)
    denver = dashboard(seeded, MetricFilter(DAY1.date(), DAY2.date(), location="DEN"))
    assert (denver.summary.conversations, denver.summary.bot_resolved) == (2, 1)
    assert denver.summary.tickets == 0
    # The unanswered queue knows no conversation: under a location filter, the location's
    # fallback and clarify turns are the unanswered questions.
    assert [(u.question[:12], u.source) for u in unknown.top_unanswered] == [
        ("my phone is ", "turns"),
        ("laptop rules", "turns"),
    ]
    with pytest.raises(metrics.FilterError, match="not a location code"):
        MetricFilter.parse(None, None, location="DEN; drop table")
    nothing = dashboard(seeded, MetricFilter(DAY1.date() - timedelta(days=9), DAY1.date(), "x"))
    assert nothing.summary.conversations == 0
    assert nothing.summary.containment_rate is None and nothing.summary.csat is None
    assert nothing.summary.bot_response_ms.p50 is None


def test_human_times_fall_back_to_handoff_events_without_ticket_rows(
    db_session: Session,
) -> None:
    seed(db_session, with_tickets=False)
    d = dashboard(db_session)
    assert_scenario_summary(d)  # resolution uses the handoff_closed events instead
    s = d.summary
    assert s.tickets == 2
    assert (s.human_first_response_s.p50, s.time_to_close_s.p50) == (210.0, 2100.0)


def test_tables_and_csv(seeded: Session) -> None:
    d = dashboard(seeded)
    all_tables = tables.all_tables(d)
    assert set(all_tables) == {
        "headline",
        "volume_by_channel",
        "response_times",
        "resolution_mix",
        "handoffs_by_reason",
        "by_agent",
        "by_team",
        "hour_of_day",
        "by_channel",
        "by_language",
        "by_location",
        "top_faqs",
        "related_summary",
        "related_pairs",
        "top_unanswered",
        "out_of_scope",
    }
    assert all_tables["volume_by_channel"].to_csv().splitlines() == [
        "day,rest,socketio,total",
        "2026-03-02,2,1,3",
        "2026-03-03,3,0,3",
    ]
    records = metrics.conversation_records(seeded, SCENARIO_FILTER)
    csv_text = tables.conversations_table(records).to_csv()
    assert "+15551234567" not in csv_text and "ana@example.com" not in csv_text
    assert "555-234-5678" not in csv_text
    assert "[EMAIL]" in csv_text
    lines = csv_text.splitlines()
    assert len(lines) == 7 and lines[0].startswith("conversation,started_at")
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    resolutions = sorted(row["resolution"] for row in rows)
    assert resolutions == ["agent", "bot", "bot", "unresolved", "unresolved", "unresolved"]
    locations = sorted(row["location"] for row in rows)
    assert locations == ["DEN", "DEN", "MIA", "ORD", "unknown", "unknown"]


# --- idempotency ----------------------------------------------------------------------------


def snapshot(session: Session) -> list[tuple[Any, ...]]:
    convs = session.execute(
        select(
            AnalyticsConversation.conversation_key,
            AnalyticsConversation.user_messages,
            AnalyticsConversation.answers,
            AnalyticsConversation.handed_off,
            AnalyticsConversation.feedback,
            AnalyticsConversation.closed_resolved,
        ).order_by(AnalyticsConversation.conversation_key)
    ).all()
    turns = session.execute(
        select(
            AnalyticsConversation.conversation_key,
            AnalyticsTurn.seq,
            AnalyticsTurn.outcome,
            AnalyticsTurn.response_ms,
            AnalyticsTurn.faq_id,
        )
        .join(AnalyticsConversation)
        .order_by(AnalyticsConversation.conversation_key, AnalyticsTurn.seq)
    ).all()
    events = session.scalar(select(func.count()).select_from(AnalyticsEvent))
    return [*map(tuple, convs), *map(tuple, turns), (events,)]


def test_replaying_everything_twice_changes_nothing(seeded: Session) -> None:
    before = snapshot(seeded)
    before_dashboard = dashboard(seeded).model_dump()
    again = ingest(seeded, [(None, json.dumps(e)) for e in scenario_events()], "replay")
    seeded.commit()
    assert again.stored == 0 and again.conversations_rebuilt == 0
    assert again.duplicates == again.received - again.ignored
    assert snapshot(seeded) == before
    assert dashboard(seeded).model_dump() == before_dashboard


@pytest.mark.parametrize("batch", [1, 7, 50])
def test_batches_and_order_do_not_matter(db_session: Session, batch: int) -> None:
    events = scenario_events()
    # Batches may split a turn (user event here, its bot reply in the next batch) anywhere.
    items = [(str(i), e) for i, e in enumerate(events)]
    for start in range(0, len(items), batch):
        ingest(db_session, items[start : start + batch], "batches")
    db_session.commit()
    d = dashboard(db_session)
    assert d.summary.conversations == 6
    assert d.summary.bot_response_ms.p50 == pytest.approx(32.5)
    assert sorted(RESPONSES) == sorted(
        t.response_ms
        for t in db_session.scalars(select(AnalyticsTurn))
        if t.response_ms is not None
    )


def test_late_events_rebuild_the_conversation(db_session: Session) -> None:
    events = scenario_events()
    feedback_index = next(i for i, e in enumerate(events) if e.get("text") == "/feedback_good")
    held_back = events[feedback_index : feedback_index + 4]
    rest = events[:feedback_index] + events[feedback_index + 4 :]
    ingest(db_session, [(None, e) for e in rest], "late")
    assert dashboard(db_session).summary.feedback_good == 0
    ingest(db_session, [(None, e) for e in held_back], "late")
    db_session.commit()
    assert_scenario_summary(dashboard(db_session))


def test_module_constants_agree_with_models() -> None:
    assert {"answer", "clarify", "fallback"} == ingest_mod.QUESTION_OUTCOMES


def test_a_question_asked_again_is_not_resolved_by_the_bot(db_session: Session) -> None:
    """The same FAQ answered twice means the first answer did not settle it: that conversation
    earns no staff hours; two different FAQs answered is two questions settled."""
    again = Conversation("citizen-again", DAY1 + timedelta(hours=11)).session_start()
    again.user("can I bring liquids", "ask_question").bot(30, answer("liquids", 0.8))
    again.user("so how much liquid can I take", "ask_question").bot(30, answer("liquids", 0.8))
    two = Conversation("citizen-two", DAY1 + timedelta(hours=12)).session_start()
    two.user("can I bring liquids", "ask_question").bot(30, answer("liquids", 0.8))
    two.user("and my laptop?", "ask_question").bot(30, answer("laptops", 0.8))
    events = again.events + two.events
    ingest(db_session, [(str(i), e) for i, e in enumerate(events)], "test")
    db_session.commit()
    rows = {
        c.sender_id: c.repeated_answers
        for c in db_session.scalars(select(AnalyticsConversation)).all()
    }
    assert rows == {"citizen-again": 1, "citizen-two": 0}
    s = dashboard(db_session).summary
    assert (s.contained, s.bot_resolved, s.unresolved) == (2, 1, 1)
    assert s.mission.resolved_conversations == 1
    assert s.mission.staff_hours_saved == pytest.approx(0.1)


def test_cost_per_contact_gives_a_money_figure(seeded: Session) -> None:
    d = compute_dashboard(seeded, SCENARIO_FILTER, Assumptions(6.0, 37.5, 12.5, "EUR"))
    assert (d.summary.mission.cost_saved, d.summary.mission.money()) == (25.0, "25.00 EUR")
    markdown = render_markdown(d, {})
    assert "0.2 staff hours saved, 0.02 FTE equivalent, 25.00 EUR of staff time." in markdown
    with pytest.raises(metrics.FilterError, match="cost per contact"):
        compute_dashboard(seeded, SCENARIO_FILTER, Assumptions(6.0, 37.5, cost_per_contact=-1))


def test_days_and_hours_are_counted_on_the_agencys_clock(db_session: Session) -> None:
    """A question at 02:30 UTC on Tuesday is Monday 21:30 in New York: the agency's day and
    heat-map cell, not UTC's (issue 22: days in the agency time zone)."""
    late = Conversation("citizen-late", datetime(2026, 3, 3, 2, 30, tzinfo=UTC)).session_start()
    late.user("can I bring liquids", "ask_question").bot(30, answer("liquids", 0.8))
    ingest(db_session, [(str(i), e) for i, e in enumerate(late.events)], "test")
    db_session.commit()

    monday_utc = MetricFilter(DAY1.date(), DAY1.date())
    assert (
        compute_dashboard(db_session, monday_utc, Assumptions(6.0, 37.5)).summary.conversations == 0
    )
    monday_ny = MetricFilter.parse("2026-03-02", "2026-03-02", zone="America/New_York")
    ny = compute_dashboard(db_session, monday_ny, Assumptions(6.0, 37.5))
    assert (ny.summary.conversations, ny.daily[0].conversations) == (1, 1)
    assert ny.time_zone == "America/New_York"
    assert ny.heatmap[0][21] == 1  # Monday, 21:00-22:00 in New York (UTC-5 in early March)
    assert sum(map(sum, ny.heatmap)) == 1
    both_utc = compute_dashboard(db_session, SCENARIO_FILTER, Assumptions(6.0, 37.5))
    assert both_utc.heatmap[1][2] == 1 and both_utc.time_zone == "UTC"
    assert "(1 days, America/New_York)" in render_markdown(ny, {})

    # Daylight saving: New York's 2026-03-08 has 23 hours, and the filter's bounds know it.
    spring = MetricFilter.parse("2026-03-08", "2026-03-08", zone="America/New_York")
    assert spring.end_dt.astimezone(UTC) - spring.start_dt.astimezone(UTC) == timedelta(hours=23)
    with pytest.raises(metrics.FilterError, match="unknown time zone 'Mars/Olympus'"):
        MetricFilter.parse(None, None, zone="Mars/Olympus")


def test_first_response_in_staffed_hours_and_per_agent(seeded: Session) -> None:
    """Ticket 1 (Monday 10:31 UTC, answered in 120 s) was inside staffed hours; ticket 2
    (Tuesday 22:11 UTC, answered in 300 s) was after closing, so it waited 0 s of staffed
    time. Supervisors see each agent's tickets (issue 22, item 5)."""
    from askagency.staff import User
    from handoff.hours import build_hours
    from handoff.models import Ticket

    dana = User(username="dana", display_name="Dana", password_hash="x", role="agent")
    seeded.add(dana)
    seeded.flush()
    seeded.get(Ticket, 1).assigned_agent_id = dana.id
    seeded.flush()

    staffed = build_hours("UTC", "mon-fri 09:00-17:00")
    d = compute_dashboard(seeded, SCENARIO_FILTER, Assumptions(6.0, 37.5, staffed=staffed))
    s = d.summary
    assert (s.human_first_response_s.p50, s.human_first_response_staffed_s.p50) == (210.0, 60.0)
    assert [a.model_dump() for a in d.by_agent] == [
        {
            "agent": "dana",
            "tickets": 1,
            "replied": 1,
            "first_response_p50_s": 120.0,
            "first_response_staffed_p50_s": 120.0,
            "resolved": 1,
            "resolution_rate": 1.0,
        },
        {
            "agent": "unassigned",
            "tickets": 1,
            "replied": 1,
            "first_response_p50_s": 300.0,
            "first_response_staffed_p50_s": 0.0,
            "resolved": 0,
            "resolution_rate": 0.0,
        },
    ]
    by_agent = tables.all_tables(d)["by_agent"]
    assert by_agent.rows[0][:3] == ("dana", 1, 1)


def test_handoffs_per_team(seeded: Session) -> None:
    """Supervisors read figures per team (issue 22, item 5): a ticket counts under its agent's
    team today; an agent without a team under "no team"; a ticket nobody took, "unassigned"."""
    from askagency.staff import User
    from handoff.models import Ticket

    dana = User(username="dana", display_name="Dana", password_hash="x", role="agent", team="DEN")
    eli = User(username="eli", display_name="Eli", password_hash="x", role="agent")
    seeded.add_all([dana, eli])
    seeded.flush()
    seeded.get(Ticket, 1).assigned_agent_id = dana.id
    seeded.flush()

    d = compute_dashboard(seeded, SCENARIO_FILTER, Assumptions(6.0, 37.5))
    assert [(t.team, t.tickets, t.replied, t.first_response_p50_s) for t in d.by_team] == [
        ("DEN", 1, 1, 120.0),
        ("unassigned", 1, 1, 300.0),
    ]

    # Moving the ticket to an agent without a team moves it to "no team"; renaming the team
    # moves the history with the person.
    seeded.get(Ticket, 2).assigned_agent_id = eli.id
    dana.team = "Denver"
    seeded.flush()
    d = compute_dashboard(seeded, SCENARIO_FILTER, Assumptions(6.0, 37.5))
    assert [(t.team, t.tickets, t.resolved) for t in d.by_team] == [
        ("Denver", 1, 1),
        ("no team", 1, 0),
    ]
    table = tables.all_tables(d)["by_team"]
    assert table.columns[0] == "team"
    assert table.rows[1][:2] == ("no team", 1)
