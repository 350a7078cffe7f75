"""JSON API of the knowledge-base console: FAQs, history, go-live, "Try it", the
unanswered queue, conflicts, content health, import and export.

The console's own pages use exactly this API (kb.js), and agencies use it to sync
their CMS; /api/openapi.json documents every route. Editors and admins change
content, viewers read, agents get 403. Content validation is the store's
(``FaqInput``); this module only translates between HTTP and the store.

Any change that touches published content is followed by a publish (index
rebuild + atomic swap) before the response is sent, so a 200 means "live"; the
response's ``index`` says which bundle version went live or why it did not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from askagency.clock import now_utc
from askagency.config import Settings
from askagency.db import get_sessionmaker, session_scope
from askagency.staff import Role
from console.auth import current_user, require_role
from console.jsonapi import in_transaction, json_error, json_model, parse_json
from console.keys import SETTINGS_KEY
from console.openapi import api_route
from knowledge_base import io as kb_io
from knowledge_base import store
from knowledge_base import unanswered as queue
from knowledge_base.conflicts import Conflict, conflicts_for, detect_conflicts
from knowledge_base.health import DuplicatePair, FaqIssue, content_health
from knowledge_base.models import AuditLog, Faq, FaqStatus
from knowledge_base.publish import Publisher, PublishResult, index_status, rebuild_index
from knowledge_base.store import FaqInput
from knowledge_base.types import FaqHit, FaqRetriever, FaqRetrieverHandle, TextEmbedder

logger = logging.getLogger(__name__)

TAGS = ("knowledge base",)
READ_ROLES = ("viewer", "editor", "admin")
WRITE_ROLES = ("editor", "admin")
readers = require_role(Role.VIEWER, Role.EDITOR)
writers = require_role(Role.EDITOR)

SMS_SINGLE = 160  # one GSM-7 SMS
SMS_PART = 153  # per part of a concatenated GSM-7 SMS
SMS_UNICODE_SINGLE = 70
SMS_UNICODE_PART = 67
REVIEW_SOON_DAYS = 30
PER_PAGE_MAX = 200
CONFLICT_MARGIN = 0.1  # "clearly closer": measured on the sample KB, hides near-ties
SORT_FIELDS = ("id", "question", "category", "language", "status", "review_by", "updated_at")
T = TypeVar("T")

# GSM 03.38 basic character set: texts using only these fit 160 characters per SMS.
_GSM_CHARS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


# ----------------------------------------------------------------------------- runtime
class KbRuntime:
    """Per-app access to the heavy parts: the embedder (loaded on first use), the
    retriever over the live bundle and the publisher. Tests replace ``rebuild``
    or the whole runtime to keep API tests free of the model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embedder: TextEmbedder | None = None
        self._handle: FaqRetrieverHandle | None = None
        self._memo: queue.QueryEmbeddingMemo | None = None
        self._warming: asyncio.Task[None] | None = None
        self.publisher = Publisher(self.rebuild)

    @property
    def index_dir(self) -> Path:
        assert self.settings.index_dir is not None
        return Path(self.settings.index_dir)

    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            from knowledge_base.factory import embedder_for

            self._embedder = embedder_for(self.settings)
        return self._embedder

    def warm_up(self) -> None:
        """Load torch and the model (seconds) before staff press Publish or Try it."""
        try:
            self.embedder().encode_query("warm up")
        except Exception as exc:  # noqa: BLE001 - reported when the model is really needed
            logger.warning("embedding model not available in the console: %s", exc)

    def warm_up_in_background(self) -> None:
        """Started when someone opens a knowledge-base page: by the time they save, the
        model is loaded and publishing takes about a second."""
        if self._warming is None:
            self._warming = asyncio.get_running_loop().create_task(asyncio.to_thread(self.warm_up))

    def rebuild(self) -> PublishResult:
        from knowledge_base.factory import index_options

        return rebuild_index(
            self.index_dir,
            self.embedder(),
            self.settings.database_url,
            options=index_options(self.settings),
        )

    def retriever(self) -> FaqRetriever:
        """The retriever over the live bundle (reloads when CURRENT moves)."""
        if self._handle is None:
            from knowledge_base.factory import open_retriever

            self._handle = open_retriever(self.settings, self.embedder())
        return self._handle.get()

    def search(self, text: str, language: str | None, k: int) -> list[FaqHit]:
        return list(self.retriever().search(text, k=k, language=language))

    def embed_faq_texts(self, texts: Sequence[str]) -> Any:
        """FAQ content: the persistent cache is fine (and shared with index builds)."""
        return self.embedder().encode(list(texts))

    def embed_citizen_texts(self, texts: Sequence[str]) -> Any:
        """Citizen questions: memoised in memory only, never in the persistent cache."""
        if self._memo is None:
            self._memo = queue.QueryEmbeddingMemo(
                lambda batch: self.embedder().encode(batch, use_cache=False)
            )
        return self._memo(texts)


