"""Scale profile: Rasa's pika event broker -> RabbitMQ -> analytics consumer -> PostgreSQL, on the
real services at 127.0.0.1 (guest/guest RabbitMQ, PostgreSQL database ``test``).

Each test uses its own queue and its own PostgreSQL schema (and, for Rasa's tracker store, its
own database) and removes them afterwards. When a service is unreachable the tests skip with
the reason, unless CI is set: then they fail, because the scale profile must be tested.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from analytics.dashboard import compute_dashboard
from analytics.metrics import Assumptions
from analytics.models import (
    AnalyticsConversation,
    AnalyticsEvent,
    AnalyticsRejectedEvent,
    AnalyticsTurn,
)
from analytics.sources import RabbitEventSource, declare_queue
from askagency.bot_messages import MessageType
from askagency.config import DEFAULT_AMQP_EXCHANGE, PROJECT_ROOT
from askagency.db import make_engine
from askagency.launcher import OFFLINE_ENV, RASA_VENV, http_ok
from askagency.migrate import upgrade
from askagency.ports import free_port
from tests.services import AMQP_URL, PG_URL, delete_queue, exchange_for, fresh_schema, unavailable
from tests.stack import ensure_rasa_model, signed_body
from tests.unit.analytics.test_scenario import (
    SCENARIO_FILTER,
    assert_scenario_human_times,
    assert_scenario_sentiment,
    assert_scenario_summary,
    scenario_events,
    seed_locations,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database URL whose search_path is a fresh schema, dropped afterwards."""
    with fresh_schema("analytics") as url:
        upgrade(url)
        yield url


@contextmanager
def amqp_channel() -> Iterator[Any]:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        yield connection.channel()
    finally:
        connection.close()


@pytest.fixture
def queue() -> Iterator[str]:
    """A fresh durable queue bound to an exchange of its own (``exchange_for``), as a deployment's
    ``amqp_exchange`` setting binds it; both deleted afterwards. On Rasa's default exchange it
    would also get the events of any stack running beside the test."""
    name = f"askagency_test_{uuid.uuid4().hex[:10]}"
    try:
        with amqp_channel() as channel:
            declare_queue(channel, name, exchange_for(name))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "unreachable"
        unavailable(f"RabbitMQ at {AMQP_URL.split('@')[-1]} is unreachable: {exc!r}")
    try:
        yield name
    finally:
        delete_queue(name)


def publish(queue: str, events: list[dict[str, Any]]) -> None:
    """Publishes like Rasa's pika broker: JSON body, persistent, straight to the queue."""
    import pika

    with amqp_channel() as channel:
        for event in events:
            channel.basic_publish(
                exchange="",
                routing_key=queue,
                body=json.dumps(event).encode(),
                properties=pika.BasicProperties(delivery_mode=2, app_id="test"),
            )


def queue_depth(queue: str) -> int:
    with amqp_channel() as channel:
        return int(
            channel.queue_declare(queue=queue, durable=True, passive=True).method.message_count
        )


