"""The real local services the scale-profile tests use, and the one rule for an absent one.

Why one rule: PostgreSQL, Redis and RabbitMQ tests skip with the reason on a developer's machine
without them, but under CI (``CI`` set) an absent service is a failure: the scale profile must be
tested, not silently skipped. The service URLs and admin helpers are in bench/local_services.py
(the benchmarks use them too, and import no test code). Imports only ``os``, ``pytest`` and that
module at module level, so the Rasa environment's tests can use it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest

from bench.local_services import (  # noqa: F401 (re-exported)
    AMQP_URL,
    PG_URL,
    delete_queue,
    exchange_for,
    pg_admin,
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> NoReturn:
    """Skips the test with ``message``; fails it instead when CI is set."""
    if in_ci():
        pytest.fail(message + " (CI is set: this must be tested against the real service)")
    pytest.skip(message)


def require_postgres(url: str = PG_URL) -> None:
    """Skips (or, under CI, fails) unless PostgreSQL at ``url`` answers."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from askagency.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        unavailable(f"PostgreSQL is unreachable at {url}: {exc.orig}")
    finally:
        engine.dispose()


@contextmanager
def fresh_schema(prefix: str = "t", url: str = PG_URL) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema, dropped afterwards: tests
    share the server's ``test`` database without seeing each other's tables. ``url`` may name
    another driver (Rasa's env has psycopg2 and SQLAlchemy 1.4, so no askagency.db here)."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(url)
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL is unreachable at {PG_URL}: {exc.orig}")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def migrated_pg_session(prefix: str) -> Iterator[Any]:
    """A SQLAlchemy session on a fresh PostgreSQL schema migrated to head (app env only: it
    uses askagency's migrations), disposed and dropped afterwards."""
    from sqlalchemy.orm import Session

    from askagency.db import make_engine
    from askagency.migrate import upgrade

    with fresh_schema(prefix) as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                yield session
        finally:
            engine.dispose()