RUNTIME_KEY = web.AppKey("kb_runtime", KbRuntime)


def runtime(request: web.Request) -> KbRuntime:
    return request.app[RUNTIME_KEY]


async def off_loop(func: Callable[..., T], *args: Any) -> T:
    """Blocking work (database, embeddings, FAISS) off the event loop."""
    return await asyncio.to_thread(func, *args)


def actor(request: web.Request) -> str:
    user = current_user(request)
    assert user is not None  # every route here is behind require_role
    return user.username


# ----------------------------------------------------------------------------- models
class SmsLength(BaseModel):
    chars: int
    segments: int
    unicode: bool = Field(description="needs UCS-2 encoding (70 characters per SMS)")


class FaqOut(BaseModel):
    id: str
    language: str
    translation_group: str
    category: str
    question: str
    answer: str
    variants: list[str]
    source_url: str | None
    status: FaqStatus
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


class FaqCreateIn(FaqInput):
    """An FAQ as FaqInput validates it, plus the unanswered questions it answers."""

    unanswered_ids: list[int] = Field(default_factory=list, max_length=5000)


class FaqUpdateIn(FaqInput):
    """The full new content; ``id`` comes from the path, ``expected_version``
    from the version the editor loaded (409 when someone saved in between)."""

    id: str | None = None  # type: ignore[assignment]
    expected_version: int = Field(ge=1)


class StatusIn(BaseModel):
    status: FaqStatus
    expected_version: int = Field(ge=1)


class RestoreIn(BaseModel):
    audit_id: int = Field(ge=1)
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
    answer_threshold: float
    clarify_threshold: float
    answer_margin: float


class TryOut(BaseModel):
    text: str
    language: str
    outcome: Literal["answer", "clarify", "handoff"]
    top_score: float
    chosen: list[str] = Field(description="FAQ ids the bot would answer with or offer")
    hits: list[HitOut]
    thresholds: Thresholds
    index_version: str | None


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


class UnansweredOut(BaseModel):
    clusters: list[ClusterOut]
    counts: dict[str, int]
    threshold: float
    suggestions_error: str | None = None


# Database row ids: beyond 64 bits SQLite raises OverflowError (a 500, found by schemathesis).
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class AcceptIn(BaseModel):
    question_ids: list[RowId] = Field(min_length=1, max_length=5000)
    faq_id: str = Field(min_length=1, max_length=64)
    variant: str = Field(min_length=3, max_length=500)
    expected_version: int | None = Field(default=None, ge=1, le=2**63 - 1)


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


# ----------------------------------------------------------------------------- helpers
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
        source_url=faq.source_url,
        status=FaqStatus(faq.status),
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
        review_by=faq.review_by,
        review_due=is_review_due(faq),
        variants=len(faq.variants),
        version=faq.version,
        updated_at=faq.updated_at,
        updated_by=faq.updated_by,
    )


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "body",
            "reason": str(err["msg"]).removeprefix("Value error, "),
        }
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def store_error(exc: Exception) -> web.HTTPException:
    """The one mapping from store/queue errors to HTTP (uniform JSON bodies)."""
    if isinstance(exc, store.FaqNotFound | store.AuditEntryNotFound):
        return json_error(404, str(exc))
    if isinstance(exc, store.VersionConflict):
        details = {"expected": exc.expected, "actual": exc.actual}
        return json_error(409, str(exc), details)
    if isinstance(exc, store.FaqExists):
        return json_error(409, str(exc), [{"field": "id", "reason": "already exists"}])
    if isinstance(exc, queue.QuestionsNotOpen):
        status = 404 if exc.missing and not exc.handled else 409
        return json_error(status, str(exc), {"missing": exc.missing, "handled": exc.handled})
    if isinstance(exc, ValidationError):
        return json_error(400, "invalid FAQ content", validation_details(exc))
    if isinstance(exc, kb_io.ImportRefused):
        return json_error(409, str(exc))
    if isinstance(exc, queue.UnansweredError | ValueError):
        return json_error(400, str(exc))
    raise exc


_KNOWN_ERRORS = (store.StoreError, queue.UnansweredError, ValidationError, ValueError)


async def write(request: web.Request, work: Callable[[Session], T]) -> T:
    """Run a change in one transaction off the loop; store errors become 4xx."""
    url = request.app[SETTINGS_KEY].database_url
    return await in_transaction(work, url, _KNOWN_ERRORS, store_error)


async def read(request: web.Request, work: Callable[[Session], T]) -> T:
    return await write(request, work)


async def publish_if(request: web.Request, needed: bool) -> IndexOut | None:
    if not needed:
        return None
    result = await runtime(request).publisher.publish()
    return IndexOut(**result.to_dict())


