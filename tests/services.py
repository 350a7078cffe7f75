"""The real local services the scale-profile tests use, and the one rule for an absent one.

Why one rule: PostgreSQL, Redis and RabbitMQ tests skip with the reason on a developer's machine
without them, but under CI (``CI`` set) an absent service is a failure: the scale profile must be
tested, not silently skipped. Imports only ``os`` and ``pytest`` at module level, so the Rasa
environment's tests can use it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest

PG_URL = os.environ.get(
    "ASKAGENCY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
AMQP_URL = os.environ.get("ASKAGENCY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


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


def pg_admin(sql: str, url: str = PG_URL) -> None:
    """Runs one statement outside a transaction (CREATE / DROP DATABASE)."""
    from sqlalchemy import text

    from askagency.db import make_engine

    engine = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
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


def delete_queue(queue: str, url: str = AMQP_URL) -> None:
    """Removes a RabbitMQ queue a test or benchmark declared for itself."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_delete(queue=queue)
    finally:
        connection.close()
