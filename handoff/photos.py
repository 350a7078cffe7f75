"""What the bot does with a citizen's photo or file (issue 21, item 1).

The bot cannot look at a photo; a person can. So a file always goes to the inbox: outside a
handoff it opens a ticket with reason ``attachment`` (out of staffed hours the citizen is told
when a person will reply, as for any handoff, and that the item described in words gets an
answer now); during a handoff it is stored on the ticket with the caption, silently, like any
message the citizen writes to the person.

The channel stored the file before the turn (``attachments.store``) and names it in the
message metadata (:class:`SharedFiles`). A name counts only when the stored file belongs to
this conversation and came from the citizen, so an id copied from another conversation, or one
of the agent's files, does nothing. A file the channel could not take (wrong type, too big, a
platform download that failed) arrives as an error code instead, and the citizen is told what
went wrong in their language.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from askagency import bot_messages as msg
from askagency.bot_messages import FallbackReason
from askagency.channels import log_ref
from askagency.clock import now_utc
from askagency.config import Settings
from askagency.db import session_scope
from attachments import links, store
from attachments.sanitize import Kind, RejectCode
from handoff import service
from handoff.conversation import (
    HANDOFF_SLOT,
    Reply,
    console_base_url,
    store_for_agent,
    text,
    ticket_gone,
)

logger = logging.getLogger(__name__)

# The channel could not hand the file over at all (platform download failed, store down).
UNAVAILABLE = "unavailable"
# Which text explains which refusal; anything unknown is "could not receive it".
_REFUSAL_TEXTS: dict[str, str] = {
    RejectCode.TOO_LARGE.value: "file_too_large",
    RejectCode.TOO_MANY_PIXELS.value: "file_too_large",
    RejectCode.UNSUPPORTED.value: "file_unsupported",
    RejectCode.DAMAGED.value: "file_damaged",
    RejectCode.EMPTY.value: "file_damaged",
}


@dataclass(frozen=True)
class SharedFiles:
    """What the channel put in the message metadata: stored ids, the caption, an error."""

    ids: tuple[str, ...] = ()
    caption: str = ""
    error: str | None = None

    @classmethod
    def from_metadata(cls, metadata: Any) -> SharedFiles:
        """Read defensively: metadata is written by our channels, but a wrong shape must
        never break the turn."""
        if not isinstance(metadata, Mapping):
            return cls(error=UNAVAILABLE)
        raw_ids = metadata.get(msg.METADATA_ATTACHMENTS)
        ids = tuple(
            i for i in (raw_ids if isinstance(raw_ids, list) else []) if isinstance(i, str)
        )[: store.MAX_PER_MESSAGE]
        caption = metadata.get(msg.METADATA_CAPTION)
        error = metadata.get(msg.METADATA_ATTACHMENT_ERROR)
        return cls(
            ids=ids,
            caption=caption.strip() if isinstance(caption, str) else "",
            error=str(error) if error else None,
        )


@dataclass(frozen=True)
class Received:
    """The files of this message that really belong to the conversation, in order."""

    ids: tuple[str, ...]
    kinds: tuple[str, ...]

    @property
    def only_documents(self) -> bool:
        return all(kind == Kind.DOCUMENT.value for kind in self.kinds)


def refusal(code: str | None, language: str, settings: Settings) -> Reply:
    """The citizen's file could not be taken: what went wrong and what works instead. A
    ``prompt``, not a ``fallback``: it ends no handoff and is not a failed question."""
    key = _REFUSAL_TEXTS.get(code or "", "file_unavailable")
    limit_mb = max(1, settings.attachment_max_bytes // (1024 * 1024))
    return Reply(
        text=text(key, language, limit_mb=limit_mb),
        custom=msg.prompt(FallbackReason.ATTACHMENT_REFUSED),
    )


def ticket_text(caption: str, received: Received) -> str:
    """What the inbox lists for the message: the caption, else what was sent."""
    if caption:
        return caption
    what = "file" if received.only_documents else "photo"
    count = len(received.ids)
    return f"📎 {count} {what}s" if count > 1 else f"📎 {what}"


def _owned(conversation_id: str, ids: tuple[str, ...]) -> Received:
    """The conversation's own files among ``ids`` that no message carries yet: a file goes to
    the person once, so a replayed message cannot post it again."""
    with session_scope() as session:
        found = [
            a for a in store.owned_by(session, conversation_id, list(ids)) if a.message_id is None
        ]
        return Received(ids=tuple(a.id for a in found), kinds=tuple(a.kind for a in found))


async def receive(
    conversation_id: str, files: SharedFiles, language: str, settings: Settings
) -> Received | Reply:
    """The files that belong to this conversation, or the reply explaining why there are
    none (the channel's error code; unknown or foreign ids; the database down)."""
    if not files.ids:
        return refusal(files.error or UNAVAILABLE, language, settings)
    try:
        received = await asyncio.to_thread(_owned, conversation_id, files.ids)
    except Exception as exc:
        logger.error("files of %s could not be looked up: %s", log_ref(conversation_id), exc)
        return refusal(UNAVAILABLE, language, settings)
    if not received.ids:
        logger.warning(
            "%s named %d file(s) it does not own; ignored", log_ref(conversation_id), len(files.ids)
        )
        return refusal(UNAVAILABLE, language, settings)
    return received


def _store_on_ticket(conversation_id: str, body: str, received: Received) -> bool:
    """The message with its files on the conversation's open ticket; False: no open ticket."""
    with session_scope() as session:
        message = service.add_citizen_message(session, conversation_id, body)
        if message is None:
            return False
        store.link_to_message(session, list(received.ids), message.id)
        return True


async def attach_to_ticket(
    conversation_id: str, caption: str, received: Received, language: str
) -> Reply:
    """Stores the files (with the caption) on the open ticket. Silent when stored; the bot
    takes over when the ticket was closed meanwhile; a database error is said, since the
    person would otherwise never see the photo."""
    try:
        stored = await asyncio.to_thread(
            _store_on_ticket, conversation_id, ticket_text(caption, received), received
        )
    except Exception as exc:
        logger.error("files of %s not stored on the ticket: %s", log_ref(conversation_id), exc)
        return Reply(
            text=text("file_unavailable", language),
            custom=msg.prompt(FallbackReason.ATTACHMENT_REFUSED),
        )
    return Reply() if stored else ticket_gone(language)


async def caption_for_agent(conversation_id: str, caption: str, language: str) -> Reply:
    """During a handoff, the words sent with a file that could not be taken still reach the
    person (the relay keeps them in the spool while the database is down)."""
    if not caption:
        return Reply()
    return await store_for_agent(conversation_id, caption, language)


def opened(reply: Reply) -> bool:
    """True when a handoff reply put the conversation with a person and the ticket exists
    (not waiting in the spool: the files could not be linked to it yet)."""
    custom = reply.custom or {}
    return bool(reply.slots.get(HANDOFF_SLOT)) and not custom.get("queued")


def with_thanks(reply: Reply, received: Received, language: str) -> Reply:
    """The handoff message, opened by a thank-you that says why a person is needed."""
    key = "document_received" if received.only_documents else "file_received"
    return replace(reply, text=text(key, language) + (reply.text or ""))


def _agent_file(attachment_id: str) -> tuple[str, str, str] | None:
    """(kind, name, mime) of an agent's stored file; None for anything else."""
    with session_scope() as session:
        found = store.get(session, attachment_id)
        if found is None or not found.from_agent:
            return None
        return found.kind, found.name, found.mime


async def with_agent_file(reply: Reply, attachment_id: str, settings: Settings) -> Reply:
    """A person's reply with the file they attached, as a signed link that expires
    (``attachment_link_ttl_s``): platforms fetch it from the console's public address, and a
    link that is passed on stops working. Only files an agent uploaded are ever linked."""
    try:
        found = await asyncio.to_thread(_agent_file, attachment_id)
    except Exception as exc:
        # Rare (the console stored the file in the same database a moment ago). Raising would
        # make Rasa's action guard send the citizen a "can't look that up" fallback instead.
        logger.error("the agent's file %s could not be read: %s", attachment_id, exc)
        return reply
    if found is None:
        logger.warning("agent_message names file %r, which is not an agent's file", attachment_id)
        return reply
    kind, name, mime = found
    url = links.signed_url(
        console_base_url(settings),
        attachment_id,
        secret=links.link_secret(settings),
        now=now_utc(),
        ttl_s=settings.attachment_link_ttl_s,
    )
    if kind == Kind.IMAGE.value:
        return replace(reply, image=url)
    return replace(reply, attachment={"type": "file", "url": url, "name": name, "mime": mime})