def _is_published(status: str | None) -> bool:
    return status == FaqStatus.PUBLISHED.value


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise json_error(
            400, f"query parameter {name} must be a whole number", [{"field": name}]
        ) from None
    if not low <= value <= high:
        raise json_error(
            400, f"query parameter {name} must be between {low} and {high}", [{"field": name}]
        )
    return value


def _float_query(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise json_error(400, f"query parameter {name} must be a number") from None
    if not low <= value <= high:
        raise json_error(400, f"query parameter {name} must be between {low} and {high}")
    return value


def _choice_query(request: web.Request, name: str, choices: Sequence[str], default: str) -> str:
    value = request.query.get(name) or default
    if value not in choices:
        raise json_error(
            400,
            f"query parameter {name} must be one of {', '.join(choices)}",
            [{"field": name, "reason": f"got {value!r}"}],
        )
    return value


# ----------------------------------------------------------------------------- listing
REVIEW_FILTERS = ("", "overdue", "soon", "none")
LIST_QUERY = (
    ("q", "text searched in id, question, answer and variants", False),
    ("category", "exact category", False),
    ("language", "language code", False),
    ("status", "draft, published or archived", False),
    ("review", "overdue, soon (within 30 days) or none (no review date)", False),
    ("sort", f"one of {', '.join(SORT_FIELDS)}; prefix - for descending", False),
    ("page", "1-based page number", False),
    ("per_page", f"items per page (1-{PER_PAGE_MAX}, default 50)", False),
)


def list_query(request: web.Request) -> dict[str, Any]:
    """Parsed and checked list filters (shared by the API and the list page)."""
    status = request.query.get("status") or None
    if status is not None and status not in {s.value for s in FaqStatus}:
        raise json_error(400, "status must be draft, published or archived")
    sort = request.query.get("sort") or "id"
    if sort.lstrip("-") not in SORT_FIELDS:
        raise json_error(400, f"sort must be one of {', '.join(SORT_FIELDS)} (optionally -field)")
    return {
        "q": (request.query.get("q") or "").strip()[:200],
        "category": request.query.get("category") or None,
        "language": request.query.get("language") or None,
        "status": status,
        "review": _choice_query(request, "review", REVIEW_FILTERS, ""),
        "sort": sort,
        "page": _int_query(request, "page", 1, 1, 100000),
        "per_page": _int_query(request, "per_page", 50, 1, PER_PAGE_MAX),
    }


def _matches(faq: Faq, needle: str) -> bool:
    if not needle:
        return True
    haystack = [faq.id, faq.question, faq.answer, faq.category, *(v.text for v in faq.variants)]
    return any(needle in text.casefold() for text in haystack)


def _review_filter(faq: Faq, review: str, on: date) -> bool:
    if review == "overdue":
        return is_review_due(faq, on)
    if review == "soon":
        return faq.review_by is not None and faq.review_by <= on + timedelta(days=REVIEW_SOON_DAYS)
    if review == "none":
        return faq.review_by is None
    return True


def _sort_key(field: str) -> Callable[[Faq], Any]:
    if field == "review_by":
        return lambda f: (f.review_by is None, f.review_by or date.max, f.id)
    if field == "updated_at":
        return lambda f: (f.updated_at, f.id)
    return lambda f: (str(getattr(f, field)).casefold(), f.id)


def search_faqs(session: Session, params: dict[str, Any]) -> FaqListOut:
    everything = store.list_faqs(session)
    on = today()
    needle = params["q"].casefold()
    selected = [
        faq
        for faq in everything
        if (params["status"] is None or faq.status == params["status"])
        and (params["language"] is None or faq.language == params["language"])
        and (params["category"] is None or faq.category == params["category"])
        and _review_filter(faq, params["review"], on)
        and _matches(faq, needle)
    ]
    field = params["sort"].lstrip("-")
    selected.sort(key=_sort_key(field), reverse=params["sort"].startswith("-"))
    per_page = params["per_page"]
    pages = max(1, math.ceil(len(selected) / per_page))
    page = min(params["page"], pages)
    chunk = selected[(page - 1) * per_page : page * per_page]
    return FaqListOut(
        items=[faq_summary(faq) for faq in chunk],
        total=len(selected),
        page=page,
        per_page=per_page,
        pages=pages,
        facets=Facets(
            categories=sorted({f.category for f in everything}, key=str.casefold),
            languages=sorted({f.language for f in everything}),
            statuses=[s.value for s in FaqStatus],
        ),
    )


@readers
async def api_list(request: web.Request) -> web.Response:
    params = list_query(request)
    result = await read(request, lambda s: search_faqs(s, params))
    return json_model(result)


# ----------------------------------------------------------------------------- one FAQ
def _faq_id(request: web.Request) -> str:
    return request.match_info["faq_id"]


@readers
async def api_get(request: web.Request) -> web.Response:
    faq_id = _faq_id(request)
    result = await read(request, lambda s: faq_out(store.get_faq(s, faq_id)))
    return json_model(result)


def _reply(faq: FaqOut | None, index: IndexOut | None, status: int = 200) -> web.Response:
    body = FaqWriteOut(faq=faq, index=index)
    return json_model(body, status)


@writers
async def api_create(request: web.Request) -> web.Response:
    body = await parse_json(request, FaqCreateIn)
    data = FaqInput.model_validate(body.model_dump(exclude={"unanswered_ids"}))
    who = actor(request)

    def work(session: Session) -> FaqOut:
        faq = store.create_faq(session, data, who)
        if body.unanswered_ids:
            queue.mark_created(session, body.unanswered_ids, faq.id, who)
        return faq_out(faq)

    out = await write(request, work)
    return _reply(out, await publish_if(request, _is_published(out.status)), status=201)


@writers
async def api_update(request: web.Request) -> web.Response:
    faq_id = _faq_id(request)
    body = await parse_json(request, FaqUpdateIn)
    if body.id not in (None, faq_id):
        raise json_error(
            400, "FAQ ids cannot be changed", [{"field": "id", "reason": "must match the URL"}]
        )
    try:
        data = FaqInput.model_validate(
            {**body.model_dump(exclude={"expected_version"}), "id": faq_id}
        )
    except ValidationError as exc:
        raise json_error(400, "invalid request body", validation_details(exc)) from exc
    who = actor(request)

    def work(session: Session) -> tuple[FaqOut, bool]:
        before = store.get_faq(session, faq_id).status
        faq = store.update_faq(session, faq_id, data, who, body.expected_version)
        return faq_out(faq), _is_published(before) or _is_published(faq.status)

    out, live = await write(request, work)
    return _reply(out, await publish_if(request, live))


@writers
async def api_set_status(request: web.Request) -> web.Response:
    faq_id = _faq_id(request)
    body = await parse_json(request, StatusIn)
    who = actor(request)

    def work(session: Session) -> tuple[FaqOut, bool]:
        before = store.get_faq(session, faq_id).status
        faq = store.set_status(session, faq_id, body.status, who, body.expected_version)
        changed = before != faq.status
        return faq_out(faq), changed and (_is_published(before) or _is_published(faq.status))

    out, live = await write(request, work)
    return _reply(out, await publish_if(request, live))


@writers
async def api_delete(request: web.Request) -> web.Response:
    faq_id = _faq_id(request)
    if not request.query.get("expected_version"):
        raise json_error(
            400,
            "expected_version is required to delete",
            [{"field": "expected_version", "reason": "the version you are deleting"}],
        )
    expected = _int_query(request, "expected_version", 1, 1, 10**9)
    who = actor(request)

    def work(session: Session) -> bool:
        was_live = _is_published(store.get_faq(session, faq_id).status)
        store.delete_faq(session, faq_id, who, expected)
        return was_live

    live = await write(request, work)
    return _reply(None, await publish_if(request, live))


# ----------------------------------------------------------------------------- history
_DIFF_FIELDS = (*store.SNAPSHOT_FIELDS, "variants")


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldChange]:
    changes = []
    for name in _DIFF_FIELDS:
        old = (before or {}).get(name)
        new = (after or {}).get(name)
        if old != new:
            changes.append(FieldChange(field=name, before=old, after=new))
    return changes


