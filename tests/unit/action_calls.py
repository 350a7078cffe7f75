"""Request bodies that Rasa 3.6 posts to the action server's ``/webhook``, for tests that call a
real action server process."""

from __future__ import annotations

from typing import Any


def action_call(
    action: str,
    text: str,
    intent: str,
    sender: str = "citizen-1",
    domain: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``action`` for a new conversation whose latest message is ``text`` (``intent``); Rasa
    sends its whole ``domain`` along in every call."""
    return {
        "next_action": action,
        "sender_id": sender,
        "version": "3.6.21",
        "domain": domain or {},
        "tracker": {
            "sender_id": sender,
            "slots": {},
            "latest_message": {
                "text": text,
                "intent": {"name": intent, "confidence": 0.9},
                "entities": [],
                "metadata": {"language": "en"},
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


def faq_call(question: str, sender: str = "citizen-1") -> dict[str, Any]:
    """``action_answer_faq`` for a new conversation whose latest message is ``question``."""
    return action_call("action_answer_faq", question, "ask_question", sender)
