"""The handoff actions with rasa-sdk's own Tracker and dispatcher on a migrated database; the
knowledge base is faked (as in test_faq.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import kb
from actions.faq import ActionAnswerFaq
from actions.feedback import ActionFeedback
from actions.handoff import (
    ActionDeliverAgentMessage,
    ActionHandoff,
    ActionHandoffClosed,
    ActionLeaveHandoff,
    ActionRelayToAgent,
)
from askagency.bot_messages import MessageType
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from handoff import service
from handoff.models import Ticket
from knowledge_base.types import Decision, FaqHit, Outcome
from tests.fakes import FakeHandle, FakeRetriever


@pytest.fixture
def settings(db_url: str) -> Iterator[Settings]:
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
    kb.set_handle(None)


def decide(monkeypatch: pytest.MonkeyPatch, decision: Decision) -> None:
    kb.set_handle(FakeHandle(FakeRetriever(list(decision.hits))))
    monkeypatch.setattr(kb, "_decide", lambda hits, s: decision)


LOW = Decision(Outcome.HANDOFF, (), top_score=0.1)


def make_tracker(
    text: str = "what is the blue form",
    intent: str = "ask_question",
    slots: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    entities: list[dict[str, Any]] | None = None,
    sender: str = "citizen-7",
) -> Tracker:
    latest = {"text": text, "intent": {"name": intent}, "entities": entities or [], "metadata": {}}
    user = {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent}},
        "input_channel": "socketio",
    }
    return Tracker(
        sender_id=sender,
        slots=slots or {},
        latest_message=latest,
        events=[*(events or []), user],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


def ticket_priority(message: dict[str, Any]) -> str:
    """The priority of the ticket a handoff message announced: the citizen is not told it; the
    ticket number travels outside ``custom`` (the bot event's metadata)."""
    assert "ticket_id" not in message["custom"]
    with session_scope() as session:
        return session.get(Ticket, message["ticket_id"]).priority


async def run(action: Any, tracker: Tracker) -> tuple[list[dict], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, {})
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


async def test_second_fallback_in_a_row_opens_a_ticket(settings, monkeypatch) -> None:
    decide(monkeypatch, LOW)
    messages, slots = await run(ActionAnswerFaq(), make_tracker(slots={"consecutive_fallbacks": 1}))
    assert len(messages) == 1
    custom = messages[0]["custom"]
    assert custom["type"] == MessageType.HANDOFF and custom["reason"] == "repeated_fallback"
    assert slots["handoff_active"] is True
    with session_scope() as session:
        ticket = service.open_ticket_for(session, "citizen-7")
        assert ticket.channel == "socketio" and ticket.trigger_text == "what is the blue form"


async def test_direct_mode_hands_over_on_the_first_low_confidence(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASKAGENCY_HANDOFF_LOW_CONFIDENCE_MODE", "direct")
    get_settings.cache_clear()
    decide(monkeypatch, LOW)
    messages, _ = await run(ActionAnswerFaq(), make_tracker())
    assert messages[0]["custom"]["reason"] == "low_confidence"


async def test_angry_unanswerable_message_is_frustration(settings, monkeypatch) -> None:
    decide(monkeypatch, LOW)
    messages, _ = await run(ActionAnswerFaq(), make_tracker("This is useless, I am so angry!!"))
    custom = messages[0]["custom"]
    assert custom["reason"] == "frustration" and "priority" not in custom
    assert ticket_priority(messages[0]) == "high"
    assert messages[0]["text"].startswith("I'm sorry this has been frustrating.")


async def test_asking_the_same_again_after_an_answer_is_frustration(settings, monkeypatch) -> None:
    hit = FaqHit("laptops", 0.9, "Laptops?", "Yes.", "en")
    decide(monkeypatch, Decision(Outcome.ANSWER, (hit,), top_score=0.9))
    earlier = [
        {
            "event": "user",
            "text": "can I bring my laptop on the plane",
            "parse_data": {"intent": {"name": "ask_question"}},
        },
        {
            "event": "bot",
            "text": "Yes.",
            "data": {"custom": {"type": MessageType.FAQ_ANSWER, "faq_id": "laptops"}},
        },
    ]
    # no model loaded in unit tests: the lexical measure decides
    messages, _ = await run(
        ActionAnswerFaq(), make_tracker("can I bring my laptop on a plane", events=earlier)
    )
    assert messages[0]["custom"]["reason"] == "frustration"
    other, _ = await run(
        ActionAnswerFaq(), make_tracker("what about liquids", events=earlier, sender="c-8")
    )
    assert other[0]["custom"]["type"] == MessageType.FAQ_ANSWER


async def test_ask_human_after_an_offer_keeps_the_offers_reason(settings) -> None:
    offered = [
        {"event": "user", "text": "blue form?", "parse_data": {"intent": {"name": "ask_question"}}},
        {
            "event": "bot",
            "data": {"custom": {"type": MessageType.FALLBACK, "reason": "low_confidence"}},
        },
    ]
    messages, slots = await run(
        ActionHandoff(), make_tracker("/ask_human", "ask_human", events=offered)
    )
    assert messages[0]["custom"]["reason"] == "low_confidence"
    assert slots == {"handoff_active": True, "consecutive_fallbacks": 0}
    plain, _ = await run(ActionHandoff(), make_tracker("talk to a person", "ask_human", sender="x"))
    assert plain[0]["custom"]["reason"] == "requested"


async def test_relay_deliver_and_close(settings) -> None:
    await run(ActionHandoff(), make_tracker("talk to a person", "ask_human"))
    messages, slots = await run(
        ActionRelayToAgent(), make_tracker("hello?", "greet", slots={"language": "en"})
    )
    assert messages == [] and slots == {}
    with session_scope() as session:
        ticket = service.open_ticket_for(session, "citizen-7")
        assert [m.text for m in service.messages_after(session, ticket.id)] == ["hello?"]
    # A question turn's language slot is the relay's to set (the slot mapping skips question
    # turns: bot_messages.LANGUAGE_SET_BY_THE_ACTION), so a switch of language is kept.
    spanish = "¿Cuántos líquidos puedo llevar en mi equipaje de mano cuando viajo en avión?"
    messages, slots = await run(
        ActionRelayToAgent(), make_tracker(spanish, "ask_question", slots={"language": "en"})
    )
    assert messages == [] and slots == {"language": "es"}

    entities = [
        {"entity": "handoff_text", "value": "Hi, Eve here."},
        {"entity": "handoff_agent", "value": "Eve"},
        {"entity": "handoff_ticket", "value": ticket.id},
        {"entity": "handoff_message", "value": 5},
    ]
    external = make_tracker("EXTERNAL: agent_message", "agent_message", entities=entities)
    messages, _ = await run(ActionDeliverAgentMessage(), external)
    assert messages[0]["text"] == "Hi, Eve here."
    assert messages[0]["custom"]["type"] == MessageType.AGENT_MESSAGE

    close = [
        {"entity": "handoff_resolved", "value": True},
        {"entity": "handoff_message", "value": 6},
    ]
    messages, slots = await run(
        ActionHandoffClosed(),
        make_tracker("EXTERNAL: handoff_closed", "handoff_closed", entities=close),
    )
    assert (
        messages[0]["custom"]["type"] == MessageType.HANDOFF_CLOSED
        and slots["handoff_active"] is False
    )


async def test_bad_feedback_offers_or_hands_over(settings, monkeypatch) -> None:
    messages, _ = await run(ActionFeedback(), make_tracker("/feedback_bad", "feedback_bad"))
    assert messages[0]["response"] == "utter_feedback_bad"
    monkeypatch.setenv("ASKAGENCY_HANDOFF_NEGATIVE_FEEDBACK_MODE", "direct")
    get_settings.cache_clear()
    messages, slots = await run(ActionFeedback(), make_tracker("/feedback_bad", "feedback_bad"))
    assert messages[0]["custom"]["reason"] == "negative_feedback"
    assert ticket_priority(messages[0]) == "high"
    assert slots["last_feedback"] == "bad" and slots["handoff_active"] is True


async def test_leave_action_button_typed_and_after_the_handoff(settings) -> None:
    """action_leave_handoff: the button leaves; words the NLU routed to it leave only while
    nobody replied, else they reach the person; pressed after the handoff, a prompt."""
    from tests.console_helpers import add_staff_account

    messages, _ = await run(ActionHandoff(), make_tracker("talk to a person", "ask_human"))
    assert messages[0]["buttons"] == [
        {"title": "Back to the assistant", "payload": "/cancel_handoff"}
    ]
    with session_scope() as session:
        ticket = service.open_ticket_for(session, "citizen-7")
        service.add_agent_reply(
            session, ticket.id, add_staff_account(session, "eve", "agent"), "Hi"
        )
    active = {"handoff_active": True}
    typed = make_tracker("back to the assistant", "cancel_handoff", slots=active)
    messages, slots = await run(ActionLeaveHandoff(), typed)
    assert messages == [] and slots == {}  # a person replied: the words are for them
    button = make_tracker("/cancel_handoff", "cancel_handoff", slots=active)
    messages, slots = await run(ActionLeaveHandoff(), button)
    assert messages[0]["custom"]["ended_by"] == "citizen" and slots["handoff_active"] is False
    with session_scope() as session:
        texts = [m.text for m in service.messages_after(session, ticket.id)]
    assert texts == ["Hi", "back to the assistant", service.LEFT_NOTE]
    messages, slots = await run(
        ActionLeaveHandoff(), make_tracker("/cancel_handoff", "cancel_handoff")
    )
    assert messages[0]["custom"] == {"type": "prompt", "reason": "not_in_handoff"} and slots == {}
