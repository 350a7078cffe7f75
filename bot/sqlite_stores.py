"""SQLite tracker store and SQL event broker for the embedded profile, without an fsync per event.

py-spy on a Rasa server of the embedded profile under REST load: 65% of its busy time was
inside ``commit()`` of the stock SQL event broker, which commits every event separately in
SQLite's default rollback-journal mode with ``synchronous=FULL`` (two fsyncs per event, several
events per turn), and all of it blocks Rasa's event loop. These subclasses only configure each
new SQLite connection: WAL journal (readers such as the analytics consumer no longer block the
writer) and ``synchronous=NORMAL`` (in WAL mode: durable across a crash of any process; only an
operating-system crash or power loss can drop the last transactions, which is acceptable for
the single-machine profile). Tables, rows and behaviour are exactly Rasa's.

Used by bot/endpoints.yml as ``type: bot.sqlite_stores.SQLiteTrackerStore`` and
``type: bot.sqlite_stores.SQLiteEventBroker``. Other dialects are left untouched.
"""

from __future__ import annotations

from typing import Any

from rasa.core.brokers.sql import SQLEventBroker
from rasa.core.tracker_store import SQLTrackerStore
from sqlalchemy import event

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=10000")


def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def configure_sqlite(engine: Any) -> bool:
    """Applies the pragmas to every future connection of ``engine`` (SQLite only)."""
    if engine.dialect.name != "sqlite":
        return False
    event.listen(engine, "connect", _set_pragmas)
    engine.dispose()  # connections opened while Rasa created the tables lack the pragmas
    return True


class SQLiteEventBroker(SQLEventBroker):
    """Rasa's SQL event broker with WAL and synchronous=NORMAL on SQLite."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        configure_sqlite(self.engine)


class SQLiteTrackerStore(SQLTrackerStore):
    """Rasa's SQL tracker store with WAL and synchronous=NORMAL on SQLite."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        configure_sqlite(self.engine)
