"""Tickets: one open ticket per conversation (also enforced by the database), replies,
assignment, transfer, notes, closing, presence and availability."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from askagency.db import session_scope
from askagency.staff import Role
from handoff import service
from handoff.hours import build_hours
from handoff.models import Delivery, MessageKind, Ticket, TicketMessage
from tests.console_helpers import add_staff_account


@pytest.fixture
def people(db_url: str) -> dict[str, int]:
    """Accounts without a real password hash: these tests never log in (argon2 is slow)."""
    with session_scope() as session:
        return {
            name: add_staff_account(session, name, role.value)
            for name, role in (("ana", Role.AGENT), ("ben", Role.AGENT), ("ed", Role.EDITOR))
        }


def open_one(conversation: str = "c1", reason: str = "low_confidence", **kw: object) -> int:
    with session_scope() as session:
        result = service.open_ticket(
            session, conversation_id=conversation, reason=reason, channel="socketio", **kw
        )
        return result.ticket.id


def test_duplicate_trigger_reuses_the_open_ticket(people: dict[str, int]) -> None:
    first = open_one("c1", "low_confidence", console_base_url="https://agency.example")
    with session_scope() as session:
        again = service.open_ticket(session, conversation_id="c1", reason="frustration")
        assert not again.created and again.ticket.id == first
        assert again.ticket.priority == "high"  # frustration raises the priority
        assert again.ticket.transcript_url == f"https://agency.example/console/inbox/{first}"
    with session_scope() as session:
        assert session.scalar(select(Ticket).where(Ticket.conversation_id == "c1")).id == first
        assert len(session.scalars(select(Ticket)).all()) == 1


def test_database_refuses_a_second_open_ticket(people: dict[str, int]) -> None:
    open_one("c1")
    with pytest.raises(IntegrityError), session_scope() as session:
        session.add(
            Ticket(conversation_id="c1", open_marker="c1", reason="requested", trigger_text="")
        )
        session.flush()


def test_closed_ticket_allows_a_new_one_and_records_times(people: dict[str, int], clock) -> None:
    with session_scope() as session:
        ticket = service.open_ticket(session, conversation_id="c1", reason="requested").ticket
        clock.advance(seconds=95)
        service.add_agent_reply(session, ticket.id, people["ana"], "Hello!")
        service.close_ticket(session, ticket.id, resolved=True, by_user_id=people["ana"])
        assert ticket.first_agent_reply_at - ticket.created_at == timedelta(seconds=95)
        assert ticket.status == "closed_resolved" and ticket.open_marker is None
        assert ticket.assigned_agent_id == people["ana"]
    second = open_one("c1", "requested")
    assert second != ticket.id


def test_reply_to_closed_or_unknown_ticket_is_refused(people: dict[str, int]) -> None:
    ticket_id = open_one()
    with session_scope() as session:
        service.close_ticket(session, ticket_id, resolved=False)
    with session_scope() as session, pytest.raises(service.TicketClosed) as closed:
        service.add_agent_reply(session, ticket_id, people["ana"], "too late")
    assert closed.value.status == 409
    with session_scope() as session, pytest.raises(service.TicketNotFound) as unknown:
        service.add_agent_reply(session, 9999, people["ana"], "hello?")
    assert unknown.value.status == 404
    with session_scope() as session, pytest.raises(service.TicketClosed):
        service.close_ticket(session, ticket_id, resolved=True)


def test_bad_replies_lose_nothing(people: dict[str, int]) -> None:
    ticket_id = open_one()
    for text, message in (("   ", "empty"), ("x" * 4001, "longer than")):
        with session_scope() as session, pytest.raises(service.HandoffError, match=message):
            service.add_agent_reply(session, ticket_id, people["ana"], text)
    with session_scope() as session, pytest.raises(service.HandoffError, match="not agent"):
        service.add_agent_reply(session, ticket_id, people["ed"], "editors do not answer")
    with session_scope() as session:
        assert service.messages_after(session, ticket_id) == []
        assert service.get_ticket(session, ticket_id).status == "waiting"


def test_assign_transfer_unassign_and_notes(people: dict[str, int]) -> None:
    ticket_id = open_one()
    with session_scope() as session:
        service.assign(session, ticket_id, people["ana"])
        service.assign(session, ticket_id, people["ben"], by_user_id=people["ana"])
        service.add_note(session, ticket_id, people["ben"], "Citizen travels Friday.")
    with session_scope() as session:
        ticket = service.get_ticket(session, ticket_id)
        assert ticket.status == "assigned" and ticket.assigned_agent_id == people["ben"]
        system = service.messages_after(session, ticket_id)
        assert [m.text for m in system] == ["Transferred to Ben"]
        assert [n.text for n in service.notes_of(session, ticket_id)] == ["Citizen travels Friday."]
        service.assign(session, ticket_id, None)
        assert ticket.status == "waiting" and ticket.assigned_agent_id is None


def test_citizen_messages_go_to_the_open_ticket_only(people: dict[str, int]) -> None:
    with session_scope() as session:
        assert service.add_citizen_message(session, "nobody", "hello") is None
    ticket_id = open_one("c9")
    with session_scope() as session:
        message = service.add_citizen_message(session, "c9", "still there?")
        assert message is not None and message.ticket_id == ticket_id
        assert message.delivery_status is None


def test_close_is_queued_behind_pending_replies(people: dict[str, int]) -> None:
    ticket_id = open_one()
    with session_scope() as session:
        service.add_agent_reply(session, ticket_id, people["ana"], "one")
        service.add_agent_reply(session, ticket_id, people["ben"], "two")
        service.close_ticket(session, ticket_id, resolved=True)
    with session_scope() as session:
        outbox = session.scalars(
            select(TicketMessage)
            .where(TicketMessage.delivery_status == Delivery.PENDING.value)
            .order_by(TicketMessage.id)
        ).all()
        assert [(m.kind, m.text) for m in outbox] == [
            (MessageKind.TEXT.value, "one"),
            (MessageKind.TEXT.value, "two"),
            (MessageKind.CLOSE.value, "resolved"),
        ]


def test_presence_and_availability(people: dict[str, int]) -> None:
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in New York
    hours = build_hours("America/New_York", "mon-fri 08:00-18:00")
    with session_scope() as session:
        assert service.availability(session, hours, 90, now).after_hours  # nobody online
        service.heartbeat(session, people["ana"], now - timedelta(seconds=30))
        service.heartbeat(session, people["ed"], now)  # editors are not agents
    with session_scope() as session:
        online = service.availability(session, hours, 90, now)
        assert online.agents_online == 1 and not online.after_hours
        assert online.expected_reply_at is None
        later = service.availability(session, hours, 90, now + timedelta(seconds=100))
        assert later.agents_online == 0
        night = service.availability(session, hours, 90, now + timedelta(hours=10))
        assert night.after_hours and night.expected_reply_at == datetime(
            2026, 11, 26, 13, 0, tzinfo=UTC
        )


def test_the_first_reply_stores_its_staffed_response_time(people: dict[str, int]) -> None:
    """Opened Friday 17:30 in New York, answered Monday 08:15: 30 + 15 staffed minutes, stored
    with the first reply (later replies and other hours do not change it)."""
    hours = build_hours("America/New_York", "mon-fri 08:00-18:00")
    friday = datetime(2026, 11, 27, 22, 30, tzinfo=UTC)  # 17:30 in New York
    monday = datetime(2026, 11, 30, 13, 15, tzinfo=UTC)  # 08:15
    with session_scope() as session:
        ticket = service.open_ticket(
            session, conversation_id="c1", reason="requested", now=friday
        ).ticket
        service.add_agent_reply(session, ticket.id, people["ana"], "Hi", monday, staffed=hours)
        always = build_hours("UTC", "")
        later = monday + timedelta(hours=1)
        service.add_agent_reply(session, ticket.id, people["ana"], "Again", later, staffed=always)
        assert ticket.first_response_staffed_s == 45 * 60
    unstored = open_one("c2")
    with session_scope() as session:
        service.add_agent_reply(session, unstored, people["ana"], "Hi")  # no hours given
        assert session.get(Ticket, unstored).first_response_staffed_s is None
