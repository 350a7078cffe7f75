"""``action_detect_language``: keeps the ``language`` slot right before Rasa picks a response.

Rasa runs it on every user message (it is the ``language`` slot's custom mapping action, called
by ``action_extract_slots`` before the policies predict), so the Spanish variants of responses
like ``utter_greet`` (``condition: slot language = es`` in bot/domain.yml) are chosen from this
turn's message, not the previous one's.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.tracker_info import language_choice
from askagency.bot_messages import SLOT_LANGUAGE
from askagency.config import get_settings

logger = logging.getLogger(__name__)


class ActionDetectLanguage(Action):
    def name(self) -> str:
        return "action_detect_language"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[EventType]:
        choice = language_choice(tracker, get_settings())
        if choice.source == "detected":
            logger.debug("sender %s writes %s (%s)", tracker.sender_id, choice.language, choice)
        if tracker.get_slot(SLOT_LANGUAGE) == choice.language:
            return []
        return [SlotSet(SLOT_LANGUAGE, choice.language)]
