"""Tables of the human handoff: tickets, their messages (incl. the reply outbox), notes, presence.

The database is shared by the action server (which opens tickets and stores citizen messages)
and the console (where agents reply), so these rows are the hand-over point between the two
processes. At most one ticket per conversation is open: ``open_marker`` is the conversation id
while the ticket is open and NULL once closed, and a UNIQUE constraint on it makes a second
open ticket impossible even when two triggers race.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from askagency.clock import now_utc
from askagency.db import Base, UtcDateTime
from askagency.privacy import CONTACT_MAX_CHARS
from askagency.staff import User
from knowledge_base.models import ID_MAX_LEN

CONVERSATION_ID_MAX_LEN = 255
MESSAGE_MAX_CHARS = 4000


class Reason(StrEnum):
    LOW_CONFIDENCE = "low_confidence"
    REQUESTED = "requested"
    FRUSTRATION = "frustration"
    REPEATED_FALLBACK = "repeated_fallback"
    NEGATIVE_FEEDBACK = "negative_feedback"
    # The citizen sent a photo or file: only a person can look at it (attachments/).
    ATTACHMENT = "attachment"


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"


class Status(StrEnum):
    WAITING = "waiting"
    ASSIGNED = "assigned"
    CLOSED_RESOLVED = "closed_resolved"
    CLOSED_UNRESOLVED = "closed_unresolved"


OPEN_STATUSES = (Status.WAITING.value, Status.ASSIGNED.value)


class Direction(StrEnum):
    CITIZEN = "citizen"
    AGENT = "agent"
    SYSTEM = "system"


class Delivery(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class MessageKind(StrEnum):
    """What a message does besides being shown: ``close`` is the hand-back to the bot, sent
    through the same ordered outbox as replies so it can never overtake them."""

    TEXT = "text"
    CLOSE = "close"


def _in(values: type[StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class Ticket(Base):
    __tablename__ = "handoff_ticket"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(CONVERSATION_ID_MAX_LEN), index=True)
    # Conversation id while open, NULL when closed: UNIQUE allows many NULLs, one open ticket.
    open_marker: Mapped[str | None] = mapped_column(
        String(CONVERSATION_ID_MAX_LEN), unique=True, nullable=True
    )
    channel: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    reason: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(16), default=Priority.NORMAL.value)
    status: Mapped[str] = mapped_column(String(32), default=Status.WAITING.value, index=True)
    assigned_agent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey(User.id, ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc, index=True)
    first_agent_reply_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Seconds of staffed hours from opening to the first agent reply, stored with that reply
    # under the staffed hours then in force (as Chatwoot stores ``value_in_business_hours``):
    # a year's dashboard reads a number instead of computing it per ticket. NULL: no reply yet,
    # or a ticket answered before migration 0021 (analytics computes those when it reads them).
    first_response_staffed_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    after_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    expected_reply_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # The citizen's words that triggered the handoff (shown in the inbox).
    trigger_text: Mapped[str] = mapped_column(Text, default="")
    transcript_url: Mapped[str] = mapped_column(String(2000), default="")
    # Who opened it, as the channel keyed them (a keyed hash of the web client's address, or the
    # platform conversation id): caps the open tickets one client may hold (handoff.service).
    client_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # When the on-duty list was e-mailed about it (handoff.notify); NULL: not yet.
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # An e-mail address or phone number the citizen wrote during the handoff, for a reply the
    # channel may not deliver (askagency.privacy.first_contact; the latest one wins). Only shown
    # to agents, who decide whether to use it: nothing is ever sent to it automatically.
    contact: Mapped[str | None] = mapped_column(String(CONTACT_MAX_CHARS), nullable=True)
    contact_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # email | phone
    # The knowledge base's out-of-scope entry that took the citizen's question, when the bot
    # handed off for that (the fallback named it): the inbox shows the entry's note for staff.
    out_of_scope_entry: Mapped[str | None] = mapped_column(String(ID_MAX_LEN), nullable=True)

    messages: Mapped[list[TicketMessage]] = relationship(
        back_populates="ticket", order_by="TicketMessage.id", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint(f"reason IN ({_in(Reason)})", name="reason"),
        CheckConstraint(f"priority IN ({_in(Priority)})", name="priority"),
        CheckConstraint(f"status IN ({_in(Status)})", name="status"),
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def __repr__(self) -> str:
        return f"Ticket(id={self.id!r}, conversation={self.conversation_id!r}, {self.status})"


class TicketMessage(Base):
    """One message of a handed-off conversation. Agent messages double as the outbox:
    ``delivery_status`` pending until Rasa confirmed the delivery."""

    __tablename__ = "handoff_message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("handoff_ticket.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default=MessageKind.TEXT.value)
    author: Mapped[str] = mapped_column(String(128), default="")
    author_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    delivery_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # A console process holding this lease is delivering the message; others keep off.
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")

    __table_args__ = (
        CheckConstraint(f"direction IN ({_in(Direction)})", name="direction"),
        CheckConstraint(f"kind IN ({_in(MessageKind)})", name="kind"),
        Index("ix_handoff_message_outbox", "delivery_status", "ticket_id", "id"),
    )


class TicketNote(Base):
    """Internal note by an agent; never sent to the citizen."""

    __tablename__ = "handoff_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("handoff_ticket.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey(User.id, ondelete="SET NULL"), nullable=True
    )
    author: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)


class AgentPresence(Base):
    """Last heartbeat of an agent's open inbox; "online" = seen within the presence window."""

    __tablename__ = "handoff_presence"

    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey(User.id, ondelete="CASCADE"), primary_key=True
    )
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc, index=True)
