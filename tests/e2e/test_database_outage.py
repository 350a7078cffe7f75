"""The application database goes away mid-conversation and comes back: nothing is lost.

A stack of its own (the real Rasa server, action server, analytics consumer and console) whose
application database is a fresh PostgreSQL database reached through a TCP forwarder run by this
test. Cutting the forwarder (listener closed, every forwarded connection aborted) is a database
outage as the processes see it, without touching the shared PostgreSQL server. While it is cut a
citizen asks something the bot cannot answer, asks for a person and writes twice more, over the
real REST webhook; the action server's ``/ready`` reports the outage and the spooled writes.
Once the forwarder is back, within a bounded wait and with no restart, the unanswered question
and the ticket (with both citizen messages in order) are in the database and the console API,
and the spool is empty.

Skips with the reason when PostgreSQL is unreachable, unless CI is set.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from askagency.bot_messages import MessageType
from askagency.db import make_engine
from askagency.launcher import Stack
from askagency.ports import free_port
from bench.throwaway import stack_config
from tests.services import PG_URL, pg_admin, require_postgres
from tests.stack import ConsoleClient, RestClient, cli, custom_of, ensure_rasa_model

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "outage agent password"
UNANSWERABLE = "how many moons does jupiter have"
FOLLOW_UPS = ("my flight leaves at 6 tomorrow", "I am at gate B12 now")
RECOVERY_TIMEOUT_S = 60.0


class TcpForwarder:
    """127.0.0.1:<port> -> the database server, on an event loop of its own (a thread).

    ``cut()`` closes the listener and aborts every forwarded connection: new connections are
    refused and open ones break, which is what a stopped database server looks like to a
    client. ``restore()`` listens on the same port again.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.transports: set[asyncio.BaseTransport] = set()

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def start(self) -> None:
        self.thread.start()
        self.restore()

    def restore(self) -> None:
        async def listen() -> None:
            if self.server is None:  # idempotent: restoring twice is harmless
                self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        self._run(listen())

    def cut(self) -> None:
        async def close() -> None:
            if self.server is not None:
                self.server.close()
                self.server = None
            for transport in list(self.transports):
                transport.abort()
            self.transports.clear()

        self._run(close())

    def stop(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.transports.update({writer.transport, up_writer.transport})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.transports.difference_update({writer.transport, up_writer.transport})


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (loopback)
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@dataclass
class OutageStack:
    stack: Stack
    forwarder: TcpForwarder
    direct_url: str  # the database without the forwarder, for the test's own checks
    console: ConsoleClient

    @property
    def action_ready(self) -> str:
        return f"http://127.0.0.1:{self.stack.cfg.action_port}/ready"


@pytest.fixture(scope="module")
def outage_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutageStack]:
    server = make_url(PG_URL)
    require_postgres()
    database = f"askagency_outage_{uuid.uuid4().hex[:8]}"
    direct_url = server.set(database=database).render_as_string(hide_password=False)
    forwarder = TcpForwarder(server.host or "127.0.0.1", server.port or 5432)
    app_url = server.set(database=database, host="127.0.0.1", port=forwarder.port).render_as_string(
        hide_password=False
    )
    pg_admin(f'CREATE DATABASE "{database}"')
    forwarder.start()
    data_dir = tmp_path_factory.mktemp("askagency-outage")
    try:
        env = {"ASKAGENCY_DATA_DIR": str(data_dir), "ASKAGENCY_DATABASE_URL": app_url}
        cli(data_dir, "kb", "load-sample", env=env)
        cli(data_dir, "kb", "build-index", env=env)
        cli(
            data_dir,
            "users",
            "create",
            "olga",
            "--role",
            "agent",
            "--display-name",
            "Agent Olga",
            env={**env, "ASKAGENCY_NEW_PASSWORD": PASSWORD},
        )
        cfg = stack_config(
            data_dir,
            model_path=ensure_rasa_model(),
            extra_env={
                "ASKAGENCY_DATABASE_URL": app_url,
                "ASKAGENCY_SPOOL_RETRY_SECONDS": "1",
            },
        )
        with Stack(cfg) as stack:
            console = ConsoleClient(cfg.console_url)
            console.login("olga", PASSWORD)
            yield OutageStack(stack, forwarder, direct_url, console)
    finally:
        forwarder.stop()
        pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s (last: {last!r})")


