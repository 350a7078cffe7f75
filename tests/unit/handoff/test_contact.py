"""A contact for a reply that may not arrive (issue 21, item 3): the bot offers to take an e-mail
address or phone number when the citizen must wait (never on SMS, never when a person is
online), keeps the one a relayed message leaves on the ticket, confirms the first once, and the
privacy commands and analytics treat it as the personal data it is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agencyctl.privacy_cli import delete_sender, export_sender
from analytics.ingest import parse_event
from askagency.channels import platform_message_id
from askagency.clock import FakeClock
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from askagency.spool import get_spool
from askagency.staff import Role
from handoff import conversation as conv
from handoff import service
from handoff.models import Reason, Ticket
from handoff.windows import refusal
from tests.console_helpers import add_staff_account

OFFER_EN = "If you can't wait here, write an e-mail address or phone number"
OFFER_ES = "Si no puede esperar aquí, escriba una dirección de correo electrónico"
XSS = '"><img src=x onerror=alert(1)>@x.org'


@pytest.fixture
def settings(db_url: str, clock: FakeClock) -> Settings:
    """Always staffed (the default), nobody online, the clock frozen."""
    get_settings.cache_clear()
    return get_settings()


async def hand_off(
    conversation_id: str,
    settings: Settings,
    *,
    channel: str = "socketio",
    language: str = "en",
    message_id: str | None = None,
) -> conv.Reply:
    return await conv.start_handoff(
        conversation_id=conversation_id,
        reason=Reason.REQUESTED,
        channel=channel,
        language=language,
        trigger_text="a person please",
        settings=settings,
        message_id=message_id,
    )


def ticket_of(conversation_id: str) -> Ticket:
    with session_scope() as session:
        ticket = service.open_ticket_for(session, conversation_id)
        assert ticket is not None
        session.expunge(ticket)
        return ticket


# --------------------------------------------------------------------------- the offer
async def test_nobody_online_offers_a_contact_in_the_citizens_language(settings: Settings) -> None:
    english = await hand_off("web-1", settings)
    assert "Nobody is available right now" in english.text
    assert english.text.endswith(OFFER_EN + " and the team can answer you there."), english.text
    spanish = await hand_off("web-2", settings, language="es")
    assert "Ahora no hay nadie disponible" in spanish.text and OFFER_ES in spanish.text
    assert OFFER_EN not in spanish.text
    # Asking again while waiting: no second offer.
    again = await hand_off("web-1", settings)
    assert "already waiting" in again.text and OFFER_EN not in again.text


async def test_sms_gets_no_offer_its_conversation_is_a_phone_number(settings: Settings) -> None:
    reply = await hand_off(
        "sms-15551234567",
        settings,
        channel="sms",
        message_id=platform_message_id("sms", "SM0123"),
    )
    assert "Nobody is available right now" in reply.text
    assert OFFER_EN not in reply.text
    assert ticket_of("sms-15551234567").channel == "sms"


async def test_no_offer_when_a_person_is_online(settings: Settings) -> None:
    with session_scope() as session:
        service.heartbeat(session, add_staff_account(session, "ana", Role.AGENT.value))
    reply = await hand_off("web-3", settings)
    assert "someone will reply here shortly" in reply.text
    assert OFFER_EN not in reply.text


async def test_after_hours_offers_a_contact(
    db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASKAGENCY_STAFFED_TIMEZONE", "UTC")
    monkeypatch.setenv("ASKAGENCY_STAFFED_HOURS", "mon-fri 08:00-09:00")  # closed at noon
    get_settings.cache_clear()
    reply = await hand_off("web-4", get_settings(), language="es")
    assert "Ahora estamos cerrados" in reply.text and OFFER_ES in reply.text


@pytest.fixture
def database_down(settings: Settings) -> Iterator[None]:
    """The spool believes the database just failed: the handoff is queued, not written."""
    spool = get_spool(settings)
    spool.note_failure(ConnectionError("database unavailable"))
    yield
    spool.note_recovery(0)


async def test_queued_handoff_offers_a_contact_except_on_sms(
    settings: Settings, database_down: None
) -> None:
    queued = await hand_off("web-5", settings)
    assert queued.custom["queued"] is True
    assert "anything else you write here will reach them too" in queued.text
    assert OFFER_EN in queued.text
    sms = await hand_off(
        "sms-15557654321", settings, channel="sms", message_id=platform_message_id("sms", "SM9")
    )
    assert sms.custom["queued"] is True and OFFER_EN not in sms.text


# --------------------------------------------------------------------------- capture
async def test_a_relayed_contact_is_kept_and_confirmed_once(settings: Settings) -> None:
    await hand_off("web-6", settings)
    plain = await conv.relay_to_agent("web-6", "my flight is at 6", "en")
    assert plain == conv.Reply()
    assert ticket_of("web-6").contact is None

    first = await conv.relay_to_agent("web-6", "write to me at ana.lopez@example.org please", "en")
    assert first.text == (
        "Thanks: if we can't reach you here, the team can use ana.lopez@example.org."
    )
    assert first.slots == {}  # the handoff goes on; the value is not repeated in custom
    assert first.custom == {"type": "contact_noted", "kind": "email"}
    ticket = ticket_of("web-6")
    assert (ticket.contact, ticket.contact_kind) == ("ana.lopez@example.org", "email")

    # The latest one left wins, silently.
    later = await conv.relay_to_agent("web-6", "or call +34 612 345 678", "en")
    assert later == conv.Reply()
    ticket = ticket_of("web-6")
    assert (ticket.contact, ticket.contact_kind) == ("+34 612 345 678", "phone")

    with session_scope() as session:
        texts = [m.text for m in service.messages_after(session, ticket.id)]
    assert texts == [
        "my flight is at 6",
        "write to me at ana.lopez@example.org please",
        "or call +34 612 345 678",
    ]


async def test_confirmation_in_spanish(settings: Settings) -> None:
    await hand_off("web-7", settings, language="es")
    reply = await conv.relay_to_agent("web-7", "mi teléfono es (415) 555-2671", "es")
    assert reply.text == (
        "Gracias: si no podemos responderle aquí, el equipo podrá usar (415) 555-2671."
    )


async def test_markup_is_not_a_contact(settings: Settings) -> None:
    await hand_off("web-8", settings)
    reply = await conv.relay_to_agent("web-8", XSS, "en")
    assert reply == conv.Reply()  # silent: nothing was taken as a contact
    assert ticket_of("web-8").contact is None
    with session_scope() as session:  # the message itself still reaches the person
        assert [m.text for m in service.messages_after(session, ticket_of("web-8").id)] == [XSS]


async def test_card_numbers_and_dates_are_not_phone_numbers(settings: Settings) -> None:
    await hand_off("web-9", settings)
    for typed in ("card 4111 1111 1111 1111", "DOB 03/12/1985", "flight UA 1234 at gate B12"):
        assert await conv.relay_to_agent("web-9", typed, "en") == conv.Reply()
    assert ticket_of("web-9").contact is None


def test_a_spooled_message_replayed_later_keeps_its_contact(settings: Settings) -> None:
    """Written while the database was down, replayed later: the contact is kept (the bot cannot
    confirm it any more, the agent still sees it)."""
    with session_scope() as session:
        service.open_ticket(session, conversation_id="web-10", reason="requested")
    with session_scope() as session:
        conv.replay_message(
            session,
            {
                "conversation_id": "web-10",
                "text": "mail me: x@y.org",
                "sent_at": "2026-11-25T12:00:00+00:00",
            },
        )
    assert ticket_of("web-10").contact == "x@y.org"


def test_the_window_error_names_the_kind_of_contact_only_when_a_reply_is_refused() -> None:
    last = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    now = last + timedelta(days=2)
    whatsapp = refusal("whatsapp", last, now, whatsapp_template=False, contact_kind="phone")
    assert whatsapp is not None and "24 hours" in whatsapp
    assert "The citizen left a phone number for a reply" in whatsapp
    assert refusal("whatsapp", last, now, whatsapp_template=True, contact_kind="phone") is None
    assert refusal("socketio", last, now, whatsapp_template=False, contact_kind="email") is None
    plain = refusal("messenger", last, last + timedelta(days=8), False)
    assert plain is not None and "The citizen left" not in plain


# --------------------------------------------------------------------------- privacy
@pytest.fixture
def rasa_urls(tmp_path: Path) -> tuple[str, str]:
    """Rasa never ran: no tracker or event-broker files (the commands handle that)."""
    return f"sqlite:///{tmp_path / 'no_tracker.db'}", f"sqlite:///{tmp_path / 'no_events.db'}"


async def test_privacy_export_includes_the_contact_and_delete_removes_it(
    settings: Settings, rasa_urls: tuple[str, str]
) -> None:
    await hand_off("web-11", settings)
    await conv.relay_to_agent("web-11", "a@b.org", "en")
    exported = export_sender("web-11", *rasa_urls)
    [ticket] = exported["tickets"]
    assert (ticket["contact"], ticket["contact_kind"]) == ("a@b.org", "email")
    assert delete_sender("web-11", *rasa_urls)["tickets"] == 1
    assert export_sender("web-11", *rasa_urls)["tickets"] == []
    with session_scope() as session:
        assert session.query(Ticket).filter(Ticket.contact == "a@b.org").count() == 0


def test_analytics_never_sees_the_contact() -> None:
    """Analytics keeps the citizen's text redacted and no bot text at all (the confirmation
    repeats the contact)."""
    user = parse_event(
        {
            "event": "user",
            "sender_id": "web-12",
            "timestamp": 1.0,
            "text": "write to me at ana.lopez@example.org or +34 612 345 678",
            "parse_data": {"intent": {"name": "nlu_fallback"}},
        }
    )
    assert user is not None and user.text == "write to me at [EMAIL] or [PHONE]"
    bot = parse_event(
        {
            "event": "bot",
            "sender_id": "web-12",
            "timestamp": 2.0,
            "text": conv.text("contact_noted", "en", contact="ana.lopez@example.org"),
            "data": {},
        }
    )
    assert bot is not None and "ana.lopez" not in repr(bot)
