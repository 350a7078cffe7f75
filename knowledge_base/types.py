"""Plain data contracts shared by the store, the index, the actions and the console.

They are deliberately free of SQLAlchemy and numpy so that any package can pass
them around (and pickle/JSON them into an index bundle) without importing the
heavy parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class FaqRecord:
    """A published FAQ as the index needs it: everything required to answer
    without touching the database (the action server keeps answering when the
    database is down)."""

    id: str
    language: str
    question: str
    answer: str
    category: str = ""
    source_url: str | None = None
    variants: tuple[str, ...] = ()
    translation_group: str = ""

    def question_texts(self) -> tuple[str, ...]:
        """Canonical question first, then its variants: one index vector each."""
        return (self.question, *self.variants)


@dataclass(frozen=True)
class FaqHit:
    """One FAQ in a ranked retrieval result (variants already grouped per FAQ)."""

    faq_id: str
    score: float
    question: str
    answer: str
    language: str
    category: str = ""
    source_url: str | None = None
    matched_text: str = ""
    # Classifier probability of this FAQ among the searched FAQs (0.0 when the index has no
    # classifier). Unlike ``score`` it depends on the KB's size, so it is only compared with
    # the other hits' confidence: a clear probability lead is what lets decide() answer a
    # question whose wording is far from every stored variant.
    confidence: float = 0.0


class Outcome(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    HANDOFF = "handoff"


@dataclass(frozen=True)
class Decision:
    """What the bot should do with a question. ``hits`` holds the answer first
    (ANSWER), the clarify options (CLARIFY) or the near misses (HANDOFF)."""

    outcome: Outcome
    hits: tuple[FaqHit, ...] = field(default_factory=tuple)
    top_score: float = 0.0
