"""``action_feedback``: acknowledge "that helped" / "that didn't help".

Replies and remembers the verdict in the ``last_feedback`` slot; the texts (and their
``custom.type``) are the domain responses ``utter_feedback_good`` / ``utter_feedback_bad``. With
``handoff_negative_feedback_mode=direct`` a "bad" verdict hands the conversation to a person.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import learning
from actions.handoff import hand_off
from actions.tracker_info import latest_intent, message_language
from askagency.bot_messages import INTENT_FEEDBACK_BAD, INTENT_FEEDBACK_GOOD, SLOT_LAST_FEEDBACK
from askagency.config import get_settings
from handoff.models import Reason

_VERDICTS = {INTENT_FEEDBACK_GOOD: "good", INTENT_FEEDBACK_BAD: "bad"}


class ActionFeedback(Action):
    def name(self) -> str:
        return "action_feedback"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[EventType]:
        verdict = _VERDICTS.get(latest_intent(tracker) or "")
        if verdict is None:
            # Only the feedback rules run this action; anything else is a rule mistake.
            return []
        if verdict == "bad":
            language = message_language(tracker, get_settings())
            learning.note_unhelpful_answer(tracker, "thumbs_down", language)
        if verdict == "bad" and get_settings().handoff_negative_feedback_mode == "direct":
            events = await hand_off(dispatcher, tracker, Reason.NEGATIVE_FEEDBACK, "")
            return [SlotSet(SLOT_LAST_FEEDBACK, verdict), *events]
        # "bad" offers a person; clicking it opens a ticket with reason negative_feedback.
        dispatcher.utter_message(response=f"utter_feedback_{verdict}")
        return [SlotSet(SLOT_LAST_FEEDBACK, verdict)]
