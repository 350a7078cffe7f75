"""bot.rasa_speedups: the cached action-response validator accepts and rejects exactly what
Rasa's own validation does, with the same error message."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction

import bot  # noqa: F401 - importing the package installs the speed-up
from bot import rasa_speedups

VALID = {
    "events": [
        {"event": "slot", "name": "language", "value": "en"},
        {"event": "bot", "text": "hi", "data": {"custom": {"type": "faq_answer"}}},
    ],
    "responses": [{"text": "hi", "custom": {"type": "faq_answer", "faq_id": "x"}}],
}
INVALID = [
    {"events": [{"event": "slot"}]},  # a slot event needs a name
    {"events": "not a list"},
    {"events": [{"event": "no_such_event"}]},
    {"responses": ["not an object"]},
]


def test_installed_when_rasa_is_importable() -> None:
    assert rasa_speedups.install() is True
    assert RemoteAction._validate_action_result.__module__ == "bot.rasa_speedups"


def test_valid_response_passes() -> None:
    assert RemoteAction("action_answer_faq", None)._validate_action_result(VALID) is True


@pytest.mark.parametrize("response", INVALID)
def test_invalid_responses_fail_like_stock_rasa(response: dict) -> None:
    with pytest.raises(ValidationError) as stock:
        validate(response, RemoteAction.action_response_format_spec())
    with pytest.raises(ValidationError) as ours:
        RemoteAction("action_answer_faq", None)._validate_action_result(response)
    assert ours.value.message.startswith(stock.value.message)
    assert "Failed to validate Action server response" in ours.value.message
