"""Revision 0018_attachments on a database that already holds tickets, on SQLite and PostgreSQL.

On SQLite the reason constraint can only change by copying ``handoff_ticket``; dropping the old
copy with foreign keys enforced would cascade-delete every ticket's messages and notes. These
tests fill the tables first and check nothing is lost either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import IntegrityError

from askagency import migrate
from askagency.db import make_engine
from tests.services import fresh_schema

BEFORE = "0017_ticket_notified"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
    else:
        with fresh_schema("att") as pg_url:
            yield pg_url


def _ticket_with_history(connection: Connection) -> None:
    connection.execute(
        text(
            "INSERT INTO handoff_ticket (id, conversation_id, channel, language, reason, priority,"
            " status, created_at, after_hours, trigger_text, transcript_url) VALUES (7, 'c1',"
            " 'socketio', 'en', 'requested', 'normal', 'waiting', :t, false, 'hi', '')"
        ),
        {"t": "2026-11-25 12:00:00"},
    )
    connection.execute(
        text(
            "INSERT INTO handoff_message (ticket_id, direction, kind, author, text, created_at,"
            " attempts) VALUES (7, 'citizen', 'text', '', 'can I bring this?', :t, 0)"
        ),
        {"t": "2026-11-25 12:00:00"},
    )
    connection.execute(
        text(
            "INSERT INTO handoff_note (ticket_id, author, text, created_at)"
            " VALUES (7, 'ana', 'looks fine', :t)"
        ),
        {"t": "2026-11-25 12:00:00"},
    )


def _counts(connection: Connection) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        for table in ("handoff_ticket", "handoff_message", "handoff_note")
    )


def test_upgrade_and_downgrade_keep_every_ticket_message_and_note(url: str) -> None:
    migrate.upgrade(url, BEFORE)
    engine = make_engine(url)  # foreign keys enforced, as in production
    try:
        with engine.begin() as connection:
            _ticket_with_history(connection)

        migrate.upgrade(url)

        assert migrate.current_revisions(url) == migrate.head_revisions()
        with engine.begin() as connection:
            assert _counts(connection) == (1, 1, 1)
            assert "attachment" in inspect(connection).get_table_names()
            connection.execute(text("UPDATE handoff_ticket SET reason = 'attachment'"))
            if connection.dialect.name == "sqlite":
                assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        with pytest.raises(IntegrityError, match="(?i)check"), engine.begin() as connection:
            connection.execute(text("UPDATE handoff_ticket SET reason = 'bogus'"))

        migrate.downgrade(url, BEFORE)

        with engine.begin() as connection:
            assert _counts(connection) == (1, 1, 1)
            # An attachment ticket becomes "requested", which the old constraint allows.
            reason = connection.execute(text("SELECT reason FROM handoff_ticket")).scalar_one()
            assert reason == "requested"
            assert "attachment" not in inspect(connection).get_table_names()
        with pytest.raises(IntegrityError, match="(?i)check"), engine.begin() as connection:
            connection.execute(text("UPDATE handoff_ticket SET reason = 'attachment'"))
    finally:
        engine.dispose()
