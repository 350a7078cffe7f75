"""Answers in the citizen's language: translation groups, fallback to the main language, and
the action's messages (note in the citizen's language, offer of a person)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import kb
from actions.faq import ActionAnswerFaq
from actions.language import ActionDetectLanguage
from askagency.bot_messages import MessageType
from askagency.config import Settings, get_settings
from knowledge_base import multilingual
from knowledge_base.decision import decide
from knowledge_base.types import FaqHit, FaqRecord, Outcome
from tests.fakes import FakeHandle, FakeRetriever

FAQS = [
    FaqRecord("knife", "en", "Can I bring a knife?", "No, pack it in checked bags.", "sharp"),
    FaqRecord(
        "knife-es",
        "es",
        "¿Puedo llevar un cuchillo?",
        "No, documéntelo.",
        "sharp",
        translation_group="knife",
    ),
    FaqRecord("drone", "en", "Can I bring a drone?", "Yes, in carry-on.", "electronics"),
]
BY_ID = {f.id: f for f in FAQS}


def hit(faq_id: str, score: float) -> FaqHit:
    faq = BY_ID[faq_id]
    return FaqHit(faq_id, score, faq.question, faq.answer, faq.language, faq.category)


BUNDLE = SimpleNamespace(faqs=FAQS)
S = SimpleNamespace(
    answer_threshold=0.6, clarify_threshold=0.4, answer_margin=0.05, clarify_max_options=3
)


def run_lookup(retriever: FakeRetriever, language: str) -> multilingual.LanguageDecision:
    return multilingual.lookup(
        retriever, "q", language, main_language="en", k=5, decide=lambda h: decide(h, S)
    )


def test_answer_in_the_citizens_language_when_the_kb_has_it() -> None:
    retriever = FakeRetriever(
        bundle=BUNDLE, by_language={"es": [hit("knife-es", 0.8)], "en": [hit("knife", 0.9)]}
    )
    result = run_lookup(retriever, "es")
    assert result.decision.outcome == Outcome.ANSWER
    assert result.decision.hits[0].faq_id == "knife-es"
    assert result.translated and result.kb_has_language
    assert retriever.languages_searched == ["es"]


def test_main_language_match_is_answered_with_its_translation() -> None:
    retriever = FakeRetriever(
        bundle=BUNDLE, by_language={"es": [hit("knife-es", 0.3)], "en": [hit("knife", 0.9)]}
    )
    result = run_lookup(retriever, "es")
    assert result.decision.hits[0].faq_id == "knife-es"
    assert result.decision.hits[0].answer == "No, documéntelo."
    assert result.decision.hits[0].score == 0.9
    assert result.translated


def test_untranslated_faq_is_answered_in_the_main_language() -> None:
    retriever = FakeRetriever(
        bundle=BUNDLE, by_language={"es": [hit("knife-es", 0.3)], "en": [hit("drone", 0.9)]}
    )
    result = run_lookup(retriever, "es")
    assert result.decision.hits[0].faq_id == "drone"
    assert not result.translated and result.kb_has_language


def test_nothing_confident_keeps_the_citizens_language_decision() -> None:
    retriever = FakeRetriever(
        bundle=BUNDLE, by_language={"es": [hit("knife-es", 0.45)], "en": [hit("drone", 0.45)]}
    )
    result = run_lookup(retriever, "es")
    assert result.decision.outcome == Outcome.CLARIFY
    assert [h.faq_id for h in result.decision.hits] == ["knife-es"]


def test_language_the_kb_lacks_searches_the_main_language() -> None:
    retriever = FakeRetriever(bundle=BUNDLE, by_language={"en": [hit("drone", 0.9)]})
    result = run_lookup(retriever, "fr")
    assert retriever.languages_searched == ["en"]
    assert not result.kb_has_language and not result.translated


def test_catalog_without_bundle_assumes_every_language() -> None:
    catalog = multilingual.Catalog.of(object())
    assert catalog.has_language("xx")
    assert multilingual.Catalog(FAQS).version("knife", "es").id == "knife-es"
    assert multilingual.Catalog(FAQS).version("drone", "es") is None


# ------------------------------------------------------------------ the action's messages
@pytest.fixture
def settings(tmp_settings: Settings) -> Settings:
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
    kb.set_handle(None)


def tracker(text: str, metadata: dict[str, Any] | None = None, slots: dict | None = None):
    return Tracker(
        sender_id="citizen-ml",
        slots=slots or {},
        latest_message={
            "text": text,
            "intent": {"name": "ask_question", "confidence": 0.9},
            "entities": [],
            "metadata": metadata or {},
        },
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def answer(text: str, **metadata: Any) -> list[dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq().run(dispatcher, tracker(text, metadata), {})
    return dispatcher.messages


async def test_action_answers_spanish_from_the_translation(settings) -> None:
    kb.set_handle(
        FakeHandle(FakeRetriever(bundle=BUNDLE, by_language={"es": [hit("knife-es", 0.8)]}))
    )
    [message] = await answer("¿puedo llevar un cuchillo?", language="es")
    assert message["custom"]["faq_id"] == "knife-es"
    assert message["custom"]["language"] == "es"
    assert "translated" not in message["custom"]
    assert message["text"] == "No, documéntelo."


async def test_action_notes_a_missing_translation_and_offers_a_person(settings) -> None:
    kb.set_handle(
        FakeHandle(
            FakeRetriever(
                bundle=BUNDLE, by_language={"es": [hit("knife-es", 0.2)], "en": [hit("drone", 0.9)]}
            )
        )
    )
    [message] = await answer("¿puedo llevar un dron?", language="es")
    custom = message["custom"]
    assert custom["faq_id"] == "drone" and custom["translated"] is False
    assert custom["language"] == "en" and custom["requested_language"] == "es"
    assert message["text"].startswith("Esta respuesta todavía no está disponible en español")
    assert "Yes, in carry-on." in message["text"]
    assert message["buttons"] == [{"title": "Hablar con una persona", "payload": "/ask_human"}]


async def test_action_in_a_language_the_kb_lacks_offers_a_person(settings) -> None:
    kb.set_handle(FakeHandle(FakeRetriever(bundle=BUNDLE, by_language={"en": [hit("drone", 0.1)]})))
    [message] = await answer("Est-ce que je peux emporter un drone dans l'avion ?", language="fr")
    assert message["custom"]["type"] == MessageType.FALLBACK
    assert message["custom"]["reason"] == "language_unavailable"
    assert message["custom"]["language"] == "fr"
    assert "français" in message["text"]
    assert message["buttons"] == [{"title": "Parler à une personne", "payload": "/ask_human"}]


async def test_detect_language_action_sets_the_slot_before_responses(settings) -> None:
    action = ActionDetectLanguage()
    dispatcher = CollectingDispatcher()
    spanish = tracker("¿puedo llevar mi computadora portátil en el avión?", slots={})
    assert await action.run(dispatcher, spanish, {}) == [
        {"event": "slot", "timestamp": None, "name": "language", "value": "es"}
    ]
    hinted = tracker("hola", metadata={"language": "es-MX"}, slots={"language": "en"})
    events = await action.run(dispatcher, hinted, {})
    assert events[0]["value"] == "es"
    same = tracker("hola", metadata={"language": "es"}, slots={"language": "es"})
    assert await action.run(dispatcher, same, {}) == []
    assert dispatcher.messages == []