def history_out(session: Session, faq_id: str) -> HistoryOut:
    entries: list[AuditLog] = store.faq_history(session, faq_id)
    current = session.get(Faq, faq_id)
    return HistoryOut(
        faq_id=faq_id,
        exists=current is not None,
        current_version=current.version if current else None,
        entries=[
            HistoryEntryOut(
                id=entry.id,
                at=entry.at,
                actor=entry.actor,
                action=entry.action,
                version=(entry.after or entry.before or {}).get("version"),
                changes=_changes(entry.before, entry.after),
                restorable=(entry.after or entry.before) is not None,
            )
            for entry in entries
        ],
    )


@readers
async def api_history(request: web.Request) -> web.Response:
    faq_id = _faq_id(request)
    result = await read(request, lambda s: history_out(s, faq_id))
    return json_model(result)


@writers
async def api_restore(request: web.Request) -> web.Response:
    faq_id = _faq_id(request)
    body = await parse_json(request, RestoreIn)
    who = actor(request)

    def work(session: Session) -> tuple[FaqOut, bool]:
        current = session.get(Faq, faq_id)
        before = current.status if current else None
        expected = body.expected_version
        if current is not None and expected is not None and current.version != expected:
            raise store.VersionConflict(faq_id, expected, current.version)
        faq = store.restore_version(session, faq_id, body.audit_id, who)
        return faq_out(faq), _is_published(before) or _is_published(faq.status)

    out, live = await write(request, work)
    return _reply(out, await publish_if(request, live))


