"""What the bot says and stores when it hands a conversation over, relays, delivers an agent
reply and gets the conversation back (the functions behind the handoff actions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from askagency.bot_messages import MessageType
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from handoff import conversation as conv
from handoff import service
from handoff.models import Reason, Ticket


@pytest.fixture
def settings(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ASKAGENCY_HANDOFF_CONSOLE_BASE_URL", "https://console.agency.example")
    get_settings.cache_clear()
    return get_settings()


async def hand_off(
    conversation_id: str,
    settings: Settings,
    *,
    reason: Reason = Reason.REQUESTED,
    channel: str = "rest",
    language: str = "en",
    trigger_text: str = "person please",
) -> conv.Reply:
    return await conv.start_handoff(
        conversation_id=conversation_id,
        reason=reason,
        channel=channel,
        language=language,
        trigger_text=trigger_text,
        settings=settings,
    )


async def test_start_handoff_opens_once_and_tells_the_citizen(settings: Settings) -> None:
    reply = await hand_off("c1", settings, channel="socketio", trigger_text="talk to a person")
    assert reply.slots == {"handoff_active": True, "consecutive_fallbacks": 0}
    custom = reply.custom
    assert custom["type"] == MessageType.HANDOFF and custom["reason"] == "requested"
    # always staffed by default, but nobody is online in this test
    assert custom["after_hours"] is True and custom["expected_reply_at"] is None
    # L9: nothing about the agency's operation in what the citizen gets.
    assert not {"ticket_id", "agents_online", "priority"} & set(custom)
    assert "Nobody is available right now" in reply.text
    with session_scope() as session:
        ticket = session.get(Ticket, reply.internal["ticket_id"])
        assert ticket.channel == "socketio" and ticket.trigger_text == "talk to a person"
        assert ticket.transcript_url == f"https://console.agency.example/console/inbox/{ticket.id}"

    again = await hand_off(
        "c1", settings, reason=Reason.FRUSTRATION, channel="socketio", trigger_text="argh"
    )
    assert again.internal["ticket_id"] == reply.internal["ticket_id"]
    with session_scope() as session:
        assert session.get(Ticket, reply.internal["ticket_id"]).priority == "high"
    assert "already waiting" in again.text


async def test_after_hours_message_names_the_opening(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Open one minute a day, twelve hours away from now, so the test never runs while open.
    opening = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(hours=12)).strftime("%H:00")
    closing = opening[:3] + "01"
    monkeypatch.setenv("ASKAGENCY_STAFFED_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("ASKAGENCY_STAFFED_HOURS", f"mon-sun {opening}-{closing}")
    get_settings.cache_clear()
    settings = get_settings()
    reply = await hand_off("c2", settings, reason=Reason.LOW_CONFIDENCE, trigger_text="?")
    custom = reply.custom
    hours = conv.staffed_hours(settings)
    assert custom["after_hours"] is True
    expected = datetime.fromisoformat(custom["expected_reply_at"])
    assert expected > datetime.now(UTC)
    assert expected.astimezone(hours.timezone).strftime("%H:%M") == opening
    assert "We're closed right now" in reply.text and opening in reply.text


async def test_relay_stores_silently_and_hands_back_when_ticket_gone(settings: Settings) -> None:
    await hand_off("c3", settings)
    silent = await conv.relay_to_agent("c3", "my flight is at 6", "en")
    assert silent.text is None and silent.custom is None and silent.slots == {}
    with session_scope() as session:
        ticket = service.open_ticket_for(session, "c3")
        assert [m.text for m in service.messages_after(session, ticket.id)] == ["my flight is at 6"]
        service.close_ticket(session, ticket.id, resolved=True)
    back = await conv.relay_to_agent("c3", "hello?", "en")
    assert back.slots == {"handoff_active": False}
    assert back.custom["type"] == MessageType.HANDOFF_CLOSED


def _external(**entities: object) -> dict:
    return {"entities": [{"entity": k, "value": v} for k, v in entities.items()]}


def test_agent_message_is_uttered_once() -> None:
    latest = _external(
        handoff_text="Hello, I'm Ana.", handoff_agent="Ana", handoff_ticket=4, handoff_message=17
    )
    reply = conv.agent_message(latest, [])
    assert reply.text == "Hello, I'm Ana."
    assert reply.custom == {"type": MessageType.AGENT_MESSAGE, "agent": "Ana", "message_id": 17}
    assert reply.internal == {"ticket_id": 4}
    delivered = [{"event": "bot", "data": {"custom": reply.custom}}]
    redelivery = conv.agent_message(latest, delivered)
    assert redelivery.text is None and redelivery.slots == {"handoff_active": True}
    assert conv.agent_message(_external(handoff_text="  "), []).text is None


def test_handoff_closed_gives_control_back() -> None:
    reply = conv.handoff_closed(
        _external(handoff_resolved=True, handoff_ticket=4, handoff_message=20), [], "en"
    )
    assert reply.slots["handoff_active"] is False
    assert reply.custom["type"] == MessageType.HANDOFF_CLOSED and reply.custom["resolved"] is True
    unresolved = conv.handoff_closed(_external(handoff_resolved=False), [], "en")
    assert unresolved.custom["resolved"] is False and "still need help" in unresolved.text


def test_requested_reason_follows_the_bots_own_offer() -> None:
    offered = [
        {"event": "user", "text": "blue form?"},
        {
            "event": "bot",
            "data": {"custom": {"type": MessageType.FALLBACK, "reason": "low_confidence"}},
        },
        {"event": "user", "text": "/ask_human"},
    ]
    assert conv.requested_reason(offered) == Reason.LOW_CONFIDENCE
    later = [
        *offered[:2],
        {"event": "user", "text": "hm"},
        {"event": "bot", "data": {"custom": {"type": MessageType.FALLBACK}}},
        {"event": "user", "text": "/ask_human"},
    ]
    assert conv.requested_reason(later) == Reason.REQUESTED
    feedback = [
        {"event": "bot", "data": {"custom": {"type": MessageType.FEEDBACK_ACK, "feedback": "bad"}}},
        {"event": "user", "text": "/ask_human"},
    ]
    assert conv.requested_reason(feedback) == Reason.NEGATIVE_FEEDBACK
    assert conv.requested_reason(feedback[-1:]) == Reason.REQUESTED


def test_question_trigger_modes(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [{"event": "user", "text": "now", "parse_data": {"intent": {"name": "ask_question"}}}]
    common = {"top_faq_id": None, "settings": settings, "encode": None}
    assert (
        conv.question_trigger("blue form", events, outcome="handoff", fallbacks_before=0, **common)
        is None
    )  # offer mode: the fallback offers a person
    second = conv.question_trigger(
        "blue form", events, outcome="handoff", fallbacks_before=1, **common
    )
    assert second.reason == Reason.REPEATED_FALLBACK
    monkeypatch.setenv("ASKAGENCY_HANDOFF_LOW_CONFIDENCE_MODE", "direct")
    get_settings.cache_clear()
    direct = {**common, "settings": get_settings()}
    first = conv.question_trigger(
        "blue form", events, outcome="handoff", fallbacks_before=0, **direct
    )
    assert first.reason == Reason.LOW_CONFIDENCE
    assert (
        conv.question_trigger(
            "blue form",
            events,
            outcome="answer",
            top_faq_id="x",
            fallbacks_before=0,
            settings=get_settings(),
        )
        is None
    )


def _ticket_of(conversation_id: str) -> tuple[str, list[str]]:
    with session_scope() as session:
        ticket = session.scalars(
            select(Ticket).where(Ticket.conversation_id == conversation_id)
        ).one()
        return ticket.status, [m.text for m in service.messages_after(session, ticket.id)]


async def test_the_citizen_leaves_a_waiting_handoff_by_button_or_words(
    settings: Settings,
) -> None:
    """Issue 21, item 3: a "Back to the assistant" button on every handoff message, and typed
    words ("Cancel!", "volver al asistente") while nobody has replied yet."""
    started = await hand_off("c20", settings)
    assert started.buttons == [{"title": "Back to the assistant", "payload": "/cancel_handoff"}]
    # A sentence that merely contains the word is for the person, not a request to leave.
    assert (await conv.relay_to_agent("c20", "I need to cancel my booking", "en")).slots == {}
    left = await conv.relay_to_agent("c20", "  Cancel! ", "en")
    assert left.slots == {"handoff_active": False, "consecutive_fallbacks": 0}
    assert left.custom == {
        "type": MessageType.HANDOFF_CLOSED,
        "resolved": False,
        "message_id": None,
        "ended_by": "citizen",
    }
    assert "withdrawn your request" in left.text
    status, messages = _ticket_of("c20")
    assert status == "closed_unresolved"
    assert messages == ["I need to cancel my booking", service.LEFT_NOTE]

    spanish = await hand_off("c21", settings, language="es", trigger_text="una persona")
    assert spanish.buttons[0]["title"] == "Volver al asistente"
    assert (await conv.relay_to_agent("c21", "Volver al asistente.", "es")).slots[
        "handoff_active"
    ] is False


async def test_once_a_person_replied_typed_words_reach_them_and_the_button_still_leaves(
    settings: Settings,
) -> None:
    from tests.console_helpers import add_staff_account

    await hand_off("c22", settings)
    with session_scope() as session:
        agent = add_staff_account(session, "ana", "agent")
        ticket = service.open_ticket_for(session, "c22")
        service.add_agent_reply(session, ticket.id, agent, "Hello, I'm Ana.")
    relayed = await conv.relay_to_agent("c22", "cancel", "en")
    assert relayed.slots == {} and relayed.text is None
    assert _ticket_of("c22") == ("assigned", ["Hello, I'm Ana.", "cancel"])
    left = await conv.leave_handoff("c22", "en", button=True)
    assert left is not None and left.slots["handoff_active"] is False
    assert _ticket_of("c22")[0] == "closed_unresolved"
    # Pressed again (an old button): the ticket is gone, the bot is back.
    again = await conv.leave_handoff("c22", "en", button=True)
    assert again is not None and again.custom["ended_by"] == "gone"
    assert conv.not_in_handoff("en").custom == {"type": "prompt", "reason": "not_in_handoff"}


def test_handoff_closed_after_a_timeout_says_so() -> None:
    reply = conv.handoff_closed(
        _external(handoff_resolved=False, handoff_timed_out=True, handoff_message=30), [], "en"
    )
    assert reply.slots["handoff_active"] is False
    assert reply.custom["ended_by"] == "timeout" and reply.custom["resolved"] is False
    assert "nobody from our team could take your conversation in time" in reply.text
    spanish = conv.handoff_closed(_external(handoff_timed_out="true"), [], "es")
    assert "a tiempo" in spanish.text


@pytest.mark.parametrize(
    ("typed", "leaves"),
    [
        ("cancel", True),
        ("CANCEL.", True),
        ("Back to the assistant!", True),
        ("cancelar", True),
        ("Olvídalo", True),
        ("cancel my flight", False),
        ("can I cancel?", False),
        ("", False),
    ],
)
def test_leave_words_are_whole_messages(typed: str, leaves: bool) -> None:
    assert conv.is_leave_request(typed) is leaves
