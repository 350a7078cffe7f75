"""The knowledge-base API's request and response models (pydantic, so OpenAPI documents them)
and the presenters that turn store objects into them."""

from __future__ import annotations

import logging
import math
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from askagency.clock import now_utc
from askagency.numbers import MAX_ROW_ID
from console.jsonapi import RowId
from knowledge_base.health import DuplicatePair, FaqIssue
from knowledge_base.locations.store import LocationIn, LocationOut
from knowledge_base.models import Faq, FaqStatus
from knowledge_base.store import FaqInput
from knowledge_base.types import FaqKind

logger = logging.getLogger(__name__)


SMS_SINGLE = 160  # one GSM-7 SMS


SMS_PART = 153  # per part of a concatenated GSM-7 SMS


SMS_UNICODE_SINGLE = 70


SMS_UNICODE_PART = 67


REVIEW_SOON_DAYS = 30


# GSM 03.38 basic character set: texts using only these fit 160 characters per SMS.
_GSM_CHARS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


class SmsLength(BaseModel):
    chars: int
    segments: int
    unicode: bool = Field(description="needs UCS-2 encoding (70 characters per SMS)")


_KIND_DOC = (
    "answer: an FAQ the bot answers with; out_of_scope: its question and variants are examples "
    "of questions the service does not answer (a person takes them) and its answer is a note "
    "for staff"
)


class FaqOut(BaseModel):
    id: str
    language: str
    translation_group: str
    category: str
    question: str
    answer: str
    variants: list[str]
    related: list[str] = Field(
        description="ids of the related FAQs staff chose, in the order the bot offers them "
        "(empty: the index's nearest FAQs of the same category are offered)"
    )
    source_url: str | None
    status: FaqStatus
    kind: FaqKind = Field(description=_KIND_DOC)
    review_by: date | None
    review_due: bool
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    sms: SmsLength


class FaqSummary(BaseModel):
    id: str
    language: str
    category: str
    question: str
    status: FaqStatus
    kind: FaqKind = Field(description=_KIND_DOC)
    review_by: date | None
    review_due: bool
    variants: int
    version: int
    updated_at: datetime
    updated_by: str


class Facets(BaseModel):
    categories: list[str]
    languages: list[str]
    statuses: list[str]
    kinds: list[str]


class FaqListOut(BaseModel):
    items: list[FaqSummary]
    total: int
    page: int
    per_page: int
    pages: int
    facets: Facets


class IndexOut(BaseModel):
    ok: bool
    version: str | None = None
    faqs: int = 0
    vectors: int = 0
    embedded: int = 0
    seconds: float = 0.0
    error: str | None = None
    at: str | None = None


class IndexStatusOut(BaseModel):
    live: bool
    version: str | None = None
    created_at: str | None = None
    faqs: int = 0
    vectors: int = 0
    languages: list[str] = []
    last_publish: IndexOut | None = None


class FaqWriteOut(BaseModel):
    faq: FaqOut | None
    index: IndexOut | None = Field(
        default=None, description="the publish this change triggered (null: not live content)"
    )


class RelatedItemOut(BaseModel):
    id: str
    question: str
    language: str
    category: str
    status: FaqStatus | None = Field(description="null: not in the database any more")


class RelatedOut(BaseModel):
    faq_id: str
    limit: int = Field(description="how many related FAQs the bot offers (related_faqs_max)")
    max_chosen: int = Field(description="how many related FAQs staff may choose")
    chosen: list[RelatedItemOut] = Field(description="staff's list, in order")
    suggested: list[RelatedItemOut] = Field(
        description="the live index's nearest FAQs of the same category and language: what the "
        "bot offers when staff's list is empty"
    )
    offered: list[RelatedItemOut] = Field(description="what the bot offers now after the answer")
    in_index: bool = Field(description="the FAQ is in the live index (published)")


class FaqCreateIn(FaqInput):
    """An FAQ as FaqInput validates it, plus the unanswered questions it answers."""

    unanswered_ids: list[RowId] = Field(default_factory=list, max_length=5000)


class FaqUpdateIn(FaqInput):
    """The full new content; ``id`` comes from the path, ``expected_version``
    from the version the editor loaded (409 when someone saved in between). A body without
    ``kind`` or ``related`` (a client written before they existed) keeps the stored ones."""

    id: str | None = None  # type: ignore[assignment]
    expected_version: int = Field(ge=1)


class StatusIn(BaseModel):
    status: FaqStatus
    expected_version: int = Field(ge=1)


class RestoreIn(BaseModel):
    audit_id: RowId
    expected_version: int | None = Field(default=None, ge=1)


class FieldChange(BaseModel):
    field: str
    before: Any = None
    after: Any = None


class HistoryEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    version: int | None
    changes: list[FieldChange]
    restorable: bool


class HistoryOut(BaseModel):
    faq_id: str
    exists: bool
    current_version: int | None
    entries: list[HistoryEntryOut]


class TryIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    language: str | None = Field(default=None, max_length=16)


class HitOut(BaseModel):
    faq_id: str
    question: str
    score: float
    matched_text: str
    category: str
    answer: str
    source_url: str | None


class Thresholds(BaseModel):
    """The thresholds the decision used: those of the best FAQ's language."""

    answer_threshold: float
    clarify_threshold: float
    answer_margin: float
    suggest_threshold: float | None = Field(
        None, description="lowest score of a handoff's suggestions; null: suggestions off"
    )


class TryOut(BaseModel):
    text: str
    language: str
    outcome: Literal["answer", "clarify", "handoff"]
    top_score: float
    chosen: list[str] = Field(description="FAQ ids the bot would answer with or offer")
    hits: list[HitOut]
    thresholds: Thresholds
    index_version: str | None
    out_of_scope: HitOut | None = Field(
        None,
        description="the out-of-scope entry the question matched best: why it has no hits and "
        "is handed to a person",
    )


