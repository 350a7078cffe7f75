"""What the actions read from the tracker: the citizen's text, intent, entities and language."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from askagency import bot_messages as msg
from askagency.bot_messages import SLOT_LANGUAGE
from askagency.config import Settings
from knowledge_base import language


def latest_text(tracker: Tracker) -> str:
    """The citizen's words: the typed text, or the caption of a shared photo or file (whose
    message text is the channel's ``/share_attachment`` payload)."""
    if latest_intent(tracker) == msg.INTENT_SHARE_ATTACHMENT:
        metadata = tracker.latest_message.get("metadata") or {}
        caption = metadata.get(msg.METADATA_CAPTION) if isinstance(metadata, dict) else None
        return caption if isinstance(caption, str) else ""
    return str(tracker.latest_message.get("text") or "")


def latest_intent(tracker: Tracker) -> str | None:
    intent = tracker.latest_message.get("intent") or {}
    return intent.get("name")


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    """Value of ``entity`` in the latest message (e.g. ``faq_id`` from a button payload)."""
    for item in tracker.latest_message.get("entities") or []:
        if item.get("entity") == entity and item.get("value") not in (None, ""):
            return str(item["value"])
    return None


def language_choice(tracker: Tracker, settings: Settings) -> language.LanguageChoice:
    """The language of this turn and where it came from (``knowledge_base.language`` rule).

    The hint is the channel's message metadata ``language`` (the widget knows the page
    language), else the ``language`` slot of earlier turns; a long, confidently detected text
    overrides it, so a citizen who writes in Spanish on an English page is answered in Spanish.
    """
    metadata = tracker.latest_message.get("metadata") or {}
    hint = language.normalise(metadata.get("language")) if isinstance(metadata, dict) else None
    hint = hint or language.normalise(tracker.get_slot(SLOT_LANGUAGE))
    detect = language.detect_function(settings.detect_languages)
    return language.choose(latest_text(tracker), hint, settings.default_language, detect)


def message_language(tracker: Tracker, settings: Settings) -> str:
    """The language of this turn (see :func:`language_choice`)."""
    return language_choice(tracker, settings).language


def language_slot_update(tracker: Tracker, turn_language: str) -> list[EventType]:
    """``SlotSet(language)`` when this turn's language is not the slot's yet: what the actions
    of question turns return, since the slot's mapping skips those turns
    (``bot_messages.LANGUAGE_SET_BY_THE_ACTION``)."""
    if tracker.get_slot(SLOT_LANGUAGE) == turn_language:
        return []
    return [SlotSet(SLOT_LANGUAGE, turn_language)]


def previous_exchange(events: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(the citizen's question, the FAQ that answered it) when the bot's last message before
    the current one was an FAQ answer, else None: what a follow-up question ("and in checked
    bags?") is read with (knowledge_base/followup.py). The question is the last typed message
    before the answer, so an answer picked from "did you mean" options counts too."""
    user_seen = 0
    answer: str | None = None
    for event in reversed(events):
        kind = event.get("event")
        if kind == "user":
            user_seen += 1
            text = str(event.get("text") or "").strip()
            if user_seen == 1:
                continue  # the message being answered now
            if answer is None:
                return None  # the citizen wrote twice without an answer in between
            if text and not text.startswith("/"):
                return text, answer
        elif kind == "bot" and user_seen == 1 and answer is None:
            custom = (event.get("data") or {}).get("custom") or {}
            if msg.type_of(custom) != msg.MessageType.FAQ_ANSWER:
                return None
            faq_id = custom.get("faq_id")
            if not isinstance(faq_id, str) or not faq_id:
                return None
            answer = faq_id
    return None
