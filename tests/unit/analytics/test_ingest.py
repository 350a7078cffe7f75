"""Event parsing, rejected events, turn building, and the SQL-broker consumer: checkpointed in
the same transaction as the rows, so crashes and restarts neither lose nor double events."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from analytics import ingest as ingest_mod
from analytics.ingest import EventError, build_conversations, event_key, ingest, parse_event
from analytics.models import (
    AnalyticsCheckpoint,
    AnalyticsConversation,
    AnalyticsEvent,
    AnalyticsRejectedEvent,
    AnalyticsTurn,
)
from analytics.sources import SourceUnavailable, SqlEventSource, _safe_url
from askagency.bot_messages import MessageType
from askagency.config import PROJECT_ROOT, Settings
from askagency.db import make_engine, session_scope
from askagency.launcher import http_ok
from askagency.ports import free_port
from tests.unit.analytics.test_scenario import RESPONSES, scenario_events, seed_locations


def user_event(**extra: Any) -> dict[str, Any]:
    return {
        "sender_id": "s1",
        "event": "user",
        "timestamp": 1000.5,
        "text": "My email is jo@example.org, can I fly?",
        "parse_data": {"intent": {"name": "ask_question", "confidence": 0.9}},
        "input_channel": "rest",
        "metadata": {"language": "es-MX", "model_id": "x"},
        **extra,
    }


def test_user_event_is_parsed_and_redacted() -> None:
    event = parse_event(json.dumps(user_event()))
    assert event is not None
    assert (event.kind, event.sender_id, event.ts) == ("user", "s1", 1000.5)
    assert (event.intent, event.channel, event.language) == ("ask_question", "rest", "es")
    assert event.text == "My email is [EMAIL], can I fly?"


def test_bot_event_keeps_custom_metadata() -> None:
    custom = {"type": MessageType.FAQ_ANSWER, "faq_id": "liquids", "score": 0.8, "language": "fr"}
    event = parse_event(
        {"sender_id": "s1", "event": "bot", "timestamp": 2, "data": {"custom": custom}}
    )
    assert event is not None and event.custom == custom and event.language == "fr"


def test_event_key_ignores_key_order_but_not_content() -> None:
    a = {"sender_id": "s", "event": "user", "timestamp": 1.0, "text": "x"}
    b = dict(reversed(list(a.items())))
    assert event_key(a) == event_key(b)
    assert event_key(a) != event_key({**a, "timestamp": 1.000001})


def test_irrelevant_and_external_events() -> None:
    assert parse_event({"sender_id": "s", "event": "action", "timestamp": 1, "name": "x"}) is None
    assert parse_event({"sender_id": "s", "event": "slot", "timestamp": 1}) is None
    # Rasa's own external event (UserUttered.create_external): prefix AND is_external flag.
    external = parse_event(user_event(text="EXTERNAL: agent_reply", metadata={"is_external": True}))
    assert external is not None and external.kind == "external"
    # L7: a citizen typing the prefix (or sending the flag) is still counted as a citizen.
    for typed in (
        user_event(text="EXTERNAL: abusive text"),
        user_event(text="hidden", metadata={"is_external": True}),
    ):
        parsed = parse_event(typed)
        assert parsed is not None and parsed.kind == "user"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\xfe not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"event": "user", "timestamp": 1}', "sender_id"),
        ('{"sender_id": "s", "timestamp": 1}', "'event'"),
        ('{"sender_id": "s", "event": "user"}', "timestamp"),
        ('{"sender_id": "s", "event": "user", "timestamp": true}', "timestamp"),
        ('{"sender_id": "s", "event": "user", "timestamp": "noon"}', "timestamp"),
    ],
)
def test_malformed_events_raise_clear_errors(payload: str | bytes, message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_event(payload)


def test_every_field_is_cut_to_what_its_column_holds() -> None:
    event = parse_event(
        user_event(
            text="hi\u0000 there",
            input_channel="\u0000" + "c" * 80,
            parse_data={"intent": {"name": "i" * 300}},
        )
    )
    assert event is not None and event.text == "hi there"
    assert event.channel == "c" * 64 and event.intent == "i" * 128
    bot = parse_event(
        {
            "sender_id": "s1",
            "event": "bot",
            "timestamp": 2,
            "text": "an agent quoting 202-555-0143",
            "data": {
                "custom": {
                    "type": MessageType.HANDOFF,
                    "reason": "r" * 100,
                    "ticket_id": 10**30,
                    "score": float("nan"),
                    "agent_text": "my card is 4111 1111 1111 1111",
                }
            },
        }
    )
    assert bot is not None and bot.custom == {"type": MessageType.HANDOFF, "reason": "r" * 64}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sender_id": "s" * 256}, "sender_id"),
        ({"sender_id": "a\u0000b"}, "sender_id"),
        ({"timestamp": 1e300}, "timestamp"),
        ({"timestamp": -5}, "timestamp"),
    ],
)
def test_events_that_cannot_be_stored_as_sent_are_rejected(
    extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(EventError, match=message):
        parse_event(json.dumps(user_event(**extra)))
    with pytest.raises(EventError, match="timestamp"):
        parse_event('{"sender_id": "s", "event": "user", "timestamp": NaN}')


def test_a_payload_with_nul_bytes_is_kept_in_the_rejected_table(db_session: Session) -> None:
    result = ingest(db_session, [("7", b"\x00\xff not json \x00")], "test")
    db_session.commit()
    (row,) = db_session.scalars(select(AnalyticsRejectedEvent)).all()
    assert result.rejected == 1 and "\x00" not in row.raw and "not JSON" in row.error


def test_ingest_writes_nothing_the_caller_does_not_commit(db_session: Session) -> None:
    """On SQLite too: the rows and the consumer's checkpoint commit together or not at all."""
    db_session.execute(select(func.count()).select_from(AnalyticsEvent))  # a read first
    result = ingest(db_session, [(None, e) for e in scenario_events()[:12]], "test")
    assert result.stored > 0
    db_session.rollback()
    assert counts(db_session) == (0, 0, 0)


