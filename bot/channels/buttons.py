"""Button payloads never leave the server: platforms get random tokens that stand for them.

A payload such as ``/choose_faq{"faq_id": "..."}`` is Rasa intent syntax: whatever comes back
as a "button press" skips NLU and triggers that intent with those entities. A platform client
(or anyone who can get a webhook past the signature check) can send any payload it likes,
including the console-only ``/agent_message{"handoff_text": ...}``, which makes the bot send
that text as a staff reply. So every button a platform shows carries a token instead
(``b:`` + 16 random characters, short enough for Telegram's 64-byte ``callback_data``), bound
to the conversation it was sent to; a press is turned back into the payload only when the token
was issued to that conversation and has not expired, and the payload must still be one a
citizen may trigger (:func:`bot.channels.message.citizen_text`).

Tokens live in the channels' shared state (bot/channels/shared_state.py): in Redis in the scale
profile, so a press that reaches another Rasa replica still works; in this process otherwise.
"""

from __future__ import annotations

import json
import logging
import secrets

from bot.channels.message import citizen_text
from bot.channels.shared_state import State, digest

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "b:"
TOKEN_CHARS = 16  # secrets.token_urlsafe(12): 96 random bits
EXPIRED_TEXT = "This option has expired. Please ask your question again."


def looks_like_token(text: str) -> bool:
    return text.startswith(TOKEN_PREFIX) and len(text) == len(TOKEN_PREFIX) + TOKEN_CHARS


class ButtonTokens:
    """Issues and redeems the button tokens of one channel."""

    def __init__(self, channel: str, state: State, ttl_s: float) -> None:
        self.channel = channel
        self.state = state
        self.ttl_s = ttl_s

    def _key(self, token: str) -> str:
        return f"button\x00{self.channel}\x00{token}"

    def issue(self, conversation_id: str, payload: str) -> str:
        """A new token that stands for ``payload`` in ``conversation_id`` only."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(12)
        # The conversation is kept as a hash: state in Redis holds no platform ids.
        value = json.dumps([digest(self.channel, conversation_id), payload])
        self.state.remember(self._key(token), value, self.ttl_s)
        return token

    def redeem(self, conversation_id: str, token: str) -> str | None:
        """The text Rasa gets for a press of ``token`` in ``conversation_id``; None for a token
        that is unknown, expired, or was issued to another conversation."""
        if not looks_like_token(token):
            return None
        raw = self.state.recall(self._key(token))
        if raw is None:
            return None
        try:
            owner, payload = json.loads(raw)
        except (ValueError, TypeError):
            return None
        if owner != digest(self.channel, conversation_id) or not isinstance(payload, str):
            return None
        return citizen_text(payload)
