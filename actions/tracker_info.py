"""What the actions read from the tracker: the citizen's text, intent, entities and language."""

from __future__ import annotations

from rasa_sdk import Tracker

from askagency.bot_messages import SLOT_LANGUAGE
from askagency.config import Settings
from knowledge_base import language


def latest_text(tracker: Tracker) -> str:
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
