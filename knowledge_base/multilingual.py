"""Answer in the citizen's language when the knowledge base has the FAQ in it.

The index holds every published FAQ in every language; FAQs that are the same question in
several languages share a ``translation_group``. A question is searched among the FAQs of the
citizen's language only (the bundled English model cannot compare a Spanish question with an
English FAQ reliably, and mixing languages would let translations crowd each other out). When
that finds nothing confident, the agency's main language is tried: a confident match there is
answered with its translation when one exists, otherwise in the main language with
``translated=False`` so the bot adds a note that no translation is available and offers a
person. A language the knowledge base lacks entirely is searched in the main language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from knowledge_base.decision import explained
from knowledge_base.types import Decision, FaqHit, FaqRecord, FaqRetriever, Outcome


@dataclass(frozen=True)
class LanguageDecision:
    """A Decision plus the languages involved."""

    decision: Decision
    language: str  # the citizen's language
    kb_has_language: bool  # the knowledge base has FAQs in the citizen's language

    @property
    def translated(self) -> bool:
        """False when the hits are in another language than the citizen's."""
        return all(hit.language == self.language for hit in self.decision.hits)


class Catalog:
    """The languages and translation groups of the FAQs the retriever searches."""

    def __init__(self, faqs: Sequence[FaqRecord] | None) -> None:
        self.known = faqs is not None
        self.languages = {faq.language for faq in faqs or ()}
        self._group = {faq.id: faq.translation_group or faq.id for faq in faqs or ()}
        self._versions = {
            (faq.translation_group or faq.id, faq.language): faq for faq in faqs or ()
        }

    @classmethod
    def of(cls, retriever: Any) -> Catalog:
        """From a ``Retriever`` (its bundle's FAQs); unknown for objects without a bundle."""
        bundle = getattr(retriever, "bundle", None)
        faqs = getattr(bundle, "faqs", None)
        return cls(list(faqs) if faqs is not None else None)

    def has_language(self, language: str) -> bool:
        return not self.known or language in self.languages

    def version(self, faq_id: str, language: str) -> FaqRecord | None:
        """The FAQ of ``faq_id``'s translation group in ``language``, if the KB has it."""
        group = self._group.get(faq_id)
        return self._versions.get((group, language)) if group else None


def translate_hit(hit: FaqHit, record: FaqRecord) -> FaqHit:
    """``hit`` answered with its translation ``record`` (the score of the match is kept)."""
    return replace(
        hit,
        faq_id=record.id,
        question=record.question,
        answer=record.answer,
        language=record.language,
        category=record.category,
        source_url=record.source_url,
    )


def lookup(
    retriever: FaqRetriever,
    text: str,
    language: str,
    *,
    main_language: str,
    k: int,
    decide: Callable[[list[FaqHit]], Decision],
    catalog: Catalog | None = None,
) -> LanguageDecision:
    """Search in ``language``, then in ``main_language`` (see the module docstring). A handoff
    names the out-of-scope entry that took the question, if one did (:func:`explained`)."""
    catalog = catalog or Catalog.of(retriever)
    if not catalog.has_language(language):
        hits = retriever.search(text, k=k, language=main_language)
        decision = explained(retriever, text, main_language, decide(list(hits)))
        return LanguageDecision(decision, language, kb_has_language=False)
    own = decide(list(retriever.search(text, k=k, language=language)))
    if own.outcome == Outcome.ANSWER or language == main_language:
        return LanguageDecision(explained(retriever, text, language, own), language, True)
    main = decide(list(retriever.search(text, k=k, language=main_language)))
    if main.outcome != Outcome.ANSWER or not main.hits:
        return LanguageDecision(explained(retriever, text, language, own), language, True)
    best = main.hits[0]
    twin = catalog.version(best.faq_id, language)
    if twin is not None:
        best = translate_hit(best, twin)
    return LanguageDecision(replace(main, hits=(best,)), language, kb_has_language=True)
