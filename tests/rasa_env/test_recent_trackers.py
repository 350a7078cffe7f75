"""bot.recent_trackers through the embedded profile's real SQLite tracker store and event broker:
the tracker of a conversation is kept between its turns, and the rows written and the events
published are exactly those of Rasa's own SQL tracker store; whatever changed the database in
between (another process, a failed turn, a deletion, a new session) makes it read again."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from rasa.core.brokers.sql import SQLEventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot import recent_trackers
from bot.sqlite_stores import SQLiteEventBroker, SQLiteTrackerStore

DOMAIN = Domain.load("bot/domain.yml")
SENDER = "citizen-1"


def _stores(tmp_path: Path, name: str, cls: type, broker_cls: type) -> Any:
    broker = broker_cls(dialect="sqlite", db=str(tmp_path / f"{name}-events.db"))
    return cls(
        DOMAIN, dialect="sqlite", db=str(tmp_path / f"{name}-tracker.db"), event_broker=broker
    )


def _turn_events(turn: int) -> list[Any]:
    at = 1_800_000_000.0 + turn  # fixed timestamps, so both stores write identical rows
    intent = {"name": "ask_question", "confidence": 1.0}
    return [
        UserUttered(f"question {turn}", intent, timestamp=at),
        ActionExecuted("action_answer_faq", timestamp=at + 0.1),
        SlotSet("language", "es" if turn % 2 else "en", timestamp=at + 0.2),
        BotUttered(f"answer {turn}", {"custom": {"type": "faq_answer"}}, timestamp=at + 0.3),
        ActionExecuted("action_listen", timestamp=at + 0.4),
    ]


async def _turn(store: Any, events: list[Any]) -> Any:
    """What Rasa does with a message: read the tracker (or start one), add events, save."""
    tracker = await store.retrieve(SENDER)
    if tracker is None:
        tracker = DialogueStateTracker(SENDER, DOMAIN.slots)
    for event in events:
        tracker.update(event)
    await store.save(tracker)
    return tracker


TRACKER_COLUMNS = "sender_id, type_name, intent_name, action_name, data"


def _rows(db: Path) -> list[tuple[Any, ...]]:
    """The rows of a tracker database's or an event broker's ``events`` table, in order."""
    with sqlite3.connect(db) as conn:
        if "tracker" in db.name:
            return conn.execute(f"SELECT {TRACKER_COLUMNS} FROM events ORDER BY id").fetchall()
        rows = conn.execute("SELECT sender_id, data FROM events ORDER BY id")
        return [(sender, json.loads(data)) for sender, data in rows]


def _conversation(store: Any) -> list[Any]:
    """40 question turns with a new session after the 25th; the trackers each turn saved."""

    async def run() -> list[Any]:
        saved = []
        for turn in range(40):
            events = _turn_events(turn)
            if turn == 25:
                at = 1_800_000_000.0 + turn - 0.5
                events = [
                    ActionExecuted("action_session_start", timestamp=at),
                    SessionStarted(timestamp=at),
                    *events,
                ]
            saved.append(await _turn(store, events))
        return saved

    return asyncio.run(run())


def _rasa_stored_state(store: Any, sender_id: str) -> tuple[int, int, float]:
    """What ``stored_state`` must return, from Rasa's own ORM query of the latest session."""
    with store.session_scope() as session:
        rows = [
            (row.id, row.timestamp)
            for row in store._event_query(session, sender_id, fetch_events_from_all_sessions=False)
        ]
    if not rows:
        return 0, 0, 0.0
    return len(rows), max(i for i, _ in rows), max(t for _, t in rows)


def test_same_rows_and_published_events_as_rasas_store_and_the_tracker_is_kept(
    tmp_path: Path,
) -> None:
    ours_store = _stores(tmp_path, "ours", SQLiteTrackerStore, SQLiteEventBroker)
    ours = _conversation(ours_store)
    stock = _conversation(_stores(tmp_path, "stock", SQLTrackerStore, SQLEventBroker))

    for table in ("tracker", "events"):
        ours_rows = _rows(tmp_path / f"ours-{table}.db")
        stock_rows = _rows(tmp_path / f"stock-{table}.db")
        assert ours_rows == stock_rows, table
        assert len(ours_rows) == 40 * 5 + 2
    # Rasa's store read every turn's tracker back from the database; ours handed the saved one
    # to the next turn, except after the turn that started a new session: that tracker held
    # both sessions, so turn 26 read the new session from the database, as Rasa would.
    assert all(stock[i] is not stock[i + 1] for i in range(39))
    kept = [i + 1 for i in range(39) if ours[i] is ours[i + 1]]
    assert kept == [i for i in range(1, 40) if i != 26]
    final = ours[-1]
    assert final.get_slot("language") == stock[-1].get_slot("language") == "es"
    assert [e.as_dict() for e in final.events] == [e.as_dict() for e in stock[-1].events]
    assert len(final.events) == 15 * 5 + 2
    # The check's one statement counts the rows Rasa reads for the latest session.
    assert ours_store.stored_state(SENDER) == _rasa_stored_state(ours_store, SENDER)
    assert ours_store.stored_state(SENDER)[0] == 15 * 5 + 2
    assert ours_store.stored_state("nobody") == _rasa_stored_state(ours_store, "nobody")


