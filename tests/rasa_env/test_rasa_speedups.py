"""bot.rasa_speedups: the cached action-response validator accepts and rejects exactly what
Rasa's own validation does, with the same error message; the cached event-class lookup finds
exactly the classes Rasa's own lookup finds."""

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


def _stock_resolve(type_name: str, default=None):  # type: ignore[no-untyped-def]
    """Rasa 3.6's own ``Event.resolve_by_type`` (rasa/shared/core/events.py), for comparison."""
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event

    for cls in rasa.shared.utils.common.all_subclasses(Event):
        if cls.type_name == type_name:
            return cls
    if type_name == "topic":
        return None
    if default is not None:
        return default
    raise ValueError(f"Unknown event name '{type_name}'.")


def test_event_classes_resolve_exactly_as_stock_rasa() -> None:
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event

    assert rasa_speedups.install() is True
    names = {cls.type_name for cls in rasa.shared.utils.common.all_subclasses(Event)}
    assert {"user", "bot", "slot", "action", "session_started"} <= names
    for name in names:
        assert Event.resolve_by_type(name) is _stock_resolve(name), name
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", default=dict) is dict
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        Event.resolve_by_type("no_such_event")


def test_an_event_class_defined_later_is_found() -> None:
    from rasa.shared.core.events import Event, SlotSet

    assert rasa_speedups.install() is True
    Event.resolve_by_type("slot")  # the map is built before the new class exists

    class LateEvent(SlotSet):
        type_name = "askagency_late_event"

    assert Event.resolve_by_type("askagency_late_event") is LateEvent
    restored = Event.from_parameters({"event": "slot", "name": "language", "value": "es"})
    assert isinstance(restored, SlotSet) and restored.value == "es"
