"""Request bodies that Rasa 3.6 posts to the action server's ``/webhook``, for tests that call a
real action server process (``action_call`` is bench/stack_client.py's, shared with the
benchmarks)."""

from __future__ import annotations

from typing import Any

from bench.stack_client import action_call


def faq_call(question: str, sender: str = "citizen-1") -> dict[str, Any]:
    """``action_answer_faq`` for a new conversation whose latest message is ``question``."""
    return action_call("action_answer_faq", question, "ask_question", sender)
