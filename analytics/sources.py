"""Where Rasa's events come from: the SQL event broker's table, or a RabbitMQ queue.

Both sources hand batches of ``(position, payload)`` to :func:`analytics.ingest.ingest` and
only acknowledge them after the batch's transaction committed:

* SQL broker (embedded profile): Rasa appends rows to an ``events`` table with an autoincrement
  id. The consumer remembers the last id in ``analytics_checkpoint``, updated in the same
  transaction as the rows it produced, so a crash re-reads at most an uncommitted batch.
* RabbitMQ (scale profile, Rasa's ``pika`` broker): Rasa publishes to a fanout exchange bound to
  durable queues. Messages are acknowledged after the commit; a crash before that redelivers
  them, and the natural keys make the redelivery a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from analytics.ingest import IngestResult, RawEvent, ingest
from analytics.models import AnalyticsCheckpoint
from askagency.clock import now_utc
from askagency.config import DEFAULT_AMQP_EXCHANGE

log = logging.getLogger(__name__)


class SourceUnavailable(RuntimeError):
    """The source cannot be read right now (file not created yet, broker down)."""


def _checkpoint(session: Session, source: str) -> AnalyticsCheckpoint:
    row = session.get(AnalyticsCheckpoint, source)
    if row is None:
        row = AnalyticsCheckpoint(source=source, position=0, events_seen=0)
        session.add(row)
        session.flush()
    return row


def checkpoint_position(session: Session, source: str) -> int:
    row = session.get(AnalyticsCheckpoint, source)
    return 0 if row is None else int(row.position)


# --- Rasa's SQL event broker -----------------------------------------------------------------


class SqlEventSource:
    """Reads Rasa's SQL event broker table (``events``: id, sender_id, data) by id."""

    def __init__(self, url: str, batch_size: int = 500) -> None:
        self.url = url
        self.batch_size = batch_size
        self.name = f"sql:{url}"
        self._engine: Engine | None = None

    @classmethod
    def for_file(cls, path: Path, batch_size: int = 500) -> SqlEventSource:
        return cls(f"sqlite:///{path}", batch_size)

    def _connect(self) -> Engine:
        if self.url.startswith("sqlite:///"):
            path = Path(self.url.removeprefix("sqlite:///"))
            if not path.exists():
                raise SourceUnavailable(f"{path} does not exist yet (Rasa creates it on start)")
        if self._engine is None:
            if self.url.startswith("sqlite"):
                # No pooling: a connection kept open would go on reading a deleted broker file
                # after Rasa recreated it; opening a SQLite file per batch costs microseconds.
                self._engine = create_engine(
                    self.url, connect_args={"timeout": 30}, poolclass=NullPool
                )
            else:
                self._engine = create_engine(self.url, pool_pre_ping=True)
        return self._engine

    def read(self, after: int, limit: int | None = None) -> list[tuple[int, str]]:
        """Rows with id > ``after`` in id order."""
        engine = self._connect()
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT id, data FROM events WHERE id > :after ORDER BY id LIMIT :n"),
                    {"after": after, "n": limit or self.batch_size},
                ).all()
                if not rows and after > 0:
                    newest = connection.execute(text("SELECT MAX(id) FROM events")).scalar()
                    if newest is not None and newest < after:
                        # The broker table was recreated (ids restarted). Re-reading from the
                        # start is safe: already-stored events are recognised by their key.
                        log.warning("events table restarted (max id %s < %s)", newest, after)
                        return self.read(0, limit)
        except (OperationalError, ProgrammingError) as exc:
            if "no such table" in str(exc) or "does not exist" in str(exc):
                raise SourceUnavailable(f"no events table in {self.url} yet") from exc
            raise
        return [(int(r[0]), r[1]) for r in rows]

    def poll_once(self, session: Session) -> IngestResult:
        """Ingests one batch and moves the checkpoint, in the caller's transaction."""
        checkpoint = _checkpoint(session, self.name)
        rows = self.read(int(checkpoint.position))
        if not rows:
            return IngestResult()
        result = ingest(session, [(str(i), data) for i, data in rows], self.name)
        checkpoint.position = rows[-1][0]
        checkpoint.events_seen += len(rows)
        checkpoint.updated_at = now_utc()
        return result

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


