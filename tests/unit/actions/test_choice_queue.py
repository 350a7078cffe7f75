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
from sqlalchemy.exc import OperationalError

from actions import kb, learning
from actions.faq import ActionAnswerFaq, choose_payload
from actions.spool_kinds import SPOOL_KINDS
from askagency import bot_messages as msg
from askagency.bot_messages import MessageType
from askagency.db import session_scope
from askagency.spool import get_spool
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


def press_after(
    asked: Tracker, clarify: dict[str, Any], slots: dict[str, Any], faq_id: str
) -> Tracker:
    """The citizen presses ``faq_id`` among the options of ``clarify``, the bot's reply to
    ``asked``."""
    bot = {"event": "bot", "text": clarify["text"], "data": {"custom": clarify["custom"]}}
    return turn(
        choose_payload(faq_id),
        msg.INTENT_CHOOSE_FAQ,
        [*list(asked.events), bot],
        entities=[{"entity": msg.ENTITY_FAQ_ID, "value": faq_id}],
        slots={msg.SLOT_CLARIFY_OPTIONS: slots[msg.SLOT_CLARIFY_OPTIONS]},
    )


async def test_the_faq_picked_from_a_clarify_list_is_recorded_on_the_question(
    served: str,
) -> None:
    asked = turn(QUESTION, "ask_question", [])
    messages, slots = await run(asked)
    clarify = messages[0]
    assert clarify["custom"]["type"] == MessageType.CLARIFY
    assert picks(served) == [(QUESTION, "clarified", None)]

    press = press_after(asked, clarify, slots, "liquids")
    answered, _ = await run(press)
    assert answered[0]["custom"]["type"] == MessageType.FAQ_ANSWER
    assert answered[0]["custom"]["faq_id"] == "liquids"
    assert picks(served) == [(QUESTION, "clarified", "liquids")]


async def test_a_pick_made_while_its_question_waits_in_the_spool_is_recorded_on_it(
    served: str,
) -> None:
    """The database fails for the question and is back for the press, before the spool is
    replayed: the pick waits behind its question instead of finding nothing."""
    spool = get_spool()
    spool.note_failure(OperationalError("SELECT 1", {}, Exception("database down")))
    asked = turn(QUESTION, "ask_question", [])
    messages, slots = await run(asked)
    assert picks(served) == []
    spool.note_recovery(0)  # back, not replayed yet

    clarify = messages[0]
    press = press_after(asked, clarify, slots, "liquids")
    await run(press)
    kinds = [r.kind for r in spool.pending()]
    # The press's two writes run in parallel worker threads: either may come first.
    assert kinds[0] == "unanswered" and sorted(kinds[1:]) == ["faq_answered", "faq_chosen"]
    result = spool.replay(SPOOL_KINDS)
    assert (result.replayed, result.dead, result.remaining) == (3, 0, 0)
    assert picks(served) == [(QUESTION, "clarified", "liquids")]