def test_rejected_events_are_kept_once_and_do_not_stop_the_batch(db_session: Session) -> None:
    good = scenario_events()[:12]
    bad = '{"event": "user", "timestamp": 1, "text": "call me on +44 20 7946 0958"}'
    items = [(None, bad), *[(None, e) for e in good], ("99", "not json at all")]
    result = ingest(db_session, items, "test")
    again = ingest(db_session, items, "test")
    db_session.commit()
    assert (result.rejected, result.received) == (2, 14)
    assert again.rejected == 2 and again.stored == 0
    rejected = db_session.scalars(select(AnalyticsRejectedEvent)).all()
    assert len(rejected) == 2
    assert {r.error for r in rejected} == {"missing 'sender_id'", rejected[1].error}
    assert all("7946" not in r.raw for r in rejected)  # the kept payload is redacted too
    assert db_session.scalar(select(func.count()).select_from(AnalyticsConversation)) == 1


def test_turns_of_a_handoff_conversation() -> None:
    events = [e for e in map(parse_event, scenario_events()) if e and e.sender_id[0] == "+"]
    (conv,) = build_conversations(events)
    outcomes = [(t.outcome, t.response_ms) for t in conv.turns]
    # The relayed message gets no bot response: the agent's reply 2 minutes later is not one.
    assert outcomes == [("fallback", 60.0), ("handoff", 25.0), ("relay", None)]
    assert (conv.channel, conv.language, conv.ticket_id) == ("socketio", "es", "1")
    assert conv.first_agent_reply_ts - conv.handoff_ts == pytest.approx(120.0)
    assert conv.closed_resolved is True


def test_session_without_a_citizen_message_is_not_a_conversation() -> None:
    events = [e for e in map(parse_event, scenario_events()) if e and e.sender_id == "citizen-idle"]
    assert events and build_conversations(events) == []


# --- the SQL event broker source ---------------------------------------------------------------


def rasa_broker_file(path: Path, events: list[dict[str, Any]]) -> None:
    """Appends rows exactly as rasa.core.brokers.sql.SQLEventBroker writes them."""
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS events "
            "(id INTEGER PRIMARY KEY, sender_id VARCHAR(255), data TEXT)"
        )
        connection.executemany(
            "INSERT INTO events (sender_id, data) VALUES (?, ?)",
            [(e["sender_id"], json.dumps(e)) for e in events],
        )


def counts(session: Session) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model))
        for model in (AnalyticsEvent, AnalyticsConversation, AnalyticsTurn)
    )


def test_missing_broker_file_or_table_is_unavailable_not_an_error(tmp_path: Path) -> None:
    source = SqlEventSource.for_file(tmp_path / "rasa_events.db")
    with pytest.raises(SourceUnavailable, match="does not exist yet"):
        source.read(0)
    sqlite3.connect(tmp_path / "rasa_events.db").close()
    with pytest.raises(SourceUnavailable, match="no events table"):
        source.read(0)
    source.close()


