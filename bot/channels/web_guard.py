"""What the two web channels (REST, socket.io) check before Rasa sees a citizen message.

* ownership: the conversation id must have been issued by the server (or signed with its
  secret) and come with its token (askagency.conversation_token); ids of the messaging
  platforms (``sms-``, ``telegram-``, ...) are refused outright;
* size: a message longer than ``max_message_chars`` gets the actions' "too long" reply here,
  so it never reaches NLU or language detection;
* metadata: server-only keys (``is_external``, ``client_key``) are replaced by the server's;
  ``client_key`` is a keyed hash of the client address (askagency.rasa_events).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

from actions.messages import person_button, text
from askagency.bot_messages import FallbackReason, fallback
from askagency.client_address import (
    DEFAULT_TRUSTED_PROXIES,
    Network,
    parse_networks,
)
from askagency.conversation_ids import RULE, is_addressable, is_platform_id
from askagency.conversation_token import ConversationSigner, secret_from_environment
from askagency.limits import MAX_MESSAGE_CHARS
from askagency.numbers import ascii_int
from askagency.rasa_events import client_metadata
from bot.channels.common import default_data_dir

logger = logging.getLogger(__name__)

TOO_LONG = FallbackReason.TOO_LONG.value
TRUSTED_PROXIES_ENV = "ASKAGENCY_TRUSTED_PROXIES"


@lru_cache(maxsize=1)
def signer() -> ConversationSigner:
    """The process's signer (secret from the environment, else the generated
    ``<data_dir>/secrets/conversation_secret``)."""
    return ConversationSigner(secret_from_environment(default_data_dir()))


def max_message_chars() -> int:
    raw = os.environ.get("ASKAGENCY_MAX_MESSAGE_CHARS", "").strip()
    return ascii_int(raw) or MAX_MESSAGE_CHARS


def trusted_proxies(configured: str | None = None) -> tuple[Network, ...]:
    """``configured`` (the channel's ``trusted_proxies``), else ``ASKAGENCY_TRUSTED_PROXIES``,
    else loopback."""
    spec = (configured or "").strip() or os.environ.get(TRUSTED_PROXIES_ENV, "").strip()
    return parse_networks(spec or DEFAULT_TRUSTED_PROXIES)


def ownership_error(conversation_id: str | None, token: Any) -> str | None:
    """Why a client may not write into ``conversation_id``; None when it may."""
    if not conversation_id:
        return "a conversation id is required"
    if not is_addressable(conversation_id):
        return f"the conversation id must be {RULE}"
    if is_platform_id(conversation_id):
        return "this conversation belongs to another channel"
    if not signer().verify(conversation_id, token):
        return "the conversation token is missing or does not match the conversation id"
    return None


def too_long(message: str, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The actions' "too long" bot message when ``message`` is over the limit, else None."""
    limit = max_message_chars()
    length = len(message.strip())
    if length <= limit:
        return None
    language = (metadata or {}).get("language")
    language = language if isinstance(language, str) and len(language) <= 8 else "en"
    return {
        "text": text(TOO_LONG, language, length=length, limit=limit),
        "buttons": [person_button(language)],
        "custom": fallback(FallbackReason.TOO_LONG),
    }


def too_long_body(size: int) -> dict[str, Any]:
    """The "too long" reply for a body too big to read (its length is counted in bytes)."""
    limit = max_message_chars()
    return {
        "text": text(TOO_LONG, "en", length=size, limit=limit),
        "buttons": [person_button("en")],
        "custom": fallback(FallbackReason.TOO_LONG),
    }


def server_metadata(metadata: dict[str, Any] | None, address: str) -> dict[str, Any]:
    """Client metadata with ``is_external`` dropped and ``client_key`` set by the server."""
    return client_metadata(metadata, signer().client_key(address or "unknown"))
