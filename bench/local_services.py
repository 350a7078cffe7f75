"""The local PostgreSQL and RabbitMQ that the scale benchmark and the scale-profile tests use.

Shared by bench/ and tests/ (tests/services.py adds the skip-or-fail rule for an absent
service); the benchmarks import no test code. Imports only ``os`` at module level, so the Rasa
environment's tests (Python 3.10, no project dependencies) can use it too.
"""

from __future__ import annotations

import os

PG_URL = os.environ.get(
    "ASKAGENCY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
AMQP_URL = os.environ.get("ASKAGENCY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


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


def exchange_for(queue: str) -> str:
    """The fanout exchange of a test's or benchmark's own queue: every queue bound to an exchange
    gets all its events, so a throw-away stack bound to Rasa's default one would receive (and
    count) the events of any other stack running beside it."""
    return f"{queue}.events"


def delete_queue(queue: str, url: str = AMQP_URL) -> None:
    """Removes a RabbitMQ queue a test or benchmark declared for itself, and its exchange."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.queue_delete(queue=queue)
        channel.exchange_delete(exchange=exchange_for(queue))
    finally:
        connection.close()
