"""Handoff triggers: VADER frustration, rephrasing (embeddings and the lexical fallback),
repeated fallbacks, priority, and reading earlier questions from tracker events."""

from __future__ import annotations

import numpy as np
import pytest

from askagency.bot_messages import MessageType
from handoff.models import Priority, Reason
from handoff.triggers import (
    PastQuestion,
    TriggerSettings,
    evaluate_question,
    find_rephrase,
    jaccard,
    past_questions,
    priority_for,
    sentiment,
)

CFG = TriggerSettings()


def fake_encoder(table: dict[str, list[float]]):
    """Texts -> fixed unit vectors, so similarities are exact and known."""

    def encode(texts: list[str]) -> np.ndarray:
        rows = np.array([table[t] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return encode


def evaluate(text: str, **kwargs: object):
    args: dict[str, object] = {
        "answerable": False,
        "would_answer_faq_id": None,
        "past": [],
        "fallbacks_in_a_row": 1,
        "cfg": CFG,
        "encode": None,
    }
    args.update(kwargs)
    return evaluate_question(text, **args)  # type: ignore[arg-type]


def test_vader_scores_angry_messages_negative() -> None:
    assert sentiment("This is useless, I am so angry!!") <= -0.5
    assert sentiment("Can I bring a laptop?") == 0.0


def test_frustration_when_negative_and_not_answerable() -> None:
    trigger = evaluate("This is useless, I am so angry!!")
    assert trigger is not None and trigger.reason == Reason.FRUSTRATION
    assert trigger.priority == Priority.HIGH
    assert "negative sentiment" in trigger.detail


def test_frustration_in_spanish() -> None:
    """The Spanish lexicon (knowledge_base/sentiment.py) scores Spanish anger; before it,
    every Spanish message scored about 0 and never counted as frustration."""
    angry = "¡Esto es inútil, estoy harto y muy enojado!"
    assert sentiment(angry, "es") <= -0.5
    trigger = evaluate(angry, language="es")
    assert trigger is not None and trigger.reason == Reason.FRUSTRATION
    assert evaluate("¿puedo llevar un cuchillo?", language="es") is None
    assert sentiment("c'est inutile", "fr") == 0.0  # no lexicon: never frustration


def test_negative_but_answerable_question_is_answered() -> None:
    # VADER scores this legitimate question about -0.67; the bot can answer it.
    assert sentiment("fake gun in luggage") <= -0.5
    assert evaluate("fake gun in luggage", answerable=True) is None


def test_neutral_single_fallback_is_not_a_trigger() -> None:
    assert evaluate("what about the blue form thing", fallbacks_in_a_row=1) is None


def test_two_fallbacks_in_a_row() -> None:
    trigger = evaluate("what about the blue form thing", fallbacks_in_a_row=2)
    assert trigger is not None and trigger.reason == Reason.REPEATED_FALLBACK
    assert trigger.priority == Priority.NORMAL
    # an answer resets the streak: an answerable turn never counts
    assert evaluate("what about the blue form thing", answerable=True, fallbacks_in_a_row=2) is None


def test_rephrase_by_embedding_near_duplicate() -> None:
    encode = fake_encoder(
        {"can i take my knife": [1, 0.05, 0], "is a knife allowed": [1, 0.1, 0], "x": [0, 1, 0]}
    )
    past = [PastQuestion("x", None), PastQuestion("is a knife allowed", "knives")]
    trigger = evaluate("can i take my knife", answerable=True, past=past, encode=encode)
    assert trigger is not None and trigger.reason == Reason.FRUSTRATION
    assert "asked again" in trigger.detail


def test_loose_similarity_counts_only_when_the_same_answer_would_repeat() -> None:
    # cosine of these two vectors is 0.8: above the loose, below the strict threshold
    encode = fake_encoder({"now": [0.8, 0.6, 0], "before": [1, 0, 0]})
    past = [PastQuestion("before", "liquids")]
    assert find_rephrase("now", "liquids", past, CFG, encode) is not None
    assert find_rephrase("now", "laptops", past, CFG, encode) is None
    assert find_rephrase("now", None, [PastQuestion("before", None)], CFG, encode) is None


def test_rephrase_window_limits_how_far_back() -> None:
    encode = fake_encoder({"q": [1, 0, 0], "old": [1, 0, 0], "o": [0, 1, 0]})
    past = [PastQuestion("old")] + [PastQuestion("o")] * 3
    assert find_rephrase("q", None, past, CFG, encode) is None
    assert find_rephrase("q", None, past[:2], CFG, encode) is not None


def test_lexical_fallback_without_embedder_and_when_it_fails() -> None:
    assert jaccard("Can I bring my laptop?", "can i bring my laptop") == 1.0
    past = [PastQuestion("Can I bring my laptop on the plane?")]
    assert find_rephrase("can I bring my laptop on a plane", None, past, CFG, None) is not None
    assert find_rephrase("what are the liquid rules", None, past, CFG, None) is None

    def broken(_texts: list[str]) -> np.ndarray:
        raise RuntimeError("model missing")

    assert find_rephrase("can I bring my laptop on a plane", None, past, CFG, broken) is not None


@pytest.mark.parametrize(
    ("reason", "priority"),
    [
        ("low_confidence", "normal"),
        ("requested", "normal"),
        ("repeated_fallback", "normal"),
        ("frustration", "high"),
        ("negative_feedback", "high"),
    ],
)
def test_priority(reason: str, priority: str) -> None:
    assert priority_for(reason) == priority


def _user(text: str, intent: str = "ask_question", **metadata: object) -> dict:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent}},
        "metadata": metadata,
    }


def _bot(custom: dict) -> dict:
    return {"event": "bot", "text": "...", "data": {"custom": custom}}


def test_past_questions_from_tracker_events() -> None:
    events = [
        _user("hello", "greet"),
        _bot({"type": MessageType.GREETING}),
        _user("can i bring liquids"),
        _bot({"type": MessageType.FAQ_ANSWER, "faq_id": "liquids"}),
        _user('/choose_faq{"faq_id":"x"}', "choose_faq"),
        _user("blue form", "nlu_fallback"),
        _bot({"type": MessageType.FALLBACK}),
        _user("EXTERNAL: agent_message", "agent_message", is_external=True),
        _user("current question"),
    ]
    assert past_questions(events) == [
        PastQuestion("can i bring liquids", "liquids"),
        PastQuestion("blue form", None),
    ]


def test_past_questions_restart_after_a_handoff_ends() -> None:
    events = [
        _user("can i bring liquids"),
        _bot({"type": MessageType.FAQ_ANSWER, "faq_id": "liquids"}),
        _user("talk to a person", "ask_human"),
        _bot({"type": MessageType.HANDOFF_CLOSED, "resolved": True}),
        _user("laptops?"),
        _bot({"type": MessageType.FAQ_ANSWER, "faq_id": "laptops"}),
        _user("current"),
    ]
    assert past_questions(events) == [PastQuestion("laptops?", "laptops")]