def test_checkpoint_moves_with_the_rows_and_a_crash_loses_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = tmp_path / "rasa_events.db"
    events = scenario_events()
    rasa_broker_file(broker, events)
    source = SqlEventSource.for_file(broker, batch_size=10)

    with session_scope(db_url) as session:
        source.poll_once(session)
    with session_scope(db_url) as session:
        assert session.get(AnalyticsCheckpoint, source.name).position == 10

    # The next batch fails after its rows were written: the transaction rolls back as a whole.
    real_rebuild = ingest_mod.rebuild_sender

    def crash(*args: Any) -> int:
        real_rebuild(*args)
        raise RuntimeError("power cut")

    monkeypatch.setattr(ingest_mod, "rebuild_sender", crash)
    with pytest.raises(RuntimeError), session_scope(db_url) as session:
        source.poll_once(session)
    monkeypatch.setattr(ingest_mod, "rebuild_sender", real_rebuild)
    with session_scope(db_url) as session:
        assert session.get(AnalyticsCheckpoint, source.name).position == 10
        assert counts(session)[0] == sum(
            1 for e in events[:10] if e["event"] in ("user", "bot", "session_started")
        )

    # A "restarted" consumer (new source object) drains the rest from the checkpoint.
    source.close()
    source = SqlEventSource.for_file(broker, batch_size=10)
    while True:
        with session_scope(db_url) as session:
            if not source.poll_once(session).received:
                break
    with session_scope(db_url) as session:
        checkpoint = session.get(AnalyticsCheckpoint, source.name)
        assert (checkpoint.position, checkpoint.events_seen) == (len(events), len(events))
        responses = sorted(
            t.response_ms
            for t in session.scalars(select(AnalyticsTurn))
            if t.response_ms is not None
        )
        assert responses == sorted(RESPONSES)
        before = counts(session)
        # Rasa's table recreated (ids restart at 1) with the same events: nothing doubles.
    broker.unlink()
    rasa_broker_file(broker, events[:5])
    with session_scope(db_url) as session:
        result = source.poll_once(session)
    assert result.received == 5 and result.stored == 0
    with session_scope(db_url) as session:
        assert counts(session) == before
    source.close()


