"""A citizen's pick among the bot's options is recorded on the question they were for: the
real action server turns (a clarify list, then the press), the real decide() at the configured
thresholds and the real database. The queue then shows which FAQ citizens chose for those
words (knowledge_base.unanswered.record_choice)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import kb, learning
from actions.faq import ActionAnswerFaq, choose_payload
from askagency import bot_messages as msg
from askagency.bot_messages import MessageType
from askagency.db import session_scope
from knowledge_base.types import FaqHit
from knowledge_base.unanswered import UnansweredQuestion
from tests.fakes import FakeHandle, FakeRetriever

QUESTION = "gel or liquid in my bag"


def hit(faq_id: str, score: float) -> FaqHit:
    return FaqHit(
        faq_id=faq_id, score=score, question=f"{faq_id}?", answer=f"{faq_id}.", language="en"
    )


@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    # Two FAQs close together: decide() at the defaults asks which one (as in test_faq.py).
    kb.set_handle(FakeHandle(FakeRetriever([hit("gels", 0.6), hit("liquids", 0.58)])))
    yield db_url
    kb.set_handle(None)


def turn(text: str, intent: str, events: list[dict[str, Any]], **extra: Any) -> Tracker:
    latest = {"text": text, "intent": {"name": intent}, "entities": [], "metadata": {}}
    latest["entities"] = extra.pop("entities", [])
    events = [*events, {"event": "user", "text": text, "parse_data": latest}]
    return Tracker("citizen-pick", extra.pop("slots", {}), latest, events, False, None, {}, "")


async def run(tracker: Tracker) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerFaq().run(dispatcher, tracker, {})
    await learning.drain()
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def picks(url: str) -> list[tuple[str, str, str | None]]:
    with session_scope(url) as session:
        rows = session.scalars(select(UnansweredQuestion).order_by(UnansweredQuestion.id))
        return [(row.text, row.reason, row.chosen_faq_id) for row in rows]


async def test_the_faq_picked_from_a_clarify_list_is_recorded_on_the_question(
    served: str,
) -> None:
    asked = turn(QUESTION, "ask_question", [])
    messages, slots = await run(asked)
    clarify = messages[0]
    assert clarify["custom"]["type"] == MessageType.CLARIFY
    assert picks(served) == [(QUESTION, "clarified", None)]

    bot = {"event": "bot", "text": clarify["text"], "data": {"custom": clarify["custom"]}}
    press = turn(
        choose_payload("liquids"),
        msg.INTENT_CHOOSE_FAQ,
        [*list(asked.events), bot],
        entities=[{"entity": msg.ENTITY_FAQ_ID, "value": "liquids"}],
        slots={msg.SLOT_CLARIFY_OPTIONS: slots[msg.SLOT_CLARIFY_OPTIONS]},
    )
    answered, _ = await run(press)
    assert answered[0]["custom"]["type"] == MessageType.FAQ_ANSWER
    assert answered[0]["custom"]["faq_id"] == "liquids"
    assert picks(served) == [(QUESTION, "clarified", "liquids")]
