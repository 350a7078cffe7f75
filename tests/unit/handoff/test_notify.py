"""New-ticket e-mail to the on-duty list (issue 21, item 3), against a real local SMTP server:
one e-mail per new open ticket, once across rounds and processes; closed and old tickets are
not announced; a server that is down loses nothing (the next round sends)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from askagency.clock import FakeClock
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from askagency.ports import free_port
from handoff import service
from handoff.delivery import Backoff, DeliveryWorker, sweep_of
from handoff.models import Ticket
from handoff.notify import notify_new_tickets
from tests.smtp_server import SmtpServer

ON_DUTY = ["duty@agency.example", "lead@agency.example"]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


def configure(monkeypatch: pytest.MonkeyPatch, port: int, **extra: str) -> Settings:
    values = {
        "ASKAGENCY_SMTP_HOST": "127.0.0.1",
        "ASKAGENCY_SMTP_PORT": str(port),
        "ASKAGENCY_SMTP_SECURITY": "none",
        "ASKAGENCY_SMTP_TIMEOUT_S": "5",
        "ASKAGENCY_REPORT_FROM": "AskAgency <askagency@agency.example>",
        "ASKAGENCY_HANDOFF_NOTIFY_EMAILS": json.dumps(ON_DUTY),
        "ASKAGENCY_HANDOFF_CONSOLE_BASE_URL": "https://console.agency.example",
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


def open_ticket(conversation: str, reason: str = "requested", text: str = "") -> int:
    with session_scope() as session:
        return service.open_ticket(
            session,
            conversation_id=conversation,
            reason=reason,
            channel="sms",
            language="es",
            trigger_text=text,
            console_base_url="https://console.agency.example",
        ).ticket.id


def test_each_new_ticket_is_emailed_once(
    db_url: str, clock: FakeClock, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure(monkeypatch, smtp.port, ASKAGENCY_STAFFED_TIMEZONE="America/Denver")
    angry = open_ticket("+15550001", "frustration", "esto es inútil\nquiero una persona")
    calm = open_ticket("+15550002")
    assert notify_new_tickets(settings, clock.now) == [angry, calm]
    assert notify_new_tickets(settings, clock.advance(seconds=30)) == []  # once
    (mail_from, rcpt, first), (_, _, second) = smtp.messages
    assert mail_from == "askagency@agency.example" and rcpt == ON_DUTY
    assert first["Subject"] == f"New ticket #{angry} (high priority): frustration"
    assert second["Subject"] == f"New ticket #{calm}: requested"
    assert first["Auto-Submitted"] == "auto-generated"
    body = first.get_content().replace("\r\n", "\n")
    assert "Language: es" in body and "Channel:  sms" in body
    opened = clock.now.astimezone(ZoneInfo("America/Denver")).strftime("%Y-%m-%d %H:%M %Z")
    assert f"Opened:   {opened}" in body and ("MST" in opened or "MDT" in opened)
    assert "> esto es inútil\n> quiero una persona" in body
    assert f"https://console.agency.example/console/inbox/{angry}" in body


def test_closed_and_old_tickets_are_not_announced(
    db_url: str, clock: FakeClock, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Turned on later, the e-mail does not announce tickets from hours ago; a ticket closed
    before its turn (the citizen went back to the assistant) is not announced either."""
    settings = configure(monkeypatch, smtp.port)
    old = open_ticket("+15550003")
    clock.advance(hours=2)
    left = open_ticket("+15550004")
    with session_scope() as session:
        service.leave(session, "+15550004", unless_answered=True)
    fresh = open_ticket("+15550005")
    assert notify_new_tickets(settings, clock.now) == [fresh]
    with session_scope() as session:
        marked = session.scalars(select(Ticket.notified_at).where(Ticket.id.in_([old, left])))
        assert all(at == clock.now for at in marked)


def test_a_server_that_is_down_loses_nothing(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    settings = configure(monkeypatch, port)
    ticket = open_ticket("+15550006")
    assert notify_new_tickets(settings, clock.now) == []  # refused: released for the next round
    with SmtpServer(port) as server:
        assert notify_new_tickets(settings, clock.advance(seconds=30)) == [ticket]
        assert len(server.messages) == 1


def test_off_without_a_list_and_clear_without_a_sender(
    db_url: str, clock: FakeClock, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    open_ticket("+15550007")
    assert (
        notify_new_tickets(
            configure(monkeypatch, smtp.port, ASKAGENCY_HANDOFF_NOTIFY_EMAILS="[]"), clock.now
        )
        == []
    )
    no_sender = configure(monkeypatch, smtp.port, ASKAGENCY_REPORT_FROM="")
    assert notify_new_tickets(no_sender, clock.now) == []
    assert "set ASKAGENCY_REPORT_FROM" in caplog.text
    # Nothing was claimed: once the sender is set, the ticket is announced.
    assert (
        len(notify_new_tickets(configure(monkeypatch, smtp.port), clock.now + timedelta(seconds=1)))
        == 1
    )
    assert len(smtp.messages) == 1


async def test_the_console_worker_sends_them_on_its_sweep(
    db_url: str, clock: FakeClock, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's outbox worker runs the e-mail with its sweep (sweep_of the settings)."""
    settings = configure(monkeypatch, smtp.port, ASKAGENCY_HANDOFF_SWEEP_S="30")
    sweep = sweep_of(settings)
    assert sweep.notify is settings and sweep.every_s == 30
    worker = DeliveryWorker(None, Backoff(), clock=clock, sweep=sweep)  # type: ignore[arg-type]
    ticket = open_ticket("+15550008")
    await worker.sweep()
    assert [m[2]["Subject"] for m in smtp.messages] == [f"New ticket #{ticket}: requested"]
