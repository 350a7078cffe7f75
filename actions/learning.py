"""What the bot learns for the staff console: unanswered questions and FAQ usage.

Thin on purpose: the actions call these after replying; the storage, redaction
and clustering live in ``knowledge_base.unanswered``. Text is redacted here
before it leaves the action (and again at storage). Recording runs in a worker
thread in the background; while the database is down the writes wait in the spool
(``askagency.spool``) instead of being lost, and a slow or broken database never delays or
breaks a citizen's turn.

Each record is spooled under its conversation's id, like the handoff's writes: a write waits
behind an earlier one of the same conversation that is still in the spool, so a citizen's pick
never reaches the database before the question it was for (the database back between the two),
and a citizen's deletion request also removes what of theirs still waits there. The id stays in
the spool file; the queue itself never holds it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa_sdk import Tracker

from actions.spool_kinds import SPOOL_KINDS
from askagency.bot_messages import MessageType, is_type
from askagency.privacy import redact
from askagency.spool import store
from knowledge_base.types import Decision, Outcome
from knowledge_base.unanswered import (
    UnansweredReason,
    answered_payload,
    choice_payload,
    unanswered_payload,
)

logger = logging.getLogger(__name__)

_pending: set[asyncio.Task[str]] = set()


def _record(kind: str, payload: dict[str, Any], conversation: str) -> None:
    """Write one record (``askagency.spool`` kind) of ``conversation`` off the event loop,
    without waiting. The database gets it now, or the spool keeps it until the database is
    back (or until the conversation's earlier writes there are written)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # called outside the action server's loop (scripts, tests)
        store(kind, payload, SPOOL_KINDS, key=conversation)
        return
    task = loop.create_task(asyncio.to_thread(store, kind, payload, SPOOL_KINDS, key=conversation))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def drain() -> None:
    """Wait for recordings in flight (tests; a clean shutdown)."""
    if _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)


def _channel(tracker: Tracker) -> str | None:
    try:
        return tracker.get_latest_input_channel() or None
    except Exception:  # noqa: BLE001 - a tracker without events
        return None


def _queue(
    tracker: Tracker,
    text: str,
    reason: str,
    language: str,
    top_faq_id: str | None = None,
    top_score: float | None = None,
) -> None:
    payload = unanswered_payload(
        redact(text), reason, language, _channel(tracker), top_faq_id, top_score
    )
    _record("unanswered", payload, tracker.sender_id)


def _answered(tracker: Tracker, faq_id: str) -> None:
    _record("faq_answered", answered_payload(faq_id), tracker.sender_id)


def note_decision(
    tracker: Tracker, question: str, decision: Decision, language: str, handed_off: bool
) -> None:
    """After a question turn: count an answer, or queue the question for staff. A question an
    out-of-scope entry took is queued apart with that entry (reason ``out_of_scope``), even
    when it was handed off: it needs no answer, and staff only check what the entries take."""
    top = decision.hits[0] if decision.hits else None
    if top is not None and decision.outcome == Outcome.ANSWER and not handed_off:
        _answered(tracker, top.faq_id)
        return
    reason = UnansweredReason.LOW_CONFIDENCE
    if decision.out_of_scope is not None:
        reason, top = UnansweredReason.OUT_OF_SCOPE, decision.out_of_scope
    elif handed_off:
        reason = UnansweredReason.HANDOFF
    elif decision.outcome == Outcome.CLARIFY:
        reason = UnansweredReason.CLARIFIED
    top_score = None if top is None else float(top.score)
    _queue(tracker, question, reason, language, top and top.faq_id, top_score)


def note_choice(tracker: Tracker, faq_id: str, language: str, for_question: bool = True) -> None:
    """The citizen picked one of the bot's options: that FAQ answered, and (``for_question``:
    the options were the bot's candidates for the question just asked, a clarify list or a
    handoff's suggestions, not an answer's related FAQs) the queued question records the pick."""
    _answered(tracker, faq_id)
    if not for_question:
        return
    question = question_before_options(list(tracker.events or []))
    if question is not None:
        _record("faq_chosen", choice_payload(redact(question), language, faq_id), tracker.sender_id)


def question_before_options(events: list[dict[str, Any]]) -> str | None:
    """The citizen's words the bot's latest messages answered, seen from the button press
    that follows them: the last user event is the press (a payload), then the bot's messages
    (the options), then the question. None when that turn was not typed words."""
    seen_bot = False
    pressed = False
    for event in reversed(events or []):
        kind = event.get("event")
        if kind == "user":
            text = str(event.get("text") or "").strip()
            if not pressed:
                pressed = True  # the press itself
                continue
            if not seen_bot or not text or text.startswith("/"):
                return None
            return text
        if kind == "bot" and pressed:
            seen_bot = True
    return None


def last_answered_question(events: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(citizen text, FAQ id) of the latest FAQ answer in the conversation, if the
    last bot message was one. Button payloads are not citizen wording."""
    answered: str | None = None
    for event in reversed(events or []):
        kind = event.get("event")
        if kind == "bot" and answered is None:
            data = event.get("data") or {}
            custom = data.get("custom") if isinstance(data, dict) else None
            if not is_type(custom, MessageType.FAQ_ANSWER):
                return None
            answered = str(custom.get("faq_id") or "")
        elif kind == "user" and answered is not None:
            text = str(event.get("text") or "").strip()
            if not text or text.startswith("/"):
                return None
            return text, answered
    return None


def note_unhelpful_answer(tracker: Tracker, reason: str, language: str) -> None:
    """Thumbs-down, or a person requested right after an answer: the question the
    answer was for goes to the queue (with the FAQ that did not help)."""
    found = last_answered_question(list(tracker.events or []))
    if found is None:
        return
    text, faq_id = found
    _queue(tracker, text, reason, language, faq_id or None)
