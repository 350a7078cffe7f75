"""The options last shown to a platform conversation as a numbered list, so "2" selects option 2
(SMS/WhatsApp, and Messenger when titles are too long for quick replies).

They live in the channels' shared state (bot/channels/shared_state.py): in Redis in the scale
profile, so the citizen's "2" works whichever Rasa replica the load balancer hands it to; in
this process otherwise. Each list is one JSON value ``[[title, payload], ...]`` (the payloads
are button tokens, bot/channels/buttons.py) under a hash of the channel and conversation id, so
Redis holds no phone numbers or platform ids.
"""

from __future__ import annotations

import json

from bot.channels.common import Choice
from bot.channels.shared_state import State, digest


class PendingChoices:
    """The numbered options of one channel's conversations.

    Valid for the citizen's next message only (any other reply clears them; taking them is
    atomic, so two replicas never both use the same list) and for ``ttl_s`` seconds.
    """

    def __init__(self, state: State, channel: str, ttl_s: float = 3600.0) -> None:
        self.state = state
        self.channel = channel
        self.ttl_s = ttl_s

    def _key(self, conversation_id: str) -> str:
        return f"choices\x00{self.channel}\x00{digest(self.channel, conversation_id)}"

    def remember(self, conversation_id: str, choices: list[Choice]) -> None:
        """Keeps ``choices`` for the conversation's next message; ``[]`` clears them."""
        key = self._key(conversation_id)
        if choices:
            value = json.dumps([[choice.title, choice.payload] for choice in choices])
            self.state.remember(key, value, self.ttl_s)
        else:
            self.state.pop(key)

    def _take(self, conversation_id: str) -> list[Choice]:
        raw = self.state.pop(self._key(conversation_id))
        if raw is None:
            return []
        try:
            return [Choice(str(title), str(payload)) for title, payload in json.loads(raw)]
        except (ValueError, TypeError):  # not written by remember: nothing to choose from
            return []

    def resolve(self, conversation_id: str, text: str) -> str | None:
        """The payload the reply selects (by number or exact title), or None; either way the
        pending options are used up."""
        choices = self._take(conversation_id)
        if not choices:
            return None
        answer = text.strip().rstrip(".)").strip()
        # isdecimal, not isdigit: "²" is a digit that int() refuses.
        if answer.isdecimal() and len(answer) <= 3:
            index = int(answer) - 1
            return choices[index].payload if 0 <= index < len(choices) else None
        folded = answer.casefold()
        for choice in choices:
            if choice.title.strip().casefold() == folded:
                return choice.payload
        return None
