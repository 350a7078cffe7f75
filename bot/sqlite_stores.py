"""SQLite tracker store and SQL event broker for the embedded profile, without an fsync per event.

py-spy on a Rasa server of the embedded profile under REST load: 65% of its busy time was
inside ``commit()`` of the stock SQL event broker, which commits every event separately in
SQLite's default rollback-journal mode with ``synchronous=FULL`` (two fsyncs per event, several
events per turn), and all of it blocks Rasa's event loop. These subclasses only configure each
new SQLite connection: WAL journal (readers such as the analytics consumer no longer block the
writer) and ``synchronous=NORMAL`` (in WAL mode: durable across a crash of any process; only an
operating-system crash or power loss can drop the last transactions, which is acceptable for
the single-machine profile). Tables, rows and behaviour are exactly Rasa's.

Connections are kept in a pool. SQLAlchemy 1.4 (Rasa 3.6's) gives a file SQLite database a
``NullPool``: every session opened a new connection, ran the pragmas and closed it again, and
the event broker opens a session per event. py-spy on Rasa answering greetings (2026-12-05):
45% of its busy time in the tracker store's save, 20% of it closing SQLite connections and 12%
opening them. A ``QueuePool`` keeps them open (SQLite's connections are used by one session at
a time; ``check_same_thread=False`` lets a pooled connection serve whichever thread asks next).

Used by bot/endpoints.yml as ``type: bot.sqlite_stores.SQLiteTrackerStore`` and
``type: bot.sqlite_stores.SQLiteEventBroker``. Other dialects are left untouched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy
from rasa.core.brokers.sql import SQLEventBroker
from rasa.core.tracker_store import SQLTrackerStore
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from bot.recent_trackers import RecentTrackers

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=10000")


def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def pooled_sqlite_engine(engine: Any) -> Any | None:
    """A pooled engine for ``engine``'s SQLite database, each connection with the pragmas; None
    for other dialects (PostgreSQL keeps Rasa's own engine and pool)."""
    if engine.dialect.name != "sqlite":
        return None
    pooled = sqlalchemy.create_engine(
        engine.url,
        poolclass=QueuePool,
        pool_size=4,
        max_overflow=8,
        connect_args={"check_same_thread": False},
    )
    event.listen(pooled, "connect", _set_pragmas)
    engine.dispose()  # connections opened while Rasa created the tables lack the pragmas
    return pooled


class SQLiteEventBroker(SQLEventBroker):
    """Rasa's SQL event broker with WAL, synchronous=NORMAL and pooled connections on SQLite."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pooled = pooled_sqlite_engine(self.engine)
        if pooled is not None:
            self.engine = pooled
            self.sessionmaker = sessionmaker(bind=pooled)

    def publish_many(self, events: Sequence[dict[str, Any]]) -> None:
        """Rasa's rows for several events (``publish`` writes each in a transaction of its own,
        so a turn's 5-10 events cost as many commits, all on Rasa's event loop)."""
        with self.session_scope() as session:
            session.add_all(
                self.SQLBrokerEvent(sender_id=event.get("sender_id"), data=json.dumps(event))
                for event in events
            )
            session.commit()


class SQLiteTrackerStore(RecentTrackers, SQLTrackerStore):
    """Rasa's SQL tracker store with WAL, synchronous=NORMAL and pooled connections on SQLite,
    keeping recent conversations' trackers between their turns (bot/recent_trackers.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pooled = pooled_sqlite_engine(self.engine)
        if pooled is not None:
            self.engine = pooled
            self.sessionmaker = sessionmaker(bind=pooled)
