"""The bot's message contract: what every bot message's ``custom`` payload may say, and the
slots, intents and entities the actions, channels, console and analytics share.

Every bot message in every channel carries ``custom = {"type": <MessageType>, ...}`` so clients
(the widget, platform channels), the handoff relay, analytics and tests read the outcome of a
turn from data, not from the wording. The types and their fields were once string literals
repeated in Python, YAML and JavaScript; this module is the one place they are written, in the
spirit of ``rasa_sdk/events.py`` (builders returning plain dicts) and rasa-sdk's ``SLOT_*``
constants. ``tests/unit/askagency/test_bot_messages.py`` checks ``bot/domain.yml`` and the
widget against it, so a type the widget or a domain response uses but this module does not
name fails a test.

It runs in both environments: the action server (Python 3.11) and Rasa's own (Python 3.10, for
the custom channels), so it uses the standard library only and no ``enum.StrEnum``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class _Value(str, Enum):  # noqa: UP042 - StrEnum is Python 3.11+, Rasa runs 3.10
    """A string enum whose ``str()`` is its value on Python 3.10 too (json, f-strings, logs)."""

    def __str__(self) -> str:
        return self.value


class MessageType(_Value):
    """``custom.type`` of a bot message."""

    # Retrieval outcomes of a question turn (action_answer_faq).
    FAQ_ANSWER = "faq_answer"
    CLARIFY = "clarify"
    FALLBACK = "fallback"
    PROMPT = "prompt"
    # Handoff to a person (handoff/conversation.py).
    HANDOFF = "handoff"
    AGENT_MESSAGE = "agent_message"
    HANDOFF_CLOSED = "handoff_closed"
    # During a handoff: the e-mail address or phone number the citizen left for a reply was
    # noted (handoff/conversation.py); ``kind`` says which, never the value.
    CONTACT_NOTED = "contact_noted"
    # Responses of simple intents (bot/domain.yml) and the widget's own greeting.
    GREETING = "greeting"
    GOODBYE = "goodbye"
    THANKS = "thanks"
    BOT_CHALLENGE = "bot_challenge"
    CHITCHAT = "chitchat"
    FEEDBACK_ACK = "feedback_ack"


class FallbackReason(_Value):
    """``custom.reason`` of a ``fallback`` or ``prompt`` message: why there is no answer."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    UNAVAILABLE = "unavailable"
    LOW_CONFIDENCE = "low_confidence"
    LANGUAGE_UNAVAILABLE = "language_unavailable"
    NONE_OF_THESE = "none_of_these"
    UNKNOWN_OPTION = "unknown_option"
    HANDOFF_LIMITED = "handoff_limited"
    HANDOFF_UNAVAILABLE = "handoff_unavailable"
    RATE_LIMITED = "rate_limited"
    REPEATED = "repeated"
    NOT_IN_HANDOFF = "not_in_handoff"  # "Back to the assistant" pressed after the handoff ended
    # A citizen's photo or file could not be taken (wrong type, too big, damaged, not received).
    ATTACHMENT_REFUSED = "attachment_refused"


# The outcome of a question turn, from the type of the reply action_answer_faq sent (metrics).
TURN_OUTCOMES: dict[str, str] = {
    MessageType.FAQ_ANSWER: "answered",
    MessageType.CLARIFY: "clarify",
    MessageType.FALLBACK: "fallback",
    MessageType.HANDOFF: "handoff",
}
# Replies that carry the retriever's score of the question (analytics reads it).
SCORED_TYPES = frozenset({MessageType.FAQ_ANSWER, MessageType.CLARIFY, MessageType.FALLBACK})
# A person takes over after these; the bot answers again after the others (the widget's
# "waiting for a person" state follows them).
HANDOFF_START_TYPES = frozenset({MessageType.HANDOFF, MessageType.AGENT_MESSAGE})
HANDOFF_END_TYPES = frozenset(
    {
        MessageType.HANDOFF_CLOSED,
        MessageType.FAQ_ANSWER,
        MessageType.CLARIFY,
        MessageType.FALLBACK,
    }
)