# ----------------------------------------------------------------------------- go live
def index_status_out(rt: KbRuntime) -> IndexStatusOut:
    status = index_status(rt.index_dir)
    last = rt.publisher.last
    last_out = IndexOut(**last.to_dict()) if last else None
    if status is None:
        return IndexStatusOut(live=False, last_publish=last_out)
    return IndexStatusOut(
        live=True,
        version=status["version"],
        created_at=status["created_at"],
        faqs=status["faqs"],
        vectors=status["vectors"],
        languages=status["languages"],
        last_publish=last_out,
    )


@readers
async def api_index(request: web.Request) -> web.Response:
    out = await off_loop(index_status_out, runtime(request))
    return json_model(out)


@writers
async def api_publish(request: web.Request) -> web.Response:
    out = await publish_if(request, True)
    assert out is not None
    if not out.ok:
        raise json_error(503, f"the index could not be rebuilt: {out.error}", out.model_dump())
    return json_model(out)


def try_question(rt: KbRuntime, text: str, language: str) -> TryOut:
    from knowledge_base.decision import decide

    settings = rt.settings
    retriever = rt.retriever()
    hits = list(retriever.search(text, k=5, language=language))
    decision = decide(hits, settings)
    return TryOut(
        text=text,
        language=language,
        outcome=decision.outcome.value,  # type: ignore[arg-type]
        top_score=round(float(decision.top_score), 4),
        chosen=[hit.faq_id for hit in decision.hits] if decision.outcome != "handoff" else [],
        hits=[
            HitOut(
                faq_id=hit.faq_id,
                question=hit.question,
                score=round(float(hit.score), 4),
                matched_text=hit.matched_text,
                category=hit.category,
                answer=hit.answer,
                source_url=hit.source_url,
            )
            for hit in hits
        ],
        thresholds=Thresholds(
            answer_threshold=settings.answer_threshold,
            clarify_threshold=settings.clarify_threshold,
            answer_margin=settings.answer_margin,
        ),
        index_version=retriever.version,
    )


def _model_unavailable(exc: Exception) -> web.HTTPException:
    return json_error(
        503,
        f"retrieval is not available: {type(exc).__name__}: {exc}",
        {"hint": "publish the knowledge base (or run `askagency kb build-index`)"},
    )


@readers
async def api_try(request: web.Request) -> web.Response:
    body = await parse_json(request, TryIn)
    rt = runtime(request)
    language = (body.language or rt.settings.default_language).strip().lower()
    try:
        out = await off_loop(try_question, rt, body.text, language)
    except Exception as exc:  # noqa: BLE001 - no index or model: say so, do not 500
        raise _model_unavailable(exc) from exc
    return json_model(out)


# ----------------------------------------------------------------------------- unanswered
def unanswered_out(
    rt: KbRuntime, language: str | None, threshold: float, limit: int
) -> UnansweredOut:
    with session_scope(rt.settings.database_url) as session:
        rows = queue.open_questions(session, language=language)
        counts = queue.status_counts(session)
        clusters = queue.build_clusters(rows, rt.embed_citizen_texts, threshold)[:limit]
    error = None
    try:
        queue.add_suggestions(clusters, lambda text, lang: rt.search(text, lang, 3))
    except Exception as exc:  # noqa: BLE001 - the queue is useful without suggestions
        error = f"{type(exc).__name__}: {exc}"
    return UnansweredOut(
        clusters=[
            ClusterOut(
                key=c.key,
                language=c.language,
                representative=c.representative,
                count=c.count,
                question_ids=c.question_ids,
                examples=[ExampleOut(text=t, count=n) for t, n in c.examples],
                reasons=c.reasons,
                first_seen=c.first_seen,
                last_seen=c.last_seen,
                suggestions=[
                    SuggestionOut(faq_id=s.faq_id, question=s.question, score=round(s.score, 4))
                    for s in c.suggestions
                ],
            )
            for c in clusters
        ],
        counts=counts,
        threshold=threshold,
        suggestions_error=error,
    )


@readers
async def api_unanswered(request: web.Request) -> web.Response:
    language = request.query.get("language") or None
    threshold = _float_query(request, "threshold", queue.DEFAULT_CLUSTER_THRESHOLD, 0.05, 0.99)
    limit = _int_query(request, "limit", 100, 1, 1000)
    try:
        out = await off_loop(unanswered_out, runtime(request), language, threshold, limit)
    except _KNOWN_ERRORS as exc:
        raise store_error(exc) from exc
    except Exception as exc:  # noqa: BLE001 - the embedding model is missing or broken
        raise _model_unavailable(exc) from exc
    return json_model(out)


