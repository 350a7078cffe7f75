"""Custom NLU component (runs in ``.venv-rasa``; listed in ``config.yml``).

DIET gives a blank message (an empty REST body, a sticker or photo on a messaging platform)
whatever intent its bias favours (``affirm`` at 0.73 here), which would read as "yes". This
classifier runs last and sends blank messages to ``ask_question`` so the FAQ action replies with
its "please type your question" prompt.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from askagency.bot_messages import INTENT_ASK_QUESTION

BLANK_MESSAGE_INTENT = INTENT_ASK_QUESTION


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class EmptyMessageClassifier(GraphComponent, IntentClassifier):
    """Overrides the predicted intent of blank messages with ``ask_question``."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EmptyMessageClassifier:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if str(message.get(TEXT) or "").strip():
                continue
            intent = {INTENT_NAME_KEY: BLANK_MESSAGE_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [intent], add_to_output=True)
        return messages