def counts(url: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return tuple(  # type: ignore[return-value]
                session.scalar(select(func.count()).select_from(model))
                for model in (AnalyticsEvent, AnalyticsConversation, AnalyticsTurn)
            )
    finally:
        engine.dispose()


def relevant(events: list[dict[str, Any]]) -> int:
    """Events the analytics store (actions, slots ... are read and skipped)."""
    return sum(1 for e in events if e["event"] in ("user", "bot", "session_started", "restart"))


def health(port: int) -> dict[str, Any]:
    if not http_ok(f"http://127.0.0.1:{port}/health"):
        return {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        return json.loads(resp.read())


class ConsumerProcess:
    def __init__(self, db_url: str, queue: str, log: Path, batch_size: int = 7) -> None:
        self.port = free_port()
        self.log = log
        env = {
            **os.environ,
            **OFFLINE_ENV,
            "ASKAGENCY_DATABASE_URL": db_url,
            "ASKAGENCY_AMQP_URL": AMQP_URL,
            "ASKAGENCY_AMQP_QUEUE": queue,
            "ASKAGENCY_AMQP_EXCHANGE": exchange_for(queue),
            "ASKAGENCY_ANALYTICS_BATCH_SIZE": str(batch_size),
            "ASKAGENCY_ANALYTICS_POLL_SECONDS": "0.3",
        }
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "analytics.consumer",
                    "--source",
                    "rabbitmq",
                    "--health-port",
                    str(self.port),
                ],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_until(self, condition: Callable[[dict[str, Any]], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"consumer exited: {self.log.read_text()[-3000:]}")
            status = health(self.port)
            if status and condition(status):
                return
            time.sleep(0.2)
        raise AssertionError(f"consumer status {status}; log: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def dashboard(url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return compute_dashboard(session, SCENARIO_FILTER, Assumptions(6.0, 37.5))
    finally:
        engine.dispose()


def test_consumer_survives_a_crash_and_redeliveries(
    pg_url: str, queue: str, tmp_path: Path
) -> None:
    events = scenario_events()
    half = len(events) // 2
    engine = make_engine(pg_url)
    try:
        with Session(engine) as session:
            seed_locations(session)  # the agency's list, before any event arrives
            session.commit()
    finally:
        engine.dispose()
    publish(queue, events[:half])
    consumer = ConsumerProcess(pg_url, queue, tmp_path / "consumer.log")
    try:
        consumer.wait_until(lambda s: s["events_received"] >= half)
        assert queue_depth(queue) == 0
        consumer.kill()  # a crash: no clean shutdown
        # While it is down, Rasa goes on publishing; a redelivery repeats ten old events.
        publish(queue, events[half:] + events[:10])
        assert queue_depth(queue) == len(events) - half + 10
        consumer = ConsumerProcess(pg_url, queue, tmp_path / "consumer.log")
        consumer.wait_until(lambda s: s["events_received"] == len(events) - half + 10)
        assert queue_depth(queue) == 0
        status = health(consumer.port)
        assert status["duplicates"] == relevant(events[:10]) and status["rejected"] == 0
        assert status["events_stored"] == relevant(events[half:])
    finally:
        consumer.stop()
    d = dashboard(pg_url)
    assert_scenario_summary(d)
    assert_scenario_human_times(d)  # from the handoff events: no ticket rows in this schema
    assert_scenario_sentiment(d)  # scored by the consumer process
    # Locations through the real consumer: A's page (DEN), C's words (MIA), D's channel (ORD).
    assert {b.key: b.conversations for b in d.by_location} == {
        "DEN": 2,
        "MIA": 1,
        "ORD": 1,
        "unknown": 2,
    }
    stored = counts(pg_url)
    publish(queue, events)  # the whole stream again
    consumer = ConsumerProcess(pg_url, queue, tmp_path / "consumer.log", batch_size=500)
    try:
        consumer.wait_until(lambda s: s["events_received"] == len(events))
    finally:
        consumer.stop()
    assert counts(pg_url) == stored
    assert dashboard(pg_url).model_dump() == d.model_dump()


def test_a_poison_event_does_not_stall_the_queue(pg_url: str, queue: str, tmp_path: Path) -> None:
    """Review finding M5, end to end: the review's payloads (an 80-character input_channel, a NUL
    in the text) used to fail every insert of their batch, and the consumer retried that batch
    forever while the queue grew. Now they are stored cleaned, every later event arrives, the
    queue drains, and an event PostgreSQL refuses anyway (a CHECK constraint stands in for what
    nobody foresaw) is quarantined alone."""
    engine = make_engine(pg_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "ALTER TABLE analytics_event ADD CONSTRAINT no_poison "
                    "CHECK (text IS NULL OR text NOT LIKE '%poison pill%')"
                )
            )
    finally:
        engine.dispose()
    base = {"event": "user", "timestamp": 1_800_000_000.0, "parse_data": {}, "metadata": {}}
    poison = [
        {**base, "sender_id": "poison-1", "text": "hello", "input_channel": "c" * 80},
        {**base, "sender_id": "poison-2", "text": "hello\u0000world", "input_channel": "rest"},
        {**base, "sender_id": "poison-3", "text": "a poison pill", "input_channel": "rest"},
    ]
    events = scenario_events()
    publish(queue, poison + events)
    consumer = ConsumerProcess(pg_url, queue, tmp_path / "consumer.log", batch_size=50)
    try:
        consumer.wait_until(lambda s: s["events_received"] == len(poison) + len(events))
        assert queue_depth(queue) == 0
        status = health(consumer.port)
        assert status["rejected"] == 1 and status["last_error"] is None
    finally:
        consumer.stop()
    assert "batch failed" not in (tmp_path / "consumer.log").read_text()
    engine = make_engine(pg_url)
    try:
        with Session(engine) as session:
            channels = dict(
                session.execute(
                    select(AnalyticsConversation.sender_id, AnalyticsConversation.channel)
                ).all()
            )
            assert channels["poison-1"] == "c" * 64 and "poison-2" in channels
            assert "poison-3" not in channels
            (rejected,) = session.scalars(select(AnalyticsRejectedEvent)).all()
            assert "no_poison" in rejected.error and "poison-3" in rejected.raw
    finally:
        engine.dispose()
    assert_scenario_summary(dashboard(pg_url))  # the events after the poison all counted


def test_uncommitted_batch_goes_back_to_the_queue(pg_url: str, queue: str) -> None:
    events = scenario_events()[:20]
    publish(queue, events)
    source = RabbitEventSource(AMQP_URL, queue, batch_size=50, exchange=exchange_for(queue))
    engine = make_engine(pg_url)

    @contextmanager
    def failing_session() -> Iterator[Session]:
        with Session(engine) as session:
            yield session
            raise OperationalError("COMMIT", {}, Exception("database went away"))

    @contextmanager
    def session_scope() -> Iterator[Session]:
        with Session(engine) as session:
            yield session
            session.commit()

    try:
        with pytest.raises(OperationalError):
            source.poll_once(failing_session, wait_seconds=1.0)
        assert counts(pg_url) == (0, 0, 0)
        deadline = time.monotonic() + 20
        while queue_depth(queue) != len(events) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert queue_depth(queue) == len(events)  # handed back, nothing lost
        result = source.poll_once(session_scope, wait_seconds=1.0)
        assert result.received == len(events) and result.rejected == 0
        assert counts(pg_url)[0] == result.stored > 0
    finally:
        source.close()
        engine.dispose()


@pytest.fixture
def rasa_database() -> Iterator[str]:
    """A PostgreSQL database for Rasa's tracker store, dropped afterwards."""
    admin = make_engine(PG_URL.rsplit("/", 1)[0] + "/postgres").execution_options(
        isolation_level="AUTOCOMMIT"
    )
    name = f"askagency_rasa_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL at {PG_URL} is unreachable: {exc.orig}")
    try:
        yield name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_rasa_pika_broker_feeds_postgres(
    pg_url: str, queue: str, rasa_database: str, tmp_path: Path
) -> None:
    """The real Rasa server with bot/endpoints.scale.yml publishes to our queue."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(16).startswith(b"+PONG")
    except (OSError, AssertionError) as exc:
        unavailable(
            f"Redis (the scale profile's lock store) is unreachable at 127.0.0.1:6379: {exc!r}"
        )
    model = ensure_rasa_model()
    port = free_port()
    pg = PG_URL.split("://", 1)[1]
    pg_user, pg_hostport = pg.split("@")[0], pg.split("@")[1].split("/")[0]
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "PYTHONPATH": str(PROJECT_ROOT),
        "ASKAGENCY_ACTION_URL": f"http://127.0.0.1:{free_port()}/webhook",
        "ASKAGENCY_ACTION_SECRET": "not-used-no-action-server-here",
        "ASKAGENCY_PG_HOST": pg_hostport.split(":")[0],
        "ASKAGENCY_PG_PORT": pg_hostport.split(":")[1] if ":" in pg_hostport else "5432",
        "ASKAGENCY_PG_DB": rasa_database,
        "ASKAGENCY_PG_USER": pg_user.split(":")[0],
        "ASKAGENCY_PG_PASSWORD": pg_user.split(":")[1] if ":" in pg_user else "",
        "ASKAGENCY_REDIS_HOST": "127.0.0.1",
        "ASKAGENCY_REDIS_PORT": "6379",
        "ASKAGENCY_RABBITMQ_HOST": "127.0.0.1",
        "ASKAGENCY_RABBITMQ_PORT": "5672",
        "ASKAGENCY_RABBITMQ_USER": "guest",
        "ASKAGENCY_RABBITMQ_PASSWORD": "guest",
        "ASKAGENCY_AMQP_QUEUE": queue,
        "ASKAGENCY_AMQP_EXCHANGE": exchange_for(queue),
    }
    log = tmp_path / "rasa.log"
    with open(log, "wb") as out:
        rasa = subprocess.Popen(
            [
                str(RASA_VENV / "bin" / "rasa"),
                "run",
                "--enable-api",
                "--auth-token",
                "scale-token",
                "--interface",
                "127.0.0.1",
                "--port",
                str(port),
                "--credentials",
                str(PROJECT_ROOT / "bot" / "credentials.yml"),
                "--endpoints",
                str(PROJECT_ROOT / "bot" / "endpoints.scale.yml"),
                "--model",
                str(model),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    consumer = ConsumerProcess(pg_url, queue, tmp_path / "consumer.log")
    try:
        deadline = time.monotonic() + 240
        while not http_ok(f"http://127.0.0.1:{port}/") and time.monotonic() < deadline:
            assert rasa.poll() is None, log.read_text()[-4000:]
            time.sleep(0.5)
        assert http_ok(f"http://127.0.0.1:{port}/"), log.read_text()[-4000:]
        engine = make_engine(pg_url)
        try:
            with Session(engine) as session:
                seed_locations(session)
                session.commit()
        finally:
            engine.dispose()
        senders = [f"scale-{uuid.uuid4().hex[:6]}" for _ in range(3)]
        # The widget's data-location travels through Rasa and the broker: a page's code, a
        # forged code, and none.
        pages = dict(zip(senders, ("den", "ZZZ", None), strict=True))
        for sender in senders:
            metadata = {"language": "en", **({"location": pages[sender]} if pages[sender] else {})}
            body = json.dumps(signed_body(sender, "hello", metadata=metadata))
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                data=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=60) as resp:
                replies = json.loads(resp.read())
            assert replies and replies[0]["custom"]["type"] == MessageType.GREETING
        consumer.wait_until(lambda s: s["events_stored"] >= 3 * 3, timeout=60)
        engine = make_engine(pg_url)
        try:
            with Session(engine) as session:
                conversations = session.scalars(select(AnalyticsConversation)).all()
                assert sorted(c.sender_id for c in conversations) == sorted(senders)
                located = {c.sender_id: c.location for c in conversations}
                assert [located[s] for s in senders] == ["DEN", "unknown", "unknown"]
                turns = session.scalars(select(AnalyticsTurn)).all()
                assert [t.outcome for t in turns] == ["control"] * 3
                assert all(t.channel == "rest" and 0 < t.response_ms < 5000 for t in turns)
        finally:
            engine.dispose()
    finally:
        consumer.stop()
        if rasa.poll() is None:
            os.killpg(rasa.pid, signal.SIGTERM)
            try:
                rasa.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(rasa.pid, signal.SIGKILL)
                rasa.wait(10)


def test_a_deployment_gets_only_its_own_exchanges_events(queue: str) -> None:
    """Two deployments on one RabbitMQ, each with its ``amqp_exchange``: what Rasa publishes to
    one's fanout exchange never reaches the other's queue. With both on Rasa's default exchange,
    a consumer stored the other's conversations as its own (seen when two test stacks ran side
    by side: a queue name of one's own is not enough)."""
    import pika

    other = f"{queue}_other"
    mine = RabbitEventSource(AMQP_URL, queue, batch_size=10, exchange=exchange_for(queue))
    theirs = RabbitEventSource(AMQP_URL, other, batch_size=10, exchange=exchange_for(other))
    try:
        mine.fetch(0.1)
        theirs.fetch(0.1)  # both queues and exchanges declared, as each consumer does
        with amqp_channel() as channel:
            for event in scenario_events()[:3]:
                channel.basic_publish(  # how Rasa's pika broker publishes: to the exchange
                    exchange=exchange_for(queue),
                    routing_key="",
                    body=json.dumps(event).encode(),
                    properties=pika.BasicProperties(delivery_mode=2),
                )
        assert len(mine.fetch(2.0)) == 3
        assert theirs.fetch(0.5) == []
        assert queue_depth(other) == 0
    finally:
        mine.close()
        theirs.close()
        delete_queue(other)


def test_the_exchange_matches_rasas() -> None:
    from importlib.util import find_spec

    assert find_spec("pika") is not None
    # rasa.core.brokers.pika.RABBITMQ_EXCHANGE, read from the Rasa venv's source.
    source = next((PROJECT_ROOT / ".venv-rasa" / "lib").glob("python3*/site-packages/rasa"))
    pika_broker = (source / "core" / "brokers" / "pika.py").read_text()
    assert f'RABBITMQ_EXCHANGE = "{DEFAULT_AMQP_EXCHANGE}"' in pika_broker
    assert "ExchangeType.FANOUT" in pika_broker and "durable=True" in pika_broker
