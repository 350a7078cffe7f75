"""Request bodies that Rasa 3.6 posts to the action server's ``/webhook``, for tests that call a
real action server process."""

from __future__ import annotations

from typing import Any


def faq_call(question: str, sender: str = "citizen-1") -> dict[str, Any]:
    """``action_answer_faq`` for a new conversation whose latest message is ``question``."""
    return {
        "next_action": "action_answer_faq",
        "sender_id": sender,
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": sender,
            "slots": {},
            "latest_message": {
                "text": question,
                "intent": {"name": "ask_question", "confidence": 0.9},
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
