"""The one client-facing shape of a bot message, shared by every AskAgency channel.

Rasa's stock output channels split a bot message into separate text, buttons and custom
messages, and the socket.io one cannot carry a flat ``custom`` dict. Clients (widget, tests,
evaluation) need text, buttons and metadata together, so every channel converts Rasa's message
dict with :func:`client_message` instead.
"""

from __future__ import annotations

from typing import Any

from askagency import bot_messages as msg

# Keys of Rasa's bot message dict that reach the client; everything else (timestamp,
# utter_action, template names, ...) is internal to Rasa.
_PASS_THROUGH = ("image", "attachment", "elements")


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Buttons and quick replies are the same thing to our clients: a title and a payload."""
    raw = message.get("buttons") or message.get("quick_replies")
    if not raw:
        return None
    buttons = []
    for button in raw:
        if not isinstance(button, dict):
            continue
        title = button.get("title")
        payload = button.get("payload")
        if title is None or payload is None:
            continue
        buttons.append({"title": str(title), "payload": str(payload)})
    return buttons or None


def client_message(message: dict[str, Any]) -> dict[str, Any]:
    """Convert a Rasa bot message (``BotUttered.message()`` or an NLG response) into the client
    shape ``{"text"?, "buttons"?, "custom"?, "image"?, "attachment"?, "elements"?}``.

    Keys whose value is empty are left out, so a text-only reply is just ``{"text": ...}``.
    """
    out: dict[str, Any] = {}
    text = message.get("text")
    if text is not None and str(text) != "":
        out["text"] = str(text)
    buttons = _buttons(message)
    if buttons:
        out["buttons"] = buttons
    custom = message.get("custom")
    if custom:
        out["custom"] = custom
    for key in _PASS_THROUGH:
        value = message.get(key)
        if value:
            out[key] = value
    return out


# Intents a citizen's client may trigger directly with a "/intent{...}" payload (widget buttons,
# quick replies). Everything else — notably the console-only external intents `agent_message`
# and `handoff_closed` — must go through NLU, or a citizen could forge an agent's reply.
CITIZEN_PAYLOAD_INTENTS = frozenset(
    {
        msg.INTENT_CHOOSE_FAQ,
        msg.INTENT_ASK_HUMAN,
        msg.INTENT_CANCEL_HANDOFF,
        msg.INTENT_FEEDBACK_GOOD,
        msg.INTENT_FEEDBACK_BAD,
        "greet",
        "affirm",
        "deny",
    }
)


def citizen_text(text: str) -> str:
    """The message as Rasa may see it: a ``/`` payload survives only for citizen intents."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return text
    intent = stripped[1:].split("{", 1)[0].split("@", 1)[0].strip()
    if intent in CITIZEN_PAYLOAD_INTENTS:
        return stripped
    while stripped.startswith("/"):
        stripped = stripped[1:].strip()
    return stripped
