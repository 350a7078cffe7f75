"""analytics.alongside: on PostgreSQL the work runs on a connection of its own while the caller
goes on, with one core; on SQLite on the caller's session. Errors reach the caller."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from analytics.alongside import alongside
from tests.services import migrated_pg_session


@pytest.fixture
def pg_session() -> Iterator[Session]:
    with migrated_pg_session("alongside") as session:
        yield session


def test_postgresql_runs_it_on_its_own_connection_while_the_caller_goes_on(
    pg_session: Session,
) -> None:
    mine = pg_session.scalar(text("SELECT pg_backend_pid()"))
    started, release = threading.Event(), threading.Event()

    def work(own: Session) -> tuple[int, str]:
        started.set()
        assert release.wait(10), "the caller never went on"
        pid = own.scalar(text("SELECT pg_backend_pid()"))
        return pid, own.scalar(text("SHOW max_parallel_workers_per_gather"))

    with alongside(pg_session, work) as result:
        assert started.wait(10)
        assert pg_session.scalar(text("SELECT 1")) == 1  # the caller's connection is free
        release.set()
        pid, workers = result()
    assert pid != mine and workers == "0"


def test_its_error_reaches_the_caller(pg_session: Session) -> None:
    def work(own: Session) -> None:
        own.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(Exception, match="no_such_table"), alongside(pg_session, work) as result:
        result()


def test_sqlite_runs_it_first_on_the_callers_session(db_session: Session) -> None:
    seen: list[Session] = []
    with alongside(db_session, lambda own: seen.append(own) or 42) as result:
        assert seen == [db_session]
        assert result() == 42
