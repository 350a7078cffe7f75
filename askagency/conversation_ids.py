"""Which conversation ids the whole product can address.

Why a rule at the door: an agent's reply reaches a citizen through Rasa's HTTP API at
``/conversations/<id>/...``. Sanic 21 (Rasa 3.6) takes that path segment literally and does not
percent-decode it, so ``%2B15551234567`` reaches a different, empty conversation than
``+15551234567``, and an id with a space, ``/``, ``?``, ``#``, ``%`` or non-ASCII cannot be
reached at all (checked against the real server, tests/e2e/test_handoff_reserved_ids.py). The
channels refuse such ids when a message arrives, instead of letting the citizen hand off to a
person whose reply could never be delivered.

Standard library only (plus askagency.channels): imported by the Rasa channels (Python 3.10
env) and the console alike.
"""

from __future__ import annotations

import re

from askagency.channels import PLATFORM_CHANNELS

# RFC 3986 ``pchar`` without ``%``: the characters Sanic takes literally in a path segment.
PATH_SAFE_ID = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$")
MAX_ID_CHARS = 128
RULE = f"letters, digits and -._~!$&'()*+,;=:@ only, at most {MAX_ID_CHARS} characters"


def is_addressable(conversation_id: str) -> bool:
    """True when Rasa's HTTP API can reach this conversation by its id."""
    return len(conversation_id) <= MAX_ID_CHARS and bool(PATH_SAFE_ID.match(conversation_id))


# Conversation ids of the messaging platforms: ``<channel name>-<platform id>``
# (bot/channels/platform.py). The web channels (REST, socket.io) refuse them, or a web client
# could write into a citizen's SMS/Telegram/... conversation and receive its replies.
PLATFORM_PREFIXES = tuple(f"{channel}-" for channel in PLATFORM_CHANNELS)


def is_platform_id(conversation_id: str) -> bool:
    """True for an id that belongs to a messaging platform's channel (case-insensitive)."""
    return conversation_id.lower().startswith(PLATFORM_PREFIXES)
