"""Plain data contracts shared by the store, the index, the actions and the console, and the
public protocols of the retrieval path.

They are deliberately free of SQLAlchemy and numpy so that any package can pass
them around (and pickle/JSON them into an index bundle) without importing the
heavy parts.

The protocols (in the spirit of haystack's retriever and document-store protocols) are what a
caller may rely on: :class:`FaqRetriever` (``knowledge_base.retriever.Retriever``),
:class:`FaqRetrieverHandle` (``knowledge_base.retriever.RetrieverHandle``, which follows new index
versions) and :class:`TextEmbedder` (``knowledge_base.embedder.Embedder``). Tests and benchmarks
substitute their own implementations (``tests/fakes.py``); ``knowledge_base.factory.open_retriever``
builds the real ones from the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


class FaqKind(StrEnum):
    """What an entry is for. ANSWER: an FAQ the bot answers with. OUT_OF_SCOPE: questions the
    service does not answer (its variants are examples); a question that matches one best is
    handed to a person instead of answered with the nearest FAQ, and the entry is never offered.
    Its answer is a note for staff (why, and where to send people)."""

    ANSWER = "answer"
    OUT_OF_SCOPE = "out_of_scope"


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
    # Staff's related FAQs (ids, in order) offered after this answer; empty: the index's
    # nearest neighbours in the category are offered instead (knowledge_base/related.py).
    related: tuple[str, ...] = ()
    kind: str = FaqKind.ANSWER.value

    @property
    def out_of_scope(self) -> bool:
        """Examples of questions the service does not answer (never an answer or an option)."""
        return self.kind == FaqKind.OUT_OF_SCOPE

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
    (ANSWER), the clarify options (CLARIFY) or the near misses (HANDOFF).

    ``suggestions`` (HANDOFF only): the near misses worth showing the citizen beside the
    "talk to a person" offer (score >= suggest_threshold; knowledge_base/decision.py); empty
    when none is close enough.

    ``out_of_scope`` (HANDOFF only): the out-of-scope entry that took the question, when one
    did (decision.explained sets it): the handoff is then by design, not a gap in
    the knowledge base, and the unanswered queue files the question apart."""

    outcome: Outcome
    hits: tuple[FaqHit, ...] = field(default_factory=tuple)
    top_score: float = 0.0
    suggestions: tuple[FaqHit, ...] = field(default_factory=tuple)
    out_of_scope: FaqHit | None = None


@runtime_checkable
class TextEmbedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (inner product = cosine similarity)."""

    model_id: str

    @property
    def dim(self) -> int: ...

    def encode(
        self, texts: Sequence[str], *, use_cache: bool = True, query: bool | None = None
    ) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


@runtime_checkable
class FaqRetriever(Protocol):
    """Ranks the FAQs of one index version for a question: best first, one hit per FAQ.
    ``model_id`` names the embedding model whose scores it ranks by (empty when none)."""

    @property
    def model_id(self) -> str: ...

    @property
    def out_of_scope_languages(self) -> frozenset[str]:
        """The languages with out-of-scope entries (decision.for_index)."""
        ...

    def search(self, text: str, k: int = 5, language: str | None = None) -> list[FaqHit]: ...

    def out_of_scope_match(self, text: str, language: str | None = None) -> FaqHit | None:
        """The out-of-scope entry that ranks first for ``text`` (why ``search`` found
        nothing), or None."""
        ...


@runtime_checkable
class FaqRetrieverHandle(Protocol):
    """The serving retriever; ``get`` returns the current index version's (it may change
    between calls when staff publish) and raises when no index can be loaded."""

    def get(self) -> FaqRetriever: ...
