"""Save, find and link attachments; the only code that writes the ``attachment`` table.

Callers hand over a :class:`~attachments.sanitize.Clean` file (never raw bytes), so nothing
unsanitized is ever stored. Ids are 128 random bits; a string that is not a well-formed id is
treated as unknown before it reaches a query. A citizen's id is used only through
:func:`owned_by`, which keeps the ids that belong to that conversation: a forged or guessed id
from another conversation is dropped, not an error that would confirm it exists.

Functions take the caller's session and flush, never commit: the caller's transaction decides
(the attachment and the ticket message it belongs to are written together).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.orm import Session

from askagency import bot_messages as msg
from askagency.db import session_scope
from attachments.models import (
    CONVERSATION_ID_MAX_LEN,
    ID_LENGTH,
    NAME_MAX_LEN,
    Attachment,
    AttachmentDirection,
)
from attachments.sanitize import Clean, Kind

# The id rule and the cap are the channels' too (they run in Rasa's environment, which cannot
# import this package): one definition in askagency.bot_messages.
ID_PATTERN = re.compile(rf"^{msg.ATTACHMENT_ID_PATTERN}\Z")
# Files one message may carry (channels keep the rest out; the console's picker too).
MAX_PER_MESSAGE = msg.MAX_ATTACHMENTS_PER_MESSAGE
# Room for a long but real file name; the extension is added after it.
NAME_STEM_MAX_CHARS = 100
_DEFAULT_STEM = {Kind.IMAGE: "photo", Kind.DOCUMENT: "document"}
# Never in a display name: path separators and what breaks a header or a quoted attribute.
_FORBIDDEN_NAME_CHARS = frozenset('/\\"<>:|?*')


def new_id() -> str:
    """A fresh attachment id: 32 hex characters from the OS's random source."""
    return secrets.token_hex(ID_LENGTH // 2)


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def clean_name(name: str, kind: Kind | str, extension: str) -> str:
    """The display name of a file: the last path part of ``name``, without control, format
    (e.g. a right-to-left override that makes ``gpj.exe`` read ``exe.jpg``) or path
    characters, at most :data:`NAME_STEM_MAX_CHARS` before the extension, and always ending in
    the extension of the type the content really is."""
    base = re.split(r"[/\\]", name or "")[-1]
    kept = "".join(
        ch
        for ch in unicodedata.normalize("NFC", base)
        if not unicodedata.category(ch).startswith(("C", "Z")) or ch == " "
    )
    kept = "".join(ch for ch in kept if ch not in _FORBIDDEN_NAME_CHARS)
    stem = kept.rsplit(".", 1)[0] if "." in kept else kept
    stem = " ".join(stem.split()).strip(" .")[:NAME_STEM_MAX_CHARS].rstrip(" .")
    if not stem:
        stem = _DEFAULT_STEM.get(Kind(kind), "file")
    return f"{stem}.{extension}"[:NAME_MAX_LEN]


def save(
    session: Session,
    clean: Clean,
    *,
    conversation_id: str,
    channel: str,
    direction: AttachmentDirection | str,
    name: str = "",
    uploaded_by: int | None = None,
) -> Attachment:
    """Store a sanitized file; returns the flushed row (its ``id`` set)."""
    if not conversation_id or len(conversation_id) > CONVERSATION_ID_MAX_LEN:
        raise ValueError("invalid conversation id")
    attachment = Attachment(
        id=new_id(),
        conversation_id=conversation_id,
        channel=channel[:64],
        direction=AttachmentDirection(direction).value,
        kind=clean.kind.value,
        mime=clean.mime,
        name=clean_name(name, clean.kind, clean.extension),
        size_bytes=len(clean.data),
        width=clean.width,
        height=clean.height,
        sha256=hashlib.sha256(clean.data).hexdigest(),
        uploaded_by=uploaded_by,
        data=clean.data,
        thumbnail=clean.thumbnail,
    )
    session.add(attachment)
    session.flush()
    return attachment


def save_citizen_file(
    clean: Clean, *, conversation_id: str, channel: str, name: str, database_url: str | None = None
) -> dict[str, str]:
    """A citizen's sanitized file stored in its own transaction (blocking: run it in a thread),
    for the two ways one arrives (the widget's upload to the console, a platform's file through
    the action server); answers what the channel gets back: ``{"id", "kind", "name"}``."""
    with session_scope(database_url) as session:
        saved = save(
            session,
            clean,
            conversation_id=conversation_id,
            channel=channel,
            direction=AttachmentDirection.CITIZEN,
            name=name,
        )
        return {"id": saved.id, "kind": saved.kind, "name": saved.name}


def get(session: Session, attachment_id: str) -> Attachment | None:
    """The attachment with this id; None for an unknown or malformed id."""
    if not is_valid_id(attachment_id):
        return None
    return session.get(Attachment, attachment_id)


def _valid_unique(ids: Iterable[object]) -> list[str]:
    seen: dict[str, None] = {}
    for value in ids:
        if is_valid_id(value):
            seen.setdefault(str(value), None)
    return list(seen)


def owned_by(session: Session, conversation_id: str, ids: Iterable[object]) -> list[Attachment]:
    """The citizen's attachments of ``conversation_id`` among ``ids``, in the order given
    (duplicates once); malformed, unknown, agent-sent or other conversations' ids are dropped."""
    wanted = _valid_unique(ids)
    if not wanted:
        return []
    rows = session.scalars(
        select(Attachment).where(
            Attachment.id.in_(wanted),
            Attachment.conversation_id == conversation_id,
            Attachment.direction == AttachmentDirection.CITIZEN.value,
        )
    ).all()
    by_id = {row.id: row for row in rows}
    return [by_id[i] for i in wanted if i in by_id]


def link_to_message(session: Session, attachment_ids: Iterable[str], message_id: int) -> None:
    """Record which ticket message the files arrived with (or were sent in)."""
    wanted = _valid_unique(attachment_ids)
    if not wanted:
        return
    session.execute(
        update(Attachment)
        .where(Attachment.id.in_(wanted))
        .values(message_id=message_id)
        .execution_options(synchronize_session="fetch")
    )
    session.flush()


def for_messages(session: Session, message_ids: Iterable[int]) -> dict[int, list[Attachment]]:
    """Each message's attachments (oldest first), metadata only: no bytes are loaded."""
    wanted = sorted(set(message_ids))
    if not wanted:
        return {}
    rows = session.scalars(
        select(Attachment)
        .where(Attachment.message_id.in_(wanted))
        .order_by(Attachment.created_at, Attachment.id)
    ).all()
    result: dict[int, list[Attachment]] = {}
    for row in rows:
        assert row.message_id is not None
        result.setdefault(row.message_id, []).append(row)
    return result


def export_for_conversation(session: Session, conversation_id: str) -> list[dict[str, Any]]:
    """A citizen's privacy export: every file of the conversation described (sender, time,
    type, name, size, SHA-256), never the bytes; oldest first."""
    rows = session.scalars(
        select(Attachment)
        .where(Attachment.conversation_id == conversation_id)
        .order_by(Attachment.created_at, Attachment.id)
    ).all()
    return [
        {
            **describe(row),
            "direction": row.direction,
            "channel": row.channel,
            "sha256": row.sha256,
            "created_at": row.created_at.isoformat(),
            "message_id": row.message_id,
            "uploaded_by": row.uploaded_by,
        }
        for row in rows
    ]


def delete_for_conversation(session: Session, conversation_id: str) -> int:
    """A citizen's deletion request: every file of the conversation, either direction."""
    result = session.execute(
        delete(Attachment).where(Attachment.conversation_id == conversation_id)
    )
    return int(result.rowcount or 0)


def purge_before(
    session: Session, cutoff: datetime, *, keep_conversations: Select[Any] | Iterable[str] = ()
) -> int:
    """Retention: files created before ``cutoff``, except those of ``keep_conversations``
    (the caller's open-ticket conversations: a person may still be looking at them)."""
    condition = Attachment.created_at < cutoff
    keep = (
        keep_conversations if isinstance(keep_conversations, Select) else list(keep_conversations)
    )
    if isinstance(keep, Select) or keep:
        condition = condition & Attachment.conversation_id.not_in(keep)
    result = session.execute(delete(Attachment).where(condition))
    return int(result.rowcount or 0)


def describe(attachment: Attachment) -> dict[str, Any]:
    """What a client may know about a file (JSON-safe, no bytes, no conversation)."""
    return {
        "id": attachment.id,
        "kind": attachment.kind,
        "mime": attachment.mime,
        "name": attachment.name,
        "width": attachment.width,
        "height": attachment.height,
        "size_bytes": attachment.size_bytes,
    }
