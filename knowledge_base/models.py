"""SQLAlchemy tables of the FAQ knowledge base.

The database is the source of truth that staff edit; the retrieval index is
derived from the published rows. Every change is recorded in ``AuditLog`` with a
full before/after snapshot so that any earlier version can be restored and
reviewers can see who changed what.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.orderinglist import ordering_list
from sqlalchemy.orm import Mapped, mapped_column, relationship

from askagency.clock import now_utc
from askagency.db import Base, UtcDateTime
from knowledge_base.types import FaqKind

ID_MAX_LEN = 64
LANGUAGE_MAX_LEN = 16
CATEGORY_MAX_LEN = 64
QUESTION_MAX_LEN = 500
ANSWER_MAX_LEN = 2000
URL_MAX_LEN = 2000
ACTOR_MAX_LEN = 128
# Most related FAQs staff may set on one FAQ (the bot offers at most ``related_faqs_max``).
RELATED_MAX = 3


class FaqStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class AuditAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    PUBLISH = "publish"
    UNPUBLISH = "unpublish"
    ARCHIVE = "archive"
    DELETE = "delete"
    IMPORT = "import"
    RESTORE = "restore"


_STATUS_SQL = ", ".join(f"'{s.value}'" for s in FaqStatus)
_KIND_SQL = ", ".join(f"'{k.value}'" for k in FaqKind)


class Faq(Base):
    """One answer with its canonical question, in one language.

    ``translation_group`` ties together the same FAQ in several languages (it
    defaults to the id). ``version`` is bumped by the application on every change
    and checked by SQLAlchemy in the UPDATE's WHERE clause, so two editors saving
    the same FAQ cannot silently overwrite each other.
    """

    __tablename__ = "kb_faq"

    id: Mapped[str] = mapped_column(String(ID_MAX_LEN), primary_key=True)
    language: Mapped[str] = mapped_column(String(LANGUAGE_MAX_LEN), index=True)
    translation_group: Mapped[str] = mapped_column(String(ID_MAX_LEN), index=True)
    category: Mapped[str] = mapped_column(String(CATEGORY_MAX_LEN), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(String(URL_MAX_LEN), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=FaqStatus.DRAFT.value)
    kind: Mapped[str] = mapped_column(
        String(16), default=FaqKind.ANSWER.value, server_default=FaqKind.ANSWER.value
    )
    review_by: Mapped[date | None] = mapped_column(Date, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    created_by: Mapped[str] = mapped_column(String(ACTOR_MAX_LEN))
    updated_by: Mapped[str] = mapped_column(String(ACTOR_MAX_LEN))

    variants: Mapped[list[QuestionVariant]] = relationship(
        back_populates="faq",
        cascade="all, delete-orphan",
        order_by="QuestionVariant.position",
        collection_class=ordering_list("position"),
        passive_deletes=True,
    )
    related_links: Mapped[list[RelatedFaq]] = relationship(
        foreign_keys="RelatedFaq.faq_id",
        cascade="all, delete-orphan",
        order_by="RelatedFaq.position",
        collection_class=ordering_list("position"),
        passive_deletes=True,
    )

    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_SQL})", name="status"),
        CheckConstraint(f"kind IN ({_KIND_SQL})", name="kind"),
    )
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    @property
    def out_of_scope(self) -> bool:
        """Examples of questions the service does not answer (``FaqRecord.out_of_scope``)."""
        return self.kind == FaqKind.OUT_OF_SCOPE

    def __repr__(self) -> str:
        return f"Faq(id={self.id!r}, language={self.language!r}, status={self.status!r})"


class QuestionVariant(Base):
    """Another way citizens phrase the FAQ's question; one index vector each.

    ``position`` keeps the order staff gave, so exports round-trip exactly.
    """

    __tablename__ = "kb_question_variant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    faq_id: Mapped[str] = mapped_column(
        String(ID_MAX_LEN), ForeignKey("kb_faq.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(String(QUESTION_MAX_LEN))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)

    faq: Mapped[Faq] = relationship(back_populates="variants")

    __table_args__ = (UniqueConstraint("faq_id", "text", name="uq_kb_question_variant_faq_text"),)

    def __repr__(self) -> str:
        return f"QuestionVariant(faq_id={self.faq_id!r}, text={self.text!r})"


class RelatedFaq(Base):
    """One FAQ staff chose to offer after another's answer (``position`` keeps their order).

    Both ends cascade on delete, so removing either FAQ removes the link: the bot never offers
    an FAQ that no longer exists, and the list needs no clean-up job.
    """

    __tablename__ = "kb_faq_related"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    faq_id: Mapped[str] = mapped_column(
        String(ID_MAX_LEN), ForeignKey("kb_faq.id", ondelete="CASCADE"), index=True
    )
    related_id: Mapped[str] = mapped_column(
        String(ID_MAX_LEN), ForeignKey("kb_faq.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("faq_id", "related_id", name="uq_kb_faq_related_pair"),)

    def __repr__(self) -> str:
        return f"RelatedFaq(faq_id={self.faq_id!r}, related_id={self.related_id!r})"


class AuditLog(Base):
    """Append-only record of changes, shared by every entity type.

    ``before``/``after`` hold full JSON snapshots (``None`` for a creation or a
    deletion respectively); there is deliberately no foreign key to the entity
    so the history survives a deletion and can bring the entity back.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc, index=True)
    actor: Mapped[str] = mapped_column(String(ACTOR_MAX_LEN))
    action: Mapped[str] = mapped_column(String(32))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"),)

    def __repr__(self) -> str:
        return (
            f"AuditLog(id={self.id!r}, action={self.action!r}, "
            f"entity={self.entity_type}:{self.entity_id}, actor={self.actor!r})"
        )