@writers
async def api_accept(request: web.Request) -> web.Response:
    body = await parse_json(request, AcceptIn)
    who = actor(request)

    def work(session: Session) -> tuple[FaqOut, bool]:
        faq = queue.accept_as_variant(
            session, body.question_ids, body.faq_id, body.variant, who, body.expected_version
        )
        return faq_out(faq), _is_published(faq.status)

    out, live = await write(request, work)
    result = QueueChangeOut(
        resolved=len(set(body.question_ids)), faq=out, index=await publish_if(request, live)
    )
    return json_model(result)


@writers
async def api_dismiss(request: web.Request) -> web.Response:
    body = await parse_json(request, DismissIn)
    who = actor(request)
    count = await write(request, lambda s: queue.dismiss(s, body.question_ids, who))
    return json_model(QueueChangeOut(resolved=count))


# ----------------------------------------------------------------------------- health
def _conflict_out(conflict: Conflict) -> ConflictOut:
    return ConflictOut(**conflict.to_dict())


def conflicts_out(rt: KbRuntime, margin: float, faq_id: str | None) -> ConflictsOut:
    with session_scope(rt.settings.database_url) as session:
        records = store.published_records(session)
    found = detect_conflicts(records, rt.embed_faq_texts, margin=margin)
    if faq_id:
        found = conflicts_for(found, faq_id)
    return ConflictsOut(
        conflicts=[_conflict_out(c) for c in found], total=len(found), margin=margin
    )


@readers
async def api_conflicts(request: web.Request) -> web.Response:
    margin = _float_query(request, "margin", CONFLICT_MARGIN, 0.0, 1.0)
    faq_id = request.query.get("faq_id") or None
    try:
        out = await off_loop(conflicts_out, runtime(request), margin, faq_id)
    except Exception as exc:  # noqa: BLE001 - the embedding model is missing or broken
        raise _model_unavailable(exc) from exc
    return json_model(out)


def health_out(rt: KbRuntime, limit: int) -> HealthOut:
    with session_scope(rt.settings.database_url) as session:
        report = content_health(session, queue.usage_counts(session), rt.embed_faq_texts)
    conflicts = [c for c in report.conflicts if c.gap > CONFLICT_MARGIN]
    counts = {**report.counts(), "conflicts": len(conflicts)}
    return HealthOut(
        generated_at=report.generated_at,
        counts=counts,
        review_overdue=report.review_overdue[:limit],
        never_matched=report.never_matched[:limit],
        near_duplicates=report.near_duplicates[:limit],
        conflicts=[_conflict_out(c) for c in conflicts[:limit]],
        similarity_error=report.similarity_error,
    )


@readers
async def api_health(request: web.Request) -> web.Response:
    limit = _int_query(request, "limit", 100, 1, 5000)
    out = await off_loop(health_out, runtime(request), limit)
    return json_model(out)


# ----------------------------------------------------------------------------- import/export
IMPORT_QUERY = (
    ("format", "auto (from filename/content), csv or jsonl", False),
    ("filename", "original file name, used to detect the format", False),
    ("mode", "upsert (default) or create (refuse existing ids)", False),
    ("publish", "true: publish every imported row", False),
)


def _import_options(request: web.Request) -> tuple[str, str, str, bool]:
    fmt = _choice_query(request, "format", ("auto", "csv", "jsonl"), "auto")
    mode = _choice_query(request, "mode", ("upsert", "create"), "upsert")
    publish = _choice_query(request, "publish", ("true", "false", "1", "0", ""), "") in (
        "true",
        "1",
    )
    return fmt, (request.query.get("filename") or "")[:200], mode, publish


def preview_import(
    database_url: str, data: bytes, fmt: str, name: str, mode: str, publish: bool
) -> ImportPreviewOut:
    """Validate and dry-run the import in a transaction that is always rolled
    back: the counts are exactly what a commit would do, nothing is written."""
    parsed = kb_io.parse_bytes(data, fmt=fmt, name=name)  # type: ignore[arg-type]
    errors = [RowErrorOut(line=e.line, field=e.field, reason=e.reason) for e in parsed.errors]
    rows: list[ImportRowOut] = []
    session = get_sessionmaker(database_url)()
    try:
        ids = [row.id for row in parsed.rows]
        before = {f.id: f.version for f in store.list_faqs(session) if f.id in set(ids)}
        try:
            kb_io.import_rows(session, parsed.rows, "preview", publish=publish, mode=mode)  # type: ignore[arg-type]
            session.flush()
            after = {f.id: f.version for f in store.list_faqs(session) if f.id in set(ids)}
            for line, row in zip(parsed.lines, parsed.rows, strict=True):
                if row.id not in before:
                    action = "create"
                elif after.get(row.id) != before[row.id]:
                    action = "update"
                else:
                    action = "unchanged"
                rows.append(ImportRowOut(line=line, id=row.id, action=action))  # type: ignore[arg-type]
        except kb_io.ImportRefused as exc:
            errors.append(RowErrorOut(line=0, field=None, reason=str(exc)))
    finally:
        session.rollback()
        session.close()
    counts = {action: sum(r.action == action for r in rows) for action in ("create", "update")}
    counts["unchanged"] = sum(r.action == "unchanged" for r in rows)
    counts["errors"] = len(errors)
    return ImportPreviewOut(
        format=parsed.format,
        sha256=hashlib.sha256(data).hexdigest(),
        counts=counts,
        rows=rows,
        errors=errors,
        can_commit=not errors and bool(rows),
    )


