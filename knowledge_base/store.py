"""Reading and changing FAQs, with an audit trail for every change.

All functions take a caller-owned ``Session`` and only flush: the caller (CLI,
console request, importer) decides when to commit, so a multi-step change is
all-or-nothing. ``FaqInput`` is the single validation gate for FAQ content,
used by the importers and the console API alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from askagency.clock import now_utc
from knowledge_base.models import (
    ACTOR_MAX_LEN,
    ANSWER_MAX_LEN,
    CATEGORY_MAX_LEN,
    ID_MAX_LEN,
    QUESTION_MAX_LEN,
    RELATED_MAX,
    URL_MAX_LEN,
    AuditAction,
    AuditLog,
    Faq,
    FaqStatus,
    QuestionVariant,
    RelatedFaq,
)
from knowledge_base.types import FaqKind, FaqRecord

ENTITY_FAQ = "faq"
# Default of the ``max_variants`` setting: the most question variants one FAQ may have. Why a
# cap: every variant is one vector and one classifier row, and a list of hundreds is more often
# a paste error than wording. A KB that grows by accepting unanswered questions as variants
# (or an imported intent data set: BANKING77 has up to ~160 examples per intent) raises it with
# ASKAGENCY_MAX_VARIANTS.
MAX_VARIANTS = 50


def max_variants() -> int:
    """The configured cap on variants per FAQ (setting ``max_variants``)."""
    from askagency.config import get_settings

    return int(getattr(get_settings(), "max_variants", MAX_VARIANTS))


VARIANT_SEPARATOR = "|"  # CSV joins variants with " | ", so a variant cannot contain it

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")

SNAPSHOT_FIELDS = (
    "id",
    "language",
    "translation_group",
    "category",
    "question",
    "answer",
    "source_url",
    "status",
    "review_by",
)


class StoreError(Exception):
    """Base of the errors a caller is expected to show to staff."""


class FaqNotFound(StoreError, LookupError):
    def __init__(self, faq_id: str) -> None:
        super().__init__(f"no FAQ with id {faq_id!r}")
        self.faq_id = faq_id


class FaqExists(StoreError):
    def __init__(self, faq_id: str) -> None:
        super().__init__(f"an FAQ with id {faq_id!r} already exists")
        self.faq_id = faq_id


class VersionConflict(StoreError):
    """Someone else saved the FAQ since the editor loaded it."""

    def __init__(self, faq_id: str, expected: int | None, actual: int | None) -> None:
        if expected is None or actual is None:
            detail = "it was changed by someone else while saving"
        else:
            detail = f"you edited version {expected} but it is now at version {actual}"
        super().__init__(f"FAQ {faq_id!r} was not saved: {detail}; reload and try again")
        self.faq_id = faq_id
        self.expected = expected
        self.actual = actual


class RelatedInvalid(StoreError, ValueError):
    """A related FAQ that does not exist or is in another language than the FAQ."""

    def __init__(self, faq_id: str, problems: list[str]) -> None:
        super().__init__(f"related questions of FAQ {faq_id!r}: " + "; ".join(problems))
        self.faq_id = faq_id
        self.problems = problems


class AuditEntryNotFound(StoreError, LookupError):
    def __init__(self, faq_id: str, audit_id: int) -> None:
        super().__init__(f"no history entry {audit_id} for FAQ {faq_id!r}")
        self.faq_id = faq_id
        self.audit_id = audit_id


def _clean_text(value: str) -> str:
    """Strip and unify line endings so CSV/JSONL round trips are exact."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _empty_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _choice(value: Any, choices: type[StrEnum], default: StrEnum) -> Any:
    """An enum field as staff write it: empty means ``default``, case and surrounding space do
    not matter, anything else is refused naming the choices."""
    value = _empty_to_none(value)
    if value is None:
        return default
    if isinstance(value, str):
        value = value.strip().lower()
        allowed = [c.value for c in choices]
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)} (got {value!r})")
    return value