class SuggestionOut(BaseModel):
    faq_id: str
    question: str
    score: float


class ExampleOut(BaseModel):
    text: str
    count: int


class ClusterOut(BaseModel):
    key: str
    language: str
    representative: str
    count: int
    question_ids: list[int]
    examples: list[ExampleOut]
    reasons: dict[str, int]
    first_seen: datetime
    last_seen: datetime
    suggestions: list[SuggestionOut]
    # The out-of-scope entries that took its questions, with how many each (reason out_of_scope).
    out_of_scope_entries: dict[str, int] = {}
    # The FAQs citizens picked from the bot's options for its questions, with how many times.
    chosen: dict[str, int] = {}


class UnansweredOut(BaseModel):
    clusters: list[ClusterOut]
    # Questions by status, and ``open_out_of_scope``: the open ones an out-of-scope entry took
    # (part of ``open``; listed only with ``out_of_scope=true``).
    counts: dict[str, int]
    threshold: float
    suggestions_error: str | None = None


class AcceptIn(BaseModel):
    question_ids: list[RowId] = Field(min_length=1, max_length=5000)
    faq_id: str = Field(min_length=1, max_length=64)
    variant: str = Field(min_length=3, max_length=500)
    expected_version: int | None = Field(default=None, ge=1, le=MAX_ROW_ID)


class DismissIn(BaseModel):
    question_ids: list[RowId] = Field(min_length=1, max_length=5000)


class QueueChangeOut(BaseModel):
    resolved: int
    faq: FaqOut | None = None
    index: IndexOut | None = None


class ConflictOut(BaseModel):
    faq_id: str
    language: str
    text: str
    is_canonical: bool
    own_score: float
    other_faq_id: str
    other_question: str
    other_text: str
    other_score: float
    gap: float


class ConflictsOut(BaseModel):
    conflicts: list[ConflictOut]
    total: int
    margin: float


class HealthOut(BaseModel):
    """The health report's own frozen dataclasses are the item types (pydantic serialises and
    documents them), so the API cannot drift from knowledge_base/health.py."""

    generated_at: datetime
    counts: dict[str, int]
    review_overdue: list[FaqIssue]
    never_matched: list[FaqIssue]
    near_duplicates: list[DuplicatePair]
    conflicts: list[ConflictOut]
    # Published FAQs with fewer than advised_variants variants (0: the check is off).
    few_variants: list[FaqIssue]
    advised_variants: int
    similarity_error: str | None


class RowErrorOut(BaseModel):
    line: int
    field: str | None
    reason: str


class ImportRowOut(BaseModel):
    line: int
    id: str
    action: Literal["create", "update", "unchanged"]


class ImportPreviewOut(BaseModel):
    format: str
    sha256: str
    counts: dict[str, int]
    rows: list[ImportRowOut]
    errors: list[RowErrorOut]
    can_commit: bool


class ImportCommitOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    index: IndexOut | None = None


def sms_length(text: str) -> SmsLength:
    """SMS parts a text needs: GSM-7 160/153 per part, otherwise UCS-2 70/67."""
    chars = len(text)
    unicode = any(ch not in _GSM_CHARS for ch in text)
    single, part = (SMS_UNICODE_SINGLE, SMS_UNICODE_PART) if unicode else (SMS_SINGLE, SMS_PART)
    segments = 1 if chars <= single else math.ceil(chars / part)
    return SmsLength(chars=chars, segments=segments, unicode=unicode)


def today() -> date:
    return now_utc().date()


def is_review_due(faq: Faq, on: date | None = None) -> bool:
    return (
        faq.review_by is not None
        and faq.review_by < (on or today())
        and faq.status != FaqStatus.ARCHIVED.value
    )


def faq_out(faq: Faq) -> FaqOut:
    return FaqOut(
        id=faq.id,
        language=faq.language,
        translation_group=faq.translation_group,
        category=faq.category,
        question=faq.question,
        answer=faq.answer,
        variants=[v.text for v in faq.variants],
        related=[link.related_id for link in faq.related_links],
        source_url=faq.source_url,
        status=FaqStatus(faq.status),
        kind=FaqKind(faq.kind),
        review_by=faq.review_by,
        review_due=is_review_due(faq),
        version=faq.version,
        created_at=faq.created_at,
        updated_at=faq.updated_at,
        created_by=faq.created_by,
        updated_by=faq.updated_by,
        sms=sms_length(faq.answer),
    )


def faq_summary(faq: Faq) -> FaqSummary:
    return FaqSummary(
        id=faq.id,
        language=faq.language,
        category=faq.category,
        question=faq.question,
        status=FaqStatus(faq.status),
        kind=FaqKind(faq.kind),
        review_by=faq.review_by,
        review_due=is_review_due(faq),
        variants=len(faq.variants),
        version=faq.version,
        updated_at=faq.updated_at,
        updated_by=faq.updated_by,
    )


# --- locations (console/kb/locations.py) -------------------------------------------------------


class LocationPutIn(LocationIn):
    """A location's full new content; the code comes from the path. ``code`` may be sent (a
    location read from the API, changed and sent back) but must then be the path's code."""

    code: str | None = Field(  # type: ignore[assignment]
        None, max_length=16, description="omit, or the code in the URL (codes cannot change)"
    )

    @field_validator("code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        return None if value is None else LocationIn._code(value)


class LocationListOut(BaseModel):
    items: list[LocationOut] = Field(description="every location, active or not, by code")


class LocationDeletedOut(BaseModel):
    deleted: str = Field(description="the code of the location removed")


class LocationImportOut(BaseModel):
    imported: int = Field(description="locations in the file (each created or replaced)")
    created: int
    updated: int
