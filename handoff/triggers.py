"""When the bot should hand a conversation to a person.

Pure functions over the turn's facts (text, retrieval outcome, earlier questions), so each
rule is unit-tested without Rasa. The action server gathers the facts and calls
:func:`evaluate_question`; the explicit request and feedback triggers are decided in the
actions directly (they need no scoring).

Measured on the sample KB (1,242 questions, variants and evaluation queries): VADER calls
legitimate security questions negative ("fake gun in luggage" -0.67, "How do I file a claim
for damaged or missing property?" -0.63), so negative sentiment alone would hand off answerable
questions. Frustration therefore only counts when the bot cannot answer confidently.
Likewise, two variants of the same FAQ have a median cosine of only 0.49 while the nearest
variant of a *different* FAQ reaches 0.89: a loose similarity threshold would treat a new
related question as a rephrase. A rephrase therefore needs a near-duplicate (>= 0.9), or a
looser match (>= 0.75) when the bot is about to repeat the answer it already gave.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from askagency.bot_messages import QUESTION_INTENTS, MessageType, is_type
from askagency.rasa_events import is_external_event
from handoff.models import Priority, Reason
from knowledge_base import sentiment as knowledge_sentiment

Encoder = Callable[[list[str]], Any]  # texts -> (n, d) L2-normalised float array

HIGH_PRIORITY_REASONS = frozenset({Reason.FRUSTRATION, Reason.NEGATIVE_FEEDBACK})
_TOKEN_RE = re.compile(r"[^\W_]+", re.UNICODE)


def priority_for(reason: Reason | str) -> Priority:
    return Priority.HIGH if Reason(reason) in HIGH_PRIORITY_REASONS else Priority.NORMAL


@dataclass(frozen=True)
class TriggerSettings:
    frustration_threshold: float = -0.5
    rephrase_similarity: float = 0.9
    rephrase_similarity_same_answer: float = 0.75
    rephrase_jaccard: float = 0.6
    rephrase_window: int = 3
    fallback_limit: int = 2

    @classmethod
    def from_settings(cls, settings: Any) -> TriggerSettings:
        return cls(
            frustration_threshold=settings.handoff_frustration_threshold,
            rephrase_similarity=settings.handoff_rephrase_similarity,
            rephrase_similarity_same_answer=settings.handoff_rephrase_similarity_same_answer,
            rephrase_jaccard=settings.handoff_rephrase_jaccard,
            rephrase_window=settings.handoff_rephrase_window,
            fallback_limit=settings.handoff_fallback_limit,
        )


@dataclass(frozen=True)
class PastQuestion:
    """An earlier citizen question and the FAQ the bot answered it with (None: no answer)."""

    text: str
    answered_faq_id: str | None = None


@dataclass(frozen=True)
class Trigger:
    reason: Reason
    detail: str  # why, for the agent (shown on the ticket) and the logs

    @property
    def priority(self) -> Priority:
        return priority_for(self.reason)


def sentiment(text: str, language: str = "en") -> float:
    """VADER compound score in [-1, 1] in English or Spanish (``knowledge_base.sentiment``, the
    same score analytics reports); 0 for a language without a lexicon."""
    return knowledge_sentiment.compound(text, language) or 0.0


def tokens(text: str) -> set[str]:
    return {t.lower() for t in _TOKEN_RE.findall(text)}


def jaccard(a: str, b: str) -> float:
    left, right = tokens(a), tokens(b)
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


def similarities(
    current: str, earlier: Sequence[str], encode: Encoder | None
) -> tuple[list[float], bool]:
    """Cosine similarity of ``current`` with each earlier text, and whether the scores are
    lexical: token Jaccard is used when no encoder is available or it fails (a missing model
    must not break the conversation)."""
    if encode is not None and earlier:
        try:
            vectors = encode([current, *earlier])
            return [float(vectors[0] @ vectors[i]) for i in range(1, len(earlier) + 1)], False
        except Exception:  # noqa: BLE001 - fall back to the lexical measure
            pass
    return [jaccard(current, text) for text in earlier], True


def find_rephrase(
    current: str,
    would_answer_faq_id: str | None,
    past: Sequence[PastQuestion],
    cfg: TriggerSettings,
    encode: Encoder | None = None,
) -> tuple[PastQuestion, float] | None:
    """The earlier question the citizen is asking again, with its similarity, or None."""
    window = [p for p in past if p.text.strip()][-cfg.rephrase_window :]
    if not window or not current.strip():
        return None
    scores, lexical = similarities(current, [p.text for p in window], encode)
    strict = cfg.rephrase_jaccard if lexical else cfg.rephrase_similarity
    loose = cfg.rephrase_jaccard if lexical else cfg.rephrase_similarity_same_answer
    best: tuple[PastQuestion, float] | None = None
    for question, score in zip(window, scores, strict=True):
        same_answer = (
            question.answered_faq_id is not None and question.answered_faq_id == would_answer_faq_id
        )
        matches = score >= strict or (same_answer and score >= loose)
        if matches and (best is None or score > best[1]):
            best = (question, score)
    return best


def evaluate_question(
    text: str,
    *,
    answerable: bool,
    would_answer_faq_id: str | None,
    past: Sequence[PastQuestion],
    fallbacks_in_a_row: int,
    cfg: TriggerSettings,
    encode: Encoder | None = None,
    language: str = "en",
) -> Trigger | None:
    """The handoff trigger of a question turn, strongest first.

    ``answerable``: retrieval is confident enough to answer. ``fallbacks_in_a_row`` counts
    this turn when it is a fallback. Low confidence itself is not decided here: it depends on
    the configured offer/direct mode (see ``actions``).
    """
    score = sentiment(text, language)
    if not answerable and score <= cfg.frustration_threshold:
        return Trigger(Reason.FRUSTRATION, f"negative sentiment {score:.2f}")
    match = find_rephrase(text, would_answer_faq_id, past, cfg, encode)
    if match is not None:
        question, similarity = match
        return Trigger(
            Reason.FRUSTRATION,
            f"asked again (similarity {similarity:.2f} to {question.text[:80]!r})",
        )
    if not answerable and fallbacks_in_a_row >= cfg.fallback_limit:
        return Trigger(Reason.REPEATED_FALLBACK, f"{fallbacks_in_a_row} fallbacks in a row")
    return None


def _custom(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("data") or {}
    custom = data.get("custom") if isinstance(data, Mapping) else None
    return custom if isinstance(custom, Mapping) else {}


def past_questions(events: Iterable[Mapping[str, Any]]) -> list[PastQuestion]:
    """Citizen questions of the conversation since the last handoff ended, oldest first,
    each with the FAQ the bot answered it with. The current (latest) question is excluded."""
    questions: list[PastQuestion] = []
    pending: str | None = None
    answered: str | None = None
    for event in events:
        kind = event.get("event")
        if kind == "user":
            if pending is not None:
                questions.append(PastQuestion(pending, answered))
            pending, answered = None, None
            text = event.get("text") or ""
            if is_external_event(text, event.get("metadata")):
                continue
            intent = (event.get("parse_data") or {}).get("intent") or {}
            if intent.get("name") in QUESTION_INTENTS and not text.startswith("/"):
                pending = text
        elif kind == "bot":
            custom = _custom(event)
            if is_type(custom, MessageType.FAQ_ANSWER) and custom.get("faq_id") is not None:
                answered = str(custom["faq_id"])
            elif is_type(custom, MessageType.HANDOFF_CLOSED):
                # A new episode: what was asked before the person helped is not a rephrase.
                questions, pending, answered = [], None, None
    # The last user event is the current question: leave it out.
    return questions