async def _upload(request: web.Request) -> bytes:
    data = await request.read()
    if not data:
        raise json_error(400, "send the CSV or JSONL file as the request body")
    if len(data) > kb_io.MAX_FILE_BYTES:
        raise json_error(413, f"file larger than {kb_io.MAX_FILE_BYTES // (1024 * 1024)} MB")
    return data


@writers
async def api_import_preview(request: web.Request) -> web.Response:
    fmt, name, mode, publish = _import_options(request)
    data = await _upload(request)
    url = request.app[SETTINGS_KEY].database_url
    out = await off_loop(preview_import, url, data, fmt, name, mode, publish)
    return json_model(out)


@writers
async def api_import_commit(request: web.Request) -> web.Response:
    fmt, name, mode, publish = _import_options(request)
    data = await _upload(request)
    expected_sha = request.query.get("sha256")
    if expected_sha and expected_sha != hashlib.sha256(data).hexdigest():
        raise json_error(409, "the file differs from the one you previewed; preview it again")
    parsed = await off_loop(kb_io.parse_bytes, data, fmt, name)
    if parsed.errors:
        raise json_error(
            400,
            f"the file has {len(parsed.errors)} problem(s); nothing was imported",
            [{"line": e.line, "field": e.field, "reason": e.reason} for e in parsed.errors],
        )
    who = actor(request)

    def work(session: Session) -> tuple[kb_io.ImportSummary, bool]:
        ids = {row.id for row in parsed.rows}
        was_live = any(_is_published(f.status) for f in store.list_faqs(session) if f.id in ids)
        summary = kb_io.import_rows(session, parsed.rows, who, publish=publish, mode=mode)  # type: ignore[arg-type]
        now_live = any(_is_published(f.status) for f in store.list_faqs(session) if f.id in ids)
        return summary, (was_live or now_live) and (summary.created + summary.updated) > 0

    summary, live = await write(request, work)
    out = ImportCommitOut(
        created=summary.created,
        updated=summary.updated,
        unchanged=summary.unchanged,
        index=await publish_if(request, live),
    )
    return json_model(out)