class FaqInput(BaseModel):
    """FAQ content as staff or a file supply it, validated once for every entry point.

    Error messages are written for staff reading an import report, not for
    developers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    language: str
    category: str
    question: str
    answer: str
    variants: tuple[str, ...] = ()
    source_url: str | None = None
    status: FaqStatus = FaqStatus.DRAFT
    kind: FaqKind = FaqKind.ANSWER
    review_by: date | None = None
    translation_group: str | None = Field(default=None)
    # Staff's related FAQs, in the order they are offered (ids of FAQs in the same language;
    # check_related verifies that against the database, which this model cannot see).
    related: tuple[str, ...] = ()

    @field_validator("id", "translation_group", mode="before")
    @classmethod
    def _slug(cls, value: Any) -> Any:
        value = _empty_to_none(value)
        if isinstance(value, str):
            value = value.strip()
            if len(value) > ID_MAX_LEN or not SLUG_RE.match(value):
                raise ValueError(
                    f"must be 1-{ID_MAX_LEN} characters of lowercase letters a-z, digits and "
                    f"hyphens, not starting or ending with a hyphen (got {value!r})"
                )
        return value

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower().replace("_", "-")
            if not LANGUAGE_RE.match(value):
                raise ValueError(
                    f"must be a language code like 'en', 'es' or 'pt-br' (got {value!r})"
                )
        return value

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = " ".join(value.split())
            if not value:
                raise ValueError("must not be empty")
            if len(value) > CATEGORY_MAX_LEN:
                raise ValueError(f"must be at most {CATEGORY_MAX_LEN} characters")
        return value

    @field_validator("question", mode="before")
    @classmethod
    def _question(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _clean_text(value)
            if not 3 <= len(value) <= QUESTION_MAX_LEN:
                raise ValueError(f"must be 3 to {QUESTION_MAX_LEN} characters (got {len(value)})")
        return value

    @field_validator("answer", mode="before")
    @classmethod
    def _answer(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _clean_text(value)
            if not 1 <= len(value) <= ANSWER_MAX_LEN:
                raise ValueError(f"must be 1 to {ANSWER_MAX_LEN} characters (got {len(value)})")
        return value

    @field_validator("source_url", mode="before")
    @classmethod
    def _source_url(cls, value: Any) -> Any:
        value = _empty_to_none(value)
        if isinstance(value, str):
            value = value.strip()
            if not value.lower().startswith(("http://", "https://")):
                raise ValueError("must start with http:// or https://")
            parts = urlsplit(value)
            if not parts.netloc or any(ch.isspace() for ch in value):
                raise ValueError("must be a full web address like https://www.example.gov/page")
            if len(value) > URL_MAX_LEN:
                raise ValueError(f"must be at most {URL_MAX_LEN} characters")
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        return _choice(value, FaqStatus, FaqStatus.DRAFT)

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        # "out-of-scope" and "out of scope" as staff type them in a spreadsheet.
        if isinstance(value, str):
            value = value.replace("-", "_").replace(" ", "_")
        return _choice(value, FaqKind, FaqKind.ANSWER)

    @field_validator("review_by", mode="before")
    @classmethod
    def _review_by(cls, value: Any) -> Any:
        value = _empty_to_none(value)
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(
                    f"must be a date written YYYY-MM-DD, e.g. 2025-12-31 (got {value!r})"
                ) from None
        if value is not None and not isinstance(value, date):
            raise ValueError("must be a date written YYYY-MM-DD, e.g. 2025-12-31")
        return value

    @field_validator("variants", mode="before")
    @classmethod
    def _variants(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            raise ValueError("must be a list of questions")
        if not isinstance(value, list | tuple):
            return value
        cap = max_variants()
        if len(value) > cap:
            raise ValueError(
                f"at most {cap} variants allowed (got {len(value)}); "
                "raise the max_variants setting (ASKAGENCY_MAX_VARIANTS) for larger FAQs"
            )
        cleaned: list[str] = []
        seen: dict[str, int] = {}
        question = info.data.get("question")
        question_key = question.casefold() if isinstance(question, str) else None
        for number, item in enumerate(value, start=1):
            if not isinstance(item, str):
                raise ValueError(f"variant {number} must be text")
            text = _clean_text(item)
            if not text:
                raise ValueError(f"variant {number} is empty")
            if len(text) > QUESTION_MAX_LEN:
                raise ValueError(f"variant {number} is longer than {QUESTION_MAX_LEN} characters")
            if VARIANT_SEPARATOR in text:
                raise ValueError(f"variant {number} must not contain '{VARIANT_SEPARATOR}'")
            key = text.casefold()
            if key == question_key:
                raise ValueError(f"variant {number} repeats the question")
            if key in seen:
                raise ValueError(f"variant {number} repeats variant {seen[key]}: {text!r}")
            seen[key] = number
            cleaned.append(text)
        return tuple(cleaned)

    @field_validator("related", mode="before")
    @classmethod
    def _related(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            # CSV cells hold "a | b"; an empty cell is no list.
            value = [part for part in (p.strip() for p in value.split(VARIANT_SEPARATOR)) if part]
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list of FAQ ids")
        if len(value) > RELATED_MAX:
            raise ValueError(f"at most {RELATED_MAX} related questions allowed (got {len(value)})")
        own_id = info.data.get("id")
        cleaned: list[str] = []
        for number, item in enumerate(value, start=1):
            if not isinstance(item, str) or not SLUG_RE.match(item.strip()):
                raise ValueError(f"related question {number} is not a valid FAQ id: {item!r}")
            item = item.strip()
            if item == own_id:
                raise ValueError(f"related question {number} is this FAQ itself")
            if item in cleaned:
                raise ValueError(f"related question {number} repeats {item!r}")
            cleaned.append(item)
        return tuple(cleaned)

    @property
    def group(self) -> str:
        return self.translation_group or self.id

    def content(self) -> dict[str, Any]:
        """The comparable content (what a snapshot holds, minus bookkeeping)."""
        return {
            "id": self.id,
            "language": self.language,
            "translation_group": self.group,
            "category": self.category,
            "question": self.question,
            "answer": self.answer,
            "source_url": self.source_url,
            "status": self.status.value,
            "review_by": self.review_by.isoformat() if self.review_by else None,
            "variants": list(self.variants),
            "related": list(self.related),
            "kind": self.kind.value,
        }

    @classmethod
    def from_faq(cls, faq: Faq) -> FaqInput:
        return cls.model_validate(_content_of(snapshot(faq)))


# Fields added after clients were written (a spreadsheet, a CMS sync): a file row or request
# body that leaves one out keeps the stored value, so an older client never wipes staff's
# related lists nor turns an out-of-scope entry into an answer (its staff note would then be
# sent to citizens). An empty related cell still clears a list.
KEPT_WHEN_OMITTED = ("related", "kind")


def omitted_fields(given: BaseModel) -> set[str]:
    """The :data:`KEPT_WHEN_OMITTED` fields ``given`` (a parsed row or body) leaves out."""
    return set(KEPT_WHEN_OMITTED) - given.model_fields_set


def stored_values(current: Faq, fields: Iterable[str]) -> dict[str, Any]:
    """``current``'s stored values of ``fields`` (of :data:`KEPT_WHEN_OMITTED`), as FaqInput
    takes them."""
    stored = {
        "related": lambda: tuple(link.related_id for link in current.related_links),
        "kind": lambda: FaqKind(current.kind),
    }
    return {name: stored[name]() for name in fields}


def _content_of(snap: dict[str, Any]) -> dict[str, Any]:
    # Snapshots written before related FAQs (or kinds) existed have no "related" (an empty
    # list) and no "kind" (an answer).
    return {
        **{key: snap[key] for key in (*SNAPSHOT_FIELDS, "variants")},
        "related": list(snap.get("related") or []),
        "kind": snap.get("kind") or FaqKind.ANSWER.value,
    }


def snapshot(faq: Faq) -> dict[str, Any]:
    """JSON-ready full state of an FAQ, as stored in the audit log."""
    return {
        "id": faq.id,
        "language": faq.language,
        "translation_group": faq.translation_group,
        "category": faq.category,
        "question": faq.question,
        "answer": faq.answer,
        "source_url": faq.source_url,
        "status": faq.status,
        "kind": faq.kind,
        "review_by": faq.review_by.isoformat() if faq.review_by else None,
        "variants": [v.text for v in faq.variants],
        "related": [link.related_id for link in faq.related_links],
        "version": faq.version,
        "created_at": faq.created_at.isoformat() if faq.created_at else None,
        "updated_at": faq.updated_at.isoformat() if faq.updated_at else None,
        "created_by": faq.created_by,
        "updated_by": faq.updated_by,
    }


def _check_actor(actor: str) -> str:
    actor = actor.strip()
    if not actor or len(actor) > ACTOR_MAX_LEN:
        raise ValueError(f"actor must be 1-{ACTOR_MAX_LEN} characters")
    return actor


def _audit(
    session: Session,
    actor: str,
    action: AuditAction,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditLog:
    entry = AuditLog(
        at=now_utc(),
        actor=actor,
        action=action.value,
        entity_type=ENTITY_FAQ,
        entity_id=entity_id,
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


def _flush(session: Session, faq_id: str) -> None:
    """Flush, turning a lost optimistic-lock race into a ``VersionConflict``."""
    try:
        session.flush()
    except StaleDataError as exc:
        raise VersionConflict(faq_id, None, None) from exc


def _check_version(faq: Faq, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != faq.version:
        raise VersionConflict(faq.id, expected_version, faq.version)


def _set_variants(faq: Faq, texts: Iterable[str]) -> None:
    """Reconcile variants in place: keep rows whose text survives (so the
    unique constraint never sees a delete-then-insert of the same text), drop
    the others, add the new ones, in the given order."""
    existing = {v.text: v for v in faq.variants}
    now = now_utc()
    faq.variants[:] = [
        existing.get(text) or QuestionVariant(text=text, created_at=now) for text in texts
    ]
    faq.variants.reorder()  # type: ignore[attr-defined]


def _set_related(faq: Faq, faq_ids: Iterable[str]) -> None:
    """Reconcile the related links in place, like :func:`_set_variants` (a surviving pair keeps
    its row, so the unique pair never sees a delete-then-insert)."""
    existing = {link.related_id: link for link in faq.related_links}
    faq.related_links[:] = [existing.get(i) or RelatedFaq(related_id=i) for i in faq_ids]
    faq.related_links.reorder()  # type: ignore[attr-defined]


def _languages_of(session: Session, faq_ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(faq_ids):
        rows = session.execute(select(Faq.id, Faq.language).where(Faq.id.in_(chunk)))
        found.update({faq_id: language for faq_id, language in rows})
    return found


def related_problems(data: FaqInput, languages: Mapping[str, str]) -> list[str]:
    """What is wrong with ``data.related`` given each known FAQ's language (id -> language):
    an unknown id or one in another language. Empty when the list is valid."""
    problems: list[str] = []
    for faq_id in data.related:
        language = languages.get(faq_id)
        if language is None:
            problems.append(f"{faq_id!r} does not exist")
        elif language != data.language:
            problems.append(f"{faq_id!r} is in {language!r}, not {data.language!r}")
    return problems


def batch_related_problems(session: Session, items: Sequence[FaqInput]) -> dict[str, list[str]]:
    """:func:`related_problems` of FAQs saved together (an import): one query for every
    related id, and each may name another FAQ of the batch. Only FAQs with problems appear."""
    batch = {item.id: item.language for item in items}
    wanted = sorted({i for item in items for i in item.related} - set(batch))
    languages = {**_languages_of(session, wanted), **batch}
    found = {item.id: related_problems(item, languages) for item in items if item.related}
    return {faq_id: problems for faq_id, problems in found.items() if problems}


def check_related(session: Session, data: FaqInput, batch: Mapping[str, str] | None = None) -> None:
    """Raise :class:`RelatedInvalid` unless every related FAQ of ``data`` exists (in the
    database, or in ``batch``: id -> language of FAQs saved together with it) in its language."""
    if not data.related:
        return
    languages = {**_languages_of(session, list(data.related)), **(batch or {})}
    problems = related_problems(data, languages)
    if problems:
        raise RelatedInvalid(data.id, problems)


def _apply(faq: Faq, content: dict[str, Any]) -> None:
    faq.language = content["language"]
    faq.translation_group = content["translation_group"] or faq.id
    faq.category = content["category"]
    faq.question = content["question"]
    faq.answer = content["answer"]
    faq.source_url = content["source_url"]
    faq.status = content["status"]
    faq.kind = content.get("kind") or FaqKind.ANSWER.value
    review_by = content["review_by"]
    faq.review_by = date.fromisoformat(review_by) if isinstance(review_by, str) else review_by
    _set_variants(faq, content["variants"])
    _set_related(faq, content["related"])


def _touch(faq: Faq, actor: str) -> None:
    faq.version = faq.version + 1
    faq.updated_at = now_utc()
    faq.updated_by = actor


def _deleted_versions(session: Session, faq_ids: Sequence[str]) -> dict[str, int]:
    """Last version of each id's deleted incarnation(s), if any."""
    found: dict[str, int] = {}
    for chunk in _chunks(faq_ids):
        rows = session.execute(
            select(AuditLog.entity_id, AuditLog.before).where(
                AuditLog.entity_type == ENTITY_FAQ,
                AuditLog.entity_id.in_(chunk),
                AuditLog.action == AuditAction.DELETE.value,
            )
        )
        for faq_id, before in rows:
            version = int((before or {}).get("version") or 0)
            found[faq_id] = max(found.get(faq_id, 0), version)
    return found


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """Keep IN lists below SQLite's bound-parameter limit."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert(
    session: Session, data: FaqInput, actor: str, action: AuditAction, after_version: int
) -> Faq:
    """Add a new FAQ and its audit entry (unflushed). Its version continues
    after ``after_version`` (a deleted incarnation's) so versions never repeat."""
    now = now_utc()
    faq = Faq(
        id=data.id,
        version=after_version + 1,
        created_at=now,
        updated_at=now,
        created_by=actor,
        updated_by=actor,
    )
    _apply(faq, data.content())
    session.add(faq)
    _audit(session, actor, action, faq.id, None, snapshot(faq))
    return faq


def _replace(session: Session, faq: Faq, data: FaqInput, actor: str, action: AuditAction) -> bool:
    """Apply new content (unflushed); ``False`` when nothing differs."""
    before = snapshot(faq)
    if _content_of(before) == data.content():
        return False
    _apply(faq, data.content())
    _touch(faq, actor)
    _audit(session, actor, action, faq.id, before, snapshot(faq))
    return True


_WITH_LISTS = (selectinload(Faq.variants), selectinload(Faq.related_links))


def _load(session: Session, faq_id: str) -> Faq | None:
    return session.scalars(select(Faq).where(Faq.id == faq_id).options(*_WITH_LISTS)).one_or_none()


# --- reading -----------------------------------------------------------------


def get_faq(session: Session, faq_id: str) -> Faq:
    faq = _load(session, faq_id)
    if faq is None:
        raise FaqNotFound(faq_id)
    return faq


def list_faqs(
    session: Session,
    status: str | None = None,
    language: str | None = None,
    category: str | None = None,
) -> list[Faq]:
    """FAQs ordered by id, variants loaded; ``None`` filters mean "any"."""
    query = select(Faq).options(*_WITH_LISTS).order_by(Faq.id)
    if status is not None:
        query = query.where(Faq.status == status)
    if language is not None:
        query = query.where(Faq.language == language)
    if category is not None:
        query = query.where(Faq.category == category)
    return list(session.scalars(query))


def count_faqs(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Faq)) or 0


