"""Follow-up questions (issue 21, item 2): "and in checked bags?" or "what about for kids?"
right after an answer is read against the question that was answered.

A short message (at most ``followup_max_words`` words) that the knowledge base cannot answer
confidently on its own is looked up again joined to the previous question ("can I bring my laptop
in my carry-on and in checked bags?"); when that is a confident answer, it is the reply. A
message that is answered alone, a long one, or one after anything other than an answer is never
changed, so the carry-over can only turn a "did you mean" or a fallback into an answer.

:func:`resolve` is the one rule: the action server (actions/faq.py) and ``askagency kb
evaluate-followups`` (measured on ``knowledge_base/sample/followups_en_dev.csv``) both use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from knowledge_base.decision import decide, for_retriever
from knowledge_base.evaluate import labelled_rows
from knowledge_base.types import Outcome

D = TypeVar("D")
H = TypeVar("H")
_WORD = re.compile(r"\w+", re.UNICODE)


def is_short(question: str, max_words: int) -> bool:
    return 0 < len(_WORD.findall(question)) <= max_words


def joined(previous: str, question: str) -> str:
    """The follow-up read as part of the previous question."""
    return f"{previous.strip().rstrip('?.!')} {question.strip()}"


ANSWERED, OPTIONS, NOTHING = 2, 1, 0  # what a decision gives the citizen, best first


def resolve(
    question: str,
    previous: tuple[str, str] | None,
    decide_text: Callable[[str, str | None], D],
    rank: Callable[[D], int],
    max_words: int,
) -> tuple[D, bool]:
    """The decision for ``question``, and whether it came from reading it with the previous
    exchange: ``previous`` is (the citizen's question, the FAQ that answered it), None when the
    last reply was no answer. ``decide_text(text, exclude)`` decides on the hits of ``text``
    without the FAQ ``exclude``: a follow-up asks for something the previous answer did not say,
    so that answer is not a candidate (read together, the previous question's words would
    otherwise bring it back). ``rank`` orders decisions: an answer (:data:`ANSWERED`) beats "did
    you mean" options (:data:`OPTIONS`), which beat nothing. The joined reading wins when it
    gives at least as much as the message alone: options chosen in the context of the previous
    question are the better options."""
    alone = decide_text(question, None)
    if previous is None or max_words <= 0 or rank(alone) >= ANSWERED:
        return alone, False
    if not is_short(question, max_words):
        return alone, False
    previous_question, previous_faq = previous
    combined = decide_text(joined(previous_question, question), previous_faq)
    if rank(combined) > NOTHING and rank(combined) >= rank(alone):
        return combined, True
    return alone, False


def candidates(hits: Sequence[H], exclude: str | None, k: int) -> list[H]:
    """The first ``k`` hits without the FAQ ``exclude`` (search ``k + 1`` when excluding)."""
    return [h for h in hits if getattr(h, "faq_id", None) != exclude][:k]


def rank_of(decision: Any) -> int:
    """:func:`resolve`'s order for a ``knowledge_base.types.Decision``."""
    if decision.outcome == Outcome.ANSWER and decision.hits:
        return ANSWERED
    if decision.outcome == Outcome.CLARIFY and decision.hits:
        return OPTIONS
    return NOTHING


# --- measuring it -------------------------------------------------------------------------------


def load_pairs(path: Path | str) -> list[tuple[str, str, str]]:
    """``previous,text,expected_faq_id`` rows: the answered question, the follow-up, and the
    FAQ that answers the follow-up."""
    rows = labelled_rows(path, ("previous", "text", "expected_faq_id"))
    return [(previous, text, expected) for previous, text, expected in rows]


@dataclass(frozen=True)
class FollowupReport:
    pairs: int
    # Without the previous question: answered directly and correctly / wrongly, and the right
    # FAQ in the reply at all (the answer, or one of the "did you mean" options: one click).
    alone_correct: int
    alone_wrong: int
    alone_within_one_click: int
    # The same with :func:`resolve`.
    with_context_correct: int
    with_context_wrong: int
    with_context_within_one_click: int
    carried_over: int  # replies that came from the joined question
    max_words: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Tally:
    """One reading's counts: answered right, answered wrong, right FAQ within one click."""

    right: int = 0
    wrong: int = 0
    within_one_click: int = 0

    def score(self, decision: Any, expected: str) -> None:
        level = rank_of(decision)
        if level == ANSWERED:
            right = decision.hits[0].faq_id == expected
            self.right += right
            self.wrong += not right
            self.within_one_click += right
        elif level == OPTIONS:
            self.within_one_click += expected in [h.faq_id for h in decision.hits]


def evaluate_followups(
    retriever: Any,
    pairs: Sequence[tuple[str, str, str]],
    settings: Any,
    language: str | None,
    max_words: int,
) -> FollowupReport:
    """Direct-and-correct answers to the follow-ups alone and read with the previous question,
    at the settings' thresholds (for this index: decision.for_retriever)."""
    settings = for_retriever(settings, retriever)

    def decide_text(text: str, exclude: str | None) -> Any:
        hits = retriever.search(text, k=settings.search_top_k + 1, language=language)
        return decide(candidates(hits, exclude, settings.search_top_k), settings)

    alone, with_context = _Tally(), _Tally()
    carried_over = 0
    for previous, text, expected in pairs:
        alone.score(decide_text(text, None), expected)
        # What the bot answered to the previous question (no answer: nothing to carry over).
        before = decide_text(previous, None)
        exchange = (previous, before.hits[0].faq_id) if rank_of(before) == ANSWERED else None
        decision, used = resolve(text, exchange, decide_text, rank_of, max_words)
        carried_over += used
        with_context.score(decision, expected)
    return FollowupReport(
        pairs=len(pairs),
        alone_correct=alone.right,
        alone_wrong=alone.wrong,
        alone_within_one_click=alone.within_one_click,
        with_context_correct=with_context.right,
        with_context_wrong=with_context.wrong,
        with_context_within_one_click=with_context.within_one_click,
        carried_over=carried_over,
        max_words=max_words,
    )
