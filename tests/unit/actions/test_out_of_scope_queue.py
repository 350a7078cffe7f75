"""A question an out-of-scope entry takes is handed off by design: the action server says which
entry took it (the fallback's ``custom.out_of_scope``) and queues it apart from the questions
that need an answer (reason ``out_of_scope``, the entry in ``top_faq_id``). The real retriever on
the tiny KB, the real decide() and the real database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import kb, learning
from actions.faq import ActionAnswerFaq
from askagency.bot_messages import FIELD_OUT_OF_SCOPE, FallbackReason, MessageType
from askagency.db import session_scope
from knowledge_base.index import build_bundle
from knowledge_base.retriever import Retriever
from knowledge_base.types import Outcome
from knowledge_base.unanswered import UnansweredQuestion, UnansweredReason
from tests.fakes import FakeHandle
from tests.unit.kb_tiny import BOOKINGS, TINY_KB, shared_embedder

TAKEN = "can i get my money back for a cancelled flight"  # the bookings entry ranks first
UNSURE = "my dog"  # no FAQ close enough, no entry either: a gap in the KB


@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    embedder = shared_embedder()
    retriever = Retriever(build_bundle([*TINY_KB, BOOKINGS], embedder), embedder)
    kb.set_handle(FakeHandle(retriever))  # type: ignore[arg-type]
    yield db_url
    kb.set_handle(None)


def tracker(text: str) -> Tracker:
    latest = {"text": text, "intent": {"name": "ask_question"}, "entities": [], "metadata": {}}
    return Tracker("citizen-1", {}, latest, [], False, None, {}, "action_listen")


async def ask(text: str) -> dict:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq().run(dispatcher, tracker(text), {})
    await learning.drain()
    assert len(dispatcher.messages) == 1
    return dispatcher.messages[0]


def queued(url: str) -> list[tuple[str, str, str | None]]:
    with session_scope(url) as session:
        rows = session.scalars(select(UnansweredQuestion).order_by(UnansweredQuestion.id))
        return [(row.text, row.reason, row.top_faq_id) for row in rows]


def test_the_entry_that_took_a_question_is_named_by_the_lookup(served: str) -> None:
    result = kb.lookup_in_language(TAKEN, "en")
    assert result.decision.outcome is Outcome.HANDOFF and not result.decision.hits
    assert result.decision.out_of_scope is not None
    assert result.decision.out_of_scope.faq_id == BOOKINGS.id
    # A handoff no entry took names none.
    assert kb.lookup_in_language(UNSURE, "en").decision.out_of_scope is None


async def test_a_question_an_entry_took_is_queued_apart_with_the_entry(served: str) -> None:
    message = await ask(TAKEN)
    custom = message["custom"]
    assert custom["type"] == MessageType.FALLBACK
    assert custom["reason"] == FallbackReason.LOW_CONFIDENCE  # the citizen is offered a person
    assert custom[FIELD_OUT_OF_SCOPE] == BOOKINGS.id

    message = await ask(UNSURE)
    assert FIELD_OUT_OF_SCOPE not in message["custom"]

    assert queued(served) == [
        (TAKEN, UnansweredReason.OUT_OF_SCOPE, BOOKINGS.id),
        (UNSURE, UnansweredReason.LOW_CONFIDENCE, "pets"),  # its nearest FAQ, as before
    ]


def _after(message: dict, text: str, intent: str) -> Tracker:
    """The citizen's next message, with the bot's ``message`` (as Rasa stores it) before it."""
    events = [
        {"event": "user", "text": TAKEN, "parse_data": {"intent": {"name": "ask_question"}}},
        {"event": "bot", "text": message["text"], "data": {"custom": message["custom"]}},
        {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}},
    ]
    latest = {"text": text, "intent": {"name": intent}, "entities": [], "metadata": {}}
    return Tracker("citizen-oos", {}, latest, events, False, None, {}, "action_listen")


async def test_the_ticket_names_the_entry_that_took_the_question(
    served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Talk to a person" after that fallback opens a ticket naming the entry (read from the
    bot's own message, not from anything the client sends); so does direct mode at once."""
    from actions.handoff import ActionHandoff
    from askagency.config import get_settings
    from handoff import service

    message = await ask(TAKEN)
    dispatcher = CollectingDispatcher()
    await ActionHandoff().run(dispatcher, _after(message, "/ask_human", "ask_human"), {})
    assert dispatcher.messages[0]["custom"]["type"] == MessageType.HANDOFF
    with session_scope(served) as session:
        ticket = service.open_ticket_for(session, "citizen-oos")
        assert ticket is not None and ticket.reason == "low_confidence"
        assert ticket.out_of_scope_entry == BOOKINGS.id

    monkeypatch.setenv("ASKAGENCY_HANDOFF_LOW_CONFIDENCE_MODE", "direct")
    get_settings.cache_clear()
    try:
        dispatcher = CollectingDispatcher()
        await ActionAnswerFaq().run(dispatcher, tracker(TAKEN), {})
    finally:
        get_settings.cache_clear()
    assert dispatcher.messages[0]["custom"]["type"] == MessageType.HANDOFF
    with session_scope(served) as session:
        ticket = service.open_ticket_for(session, "citizen-1")
        assert ticket is not None and ticket.out_of_scope_entry == BOOKINGS.id
