"""askagency.db's SQLite connections: WAL on every file, without a connection ever waiting on
(or failing for) the switch to it, and the test databases in the same mode as production's."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from askagency.db import SQLITE_BUSY_TIMEOUT_MS, make_engine

WAL_VERSION = 2  # file header bytes 18 and 19: 1 = rollback journal, 2 = WAL


def header_versions(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:100]
    return header[18], header[19]


def rollback_mode_file(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE t (x INTEGER)")
        connection.execute("INSERT INTO t VALUES (1)")
        connection.commit()
    assert header_versions(path) == (1, 1)
    return path


def test_a_rollback_mode_file_is_switched_to_wal_on_first_connect(tmp_path: Path) -> None:
    path = rollback_mode_file(tmp_path / "plain.db")
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            timeout = connection.execute(text("PRAGMA busy_timeout")).scalar()
            assert timeout == SQLITE_BUSY_TIMEOUT_MS
    finally:
        engine.dispose()
    assert header_versions(path) == (WAL_VERSION, WAL_VERSION)


def test_a_held_lock_delays_the_switch_but_never_the_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The reproduction of a CI failure: another connection's open read (here a plain sqlite3
    one; there, a coroutine on the event loop the new connection was blocking) made the switch
    to WAL wait, then fail the new connection with "database is locked"."""
    path = rollback_mode_file(tmp_path / "busy.db")
    holder = sqlite3.connect(path, isolation_level=None)
    engine = make_engine(f"sqlite:///{path}")
    try:
        holder.execute("BEGIN")
        assert holder.execute("SELECT x FROM t").fetchall() == [(1,)]  # a SHARED lock, held
        with (
            caplog.at_level(logging.WARNING, logger="askagency.db"),
            engine.connect() as connection,
        ):
            assert connection.execute(text("SELECT x FROM t")).scalar() == 1
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "delete"
            timeout = connection.execute(text("PRAGMA busy_timeout")).scalar()
            assert timeout == SQLITE_BUSY_TIMEOUT_MS
        assert "not switched to WAL" in caplog.text
        holder.execute("COMMIT")
        engine.dispose()  # the pooled connection opened in rollback mode; a new one switches
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        holder.close()
        engine.dispose()
    assert header_versions(path) == (WAL_VERSION, WAL_VERSION)


def test_test_databases_start_in_wal_like_a_migrated_production_file(db_url: str) -> None:
    path = Path(db_url.removeprefix("sqlite:///"))
    assert header_versions(path) == (WAL_VERSION, WAL_VERSION)
