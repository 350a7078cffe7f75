"""bot/nlu.py: blank messages become ask_question, everything else keeps its prediction."""

from __future__ import annotations

from rasa.shared.nlu.training_data.message import Message

from bot.nlu import EmptyMessageClassifier


def _message(text: str | None) -> Message:
    message = Message(data={"text": text} if text is not None else {})
    message.set("intent", {"name": "affirm", "confidence": 0.73}, add_to_output=True)
    return message


def test_blank_messages_go_to_ask_question_others_are_untouched() -> None:
    messages = [_message(""), _message("  \n"), _message(None), _message("yes")]

    EmptyMessageClassifier().process(messages)

    intents = [m.get("intent")["name"] for m in messages]
    assert intents == ["ask_question", "ask_question", "ask_question", "affirm"]
    assert messages[0].get("intent_ranking") == [{"name": "ask_question", "confidence": 1.0}]
    assert messages[3].get("intent")["confidence"] == 0.73