# --- slots (bot/domain.yml) ------------------------------------------------------------------
SLOT_FAQ_ID = "faq_id"
SLOT_HANDOFF_ACTIVE = "handoff_active"
SLOT_LANGUAGE = "language"
SLOT_LAST_FAQ_ID = "last_faq_id"
SLOT_CLARIFY_OPTIONS = "clarify_options"
SLOT_CONSECUTIVE_FALLBACKS = "consecutive_fallbacks"
SLOT_LAST_FEEDBACK = "last_feedback"
SLOTS = frozenset(
    {
        SLOT_FAQ_ID,
        SLOT_HANDOFF_ACTIVE,
        SLOT_LANGUAGE,
        SLOT_LAST_FAQ_ID,
        SLOT_CLARIFY_OPTIONS,
        SLOT_CONSECUTIVE_FALLBACKS,
        SLOT_LAST_FEEDBACK,
    }
)

# --- intents the code (not only the stories) relies on ---------------------------------------
INTENT_ASK_QUESTION = "ask_question"
# Rasa's own intent for a message NLU is unsure of (FallbackClassifier); not in the domain.
NLU_FALLBACK_INTENT = "nlu_fallback"
# A typed question: both are answered from the knowledge base.
QUESTION_INTENTS = frozenset({INTENT_ASK_QUESTION, NLU_FALLBACK_INTENT})
INTENT_CHOOSE_FAQ = "choose_faq"
INTENT_ASK_HUMAN = "ask_human"
INTENT_FEEDBACK_GOOD = "feedback_good"
INTENT_FEEDBACK_BAD = "feedback_bad"
# The "Back to the assistant" button of a handoff (typed words work too: handoff.conversation).
INTENT_CANCEL_HANDOFF = "cancel_handoff"
# External intents the console triggers through Rasa's HTTP API, with data in their entities.
INTENT_AGENT_MESSAGE = "agent_message"
INTENT_HANDOFF_CLOSED = "handoff_closed"
# A citizen's photo or file (issue 21, item 1). The channel stores the file first (the widget
# through the console, the platforms through the action server: attachments.store), then sends
# this intent as a payload built on the server, never typed text; the message metadata carries
# the stored ids and the citizen's caption (METADATA_* below). The action checks that each id
# belongs to the conversation before using it, so a forged id is worth nothing.
INTENT_SHARE_ATTACHMENT = "share_attachment"
# Question turns: their one action (action_answer_faq, or action_relay_to_agent during a handoff)
# works out the turn's language and sets the ``language`` slot itself, so the slot's mapping
# skips them (``not_intent`` in bot/domain.yml): one action-server call per question instead of
# two, each carrying the whole conversation (issue 19; tests/unit/bot/test_rules.py).
LANGUAGE_SET_BY_THE_ACTION = (INTENT_ASK_QUESTION, NLU_FALLBACK_INTENT, INTENT_CHOOSE_FAQ)
METADATA_ATTACHMENTS = "attachments"  # list[str]: attachment ids (attachments.store)
METADATA_CAPTION = "caption"  # str: the text sent with the file ("" when none)
# str: why a platform's file could not be taken (attachments.sanitize.RejectCode value, e.g.
# "too_large"), so the bot can tell the citizen instead of silently dropping the file.
METADATA_ATTACHMENT_ERROR = "attachment_error"
# What an attachment id looks like (attachments.store issues ``secrets.token_hex(16)``) and how
# many one message may carry. Here, not only in attachments.store, because the Rasa channels
# check the ids a widget sends and Rasa's environment cannot import the store's models.
ATTACHMENT_ID_PATTERN = r"[0-9a-f]{32}"
MAX_ATTACHMENTS_PER_MESSAGE = 4

ENTITY_FAQ_ID = "faq_id"
ENTITY_HANDOFF_TEXT = "handoff_text"
ENTITY_HANDOFF_AGENT = "handoff_agent"
ENTITY_HANDOFF_TICKET = "handoff_ticket"
ENTITY_HANDOFF_MESSAGE = "handoff_message"
ENTITY_HANDOFF_RESOLVED = "handoff_resolved"
ENTITY_HANDOFF_TIMED_OUT = "handoff_timed_out"
# An agent_message that carries a file: the attachment id (attachments.store).
ENTITY_HANDOFF_ATTACHMENT = "handoff_attachment"


# --- builders of ``custom`` payloads ----------------------------------------------------------
def _score(value: float) -> float:
    return round(float(value), 3)


# ``custom.via`` of an answer given by pressing one of the related-FAQ buttons another answer
# offered (``custom.related``); ``custom.from_faq`` names that answer's FAQ (analytics counts
# the clicks and the "X -> Y" pairs from these fields alone).
VIA_RELATED = "related"


