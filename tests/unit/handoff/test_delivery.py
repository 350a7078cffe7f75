"""The reply outbox: order per ticket, retry with bounded backoff while Rasa is down, proof of
delivery from the tracker, permanent errors, and the lease that keeps two workers apart.

Rasa is stood in for by a small aiohttp server speaking the ``trigger_intent`` API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from askagency.clock import FakeClock
from askagency.config import get_settings
from askagency.db import session_scope
from askagency.staff import Role
from handoff import delivery, service
from handoff.delivery import Backoff, DeliveryWorker, Sweep, WaitTimeout
from handoff.hours import build_hours
from handoff.models import Ticket, TicketMessage
from handoff.rasa_api import RasaClient
from tests.console_helpers import add_staff_account
from tests.fakes import FakeRasa


@pytest.fixture
async def rasa() -> AsyncIterator[tuple[FakeRasa, RasaClient]]:
    fake = FakeRasa("secret")
    async with TestServer(fake.app()) as server, aiohttp.ClientSession() as http:
        yield fake, RasaClient(http, str(server.make_url("")), "secret")


@pytest.fixture
def agents(db_url: str) -> list[int]:
    with session_scope() as session:
        return [add_staff_account(session, name, Role.AGENT.value) for name in ("ana", "ben")]


def worker(client: RasaClient, clock: FakeClock) -> DeliveryWorker:
    return DeliveryWorker(client, Backoff(1.0, 8.0), poll_s=0.01, clock=clock)


def ticket_with_replies(
    conversation: str, agents: list[int], texts: list[str], channel: str = ""
) -> int:
    with session_scope() as session:
        ticket = service.open_ticket(
            session, conversation_id=conversation, reason="requested", channel=channel
        )
        for i, text in enumerate(texts):
            service.add_agent_reply(session, ticket.ticket.id, agents[i % len(agents)], text)
        return ticket.ticket.id


def statuses(ticket_id: int) -> list[tuple[str, str | None, int]]:
    with session_scope() as session:
        rows = session.scalars(
            select(TicketMessage)
            .where(TicketMessage.ticket_id == ticket_id)
            .order_by(TicketMessage.id)
        )
        return [(m.text, m.delivery_status, m.attempts) for m in rows]


def test_backoff_is_exponential_and_bounded() -> None:
    backoff = Backoff(1.0, 30.0)
    assert [backoff.delay(n).total_seconds() for n in (1, 2, 3, 4, 5, 6, 60)] == [
        1,
        2,
        4,
        8,
        16,
        30,
        30,
    ]


async def test_two_agents_replies_are_delivered_in_creation_order(rasa, agents, clock) -> None:
    fake, client = rasa
    ticket_id = ticket_with_replies("conv-a", agents, ["first", "second", "third"])
    w = worker(client, clock)
    # One message per ticket per round: order can never be overtaken.
    assert await w.run_once() == 1
    assert await w.run_once() == 1
    assert await w.run_once() == 1
    assert await w.run_once() == 0
    assert [c[2]["handoff_text"] for c in fake.calls] == ["first", "second", "third"]
    assert [c[2]["handoff_agent"] for c in fake.calls] == ["Ana", "Ben", "Ana"]
    assert [s[1] for s in statuses(ticket_id)] == ["delivered"] * 3
    # A web conversation: pushed to its socket.io room, never "latest" (a client's choice).
    assert fake.output_channels == ["socketio"] * 3


async def test_replies_go_out_on_the_ticket_channel_only_when_the_id_matches(
    rasa, agents, clock
) -> None:
    """H1/H2: an ``sms`` ticket whose conversation is not ``sms-...`` (a REST client that
    claimed ``input_channel: sms``) never becomes a text message; a real one does."""
    fake, client = rasa
    spoofed = ticket_with_replies("447700900123", agents, ["hello"], channel="sms")
    squatter = ticket_with_replies("sms-15550009999", agents, ["hi"], channel="rest")
    real = ticket_with_replies("sms-15551234567", agents, ["hey"], channel="sms")
    w = worker(client, clock)
    assert await w.run_once() == 1
    assert fake.calls == [("sms-15551234567", "agent_message", fake.calls[0][2])]
    assert fake.output_channels == ["sms"]
    assert statuses(real) == [("hey", "delivered", 1)]
    for ticket_id in (spoofed, squatter):
        (row,) = statuses(ticket_id)
        assert row[1] == "failed"  # permanent: a retry cannot make the channel right
    with session_scope() as session:
        errors = session.scalars(
            select(TicketMessage.last_error).where(TicketMessage.ticket_id == spoofed)
        ).all()
    assert "not sent" in errors[0] and "sms" in errors[0]
    assert await w.run_once() == 0 and len(fake.calls) == 1


async def test_rasa_down_keeps_replies_pending_then_delivers(rasa, agents, clock) -> None:
    fake, client = rasa
    ticket_id = ticket_with_replies("conv-b", agents, ["hello", "are you there?"])
    w = worker(client, clock)
    fake.mode = "down"
    assert await w.run_once() == 0
    assert statuses(ticket_id) == [("hello", "pending", 1), ("are you there?", "pending", 0)]
    with session_scope() as session:
        first = session.scalars(select(TicketMessage).order_by(TicketMessage.id)).first()
        assert "503" in first.last_error
        assert first.next_attempt_at == clock.now + timedelta(seconds=1)
    # Not due yet: nothing is tried, and the second reply does not overtake the first.
    assert await w.run_once() == 0
    assert fake.calls == []
    clock.now += timedelta(seconds=1)
    assert await w.run_once() == 0  # second failure -> next try after 2 s
    with session_scope() as session:
        first = session.get(TicketMessage, first.id)
        assert first.attempts == 2 and first.next_attempt_at == clock.now + timedelta(seconds=2)
    fake.mode = "ok"
    clock.now += timedelta(seconds=2)
    assert await w.run_once() == 1
    assert await w.run_once() == 1
    assert [s[:2] for s in statuses(ticket_id)] == [
        ("hello", "delivered"),
        ("are you there?", "delivered"),
    ]


async def test_unreachable_rasa_is_a_retryable_error(agents, clock) -> None:
    ticket_id = ticket_with_replies("conv-c", agents, ["hello"])
    async with aiohttp.ClientSession() as http:
        w = worker(RasaClient(http, "http://127.0.0.1:9", "secret"), clock)
        assert await w.run_once() == 0
    with session_scope() as session:
        message = session.scalars(select(TicketMessage)).one()
        assert message.delivery_status == "pending" and "not reachable" in message.last_error
    assert statuses(ticket_id)[0][1] == "pending"


async def test_no_proof_of_delivery_is_a_failure(rasa, agents, clock) -> None:
    fake, client = rasa
    fake.mode = "silent"  # e.g. the action server was down: Rasa answers 200, sends nothing
    ticket_id = ticket_with_replies("conv-d", agents, ["hello"])
    assert await worker(client, clock).run_once() == 0
    with session_scope() as session:
        message = session.scalars(select(TicketMessage)).one()
        assert message.delivery_status == "pending"
        assert "no message was sent" in message.last_error
    assert statuses(ticket_id)[0][2] == 1


async def test_permanent_error_fails_and_can_be_retried(rasa, agents, clock) -> None:
    fake, client = rasa
    ticket_id = ticket_with_replies("conv-e", agents, ["hello"])
    fake.mode = "unauthorized"
    w = worker(client, clock)
    assert await w.run_once() == 0
    assert statuses(ticket_id)[0][1] == "failed"
    fake.mode = "ok"
    assert await w.run_once() == 0  # failed messages are not retried on their own
    with session_scope() as session:
        message_id = session.scalars(select(TicketMessage.id)).one()
        delivery.retry(session, message_id, clock.now)
    assert await w.run_once() == 1
    assert statuses(ticket_id)[0][1] == "delivered"


async def test_close_is_delivered_after_the_replies(rasa, agents, clock) -> None:
    fake, client = rasa
    ticket_id = ticket_with_replies("conv-f", agents, ["bye"])
    with session_scope() as session:
        service.close_ticket(session, ticket_id, resolved=True)
    w = worker(client, clock)
    while await w.run_once():
        pass
    assert [c[1] for c in fake.calls] == ["agent_message", "handoff_closed"]
    assert fake.calls[1][2]["handoff_resolved"] is True


def test_lease_keeps_a_second_worker_off(agents, clock) -> None:
    ticket_with_replies("conv-g", agents, ["hello"])
    now = clock.now
    with session_scope() as session:
        assert len(delivery.due_jobs(session, now)) == 1
    with session_scope() as session:
        assert delivery.due_jobs(session, now + timedelta(seconds=5)) == []
    with session_scope() as session:  # the holder died: the lease expires
        assert len(delivery.due_jobs(session, now + timedelta(seconds=61))) == 1


def _open(conversation: str) -> int:
    with session_scope() as session:
        return service.open_ticket(
            session, conversation_id=conversation, reason="requested", channel=""
        ).ticket.id


def _status(ticket_id: int) -> str:
    with session_scope() as session:
        return session.get(Ticket, ticket_id).status


async def test_waiting_tickets_time_out_in_staffed_time_and_the_citizen_is_told(
    rasa, agents, clock
) -> None:
    """Issue 21, item 3: a ticket nobody took closes after the configured staffed time (here
    60 minutes of mon-fri 09:00-17:00 UTC), so Friday's late ticket waits from Monday's
    opening; taken or answered tickets never time out; the hand-back says why."""
    fake, client = rasa
    clock.set(datetime(2026, 11, 27, 16, 30, tzinfo=UTC))  # a Friday, 30 minutes before closing
    late = _open("conv-late")
    taken = _open("conv-taken")
    answered = _open("conv-answered")
    with session_scope() as session:
        service.assign(session, taken, agents[0], by_user_id=agents[0])
        service.add_agent_reply(session, answered, agents[1], "On it")
    hours = build_hours("UTC", "mon-fri 09:00-17:00")
    w = DeliveryWorker(
        client,
        Backoff(1.0, 8.0),
        poll_s=0.01,
        clock=clock,
        sweep=Sweep(30, WaitTimeout(hours, after_s=3600)),
    )
    clock.set(datetime(2026, 11, 30, 9, 29, 50, tzinfo=UTC))  # Monday: 59:50 staffed so far
    assert await w.sweep() == []
    clock.advance(seconds=15)  # 60:05 staffed, but the last check was 15 s ago
    assert await w.sweep() == []
    clock.advance(seconds=15)
    assert await w.sweep() == [late]
    assert [_status(t) for t in (late, taken, answered)] == [
        "closed_unresolved",
        "assigned",
        "assigned",
    ]
    while await w.run_once():
        pass
    closes = [c for c in fake.calls if c[1] == "handoff_closed"]
    assert [c[0] for c in closes] == ["conv-late"]
    assert closes[0][2]["handoff_timed_out"] is True
    assert closes[0][2]["handoff_resolved"] is False
    clock.advance(minutes=5)
    assert await w.sweep() == []  # closed once


def test_a_second_sweeper_never_closes_a_ticket_twice(agents, clock) -> None:
    """Two console processes sweeping at once: the conditional UPDATE lets one close it."""
    ticket_id = _open("conv-twice")
    clock.advance(hours=2)
    hours = build_hours("UTC", "")
    with session_scope() as first, session_scope() as second:
        assert service.time_out_waiting(first, hours, 3600) == [ticket_id]
        first.commit()
        assert service.time_out_waiting(second, hours, 3600) == []
    with session_scope() as session:
        closes = session.scalars(
            select(TicketMessage).where(
                TicketMessage.ticket_id == ticket_id, TicketMessage.kind == "close"
            )
        ).all()
        assert [m.text for m in closes] == [service.TIMED_OUT_NOTE]


def test_the_timeout_is_off_at_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASKAGENCY_HANDOFF_WAIT_TIMEOUT_MIN", "0")
    get_settings.cache_clear()
    assert delivery.wait_timeout(get_settings()) is None
    monkeypatch.setenv("ASKAGENCY_HANDOFF_WAIT_TIMEOUT_MIN", "45")
    get_settings.cache_clear()
    configured = delivery.wait_timeout(get_settings())
    assert configured is not None and configured.after_s == 45 * 60


async def test_a_reply_the_platform_would_refuse_fails_at_once_with_the_reason(
    rasa, agents, clock
) -> None:
    """Messenger takes a person's reply up to 7 days after the citizen's last message, WhatsApp
    free-form text up to 24 hours (later only with a reply template): past that the reply is
    marked failed in the inbox with why, and Rasa is not asked. The citizen's last message is
    the latest one relayed to the ticket, else the handoff itself."""
    fake, client = rasa
    messenger = ticket_with_replies("messenger-42", agents, [], channel="messenger")
    whatsapp = ticket_with_replies("whatsapp-447700900123", agents, [], channel="whatsapp")
    with session_scope() as session:
        service.add_citizen_message(session, "messenger-42", "are you there?")
    clock.advance(days=8)
    with session_scope() as session:
        for ticket_id in (messenger, whatsapp):
            service.add_agent_reply(session, ticket_id, agents[0], "Sorry for the wait")
    w = worker(client, clock)
    assert await w.run_once() == 0
    assert fake.calls == []  # neither reached Rasa
    with session_scope() as session:
        failed = {
            m.ticket_id: m
            for m in session.scalars(
                select(TicketMessage).where(TicketMessage.text == "Sorry for the wait")
            )
        }
        assert {m.delivery_status for m in failed.values()} == {"failed"}
        assert "Messenger takes a person's reply up to 7 days" in failed[messenger].last_error
        assert "ASKAGENCY_WHATSAPP_REPLY_TEMPLATE_SID" in failed[whatsapp].last_error
        # The citizen writes again on Messenger; the agent presses Retry on both.
        service.add_citizen_message(session, "messenger-42", "hello again")
        for message in failed.values():
            delivery.retry(session, message.id)

    # With a reply template configured, the WhatsApp reply goes out too.
    templated = DeliveryWorker(
        client, Backoff(1.0, 8.0), poll_s=0.01, clock=clock, whatsapp_template=True
    )
    while await templated.run_once():
        pass
    assert sorted(c[0] for c in fake.calls) == ["messenger-42", "whatsapp-447700900123"]


async def test_a_refused_reply_says_the_citizen_left_a_contact(rasa, agents, clock) -> None:
    """Past Messenger's 7 days the reply fails; when the citizen left an e-mail address during
    the handoff, the error points the agent to it (the agent decides: nothing is sent to it)."""
    _fake, client = rasa
    with_contact = ticket_with_replies("messenger-7", agents, [], channel="messenger")
    without = ticket_with_replies("messenger-8", agents, [], channel="messenger")
    with session_scope() as session:
        service.add_citizen_message(session, "messenger-7", "or mail me at a@b.org")
    clock.advance(days=8)
    with session_scope() as session:
        for ticket_id in (with_contact, without):
            service.add_agent_reply(session, ticket_id, agents[0], "Here is your answer")
    assert await worker(client, clock).run_once() == 0
    with session_scope() as session:
        errors = {
            m.ticket_id: m.last_error
            for m in session.scalars(
                select(TicketMessage).where(TicketMessage.text == "Here is your answer")
            )
        }
    assert "Messenger takes a person's reply up to 7 days" in errors[with_contact]
    assert "The citizen left an e-mail address for a reply" in errors[with_contact]
    assert "nothing is sent to it automatically" in errors[with_contact]
    assert "a@b.org" not in errors[with_contact]  # the value stays on the ticket only
    assert "The citizen left" not in errors[without]