def to_record(faq: Faq) -> FaqRecord:
    return FaqRecord(
        id=faq.id,
        language=faq.language,
        question=faq.question,
        answer=faq.answer,
        category=faq.category,
        source_url=faq.source_url,
        variants=tuple(v.text for v in faq.variants),
        translation_group=faq.translation_group,
        related=tuple(link.related_id for link in faq.related_links),
        kind=faq.kind,
    )


def published_records(session: Session, language: str | None = None) -> list[FaqRecord]:
    """What the index builder embeds: published FAQs only, ordered by id so
    that two builds from the same data produce the same index."""
    return [
        to_record(faq)
        for faq in list_faqs(session, status=FaqStatus.PUBLISHED.value, language=language)
    ]


def faq_history(session: Session, faq_id: str) -> list[AuditLog]:
    """Audit entries for an FAQ, newest first; works for deleted FAQs too."""
    entries = list(
        session.scalars(
            select(AuditLog)
            .where(AuditLog.entity_type == ENTITY_FAQ, AuditLog.entity_id == faq_id)
            .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        )
    )
    if not entries and _load(session, faq_id) is None:
        raise FaqNotFound(faq_id)
    return entries


def stats(session: Session, today: date | None = None) -> dict[str, Any]:
    """Counts for the CLI and the console dashboard.

    ``review_overdue`` counts non-archived FAQs whose review date has passed:
    content nobody has confirmed is still true.
    """
    today = today or now_utc().date()

    def grouped(column: Any) -> dict[str, int]:
        rows = session.execute(select(column, func.count()).group_by(column).order_by(column))
        return {str(key): int(count) for key, count in rows}

    overdue = session.scalar(
        select(func.count())
        .select_from(Faq)
        .where(
            Faq.review_by.is_not(None),
            Faq.review_by < today,
            Faq.status != FaqStatus.ARCHIVED.value,
        )
    )
    return {
        "total": count_faqs(session),
        "by_status": grouped(Faq.status),
        "by_language": grouped(Faq.language),
        "by_category": grouped(Faq.category),
        "variants": session.scalar(select(func.count()).select_from(QuestionVariant)) or 0,
        "review_overdue": overdue or 0,
    }