def faq_answer(
    *,
    faq_id: str,
    score: float,
    source_url: str | None,
    language: str,
    related: list[str] | None = None,
    via: str | None = None,
    from_faq: str | None = None,
) -> dict[str, Any]:
    """An FAQ's answer. ``language`` is the answer's; see :func:`untranslated`. ``related``:
    the ids of the related FAQs offered as buttons with it (absent when none); ``via`` and
    ``from_faq``: how the citizen got here (:data:`VIA_RELATED`, and the answer offering it)."""
    custom: dict[str, Any] = {
        "type": MessageType.FAQ_ANSWER.value,
        "faq_id": faq_id,
        "score": _score(score),
        "source_url": source_url,
        "language": language,
    }
    if related:
        custom["related"] = list(related)
    if via:
        custom["via"] = via
        custom["from_faq"] = from_faq
    return custom


def untranslated(custom: dict[str, Any], requested_language: str) -> dict[str, Any]:
    """Marks a payload whose text is not in the citizen's language (the KB lacks it)."""
    return {**custom, "translated": False, "requested_language": requested_language}


def clarify_option(*, faq_id: str, title: str, score: float) -> dict[str, Any]:
    return {"faq_id": faq_id, "title": title, "score": _score(score)}


def clarify(options: list[dict[str, Any]]) -> dict[str, Any]:
    """ "Did you mean ...?" with the candidate FAQs (:func:`clarify_option`), best first."""
    return {"type": MessageType.CLARIFY.value, "options": options}


# ``custom.out_of_scope`` of a fallback: the out-of-scope entry that took the question (no
# answer by design; analytics leaves such turns out of the top unanswered questions).
FIELD_OUT_OF_SCOPE = "out_of_scope"


def fallback(
    reason: FallbackReason, *, out_of_scope: str | None = None, **fields: Any
) -> dict[str, Any]:
    """No answer, and why. ``score`` (if given) is rounded like every other score; a
    low-confidence fallback may carry ``suggestions`` (:func:`clarify_option` dicts, best first:
    the near misses shown as buttons beside the person) or name the ``out_of_scope`` entry
    that took the question (:data:`FIELD_OUT_OF_SCOPE`)."""
    if "score" in fields:
        fields["score"] = _score(fields["score"])
    if out_of_scope:
        fields[FIELD_OUT_OF_SCOPE] = out_of_scope
    return {"type": MessageType.FALLBACK.value, "reason": reason.value, **fields}


def prompt(reason: FallbackReason) -> dict[str, Any]:
    """The bot asks the citizen for something (an empty message gets an example question)."""
    return {"type": MessageType.PROMPT.value, "reason": reason.value}


def handoff(
    *,
    reason: str,
    after_hours: bool,
    expected_reply_at: str | None,
    queued: bool = False,
) -> dict[str, Any]:
    """The conversation is with a person now. ``expected_reply_at`` (ISO 8601) is set out of
    staffed hours; ``queued`` while the database is down and the request waits in the spool.
    Nothing about the agency's operation (ticket number, agents online) goes to the citizen."""
    custom: dict[str, Any] = {"type": MessageType.HANDOFF.value}
    if queued:
        custom["queued"] = True
    custom.update(reason=reason, after_hours=after_hours, expected_reply_at=expected_reply_at)
    return custom


def agent_message(*, agent: str, message_id: Any) -> dict[str, Any]:
    """A person's reply; ``message_id`` makes a redelivery recognisable."""
    return {"type": MessageType.AGENT_MESSAGE.value, "agent": agent, "message_id": message_id}


class HandoffEnd(_Value):
    """``custom.ended_by`` of a ``handoff_closed`` message: who ended the handoff."""

    AGENT = "agent"  # a person closed the ticket in the inbox
    CITIZEN = "citizen"  # the citizen went back to the assistant
    TIMEOUT = "timeout"  # nobody took the waiting ticket in time
    GONE = "gone"  # the ticket was closed meanwhile; the bot noticed on the next message


def handoff_closed(
    *, resolved: bool | None, message_id: Any = None, ended_by: HandoffEnd = HandoffEnd.AGENT
) -> dict[str, Any]:
    """The bot answers again. ``resolved`` is None when the ticket vanished."""
    return {
        "type": MessageType.HANDOFF_CLOSED.value,
        "resolved": resolved,
        "message_id": message_id,
        "ended_by": ended_by.value,
    }


def type_of(custom: Any) -> str | None:
    """``custom.type`` of a payload read from a tracker or a channel, None when absent."""
    if isinstance(custom, dict):
        kind = custom.get("type")
        return kind if isinstance(kind, str) else None
    return None


def is_type(custom: Any, kind: MessageType) -> bool:
    return type_of(custom) == kind.value
