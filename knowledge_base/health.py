"""Content health: the FAQs that need a person's attention.

* past their review date: nobody has confirmed the answer is still true;
* never matched: published but never given as an answer (wrong wording, or
  nobody needs it);
* near-duplicates: two FAQs asking the same thing (and answering alike), which
  splits traffic and produces clarify prompts instead of answers;
* conflicts: wordings closer to another FAQ than to their own
  (:mod:`knowledge_base.conflicts`);
* few variants: published FAQs with fewer question wordings than advised. Citizens word a
  question many ways; an FAQ that knows few of them is found less often and answered less
  confidently (docs/quality.md: 5 -> 12 English variants per FAQ took the sample's test
  file from 77% to 84% top-1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from askagency.clock import now_utc
from knowledge_base.conflicts import Conflict, detect_conflicts
from knowledge_base.models import Faq, FaqStatus
from knowledge_base.store import list_faqs, published_records, to_record
from knowledge_base.types import FaqRecord

Embed = Callable[[Sequence[str]], np.ndarray]
# Near-duplicates: the same question written twice. Measured on the sample KB with the bundled
# (English) MiniLM: distinct English FAQs reach 0.86 ("apply for" vs "renew PreCheck"), distinct
# Spanish ones 0.93 (the model squeezes Spanish together), while their answers stay below 0.85.
# So: nearly identical questions, or very similar questions that also give similar answers.
DUPLICATE_QUESTION_ONLY = 0.95
DUPLICATE_THRESHOLD = 0.88
DUPLICATE_ANSWER_THRESHOLD = 0.85


@dataclass(frozen=True)
class FaqIssue:
    faq_id: str
    question: str
    language: str
    category: str
    status: str
    detail: str
    days: int  # days overdue / days in the knowledge base / variants missing

    @classmethod
    def of(cls, faq: Faq, detail: str, days: int) -> FaqIssue:
        """The issue ``detail`` of ``faq``: one place that copies the FAQ's own fields."""
        return cls(
            faq_id=faq.id,
            question=faq.question,
            language=faq.language,
            category=faq.category,
            status=faq.status,
            detail=detail,
            days=days,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DuplicatePair:
    faq_id: str
    other_faq_id: str
    language: str
    question: str
    other_question: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HealthReport:
    generated_at: datetime
    review_overdue: list[FaqIssue] = field(default_factory=list)
    never_matched: list[FaqIssue] = field(default_factory=list)
    near_duplicates: list[DuplicatePair] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    few_variants: list[FaqIssue] = field(default_factory=list)
    # Set when the embedding model could not be used: the similarity checks are missing.
    similarity_error: str | None = None

    def counts(self) -> dict[str, int]:
        return {
            "review_overdue": len(self.review_overdue),
            "never_matched": len(self.never_matched),
            "near_duplicates": len(self.near_duplicates),
            "conflicts": len(self.conflicts),
            "few_variants": len(self.few_variants),
        }


def review_overdue(session: Session, today: date) -> list[FaqIssue]:
    """Non-archived FAQs whose review date has passed, most overdue first."""
    faqs = session.scalars(
        select(Faq)
        .where(
            Faq.review_by.is_not(None),
            Faq.review_by < today,
            Faq.status != FaqStatus.ARCHIVED.value,
        )
        .order_by(Faq.review_by, Faq.id)
    )
    return [
        FaqIssue.of(
            faq, f"review was due {faq.review_by.isoformat()}", (today - faq.review_by).days
        )
        for faq in faqs
        if faq.review_by is not None
    ]


def never_matched(session: Session, usage: Mapping[str, int], now: datetime) -> list[FaqIssue]:
    """Published FAQs with no recorded answer, longest in the knowledge base first (not the
    out-of-scope entries: they are never meant to answer)."""
    issues = []
    for faq in list_faqs(session, status=FaqStatus.PUBLISHED.value):
        if usage.get(faq.id, 0) > 0 or faq.out_of_scope:
            continue
        age = max(0, (now - faq.created_at).days) if faq.created_at else 0
        issues.append(
            FaqIssue.of(faq, f"never given as an answer; in the knowledge base for {age} days", age)
        )
    issues.sort(key=lambda issue: (-issue.days, issue.faq_id))
    return issues


def few_variants(session: Session, advised: int) -> list[FaqIssue]:
    """Published FAQs with fewer than ``advised`` variants, fewest first (0: none listed).
    ``days`` is how many more variants the FAQ needs to reach the advice."""
    if advised <= 0:
        return []
    issues = []
    for faq in list_faqs(session, status=FaqStatus.PUBLISHED.value):
        count = len(faq.variants)
        if count >= advised:
            continue
        detail = f"{count} question variant{'s' if count != 1 else ''}; {advised} or more advised"
        issues.append(FaqIssue.of(faq, detail, advised - count))
    issues.sort(key=lambda issue: (-issue.days, issue.faq_id))
    return issues


def find_near_duplicates(
    records: Sequence[FaqRecord],
    question_vectors: np.ndarray,
    answer_vectors: np.ndarray,
    threshold: float = DUPLICATE_THRESHOLD,
    answer_threshold: float = DUPLICATE_ANSWER_THRESHOLD,
    question_only: float = DUPLICATE_QUESTION_ONLY,
) -> list[DuplicatePair]:
    """Pairs of same-language FAQs whose canonical questions are nearly identical
    (>= ``question_only``), or similar (>= ``threshold``) with similar answers
    (>= ``answer_threshold``). Vectors are aligned with ``records``."""
    questions = np.asarray(question_vectors, dtype=np.float32)
    answers = np.asarray(answer_vectors, dtype=np.float32)
    pairs: list[DuplicatePair] = []
    if len(records) < 2:
        return pairs
    sims = questions @ questions.T
    answer_sims = answers @ answers.T
    flagged = (sims >= question_only) | ((sims >= threshold) & (answer_sims >= answer_threshold))
    for i in range(len(records)):
        for j in np.nonzero(flagged[i, i + 1 :])[0]:
            other = int(i + 1 + j)
            a, b = records[i], records[other]
            if a.language != b.language:
                continue
            pairs.append(
                DuplicatePair(
                    faq_id=a.id,
                    other_faq_id=b.id,
                    language=a.language,
                    question=a.question,
                    other_question=b.question,
                    score=round(float(sims[i, other]), 4),
                )
            )
    pairs.sort(key=lambda p: (-p.score, p.faq_id, p.other_faq_id))
    return pairs


def content_health(
    session: Session,
    usage: Mapping[str, int],
    embed: Embed | None,
    today: date | None = None,
    advised_variants: int = 0,
) -> HealthReport:
    """Everything on the health page. ``embed`` (FAQ texts, may use the
    persistent cache) is optional: without a model the date, usage and variant checks
    still work and ``similarity_error`` says why the rest is missing."""
    now = now_utc()
    today = today or now.date()
    report = HealthReport(
        generated_at=now,
        review_overdue=review_overdue(session, today),
        never_matched=never_matched(session, usage, now),
        few_variants=few_variants(session, advised_variants),
    )
    if embed is None:
        report.similarity_error = "the embedding model is not available"
        return report
    try:
        current = [
            to_record(faq) for faq in list_faqs(session) if faq.status != FaqStatus.ARCHIVED.value
        ]
        if current:
            questions = np.asarray(embed([r.question for r in current]), dtype=np.float32)
            answers = np.asarray(embed([r.answer for r in current]), dtype=np.float32)
            report.near_duplicates = find_near_duplicates(current, questions, answers)
        report.conflicts = detect_conflicts(published_records(session), embed)
    except Exception as exc:  # noqa: BLE001 - model load errors are shown on the page
        report.similarity_error = f"{type(exc).__name__}: {exc}"
    return report
