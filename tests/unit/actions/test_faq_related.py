"""Related FAQs after an answer (issue 21, item 2), in ``action_answer_faq`` with a real small
index bundle: the answer carries them as buttons and lists them in ``custom.related``; pressing
one is answered from the remembered options without another search and says ``via: related``;
none on SMS, for an untranslated answer, or with ``related_faqs_max`` 0."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import kb
from actions.faq import ActionAnswerFaq, choose_payload
from askagency import bot_messages as msg
from askagency.config import Settings, get_settings
from knowledge_base.index import Bundle, build_bundle
from knowledge_base.types import Decision, FaqHit, FaqRecord, Outcome
from tests.fakes import FakeHandle, FakeRetriever
from tests.unit.kb_tiny import TINY_KB, shared_embedder

KB = [
    *TINY_KB,
    FaqRecord(
        id="batteries",
        language="en",
        question="Can I take spare lithium batteries on the plane?",
        answer="Only in carry-on bags.",
        category="items",
        related=("liquids",),
    ),
]


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return build_bundle(KB, shared_embedder(), classifier=False)


@pytest.fixture
def settings(tmp_settings: Settings) -> Iterator[Settings]:
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def answer(monkeypatch: pytest.MonkeyPatch, bundle: Bundle) -> Iterator[list[Decision]]:
    """The knowledge base decides "answer with the test's hit"; the retriever serves the real
    bundle (the related FAQs come from it)."""
    decisions: list[Decision] = []
    monkeypatch.setattr(kb, "_decide", lambda hits, s: decisions[0])
    kb.set_handle(FakeHandle(FakeRetriever([], bundle=bundle)))
    yield decisions
    kb.set_handle(None)


def hit_of(record: FaqRecord, score: float = 0.9) -> FaqHit:
    return FaqHit(
        faq_id=record.id,
        score=score,
        question=record.question,
        answer=record.answer,
        language=record.language,
        category=record.category,
        source_url=record.source_url,
    )


def record(faq_id: str) -> FaqRecord:
    return next(r for r in KB if r.id == faq_id)


def tracker(
    text: str,
    *,
    intent: str = "ask_question",
    slots: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    channel: str = "rest",
    language: str = "en",
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entities or [],
        "metadata": {"language": language},
    }
    user_event = {"event": "user", "text": text, "input_channel": channel, "parse_data": latest}
    return Tracker(
        sender_id="citizen-1",
        slots=slots or {},
        latest_message=latest,
        events=[user_event],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def run(t: Tracker) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerFaq().run(dispatcher, t, {})
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    return dispatcher.messages, slots


async def test_answer_offers_the_related_faqs_as_buttons_and_lists_them(settings, answer) -> None:
    answer.append(Decision(Outcome.ANSWER, (hit_of(record("batteries"), 0.8),), top_score=0.8))

    messages, slots = await run(tracker("can I take a power bank"))

    assert len(messages) == 1
    custom = messages[0]["custom"]
    assert custom["faq_id"] == "batteries" and custom["related"] == ["liquids"]
    assert "via" not in custom
    assert messages[0]["buttons"] == [
        {"title": record("liquids").question, "payload": choose_payload("liquids")}
    ]
    assert [o["faq_id"] for o in slots["clarify_options"]] == ["liquids"]
    assert slots["clarify_options"][0]["from_faq"] == "batteries"


async def test_without_a_staff_list_the_same_category_neighbours_are_offered(
    settings, answer
) -> None:
    answer.append(Decision(Outcome.ANSWER, (hit_of(record("knives")),), top_score=0.9))

    messages, _ = await run(tracker("pocket knife?"))

    offered = messages[0]["custom"]["related"]
    assert sorted(offered) == ["batteries", "liquids"]  # the other "items" FAQs
    assert [b["payload"] for b in messages[0]["buttons"]] == [choose_payload(i) for i in offered]


async def test_pressing_a_related_button_answers_it_without_searching(settings, answer) -> None:
    answer.append(Decision(Outcome.ANSWER, (hit_of(record("batteries"), 0.8),), top_score=0.8))
    _, slots = await run(tracker("can I take a power bank"))
    retriever = kb.get_handle().get()
    searched = len(retriever.calls)

    press = tracker(
        choose_payload("liquids"),
        intent=msg.INTENT_CHOOSE_FAQ,
        entities=[{"entity": msg.ENTITY_FAQ_ID, "value": "liquids"}],
        slots={msg.SLOT_CLARIFY_OPTIONS: slots["clarify_options"]},
    )
    messages, after = await run(press)

    assert len(retriever.calls) == searched
    custom = messages[0]["custom"]
    assert custom["faq_id"] == "liquids"
    assert custom["via"] == msg.VIA_RELATED and custom["from_faq"] == "batteries"
    assert messages[0]["text"].startswith(record("liquids").answer)
    # The clicked answer offers its own related FAQs in turn.
    assert "batteries" in custom["related"]
    assert after[msg.SLOT_LAST_FAQ_ID] == "liquids"


async def test_a_clarify_choice_is_not_counted_as_a_related_click(settings, answer) -> None:
    options = [{"faq_id": "knives", "question": "Knife?", "answer": "Checked bags.", "score": 0.5}]
    press = tracker(
        choose_payload("knives"),
        intent=msg.INTENT_CHOOSE_FAQ,
        entities=[{"entity": msg.ENTITY_FAQ_ID, "value": "knives"}],
        slots={msg.SLOT_CLARIFY_OPTIONS: options},
    )
    messages, _ = await run(press)
    assert "via" not in messages[0]["custom"]


async def test_sms_answers_carry_no_related_buttons(settings, answer) -> None:
    answer.append(Decision(Outcome.ANSWER, (hit_of(record("batteries")),), top_score=0.9))
    messages, slots = await run(tracker("power bank?", channel="sms"))
    assert messages[0]["buttons"] == [] and "related" not in messages[0]["custom"]
    assert slots[msg.SLOT_CLARIFY_OPTIONS] is None


async def test_related_faqs_can_be_turned_off(monkeypatch, tmp_settings, answer) -> None:
    monkeypatch.setenv("ASKAGENCY_RELATED_FAQS_MAX", "0")
    get_settings.cache_clear()
    answer.append(Decision(Outcome.ANSWER, (hit_of(record("batteries")),), top_score=0.9))
    messages, _ = await run(tracker("power bank?"))
    get_settings.cache_clear()
    assert messages[0]["buttons"] == [] and "related" not in messages[0]["custom"]


async def test_an_untranslated_answer_offers_a_person_not_related_faqs(settings, answer) -> None:
    answer.append(Decision(Outcome.ANSWER, (hit_of(record("batteries")),), top_score=0.9))
    messages, _ = await run(tracker("¿batería?", language="es"))
    custom = messages[0]["custom"]
    assert custom["translated"] is False and "related" not in custom
    assert all(b["payload"] != choose_payload("liquids") for b in messages[0]["buttons"])


async def test_a_broken_index_still_answers_without_related_faqs(settings, monkeypatch) -> None:
    top = hit_of(record("batteries"))
    monkeypatch.setattr(kb, "_decide", lambda hits, s: Decision(Outcome.ANSWER, (top,), 0.9))
    kb.set_handle(FakeHandle(FakeRetriever([], bundle=object())))
    try:
        messages, _ = await run(tracker("power bank?"))
    finally:
        kb.set_handle(None)
    assert messages[0]["custom"]["faq_id"] == "batteries" and messages[0]["buttons"] == []


def test_the_attachment_path_keeps_calling_answer_with_three_arguments() -> None:
    dispatcher = CollectingDispatcher()
    events = ActionAnswerFaq._answer(dispatcher, hit_of(record("knives")), "en")
    assert dispatcher.messages[0]["custom"]["faq_id"] == "knives"
    assert {e["name"] for e in events} >= {msg.SLOT_LAST_FAQ_ID, msg.SLOT_CLARIFY_OPTIONS}