@readers
async def api_export(request: web.Request) -> web.StreamResponse:
    import io

    fmt = _choice_query(request, "format", ("csv", "jsonl"), "csv")
    status_param = _choice_query(
        request, "status", ("all", "draft", "published", "archived"), "all"
    )
    status = None if status_param == "all" else status_param
    exporter = kb_io.export_csv if fmt == "csv" else kb_io.export_jsonl

    def work(session: Session) -> str:
        buffer = io.StringIO(newline="")
        exporter(session, buffer, status=status)
        return buffer.getvalue()

    text = await read(request, work)
    stamp = now_utc().strftime("%Y%m%d")
    filename = f"faqs-{status_param}-{stamp}.{fmt}"
    return web.Response(
        text=text,
        content_type="text/csv" if fmt == "csv" else "application/x-ndjson",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# ----------------------------------------------------------------------------- routes
def setup(app: web.Application, rt: KbRuntime | None = None) -> None:
    app[RUNTIME_KEY] = rt or KbRuntime(app[SETTINGS_KEY])

    def route(method: str, path: str, handler: Any, summary: str, roles: Sequence[str], **kw: Any):
        api_route(app, method, path, handler, summary=summary, tags=TAGS, roles=roles, **kw)

    faq = "/api/kb/faqs/{faq_id}"
    route(
        "GET",
        "/api/kb/faqs",
        api_list,
        "Search, filter, sort and page FAQs",
        READ_ROLES,
        response_model=FaqListOut,
        query=LIST_QUERY,
    )
    route(
        "POST",
        "/api/kb/faqs",
        api_create,
        "Create an FAQ (published ones go live)",
        WRITE_ROLES,
        request_model=FaqCreateIn,
        response_model=FaqWriteOut,
        responses={201: "Created", 409: "An FAQ with this id exists"},
    )
    route(
        "GET",
        faq,
        api_get,
        "One FAQ with its variants and version",
        READ_ROLES,
        response_model=FaqOut,
        responses={404: "Unknown FAQ"},
    )
    route(
        "PUT",
        faq,
        api_update,
        "Replace an FAQ's content (optimistic concurrency)",
        WRITE_ROLES,
        request_model=FaqUpdateIn,
        response_model=FaqWriteOut,
        responses={404: "Unknown FAQ", 409: "Someone saved a newer version"},
    )
    route(
        "DELETE",
        faq,
        api_delete,
        "Delete an FAQ (its history can restore it)",
        WRITE_ROLES,
        response_model=FaqWriteOut,
        query=(("expected_version", "version to delete", True),),
        responses={404: "Unknown FAQ", 409: "Someone saved a newer version"},
    )
    route(
        "POST",
        faq + "/status",
        api_set_status,
        "Draft, publish or archive an FAQ",
        WRITE_ROLES,
        request_model=StatusIn,
        response_model=FaqWriteOut,
        responses={404: "Unknown FAQ", 409: "Someone saved a newer version"},
    )
    route(
        "GET",
        faq + "/history",
        api_history,
        "Audit log of an FAQ with field diffs",
        READ_ROLES,
        response_model=HistoryOut,
        responses={404: "Unknown FAQ"},
    )
    route(
        "POST",
        faq + "/restore",
        api_restore,
        "Restore an FAQ to an earlier version",
        WRITE_ROLES,
        request_model=RestoreIn,
        response_model=FaqWriteOut,
        responses={404: "Unknown FAQ or history entry", 409: "Newer version exists"},
    )
    route(
        "GET",
        "/api/kb/index",
        api_index,
        "The live index bundle and the last publish",
        READ_ROLES,
        response_model=IndexStatusOut,
    )
    route(
        "POST",
        "/api/kb/publish",
        api_publish,
        "Rebuild the index from published FAQs now",
        WRITE_ROLES,
        response_model=IndexOut,
        responses={503: "The index could not be built"},
    )
    route(
        "POST",
        "/api/kb/try",
        api_try,
        "Top-5 FAQs and the bot's decision for a question",
        READ_ROLES,
        request_model=TryIn,
        response_model=TryOut,
        responses={503: "No index or model available"},
    )
    route(
        "GET",
        "/api/kb/unanswered",
        api_unanswered,
        "Open unanswered questions, clustered, with suggested FAQs",
        READ_ROLES,
        response_model=UnansweredOut,
        query=(
            ("language", "only this language", False),
            ("threshold", "cluster similarity 0.05-0.99 (default 0.55)", False),
            ("limit", "clusters returned (default 100)", False),
        ),
    )
    route(
        "POST",
        "/api/kb/unanswered/accept",
        api_accept,
        "Add a question as a variant of an FAQ and close it (goes live)",
        WRITE_ROLES,
        request_model=AcceptIn,
        response_model=QueueChangeOut,
        responses={404: "Unknown FAQ or questions", 409: "Already handled or newer version"},
    )
    route(
        "POST",
        "/api/kb/unanswered/dismiss",
        api_dismiss,
        "Dismiss unanswered questions",
        WRITE_ROLES,
        request_model=DismissIn,
        response_model=QueueChangeOut,
        responses={404: "Unknown questions", 409: "Already handled"},
    )
    route(
        "GET",
        "/api/kb/conflicts",
        api_conflicts,
        "Question texts closer to another FAQ than to their own",
        READ_ROLES,
        response_model=ConflictsOut,
        query=(
            ("margin", "how much closer (default 0.1)", False),
            ("faq_id", "only conflicts involving this FAQ", False),
        ),
    )
    route(
        "GET",
        "/api/kb/health",
        api_health,
        "Content health: overdue reviews, never matched, near-duplicates, conflicts",
        READ_ROLES,
        response_model=HealthOut,
        query=(("limit", "items per list", False),),
    )
    route(
        "POST",
        "/api/kb/import/preview",
        api_import_preview,
        "Dry-run an import (body: the CSV/JSONL file); nothing is written",
        WRITE_ROLES,
        response_model=ImportPreviewOut,
        query=IMPORT_QUERY,
    )
    route(
        "POST",
        "/api/kb/import/commit",
        api_import_commit,
        "Import a file (body: the CSV/JSONL file) in one transaction",
        WRITE_ROLES,
        response_model=ImportCommitOut,
        query=(*IMPORT_QUERY, ("sha256", "the previewed file's sha256 (409 if it differs)", False)),
        responses={409: "File differs from the preview, or ids exist in create mode"},
    )
    route(
        "GET",
        "/api/kb/export",
        api_export,
        "Export FAQs as CSV or JSONL",
        READ_ROLES,
        query=(
            ("format", "csv (default) or jsonl", False),
            ("status", "all (default), draft, published or archived", False),
        ),
    )