def test_consumer_process_drains_restarts_and_serves_health(
    tmp_settings: Settings, db_url: str
) -> None:
    broker = tmp_settings.data_dir / "rasa_events.db"
    events = scenario_events()
    rasa_broker_file(broker, events[:40])
    env = {
        **os.environ,
        "ASKAGENCY_DATA_DIR": str(tmp_settings.data_dir),
        "ASKAGENCY_DATABASE_URL": db_url,
        "ASKAGENCY_ANALYTICS_POLL_SECONDS": "0.2",
    }
    command = [sys.executable, "-m", "analytics.consumer"]
    subprocess.run([*command, "--once"], env=env, cwd=PROJECT_ROOT, check=True, timeout=120)
    rasa_broker_file(broker, events[40:])
    port = free_port()
    proc = subprocess.Popen(
        [*command, "--health-port", str(port)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        status: dict[str, Any] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if http_ok(f"http://127.0.0.1:{port}/health"):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as resp:
                    status = json.loads(resp.read())
                if status.get("events_received") == len(events) - 40:
                    break
            time.sleep(0.2)
        assert status.get("status") == "ok", status
        assert status["events_received"] == len(events) - 40
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert "finishing the current batch" in output
    with session_scope(db_url) as session:
        assert counts(session)[1] == 6
        checkpoint = session.scalars(select(AnalyticsCheckpoint)).one()
        assert checkpoint.position == len(events)


def test_passwords_never_reach_logs() -> None:
    assert _safe_url("amqp://guest:secret@rabbit:5672/%2F") == "amqp://guest:***@rabbit:5672/%2F"
    assert _safe_url("amqp://localhost") == "amqp://localhost"


def test_the_ticket_number_is_read_from_the_bot_event_metadata() -> None:
    """Handoff messages no longer show citizens the ticket number (L9); analytics still links
    the conversation to its ticket through the event's metadata."""
    handoff = {
        "sender_id": "s9",
        "event": "bot",
        "timestamp": 1001.0,
        "text": "I'm connecting you with a person.",
        "data": {
            "custom": {"type": MessageType.HANDOFF, "reason": "requested", "after_hours": False}
        },
        "metadata": {"ticket_id": 42},
    }
    parsed = parse_event(json.dumps(handoff))
    assert parsed is not None and parsed.custom["ticket_id"] == 42
    (conv,) = build_conversations([parse_event(json.dumps(user_event(sender_id="s9"))), parsed])
    assert conv.ticket_id == "42"


# --- poison events on PostgreSQL (review finding M5) ---------------------------------------------


def poison_events() -> list[dict[str, Any]]:
    """The review's live test, as Rasa publishes it: an 80-character input_channel, and a NUL
    byte in the citizen text. PostgreSQL refuses both as they are."""
    return [
        user_event(sender_id="poison-1", timestamp=5000.0, text="hello", input_channel="c" * 80),
        user_event(sender_id="poison-2", timestamp=5001.0, text="hello\u0000world"),
    ]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema migrated to head (skips, or fails under CI, without PostgreSQL)."""
    from askagency.migrate import upgrade
    from tests.services import fresh_schema

    with fresh_schema("ingest") as url:
        upgrade(url)
        yield url


def test_review_poison_payloads_are_normalised_and_stored_on_postgresql(pg_url: str) -> None:
    good = scenario_events()
    items = [(None, json.dumps(e)) for e in [*good[:10], *poison_events(), *good[10:]]]
    engine = make_engine(pg_url)
    try:
        with Session(engine) as session:
            result = ingest(session, items, "test")
            session.commit()
        assert result.rejected == 0 and result.received == len(items)
        with Session(engine) as session:
            by_sender = {
                e.sender_id: e
                for e in session.scalars(select(AnalyticsEvent))
                if e.sender_id.startswith("poison-")
            }
            assert by_sender["poison-1"].channel == "c" * 64
            assert by_sender["poison-2"].text == "helloworld"
            senders = set(session.scalars(select(AnalyticsConversation.sender_id)))
            assert {"poison-1", "poison-2"} <= senders
            # Every conversation of the scenario (events before and after the poison) is there.
            assert session.scalar(select(func.count()).select_from(AnalyticsConversation)) == 6 + 2
    finally:
        engine.dispose()


def test_an_event_the_database_refuses_is_quarantined_and_the_rest_is_stored(
    pg_url: str,
) -> None:
    """Whatever PostgreSQL refuses that parse_event did not foresee (here a CHECK constraint
    stands in for it) costs that one event, never the batch: the rest is stored and the refused
    event lands in analytics_rejected_event with the database's reason."""
    engine = make_engine(pg_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "ALTER TABLE analytics_event ADD CONSTRAINT no_poison "
                    "CHECK (text IS NULL OR text NOT LIKE '%poison pill%')"
                )
            )
        good = scenario_events()
        bad = user_event(sender_id="s-bad", timestamp=7000.0, text="a poison pill, 202-555-0143")
        items = [(None, json.dumps(e)) for e in [*good[:7], bad, *good[7:]]]
        with Session(engine) as session:
            result = ingest(session, items, "test")
            session.commit()
        assert (result.rejected, result.received) == (1, len(items))
        with Session(engine) as session:
            (rejected,) = session.scalars(select(AnalyticsRejectedEvent)).all()
            assert "no_poison" in rejected.error and "202-555-0143" not in rejected.raw
            assert "s-bad" not in set(session.scalars(select(AnalyticsEvent.sender_id)))
            assert session.scalar(select(func.count()).select_from(AnalyticsConversation)) == 6
            again = ingest(session, items, "test")  # a redelivery: nothing new, nothing doubled
            session.commit()
        assert again.stored == 0 and again.rejected == 1
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(AnalyticsRejectedEvent)) == 1
    finally:
        engine.dispose()


# --- locations ---------------------------------------------------------------------------------


def _location_of(session: Session, sender: str) -> str:
    return session.scalar(
        select(AnalyticsConversation.location).where(AnalyticsConversation.sender_id == sender)
    )


def _say(sender: str, text: str, location: str | None = None, ts: float = 1000.5) -> dict:
    metadata: dict[str, Any] = {"language": "en"}
    if location is not None:
        metadata["location"] = location
    return user_event(sender_id=sender, text=text, timestamp=ts, metadata=metadata)


