"""Canned replies for agents: published FAQ answers found by a lexical search as they type.

Lexical on purpose: the console must not load the embedding model (about 1 GB with torch), and
agents type keywords ("liquids", "passport") rather than whole questions. The last word
matches as a prefix so results appear while the word is still being typed.
"""

from __future__ import annotations

import re

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from knowledge_base.models import Faq, FaqStatus

MAX_RESULTS = 8
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
# Where a word is found counts this much: the question says what the FAQ is about.
WEIGHTS = {"question": 3.0, "variants": 2.0, "answer": 1.0}


class CannedReply(BaseModel):
    faq_id: str
    language: str
    question: str
    answer: str
    source_url: str | None
    score: float


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD_RE.findall(text)]


def _score(query: list[str], fields: dict[str, set[str]]) -> float:
    total = 0.0
    for position, term in enumerate(query):
        is_prefix = position == len(query) - 1
        best = 0.0
        for name, vocabulary in fields.items():
            hit = term in vocabulary or (
                is_prefix and len(term) >= 2 and any(w.startswith(term) for w in vocabulary)
            )
            if hit:
                best = max(best, WEIGHTS[name])
        if best == 0.0:
            return 0.0  # every word must be found somewhere
        total += best
    return total


def search(
    session: Session, query: str, language: str | None = None, limit: int = MAX_RESULTS
) -> list[CannedReply]:
    terms = words(query)
    if not terms:
        return []
    stmt = (
        select(Faq)
        .where(Faq.status == FaqStatus.PUBLISHED.value)
        .options(selectinload(Faq.variants))
    )
    if language:
        stmt = stmt.where(Faq.language == language)
    results: list[CannedReply] = []
    for faq in session.scalars(stmt):
        fields = {
            "question": set(words(faq.question)),
            "variants": {w for v in faq.variants for w in words(v.text)},
            "answer": set(words(faq.answer)),
        }
        score = _score(terms, fields)
        if score > 0:
            results.append(
                CannedReply(
                    faq_id=faq.id,
                    language=faq.language,
                    question=faq.question,
                    answer=faq.answer,
                    source_url=faq.source_url,
                    score=score,
                )
            )
    results.sort(key=lambda r: (-r.score, r.question))
    return results[:limit]
