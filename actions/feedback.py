"""``action_feedback``: acknowledge "that helped" / "that didn't help".

Only replies and remembers the verdict in the ``last_feedback`` slot for now; the texts (and
their ``custom.type``) are the domain responses ``utter_feedback_good`` / ``utter_feedback_bad``.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.tracker_info import latest_intent

_VERDICTS = {"feedback_good": "good", "feedback_bad": "bad"}


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
        dispatcher.utter_message(response=f"utter_feedback_{verdict}")
        return [SlotSet("last_feedback", verdict)]