def test_a_conversations_location_comes_from_its_page_or_its_words(db_session: Session) -> None:
    """The page's (or channel's) code wins over a place the citizen names; a code that is not
    in the agency's list (forged, or mistyped in a page) is ignored, not reported."""
    seed_locations(db_session)
    events = [
        _say("page", "can I bring liquids at O'Hare?", location="den"),
        _say("named", "¿puedo llevar agua en el aeropuerto de Denver?"),
        _say("forged", "waiting at ohare terminal 3", location="ZZZ"),
        _say("forged-only", "can I bring liquids", location="<script>"),
        _say("lower-case-code", "is the den at mia open"),
        _say("nothing", "hello"),
    ]
    ingest(db_session, [(None, e) for e in events], "test")
    db_session.commit()
    got = {s: _location_of(db_session, s) for s in ("page", "named", "forged", "forged-only")}
    assert got == {"page": "DEN", "named": "DEN", "forged": "ORD", "forged-only": "unknown"}
    assert _location_of(db_session, "lower-case-code") == "unknown"  # "den", "mia": words
    assert _location_of(db_session, "nothing") == "unknown"


def test_a_change_to_the_location_list_applies_to_the_next_events(db_session: Session) -> None:
    from knowledge_base.locations import store as location_store

    seed_locations(db_session)
    ingest(db_session, [(None, _say("s", "I'm at Midway airport"))], "test")
    db_session.commit()
    assert _location_of(db_session, "s") == "unknown"
    location_store.save(
        db_session,
        location_store.LocationIn(code="MDW", name="Chicago Midway", aliases=["Midway airport"]),
        "staff",
    )
    db_session.commit()
    # A later message of the conversation rebuilds it with the new list.
    ingest(db_session, [(None, _say("s", "are you there?", ts=1010.0))], "test")
    db_session.commit()
    assert _location_of(db_session, "s") == "MDW"
    ohare = db_session.get(location_store.Location, "ORD")
    retired = location_store.LocationIn(
        code="ORD", name=ohare.name, aliases=ohare.aliases, active=False
    )
    location_store.save(db_session, retired, "staff")
    db_session.commit()
    ingest(db_session, [(None, _say("t", "at O'Hare now", ts=1020.0))], "test")
    db_session.commit()
    assert _location_of(db_session, "t") == "unknown"  # inactive: no longer recognised


def test_rebuild_command_applies_a_new_location_to_stored_conversations(
    db_session: Session,
) -> None:
    from typer.testing import CliRunner

    from agencyctl.cli import app
    from knowledge_base.locations import store as location_store

    ingest(db_session, [(None, _say("old", "I'm at Midway airport"))], "test")
    db_session.commit()
    assert _location_of(db_session, "old") == "unknown"
    item = location_store.LocationIn(code="MDW", name="Chicago Midway", aliases=["Midway"])
    location_store.save(db_session, item, "staff")
    db_session.commit()
    result = CliRunner().invoke(app, ["analytics", "rebuild", "--from", "1970-01-01"])
    assert result.exit_code == 0, result.output
    assert "Rebuilt 1 conversations" in result.output
    db_session.expire_all()
    assert _location_of(db_session, "old") == "MDW"
    bad = CliRunner().invoke(app, ["analytics", "rebuild", "--from", "yesterday"])
    assert bad.exit_code != 0 and "2026-01-31" in bad.output


def test_a_question_an_out_of_scope_entry_took_is_no_unanswered_turn(db_session: Session) -> None:
    """A fallback that names the out-of-scope entry that took the question (handed off by
    design) gives its turn an empty wording, so a location's top unanswered questions leave it out;
    another fallback's turn keeps its wording."""
    from askagency.bot_messages import FIELD_OUT_OF_SCOPE, FallbackReason, fallback

    def bot(sender: str, ts: float, **fields: Any) -> dict[str, Any]:
        custom = fallback(FallbackReason.LOW_CONFIDENCE, score=0.3, **fields)
        return {"sender_id": sender, "event": "bot", "timestamp": ts, "data": {"custom": custom}}

    events = [
        _say("taken", "cancel my flight please", ts=1000.5),
        bot("taken", 1001.0, out_of_scope="out-of-scope-bookings"),
        _say("gap", "can I bring a kayak", ts=1000.5),
        bot("gap", 1001.0),
    ]
    parsed = parse_event(events[1])
    assert parsed is not None and parsed.custom is not None
    assert parsed.custom[FIELD_OUT_OF_SCOPE] == "out-of-scope-bookings"  # kept for rebuilds
    ingest(db_session, [(None, e) for e in events], "test")
    db_session.commit()
    rows = db_session.execute(
        select(AnalyticsConversation.sender_id, AnalyticsTurn.outcome, AnalyticsTurn.wording)
        .join(AnalyticsTurn)
        .order_by(AnalyticsConversation.sender_id)
    ).all()
    assert [tuple(r) for r in rows] == [
        ("gap", "fallback", "can i bring a kayak"),
        ("taken", "fallback", ""),  # counted nowhere, like "???"
    ]
