"""The ``attachment`` table: one row per stored file, bytes and thumbnail included.

The bytes live in the shared database (not on a local disk) so every replica of the console and
the action server can serve them, and so privacy export/delete and the retention purge reach them
with the rest of a conversation. ``data`` and ``thumbnail`` are deferred: listing a ticket's
files loads their metadata only.

``message_id`` points at the ticket message the file arrived with or was sent in
(``handoff_message``, named as a string: this package imports no feature package). It is set
once the message exists; deleting the message keeps the file row (SET NULL) for the purge.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from askagency.clock import now_utc
from askagency.db import Base, UtcDateTime
from askagency.staff import User

ID_LENGTH = 32  # secrets.token_hex(16)
CONVERSATION_ID_MAX_LEN = 255  # as handoff_ticket.conversation_id
NAME_MAX_LEN = 200
MIME_MAX_LEN = 64


class AttachmentDirection(StrEnum):
    """Who sent the file: the citizen (through a channel) or an agent (through the console)."""

    CITIZEN = "citizen"
    AGENT = "agent"


def _in(values: type[StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


# Spelled out rather than imported from attachments.sanitize so the table does not change when the
# sanitizer gains a kind; the migration (0018_attachments) has the same list.
_KINDS = "'image', 'document'"


class Attachment(Base):
    __tablename__ = "attachment"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(CONVERSATION_ID_MAX_LEN), index=True)
    channel: Mapped[str] = mapped_column(String(64), default="")
    direction: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    mime: Mapped[str] = mapped_column(String(MIME_MAX_LEN))
    # Display name, cleaned by attachments.store (never a path; extension of the real type).
    name: Mapped[str] = mapped_column(String(NAME_MAX_LEN), default="")
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc, index=True)
    uploaded_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey(User.id, ondelete="SET NULL"), nullable=True
    )
    message_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("handoff_message.id", ondelete="SET NULL"), nullable=True, index=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)

    __table_args__ = (
        CheckConstraint(f"direction IN ({_in(AttachmentDirection)})", name="direction"),
        CheckConstraint(f"kind IN ({_KINDS})", name="kind"),
    )

    @property
    def from_agent(self) -> bool:
        """An agent's file: the only kind ever linked to the citizen's side."""
        return self.direction == AttachmentDirection.AGENT.value

    def __repr__(self) -> str:
        return f"Attachment(id={self.id!r}, {self.kind} {self.mime}, {self.size_bytes} bytes)"
