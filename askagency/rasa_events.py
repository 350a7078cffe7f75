"""Facts about Rasa's tracker events that several features rely on (history, analytics,
handoff). Rasa is not importable outside its own environment, so its constants are copied.

An intent triggered through Rasa's HTTP API (an agent's reply, a ticket closing) is stored as a
user event with text ``EXTERNAL: <intent>`` and metadata ``{"is_external": true}``
(``UserUttered.create_external``). A citizen can type that text, so the text alone proves
nothing; the web channels drop a client's ``is_external`` metadata (bot/channels/rest.py,
socketio.py) and platform channels never pass client metadata, so the metadata flag can only
come from Rasa's external-event path. Both must hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# rasa.shared.core.constants EXTERNAL_MESSAGE_PREFIX / IS_EXTERNAL
EXTERNAL_PREFIX = "EXTERNAL: "
EXTERNAL_METADATA_KEY = "is_external"


def is_external_event(text: Any, metadata: Any) -> bool:
    """True for a user event Rasa created for an API-triggered intent, never for citizen text."""
    return (
        isinstance(text, str)
        and text.startswith(EXTERNAL_PREFIX)
        and isinstance(metadata, Mapping)
        and metadata.get(EXTERNAL_METADATA_KEY) is True
    )


# Set by the web channels on every citizen message: a keyed hash of the client address
# (askagency.conversation_token.ConversationSigner.client_key), so the handoff can cap open
# tickets per address. Whatever a client sends under this key is overwritten.
CLIENT_KEY_METADATA = "client_key"

# Metadata keys only the server may set; the web channels remove them from client metadata.
SERVER_METADATA_KEYS = frozenset({EXTERNAL_METADATA_KEY, CLIENT_KEY_METADATA})


def client_metadata(metadata: Mapping[str, Any] | None, client_key: str) -> dict[str, Any]:
    """A client's message metadata with the server-only keys replaced by the server's."""
    cleaned = {
        key: value for key, value in (metadata or {}).items() if key not in SERVER_METADATA_KEYS
    }
    cleaned[CLIENT_KEY_METADATA] = client_key
    return cleaned
