"""bot.sqlite_stores: same rows as Rasa's SQL stores, with WAL + synchronous=NORMAL and pooled
connections."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy import event, text

from bot.sqlite_stores import SQLiteEventBroker, SQLiteTrackerStore


def _pragmas(engine) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        mode = conn.execute(text("PRAGMA journal_mode")).scalar()
        sync = conn.execute(text("PRAGMA synchronous")).scalar()
    return mode, sync


def _count_connects(engine):  # type: ignore[no-untyped-def]
    """A callable returning how many new SQLite connections ``engine`` opened since now."""
    opened = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    return lambda: len(opened)


def test_event_broker_from_endpoint_config_stores_every_event(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    config = EndpointConfig(
        type="bot.sqlite_stores.SQLiteEventBroker", dialect="sqlite", db=str(db)
    )
    broker = asyncio.run(EventBroker.create(config))
    assert isinstance(broker, SQLiteEventBroker)
    assert _pragmas(broker.engine) == ("wal", 1)  # 1 = NORMAL
    connects = _count_connects(broker.engine)
    for i in range(20):
        broker.publish({"sender_id": "s", "event": "user", "text": f"m{i}"})
    # One session per event, but not one connection: the pool keeps them open.
    assert connects() <= 1
    rows = sqlite3.connect(db).execute("SELECT sender_id, data FROM events ORDER BY id").fetchall()
    assert [json.loads(d)["text"] for _, d in rows] == [f"m{i}" for i in range(20)]


def test_tracker_store_from_endpoint_config_round_trips(tmp_path: Path) -> None:
    db = tmp_path / "tracker.db"
    config = EndpointConfig(
        type="bot.sqlite_stores.SQLiteTrackerStore", dialect="sqlite", db=str(db)
    )
    store = TrackerStore.create(config, Domain.empty())
    assert isinstance(store, SQLiteTrackerStore)
    assert _pragmas(store.engine) == ("wal", 1)
    connects = _count_connects(store.engine)
    tracker = DialogueStateTracker("citizen", slots=[])
    for i in range(5):
        tracker.update(UserUttered(f"hello {i}"))
        asyncio.run(store.save(tracker))
    loaded = asyncio.run(store.retrieve("citizen"))
    assert loaded is not None and loaded.latest_message.text == "hello 4"
    assert [e.text for e in loaded.events if isinstance(e, UserUttered)] == [
        f"hello {i}" for i in range(5)
    ]
    assert connects() <= 1
    # Another process (the analytics consumer) reads the same file while Rasa keeps its
    # connections open: WAL lets it see every committed event.
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM events").fetchone()
    assert rows[0] >= 5
