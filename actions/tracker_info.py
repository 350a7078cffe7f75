"""What the actions read from the tracker: the citizen's text, intent, entities and language."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker


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


def _normalise_language(value: Any) -> str | None:
    """``"es-MX"`` -> ``"es"``; anything that is not a plausible language tag -> None."""
    if not isinstance(value, str):
        return None
    primary = value.strip().replace("_", "-").split("-")[0].lower()
    if 2 <= len(primary) <= 3 and primary.isalpha():
        return primary
    return None


def message_language(tracker: Tracker, default: str) -> str:
    """The language of this turn: the channel's message metadata ``language`` wins (the widget
    knows the page language), then the ``language`` slot from earlier turns, then ``default``."""
    metadata = tracker.latest_message.get("metadata") or {}
    if isinstance(metadata, dict):
        language = _normalise_language(metadata.get("language"))
        if language:
            return language
    return _normalise_language(tracker.get_slot("language")) or default