# --- changing ----------------------------------------------------------------


def create_faq(
    session: Session, data: FaqInput, actor: str, action: AuditAction = AuditAction.CREATE
) -> Faq:
    actor = _check_actor(actor)
    if session.get(Faq, data.id) is not None:
        raise FaqExists(data.id)
    check_related(session, data)
    faq = _insert(
        session, data, actor, action, _deleted_versions(session, [data.id]).get(data.id, 0)
    )
    _flush(session, faq.id)
    return faq


def update_faq(
    session: Session,
    faq_id: str,
    data: FaqInput,
    actor: str,
    expected_version: int | None = None,
    action: AuditAction = AuditAction.UPDATE,
) -> Faq:
    """Replace an FAQ's content. Returns it unchanged (no version bump, no
    audit entry) when ``data`` equals what is stored."""
    actor = _check_actor(actor)
    if data.id != faq_id:
        raise ValueError(f"FAQ ids cannot be changed ({faq_id!r} -> {data.id!r})")
    faq = get_faq(session, faq_id)
    _check_version(faq, expected_version)
    check_related(session, data)
    if _replace(session, faq, data, actor, action):
        _flush(session, faq_id)
    return faq


def load_faqs(session: Session, faq_ids: Sequence[str]) -> dict[str, Faq]:
    """The FAQs among ``faq_ids`` that exist, variants loaded, by id."""
    found: dict[str, Faq] = {}
    for chunk in _chunks(faq_ids):
        query = select(Faq).where(Faq.id.in_(chunk)).options(*_WITH_LISTS)
        found.update({faq.id: faq for faq in session.scalars(query)})
    return found