# --- RabbitMQ (Rasa's pika broker) -------------------------------------------------------------


@dataclass
class PendingMessage:
    delivery_tag: int
    body: bytes


def declare_queue(channel: Any, queue: str, exchange: str = DEFAULT_AMQP_EXCHANGE) -> None:
    """Declares what Rasa's pika broker declares (a fanout exchange, a durable queue bound to it)
    with the same arguments, so whichever of Rasa and the consumer starts first, both agree."""
    channel.exchange_declare(exchange=exchange, exchange_type="fanout", durable=False)
    channel.queue_declare(queue=queue, durable=True)
    channel.queue_bind(queue=queue, exchange=exchange, routing_key="")


class RabbitEventSource:
    """Consumes a durable RabbitMQ queue that Rasa's pika event broker publishes to."""

    def __init__(
        self,
        amqp_url: str,
        queue: str,
        batch_size: int = 500,
        exchange: str = DEFAULT_AMQP_EXCHANGE,
    ) -> None:
        self.amqp_url = amqp_url
        self.queue = queue
        self.batch_size = batch_size
        self.exchange = exchange
        self.name = f"amqp:{queue}"
        self._connection: Any = None
        self._channel: Any = None

    def _connect(self) -> Any:
        import pika
        from pika.exceptions import AMQPError

        if self._channel is not None and self._channel.is_open:
            return self._channel
        self.close()
        try:
            params = pika.URLParameters(self.amqp_url)
            params.heartbeat = 60
            params.blocked_connection_timeout = 30
            self._connection = pika.BlockingConnection(params)
            channel = self._connection.channel()
            declare_queue(channel, self.queue, self.exchange)
            channel.basic_qos(prefetch_count=self.batch_size)
        except (AMQPError, OSError) as exc:
            self.close()
            raise SourceUnavailable(f"RabbitMQ at {_safe_url(self.amqp_url)}: {exc!r}") from exc
        self._channel = channel
        return channel

    def fetch(self, wait_seconds: float) -> list[PendingMessage]:
        """Up to one batch of messages; returns early when none arrive for ``wait_seconds``."""
        from pika.exceptions import AMQPError

        channel = self._connect()
        messages: list[PendingMessage] = []
        try:
            for method, _props, body in channel.consume(
                self.queue, inactivity_timeout=wait_seconds
            ):
                if method is None:
                    break
                messages.append(PendingMessage(method.delivery_tag, body))
                if len(messages) >= self.batch_size:
                    break
        except (AMQPError, OSError) as exc:
            self.close()
            raise SourceUnavailable(f"RabbitMQ connection lost: {exc!r}") from exc
        return messages

    def ack(self, messages: list[PendingMessage]) -> None:
        if messages:
            self._channel.basic_ack(delivery_tag=messages[-1].delivery_tag, multiple=True)

    def poll_once(
        self,
        session_factory: Callable[[], Any],
        wait_seconds: float,
    ) -> IngestResult:
        """Fetch a batch, ingest it in one transaction (with the checkpoint), then ack."""
        messages = self.fetch(wait_seconds)
        if not messages:
            return IngestResult()
        items: list[RawEvent] = [(None, m.body) for m in messages]
        try:
            with session_factory() as session:
                result = ingest(session, items, self.name)
                checkpoint = _checkpoint(session, self.name)
                checkpoint.position += len(messages)
                checkpoint.events_seen += len(messages)
                checkpoint.updated_at = now_utc()
        except BaseException:
            # Not committed: dropping the connection hands the messages back to the queue.
            self.close()
            raise
        # Committed: only now may RabbitMQ forget the messages.
        self.ack(messages)
        return result

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection must not raise
                log.debug("closing RabbitMQ connection failed", exc_info=True)


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def stored_checkpoints(session: Session) -> dict[str, int]:
    return {row.source: int(row.position) for row in session.scalars(select(AnalyticsCheckpoint))}