def _stored(direct_url: str, sender: str) -> dict[str, Any]:
    from handoff.models import Ticket, TicketMessage
    from knowledge_base.unanswered import UnansweredQuestion

    engine = make_engine(direct_url)
    try:
        with Session(engine) as session:
            questions = session.scalars(
                select(UnansweredQuestion.text).where(UnansweredQuestion.text == UNANSWERABLE)
            ).all()
            ticket = session.scalar(select(Ticket).where(Ticket.conversation_id == sender))
            messages = (
                session.scalars(
                    select(TicketMessage.text)
                    .where(TicketMessage.ticket_id == ticket.id)
                    .order_by(TicketMessage.id)
                ).all()
                if ticket
                else []
            )
            return {
                "questions": list(questions),
                "ticket": None if ticket is None else (ticket.id, ticket.reason, ticket.status),
                "messages": list(messages),
            }
    finally:
        engine.dispose()


def test_writes_during_a_database_outage_arrive_when_it_is_back(
    outage_stack: OutageStack,
) -> None:
    env = outage_stack
    rest = RestClient(env.stack.cfg.rasa_url)
    sender = f"outage-{uuid.uuid4().hex[:10]}"
    status, body = get_json(env.action_ready)
    assert status == 200 and body["spool"]["pending"] == 0, body

    env.forwarder.cut()
    try:
        fallback = custom_of(rest.send(sender, UNANSWERABLE, language="en"))
        assert (
            fallback[0]["type"] == MessageType.FALLBACK
            and fallback[0]["reason"] == "low_confidence"
        )

        replies = rest.send(sender, "/ask_human")
        assert len(replies) == 1, replies
        handoff = replies[0]["custom"]
        assert handoff["type"] == MessageType.HANDOFF and handoff["queued"] is True, handoff
        assert "ticket_id" not in handoff and handoff["reason"] == "low_confidence"
        assert "passed your conversation to our team" in replies[0]["text"]

        for message in FOLLOW_UPS:  # with the team now: relayed (spooled), no bot reply
            assert rest.send(sender, message) == [], message

        status, body = get_json(env.action_ready)
        assert status == 503 and body["status"] == "not_ready", body
        assert body["database"]["ok"] is False
        assert body["database"]["error"].startswith("database unavailable")
        assert body["spool"]["pending"] >= 4, body  # question, ticket, two messages
        assert body["spool"]["database_down_since"] is not None
        assert body["index"]["ok"] is True  # questions are still answered
        assert _stored(env.direct_url, sender)["ticket"] is None  # read past the forwarder
    finally:
        env.forwarder.restore()

    started = time.monotonic()

    def recovered() -> dict[str, Any] | None:
        status, body = get_json(env.action_ready)
        return body if status == 200 and body["spool"]["pending"] == 0 else None

    _wait_for(recovered, RECOVERY_TIMEOUT_S, "the spool replayed and the action server ready")
    recovery_s = time.monotonic() - started
    stored = _stored(env.direct_url, sender)
    assert stored["questions"] == [UNANSWERABLE], stored
    assert stored["ticket"] is not None and stored["ticket"][1:] == ("low_confidence", "waiting")
    assert stored["messages"] == list(FOLLOW_UPS), stored

    # Staff see the same through the console API, and the alert is gone.
    status, listing = env.console.call("GET", "/api/tickets")
    assert status == 200, listing
    tickets = [t for t in listing["tickets"] if t["conversation_id"] == sender]
    assert len(tickets) == 1, listing
    status, detail = env.console.call("GET", f"/api/tickets/{tickets[0]['id']}")
    assert status == 200
    citizen = [m["text"] for m in detail["messages"] if m["direction"] == "citizen"]
    assert citizen == list(FOLLOW_UPS)
    status, health = env.console.call("GET", "/api/health/spool")
    assert status == 200 and health["ok"] is True and health["pending"] == 0, health

    log = env.stack.log_path("actions").read_text(errors="replace")
    assert log.count("database down, spooling") == 1, log[-3000:]
    assert "database back, replayed" in log
    # The conversation goes on with the ticket: the next message is relayed at once.
    assert rest.send(sender, "thank you") == []
    assert _stored(env.direct_url, sender)["messages"][-1] == "thank you"
    print(f"recovery after restore: {recovery_s:.1f} s")


def test_forwarder_really_cuts(outage_stack: OutageStack) -> None:
    """The fault is real: through the forwarder an open connection breaks and nothing new
    connects while it is cut; afterwards it connects again."""
    url = make_url(outage_stack.direct_url).set(host="127.0.0.1", port=outage_stack.forwarder.port)
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            outage_stack.forwarder.cut()
            with pytest.raises(OperationalError):
                conn.execute(text("SELECT 1"))
        with pytest.raises(OperationalError), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        outage_stack.forwarder.restore()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        outage_stack.forwarder.restore()
        engine.dispose()