def upsert_faqs(
    session: Session,
    items: Sequence[FaqInput],
    actor: str,
    action: AuditAction = AuditAction.IMPORT,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int, int]:
    """Create or replace many FAQs with one audit entry per real change;
    returns (created, updated, unchanged). Flushes in batches, which makes a
    large import several times faster than one ``create_faq`` per row."""
    actor = _check_actor(actor)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("each FAQ id may appear only once")
    existing = load_faqs(session, ids)
    deleted = _deleted_versions(session, [i for i in ids if i not in existing])
    batch = {item.id: item.language for item in items}
    for faq_id, problems in batch_related_problems(session, items).items():
        raise RelatedInvalid(faq_id, problems)
    # Links to FAQs created later in this batch: an intermediate flush would insert the link
    # before its target row (a foreign-key error), so batches flush only once none is pending.
    pending: set[str] = set()
    done: set[str] = set(existing)
    created = updated = unchanged = 0
    for number, item in enumerate(items, start=1):
        done.add(item.id)
        pending = {i for i in pending | set(item.related) if i in batch and i not in done}
        faq = existing.get(item.id)
        if faq is None:
            _insert(session, item, actor, action, deleted.get(item.id, 0))
            created += 1
        elif _replace(session, faq, item, actor, action):
            updated += 1
        else:
            unchanged += 1
        if number % 200 == 0 and not pending:
            _flush(session, item.id)
        if progress is not None:
            progress(1)
    _flush(session, ids[-1] if ids else "")
    return created, updated, unchanged


