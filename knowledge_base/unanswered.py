"""The unanswered-question queue: what citizens asked that the knowledge base did not answer well.

The action server records a question when the bot was unsure (low confidence,
a clarify prompt), handed off, or got a thumbs-down. Staff see the open questions
grouped into clusters of similar wording with the nearest FAQs suggested, and
either add the wording as a variant of an FAQ, write a new FAQ from it, or dismiss
it. A question an out-of-scope entry took is recorded too, apart (reason ``out_of_scope``): it
was handed off by design, and staff look at those only to check what the entries take. Text is
always redacted (:mod:`askagency.privacy`) before it is stored.

When the citizen then picks one of the bot's options for that question (a clarify list, or the
suggestions beside a handoff), the row records the FAQ picked (``chosen_faq_id``): the citizens'
own verdict on which FAQ the wording belongs to, the implicit feedback Azure QnA Maker's active
learning collects the same way. The console shows it with the group, above the suggestions.

Also here: ``FaqUsage``, a per-FAQ answer counter the action server bumps, so the
content-health page can list FAQs that were never matched without reading
Rasa's event stream.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
from sqlalchemy import (
    CheckConstraint,
    Float,
    Index,
    Integer,
    String,
    delete,
    func,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, validates
from sqlalchemy.sql.elements import ColumnElement

from askagency.clock import now_utc
from askagency.db import Base, UtcDateTime
from askagency.privacy import redact
from askagency.spool import payload_time
from knowledge_base.models import (
    ACTOR_MAX_LEN,
    ID_MAX_LEN,
    LANGUAGE_MAX_LEN,
    QUESTION_MAX_LEN,
    Faq,
)
from knowledge_base.store import FaqInput, get_faq, update_faq
from knowledge_base.text import one_line
from knowledge_base.types import FaqHit

logger = logging.getLogger(__name__)

CHANNEL_MAX_LEN = 32
MIN_QUESTION_CHARS = 3
# Average cosine similarity above which questions are "the same question" for staff.
# Measured with the bundled MiniLM: paraphrases of one travel question score 0.6-0.93,
# different questions on the same trip mostly stay below 0.45.
DEFAULT_CLUSTER_THRESHOLD = 0.55
MAX_CLUSTERED_QUESTIONS = 2000  # newest open questions considered; keeps clustering < 1 s
MAX_EXAMPLES = 5


class UnansweredReason(StrEnum):
    LOW_CONFIDENCE = "low_confidence"
    CLARIFIED = "clarified"
    HANDOFF = "handoff"
    THUMBS_DOWN = "thumbs_down"
    # Taken by an out-of-scope entry (``top_faq_id`` names it): handed off by design, not a gap.
    # Kept apart from the queue's other questions so staff can check what the entries take.
    OUT_OF_SCOPE = "out_of_scope"


# The rows of the partial index ``ix_kb_unanswered_out_of_scope`` (0027_unanswered_oos_index).
TAKEN_BY_AN_ENTRY = f"reason = '{UnansweredReason.OUT_OF_SCOPE.value}'"


class UnansweredStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"  # added as a variant of an existing FAQ
    CREATED = "created"  # a new FAQ was written from it
    DISMISSED = "dismissed"


def _sql_in(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_SPACES = re.compile(r"\s+")


def wording_key(text: str) -> str:
    """The wording a question is counted under: case, runs of spaces and trailing "?!. " do not
    matter, so "Can I bring a drone?" and "can i  bring a drone" are one question.

    Stored with each row (``UnansweredQuestion.wording``) so that reports (analytics' top
    unanswered questions) group a year of rows with one SQL GROUP BY instead of reading every
    row into Python. Cut to the column size: case folding can lengthen text ("ß" -> "ss").
    Migration 0014 holds a frozen copy for its backfill; a test keeps the two equal.
    """
    return _SPACES.sub(" ", text.casefold()).strip().rstrip("?!. ")[:QUESTION_MAX_LEN]


def _wording_of_insert(context: DefaultExecutionContext) -> str:
    """Column default for Core and bulk inserts that name only ``text`` (ORM rows get their
    wording from ``UnansweredQuestion._wording``)."""
    return wording_key(str(context.get_current_parameters().get("text") or ""))


class UnansweredQuestion(Base):
    """One question, as asked once (redacted); repeats are separate rows so the
    queue shows how often a question comes up and when."""

    __tablename__ = "kb_unanswered"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc, index=True)
    language: Mapped[str] = mapped_column(String(LANGUAGE_MAX_LEN), index=True)
    text: Mapped[str] = mapped_column(String(QUESTION_MAX_LEN))
    # wording_key(text): what reports group by, kept in step with ``text`` (see _wording).
    wording: Mapped[str] = mapped_column(String(QUESTION_MAX_LEN), default=_wording_of_insert)
    reason: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_MAX_LEN), nullable=True)
    # What the bot found best at the time (no foreign key: the FAQ may be deleted later).
    top_faq_id: Mapped[str | None] = mapped_column(String(ID_MAX_LEN), nullable=True)
    top_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=UnansweredStatus.OPEN.value)
    resolved_faq_id: Mapped[str | None] = mapped_column(String(ID_MAX_LEN), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(ACTOR_MAX_LEN), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The FAQ the citizen picked from the bot's options for this question (record_choice); no
    # foreign key, like top_faq_id. Added by migration 0028_unanswered_chosen_faq.
    chosen_faq_id: Mapped[str | None] = mapped_column(String(ID_MAX_LEN), nullable=True)

    __table_args__ = (
        CheckConstraint(f"status IN ({_sql_in(UnansweredStatus)})", name="status"),
        CheckConstraint(f"reason IN ({_sql_in(UnansweredReason)})", name="reason"),
        # Top unanswered questions of a period: a range scan that yields the wording too, so
        # PostgreSQL can count a year of rows from the index alone.
        Index("ix_kb_unanswered_created_at_wording", "created_at", "wording"),
        # The questions out-of-scope entries took, by entry, for a period (analytics): a few
        # percent of the queue, read from this partial index instead of the whole period's rows.
        Index(
            "ix_kb_unanswered_out_of_scope",
            "created_at",
            "top_faq_id",
            postgresql_where=sql_text(TAKEN_BY_AN_ENTRY),
            sqlite_where=sql_text(TAKEN_BY_AN_ENTRY),
        ),
    )

    @validates("text")
    def _wording(self, _key: str, text: str) -> str:
        """Every ORM write of ``text`` (new rows, edits) sets the matching wording."""
        self.wording = wording_key(text or "")
        return text


class FaqUsage(Base):
    """How often each FAQ was given as an answer (content health: never matched)."""

    __tablename__ = "kb_faq_usage"

    faq_id: Mapped[str] = mapped_column(String(ID_MAX_LEN), primary_key=True)
    answered_count: Mapped[int] = mapped_column(Integer, default=0)
    first_answered_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    last_answered_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)


# --- recording ----------------------------------------------------------------------------------


def clean_question(text: str) -> str:
    """Redacted, single-spaced and cut to the column size; "" when nothing is left."""
    return one_line(redact(text or ""), QUESTION_MAX_LEN)


def queueable_text(text: str) -> str | None:
    """``text`` as the queue stores it (clean_question), or None when it is no question staff
    could act on: a button payload such as /choose_faq{...}, or too little left once cleaned."""
    raw = (text or "").strip()
    if raw.startswith("/"):
        return None
    cleaned = clean_question(raw)
    return cleaned if len(cleaned) >= MIN_QUESTION_CHARS else None


def queue_language(language: str | None) -> str:
    """The language code a question is filed under (and a pick looked up by)."""
    return (language or "en").strip().lower()[:LANGUAGE_MAX_LEN] or "en"


def record_unanswered(
    session: Session,
    text: str,
    reason: UnansweredReason | str,
    language: str = "en",
    channel: str | None = None,
    top_faq_id: str | None = None,
    top_score: float | None = None,
    now: datetime | None = None,
) -> UnansweredQuestion | None:
    """Queue a question. Redacts again even if the caller did (redaction is
    idempotent and this is the last gate before storage). Returns None for text
    that is not a question staff could act on (empty, a button payload)."""
    reason = UnansweredReason(reason)
    cleaned = queueable_text(text)
    if cleaned is None:
        return None
    row = UnansweredQuestion(
        created_at=now or now_utc(),
        language=queue_language(language),
        text=cleaned,
        reason=reason.value,
        channel=(channel or None) and channel[:CHANNEL_MAX_LEN],
        top_faq_id=top_faq_id,
        top_score=None if top_score is None else float(top_score),
        status=UnansweredStatus.OPEN.value,
    )
    session.add(row)
    session.flush()
    return row


def record_answered(session: Session, faq_id: str, now: datetime | None = None) -> None:
    """Count one answer given from ``faq_id``; safe against two processes
    inserting the first row at the same time."""
    now = now or now_utc()
    for _attempt in range(2):
        usage = session.get(FaqUsage, faq_id)
        if usage is not None:
            usage.answered_count += 1
            usage.last_answered_at = now
            session.flush()
            return
        try:
            with session.begin_nested():
                session.add(
                    FaqUsage(
                        faq_id=faq_id,
                        answered_count=1,
                        first_answered_at=now,
                        last_answered_at=now,
                    )
                )
            return
        except IntegrityError:
            continue  # someone else inserted it: increment theirs
    raise RuntimeError(f"could not count an answer for FAQ {faq_id!r}")


def usage_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(FaqUsage.faq_id, FaqUsage.answered_count))
    return {str(faq_id): int(count) for faq_id, count in rows}


def unanswered_payload(
    text: str,
    reason: str,
    language: str,
    channel: str | None,
    top_faq_id: str | None = None,
    top_score: float | None = None,
) -> dict[str, object]:
    """A queued question as a spool record (``askagency.spool``): the time it was asked is
    kept, so a replay after an outage files it when it happened."""
    return {
        "text": text,
        "reason": str(reason),
        "language": language,
        "channel": channel,
        "top_faq_id": top_faq_id,
        "top_score": None if top_score is None else float(top_score),
        "asked_at": now_utc().isoformat(),
    }


def replay_unanswered(session: Session, payload: dict[str, object]) -> None:
    """Spool kind ``unanswered``. Idempotent: a question already stored with the same time and
    text (a replay repeated after a crash) is not stored twice."""
    asked_at = payload_time(payload, "asked_at")
    text = str(payload.get("text") or "")
    existing = session.scalar(
        select(UnansweredQuestion.id).where(
            UnansweredQuestion.created_at == asked_at,
            UnansweredQuestion.text == clean_question(text),
        )
    )
    if existing is not None:
        return
    channel, top_faq_id, score = (payload.get(k) for k in ("channel", "top_faq_id", "top_score"))
    record_unanswered(
        session,
        text,
        str(payload.get("reason")),
        str(payload.get("language") or "en"),
        channel if isinstance(channel, str) else None,
        top_faq_id if isinstance(top_faq_id, str) else None,
        float(score) if isinstance(score, int | float) else None,
        now=asked_at,
    )


# A pick is matched to the question it answers by wording, among the questions queued this long
# before it: the queue keeps no conversation id, and a citizen picks within minutes.
CHOICE_WINDOW = timedelta(hours=24)


def record_choice(
    session: Session,
    text: str,
    language: str,
    faq_id: str,
    now: datetime | None = None,
) -> UnansweredQuestion | None:
    """The citizen picked ``faq_id`` from the options the bot gave for ``text``: set it on the
    newest queued question of that wording and language without a pick yet (asked within
    CHOICE_WINDOW before ``now``). Two citizens asking the same words at once may have their
    picks swapped, which changes nothing: both rows hold that wording. None when no such
    question is queued (a button payload, or a question the queue did not keep)."""
    cleaned = queueable_text(text)
    if cleaned is None or not faq_id:
        return None
    now = now or now_utc()
    row = session.scalar(
        select(UnansweredQuestion)
        .where(
            UnansweredQuestion.wording == wording_key(cleaned),
            UnansweredQuestion.language == queue_language(language),
            UnansweredQuestion.chosen_faq_id.is_(None),
            taken_by_an_entry(False),
            UnansweredQuestion.created_at <= now,
            UnansweredQuestion.created_at >= now - CHOICE_WINDOW,
        )
        .order_by(UnansweredQuestion.created_at.desc(), UnansweredQuestion.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    row.chosen_faq_id = faq_id[:ID_MAX_LEN]
    session.flush()
    return row


def choice_payload(text: str, language: str, faq_id: str) -> dict[str, object]:
    """A pick as a spool record: its time is kept, so a replay after an outage matches it to
    the question asked before it."""
    return {
        "text": text,
        "language": language,
        "faq_id": faq_id,
        "chosen_at": now_utc().isoformat(),
    }


def replay_choice(session: Session, payload: dict[str, object]) -> None:
    """Spool kind ``faq_chosen``. A replay repeated after a crash finds the row already picked
    and may set an older row of the same wording: the same verdict on the same words."""
    faq_id = payload.get("faq_id")
    if not isinstance(faq_id, str) or not faq_id:
        raise ValueError("payload has no faq_id")
    record_choice(
        session,
        str(payload.get("text") or ""),
        str(payload.get("language") or "en"),
        faq_id,
        now=payload_time(payload, "chosen_at"),
    )


def answered_payload(faq_id: str) -> dict[str, object]:
    return {"faq_id": faq_id, "answered_at": now_utc().isoformat()}


def replay_answered(session: Session, payload: dict[str, object]) -> None:
    """Spool kind ``faq_answered``: one answer counted (a crash mid-replay may count one twice)."""
    faq_id = payload.get("faq_id")
    if not isinstance(faq_id, str) or not faq_id:
        raise ValueError("payload has no faq_id")
    record_answered(session, faq_id, now=payload_time(payload, "answered_at"))


# --- resolving ----------------------------------------------------------------------------------


class UnansweredError(Exception):
    """A queue change that cannot be made; the message is for staff."""


class QuestionsNotOpen(UnansweredError):
    def __init__(self, missing: list[int], handled: list[int]) -> None:
        parts = []
        if missing:
            parts.append(f"unknown question ids: {', '.join(map(str, missing))}")
        if handled:
            parts.append(
                f"already handled by someone else: {', '.join(map(str, handled))}; reload the queue"
            )
        super().__init__("; ".join(parts))
        self.missing = missing
        self.handled = handled


def _open_rows(session: Session, question_ids: Sequence[int]) -> list[UnansweredQuestion]:
    ids = sorted(set(int(i) for i in question_ids))
    if not ids:
        raise UnansweredError("no questions selected")
    rows = list(session.scalars(select(UnansweredQuestion).where(UnansweredQuestion.id.in_(ids))))
    found = {row.id for row in rows}
    missing = [i for i in ids if i not in found]
    handled = [row.id for row in rows if row.status != UnansweredStatus.OPEN.value]
    if missing or handled:
        raise QuestionsNotOpen(missing, sorted(handled))
    return rows


def _resolve(
    rows: Iterable[UnansweredQuestion],
    status: UnansweredStatus,
    actor: str,
    faq_id: str | None,
) -> int:
    now = now_utc()
    count = 0
    for row in rows:
        row.status = status.value
        row.resolved_by = actor[:ACTOR_MAX_LEN]
        row.resolved_at = now
        row.resolved_faq_id = faq_id
        count += 1
    return count


def accept_as_variant(
    session: Session,
    question_ids: Sequence[int],
    faq_id: str,
    variant: str,
    actor: str,
    expected_version: int | None = None,
) -> Faq:
    """Add ``variant`` (staff may have edited the citizen's wording) to FAQ
    ``faq_id`` and close the questions. Validation is the store's (FaqInput):
    a variant repeating the question or another variant is refused there,
    except that an exact repeat is accepted as already present."""
    rows = _open_rows(session, question_ids)
    faq = get_faq(session, faq_id)
    current = FaqInput.from_faq(faq)
    text = " ".join((variant or "").split())
    known = {current.question.casefold(), *(v.casefold() for v in current.variants)}
    if text.casefold() not in known:
        data = FaqInput.model_validate({**current.content(), "variants": [*current.variants, text]})
        faq = update_faq(session, faq_id, data, actor, expected_version=expected_version)
    _resolve(rows, UnansweredStatus.ACCEPTED, actor, faq_id)
    session.flush()
    return faq


def mark_created(session: Session, question_ids: Sequence[int], faq_id: str, actor: str) -> int:
    """Close questions answered by a newly written FAQ."""
    get_faq(session, faq_id)
    count = _resolve(_open_rows(session, question_ids), UnansweredStatus.CREATED, actor, faq_id)
    session.flush()
    return count


def dismiss(session: Session, question_ids: Sequence[int], actor: str) -> int:
    count = _resolve(_open_rows(session, question_ids), UnansweredStatus.DISMISSED, actor, None)
    session.flush()
    return count


def status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(UnansweredQuestion.status, func.count()).group_by(UnansweredQuestion.status)
    )
    counts = {status.value: 0 for status in UnansweredStatus}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def open_out_of_scope_count(session: Session) -> int:
    """Open questions an out-of-scope entry took (part of ``status_counts``'s open ones)."""
    query = select(func.count()).where(
        UnansweredQuestion.status == UnansweredStatus.OPEN.value, taken_by_an_entry()
    )
    return int(session.scalar(query) or 0)


def purge_before(session: Session, before: datetime, include_open: bool = False) -> int:
    """Retention: delete handled (and optionally open) questions older than ``before``."""
    query = delete(UnansweredQuestion).where(UnansweredQuestion.created_at < before)
    if not include_open:
        query = query.where(UnansweredQuestion.status != UnansweredStatus.OPEN.value)
    result = session.execute(query)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- clustering ---------------------------------------------------------------------------------

Embed = Callable[[Sequence[str]], np.ndarray]
Search = Callable[[str, str], Sequence[FaqHit]]


def cluster_vectors(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Group rows of L2-normalised ``vectors`` whose average-linkage cosine
    similarity is at least ``threshold``; groups ordered by first member.

    Average linkage (not single) so that a chain of loosely related questions
    does not snowball into one giant cluster.
    """
    n = int(vectors.shape[0])
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=max(1e-6, 1.0 - threshold),
    )
    labels = model.fit_predict(np.asarray(vectors, dtype=np.float32))
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return sorted(groups.values(), key=lambda members: members[0])


@dataclass
class Suggestion:
    faq_id: str
    question: str
    score: float


@dataclass
class Cluster:
    """Similar open questions; ``question_ids`` are what accept/dismiss act on."""

    key: str
    language: str
    representative: str
    count: int
    question_ids: list[int]
    examples: list[tuple[str, int]]  # (text, times asked), most frequent first
    reasons: dict[str, int]
    first_seen: datetime
    last_seen: datetime
    suggestions: list[Suggestion] = field(default_factory=list)
    # The out-of-scope entries that took its questions, with how many each (reason out_of_scope).
    out_of_scope_entries: dict[str, int] = field(default_factory=dict)
    # The FAQs citizens picked from the bot's options for its questions, with how many times.
    chosen: dict[str, int] = field(default_factory=dict)


def _normal(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip("?!. ")


def _cluster_key(ids: Sequence[int]) -> str:
    """Stable while the cluster's members do not change (the UI's row id)."""
    return hashlib.sha1(",".join(map(str, sorted(ids))).encode()).hexdigest()[:12]


def build_clusters(
    rows: Sequence[UnansweredQuestion],
    embed: Embed,
    threshold: float = DEFAULT_CLUSTER_THRESHOLD,
) -> list[Cluster]:
    """Cluster ``rows`` per language. Identical wording (ignoring case and
    trailing punctuation) is embedded once. Largest clusters first."""
    by_language: dict[str, dict[str, list[UnansweredQuestion]]] = {}
    for row in rows:
        by_language.setdefault(row.language, {}).setdefault(_normal(row.text), []).append(row)
    clusters: list[Cluster] = []
    for language, groups in by_language.items():
        keys = list(groups)
        texts = [Counter(r.text for r in groups[k]).most_common(1)[0][0] for k in keys]
        vectors = np.asarray(embed(texts), dtype=np.float32)
        weights = np.array([len(groups[k]) for k in keys], dtype=np.float32)
        for members in cluster_vectors(vectors, threshold):
            clusters.append(_make_cluster(language, members, keys, texts, groups, vectors, weights))
    clusters.sort(key=lambda c: (-c.count, -c.last_seen.timestamp(), c.key))
    return clusters


def _make_cluster(
    language: str,
    members: list[int],
    keys: list[str],
    texts: list[str],
    groups: dict[str, list[UnansweredQuestion]],
    vectors: np.ndarray,
    weights: np.ndarray,
) -> Cluster:
    rows = [row for m in members for row in groups[keys[m]]]
    sub = vectors[members]
    # Medoid: the wording most similar (weighted by how often each was asked) to the rest.
    centrality = (sub @ sub.T) @ weights[members]
    representative = texts[members[int(np.argmax(centrality))]]
    examples = sorted(
        ((texts[m], len(groups[keys[m]])) for m in members), key=lambda e: (-e[1], e[0])
    )
    ids = sorted(row.id for row in rows)
    return Cluster(
        key=_cluster_key(ids),
        language=language,
        representative=representative,
        count=len(rows),
        question_ids=ids,
        examples=examples[:MAX_EXAMPLES],
        reasons=dict(Counter(row.reason for row in rows).most_common()),
        first_seen=min(row.created_at for row in rows),
        last_seen=max(row.created_at for row in rows),
        out_of_scope_entries=dict(
            Counter(
                row.top_faq_id
                for row in rows
                if row.reason == UnansweredReason.OUT_OF_SCOPE.value and row.top_faq_id
            ).most_common()
        ),
        chosen=dict(Counter(row.chosen_faq_id for row in rows if row.chosen_faq_id).most_common()),
    )


def taken_by_an_entry(taken: bool = True) -> ColumnElement[bool]:
    """The condition "an out-of-scope entry took this question" on queue rows (``taken``), or
    its opposite: the console's two lists and analytics' figures all select by it."""
    condition = UnansweredQuestion.reason == UnansweredReason.OUT_OF_SCOPE.value
    return condition if taken else ~condition


def open_questions(
    session: Session,
    language: str | None = None,
    limit: int = MAX_CLUSTERED_QUESTIONS,
    out_of_scope: bool = False,
) -> list[UnansweredQuestion]:
    """The newest open questions that need an answer, or (``out_of_scope``) those an
    out-of-scope entry took: staff check that an entry takes only what it should."""
    query = (
        select(UnansweredQuestion)
        .where(UnansweredQuestion.status == UnansweredStatus.OPEN.value)
        .where(taken_by_an_entry(out_of_scope))
        .order_by(UnansweredQuestion.created_at.desc(), UnansweredQuestion.id.desc())
        .limit(limit)
    )
    if language:
        query = query.where(UnansweredQuestion.language == language)
    return list(session.scalars(query))


def add_suggestions(clusters: Sequence[Cluster], search: Search, per_cluster: int = 3) -> None:
    """Nearest published FAQs per cluster: the best score any of its example
    wordings reaches for each FAQ (one search per example, at most three)."""
    for cluster in clusters:
        best: dict[str, Suggestion] = {}
        wordings = [cluster.representative] + [
            text for text, _n in cluster.examples if text != cluster.representative
        ]
        for text in wordings[:3]:
            for hit in search(text, cluster.language):
                current = best.get(hit.faq_id)
                if current is None or hit.score > current.score:
                    best[hit.faq_id] = Suggestion(hit.faq_id, hit.question, float(hit.score))
        cluster.suggestions = sorted(best.values(), key=lambda s: -s.score)[:per_cluster]


class QueryEmbeddingMemo:
    """In-memory memo of citizen-text embeddings for the console process.

    Citizen text must not go into the persistent embedding cache (it may hold
    personal data the redactor missed), but re-embedding the whole queue on
    every page view wastes the two shared cores. Bounded LRU, process-local.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_items: int = 20000) -> None:
        self._encode = encode
        self._max = max_items
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._items]
        if missing:
            fresh = np.asarray(self._encode(missing), dtype=np.float32)
            self.computed += len(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._items[text] = vector
                while len(self._items) > self._max:
                    self._items.popitem(last=False)
        with self._lock:
            result = []
            for text in texts:
                vector = self._items.get(text)
                if vector is None:  # evicted between the two locks: compute it again
                    vector = np.asarray(self._encode([text]), dtype=np.float32)[0]
                else:
                    self._items.move_to_end(text)
                result.append(vector)
        if not result:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack(result)
