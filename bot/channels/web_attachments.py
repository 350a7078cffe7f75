"""A web citizen's photo or file, as the REST and socket.io channels hand it to Rasa.

The widget stores the file first (``POST /api/widget/attachments`` on the console, which checks
the conversation token) and then sends its message with ``"attachments": [id, ...]`` next to
``"message"``. Rasa must never take the intent or the ids from the client's text or metadata:

* the ids are read from the message body only, kept when they look like ids the store issues
  (``ATTACHMENT_ID_PATTERN``), deduplicated and cut to ``MAX_ATTACHMENTS_PER_MESSAGE``;
* the text Rasa gets is built here (``/share_attachment``), and the metadata keys carrying the ids
  and the caption are set AFTER the client's metadata was filtered, so a client can neither set
  them on an ordinary message nor overwrite them on an attachment message.

Whether an id really belongs to the conversation is checked later, by the action
(``attachments.store.owned_by``): this module only keeps junk away from Rasa's tracker.
"""

from __future__ import annotations

import re
from typing import Any

from askagency import bot_messages as msg

_ID = re.compile(rf"\A{msg.ATTACHMENT_ID_PATTERN}\Z")
# Keys only this module may set on a citizen message (the client's copies are dropped).
SERVER_KEYS = (msg.METADATA_ATTACHMENTS, msg.METADATA_CAPTION, msg.METADATA_ATTACHMENT_ERROR)
SHARE_TEXT = f"/{msg.INTENT_SHARE_ATTACHMENT}"


def attachment_ids(raw: Any) -> list[str]:
    """The well-formed attachment ids in a client's ``attachments`` field, in order, at most
    ``MAX_ATTACHMENTS_PER_MESSAGE``; anything else (not a list, not a string, junk) is dropped."""
    if not isinstance(raw, list):
        return []
    ids: list[str] = []
    for item in raw:
        if isinstance(item, str) and _ID.match(item) and item not in ids:
            ids.append(item)
            if len(ids) == msg.MAX_ATTACHMENTS_PER_MESSAGE:
                break
    return ids


def without_server_keys(metadata: dict[str, Any]) -> dict[str, Any]:
    """The client's metadata without the keys that say which files a message carries."""
    return {key: value for key, value in metadata.items() if key not in SERVER_KEYS}


def limiter_text(caption: str, ids: list[str]) -> str:
    """What the repeat limit compares: two different photos with the same (or no) caption are
    two different messages."""
    return " ".join([caption, *ids]).strip()


def to_rasa(caption: str, ids: list[str], metadata: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The text and metadata Rasa gets. Without ids: the caption as typed and the metadata
    without the attachment keys. With ids: ``/share_attachment`` and the ids and caption under
    the contract's keys (``metadata`` must already be the server-filtered one)."""
    cleaned = without_server_keys(metadata)
    if not ids:
        return caption, cleaned
    cleaned[msg.METADATA_ATTACHMENTS] = list(ids)
    cleaned[msg.METADATA_CAPTION] = caption.strip()
    return SHARE_TEXT, cleaned