_STATUS_ACTIONS = {
    FaqStatus.PUBLISHED: AuditAction.PUBLISH,
    FaqStatus.ARCHIVED: AuditAction.ARCHIVE,
    FaqStatus.DRAFT: AuditAction.UNPUBLISH,
}


def set_status(
    session: Session,
    faq_id: str,
    status: FaqStatus | str,
    actor: str,
    expected_version: int | None = None,
) -> Faq:
    actor = _check_actor(actor)
    try:
        new_status = FaqStatus(status)
    except ValueError:
        allowed = ", ".join(s.value for s in FaqStatus)
        raise ValueError(f"status must be one of {allowed} (got {status!r})") from None
    faq = get_faq(session, faq_id)
    _check_version(faq, expected_version)
    if faq.status == new_status.value:
        return faq
    before = snapshot(faq)
    faq.status = new_status.value
    _touch(faq, actor)
    _audit(session, actor, _STATUS_ACTIONS[new_status], faq_id, before, snapshot(faq))
    _flush(session, faq_id)
    return faq


def delete_faq(
    session: Session, faq_id: str, actor: str, expected_version: int | None = None
) -> None:
    """Delete an FAQ and its variants; its history stays and can restore it."""
    actor = _check_actor(actor)
    faq = get_faq(session, faq_id)
    _check_version(faq, expected_version)
    before = snapshot(faq)
    session.delete(faq)
    _audit(session, actor, AuditAction.DELETE, faq_id, before, None)
    _flush(session, faq_id)