def _new_conversation(store: Any) -> list[Any]:
    """What Rasa's processor does for a new citizen: ``get_or_create_tracker`` (nothing stored,
    so it creates the tracker and saves its ``action_listen``), the session start and the first
    turn, saved; then two more turns. Events carry the time they are made, as in Rasa."""

    async def run() -> list[Any]:
        tracker = await store.get_or_create_tracker(SENDER)
        for event in (
            ActionExecuted("action_session_start"),
            SessionStarted(),
            ActionExecuted("action_listen"),
            UserUttered("hello", {"name": "greet", "confidence": 1.0}),
            BotUttered("Hi!"),
            ActionExecuted("action_listen"),
        ):
            tracker.update(event)
        await store.save(tracker)
        saved = [tracker]
        for turn in (1, 2):
            tracker = await store.retrieve(SENDER)
            for event in (UserUttered(f"question {turn}"), ActionExecuted("action_listen")):
                tracker.update(event)
            await store.save(tracker)
            saved.append(tracker)
        return saved

    return asyncio.run(run())


def _untimed(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "timestamp"}


def _without_times(published: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    return [(sender, _untimed(event)) for sender, event in published]


def _tracker_rows_without_times(db: Path) -> list[tuple[Any, ...]]:
    return [(*row[:-1], _untimed(json.loads(row[-1]))) for row in _rows(db)]


def test_a_new_conversation_is_published_and_stored_as_rasa_does_with_one_read(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A new citizen's first turn: Rasa's store reads the database three times (nothing there,
    then twice to find what to publish); ours knows from its check that nothing is stored and
    publishes from the kept position. The turn after reads the new session once, as Rasa would
    build it (the first tracker also holds the ``action_listen`` from before the session)."""
    reads: list[str] = []
    rasa_retrieve = SQLTrackerStore._retrieve

    async def counted(self: Any, sender_id: str, fetch_events_from_all_sessions: bool) -> Any:
        reads.append(type(self).__name__)
        return await rasa_retrieve(self, sender_id, fetch_events_from_all_sessions)

    monkeypatch.setattr(SQLTrackerStore, "_retrieve", counted)
    ours = _new_conversation(_stores(tmp_path, "ours", SQLiteTrackerStore, SQLiteEventBroker))
    stock = _new_conversation(_stores(tmp_path, "stock", SQLTrackerStore, SQLEventBroker))

    ours_rows = _tracker_rows_without_times(tmp_path / "ours-tracker.db")
    assert ours_rows == _tracker_rows_without_times(tmp_path / "stock-tracker.db")
    assert len(ours_rows) == 11
    published = _without_times(_rows(tmp_path / "ours-events.db"))
    assert published == _without_times(_rows(tmp_path / "stock-events.db"))
    kinds = [event["event"] for _, event in published]
    assert kinds[:4] == ["action", "action", "session_started", "action"]
    assert len(published) == 11
    assert reads.count("SQLiteTrackerStore") == 1
    assert reads.count("SQLTrackerStore") >= 5
    assert ours[1] is not ours[0] and ours[2] is ours[1]
    assert [_untimed(e.as_dict()) for e in ours[2].events] == [
        _untimed(e.as_dict()) for e in stock[2].events
    ]


def test_another_process_writing_the_conversation_is_seen(tmp_path: Path) -> None:
    """Two Rasa processes on one database (or a replica): each sees the other's turns."""
    first = _stores(tmp_path, "a", SQLiteTrackerStore, SQLiteEventBroker)
    second = SQLiteTrackerStore(
        DOMAIN, dialect="sqlite", db=str(tmp_path / "a-tracker.db"), event_broker=first.event_broker
    )
    asyncio.run(_turn(first, _turn_events(0)))
    asyncio.run(_turn(first, _turn_events(1)))
    asyncio.run(_turn(second, _turn_events(2)))
    tracker = asyncio.run(first.retrieve(SENDER))
    assert tracker.latest_message.text == "question 2"
    assert len(tracker.events) == 15
    published = [e.get("text") for _, e in _rows(tmp_path / "a-events.db")]
    assert published.count("question 2") == 1


def test_a_turn_that_failed_before_saving_is_read_again(tmp_path: Path) -> None:
    store = _stores(tmp_path, "f", SQLiteTrackerStore, SQLiteEventBroker)
    asyncio.run(_turn(store, _turn_events(0)))
    asyncio.run(_turn(store, _turn_events(1)))
    broken = asyncio.run(store.retrieve(SENDER))
    broken.update(UserUttered("never saved"))  # the turn raised before Rasa saved it
    again = asyncio.run(store.retrieve(SENDER))
    assert again is not broken
    assert again.latest_message.text == "question 1"
    assert len(again.events) == 10


def test_a_deleted_conversation_is_gone(tmp_path: Path) -> None:
    """The console deletes a citizen's conversations from the tracker database (privacy)."""
    store = _stores(tmp_path, "d", SQLiteTrackerStore, SQLiteEventBroker)
    asyncio.run(_turn(store, _turn_events(0)))
    asyncio.run(_turn(store, _turn_events(1)))
    with sqlite3.connect(tmp_path / "d-tracker.db") as conn:
        conn.execute("DELETE FROM events WHERE sender_id = ?", (SENDER,))
    assert asyncio.run(store.retrieve(SENDER)) is None


def test_only_the_latest_conversations_are_kept(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(recent_trackers, "RECENT_TRACKERS", 2)
    store = _stores(tmp_path, "l", SQLiteTrackerStore, SQLiteEventBroker)

    async def turn(sender: str) -> Any:
        tracker = await store.retrieve(sender) or DialogueStateTracker(sender, DOMAIN.slots)
        tracker.update(UserUttered(f"hello from {sender}"))
        await store.save(tracker)
        return tracker

    first = asyncio.run(turn("one"))
    asyncio.run(turn("two"))
    asyncio.run(turn("three"))
    assert asyncio.run(store.retrieve("one")) is not first  # pushed out: read again
    assert asyncio.run(store.retrieve("one")).latest_message.text == "hello from one"


def test_rows_deleted_and_as_many_written_by_another_process_are_seen(tmp_path: Path) -> None:
    """The count alone would match (and SQLite reuses the deleted rows' ids): the newest
    event's time tells the rows apart."""
    first = _stores(tmp_path, "r", SQLiteTrackerStore, SQLiteEventBroker)
    other = SQLiteTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "r-tracker.db"))
    asyncio.run(_turn(first, _turn_events(0)))
    asyncio.run(_turn(first, _turn_events(1)))
    with sqlite3.connect(tmp_path / "r-tracker.db") as conn:
        conn.execute("DELETE FROM events WHERE sender_id = ?", (SENDER,))
    asyncio.run(_turn(other, _turn_events(7)))
    asyncio.run(_turn(other, _turn_events(8)))
    tracker = asyncio.run(first.retrieve(SENDER))
    assert len(tracker.events) == 10
    assert tracker.latest_message.text == "question 8"


def test_replicas_on_postgresql_see_each_others_turns() -> None:
    """The scale profile: two Rasa replicas, each with its own kept trackers, on one PostgreSQL
    database (``KeptSQLTrackerStore``, bot/endpoints.scale.yml); turns of one conversation go
    to either replica."""
    from urllib.parse import unquote, urlparse

    from askagency.opt_out import database_url
    from bot.recent_trackers import KeptSQLTrackerStore
    from tests.services import PG_URL, fresh_schema

    url = database_url({"ASKAGENCY_DATABASE_URL": PG_URL})
    with fresh_schema("kept", url) as scoped:
        parts = urlparse(scoped)
        schema = unquote(parts.query).split("search_path=")[1]

        def replica() -> KeptSQLTrackerStore:
            return KeptSQLTrackerStore(
                DOMAIN,
                dialect="postgresql",
                host=parts.hostname,
                port=parts.port,
                db=parts.path.lstrip("/"),
                username=parts.username,
                query={"options": f"-csearch_path={schema}"},
            )

        first, second = replica(), replica()
        trackers = []
        for turn in range(6):
            store = first if turn % 3 else second  # second, first, first, second, ...
            trackers.append(asyncio.run(_turn(store, _turn_events(turn))))
        assert trackers[2] is trackers[1]  # the same replica twice in a row: kept
        assert trackers[3] is not trackers[0]  # back on the other replica: read again
        final = asyncio.run(first.retrieve(SENDER))
        assert [e.text for e in final.events if isinstance(e, UserUttered)] == [
            f"question {turn}" for turn in range(6)
        ]
        for store in (first, second):
            store.engine.dispose()