def restore_version(session: Session, faq_id: str, audit_id: int, actor: str) -> Faq:
    """Bring back the FAQ as it was right after history entry ``audit_id``
    (or right before it, for a deletion), recreating it if it was deleted.

    The restore is itself a new version with its own audit entry, so it can be
    undone the same way.
    """
    actor = _check_actor(actor)
    entry = session.get(AuditLog, audit_id)
    if entry is None or entry.entity_type != ENTITY_FAQ or entry.entity_id != faq_id:
        raise AuditEntryNotFound(faq_id, audit_id)
    state = entry.after if entry.after is not None else entry.before
    if state is None:
        raise AuditEntryNotFound(faq_id, audit_id)
    # Re-validate: history written by older code must still satisfy today's rules. Related
    # FAQs deleted (or moved to another language) since then are left out, not an error.
    content = _content_of(state)
    languages = _languages_of(session, content["related"])
    content["related"] = [
        i for i in content["related"] if languages.get(i) == content["language"] and i != faq_id
    ]
    data = FaqInput.model_validate(content)
    faq = _load(session, faq_id)
    if faq is None:
        faq = _insert(
            session,
            data,
            actor,
            AuditAction.RESTORE,
            _deleted_versions(session, [faq_id]).get(faq_id, 0),
        )
    else:
        _replace(session, faq, data, actor, AuditAction.RESTORE)
    _flush(session, faq_id)
    return faq
