"""bot.rasa_speedups: the cached action-response validator accepts and rejects exactly what
Rasa's own validation does, with the same error message; the cached event-class lookup finds
exactly the classes Rasa's own lookup finds."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError, validate
from rasa.core.actions.action import RemoteAction

import bot  # noqa: F401 - importing the package installs the speed-up
from bot import rasa_speedups
from bot.patching import ORIGINAL_ATTRIBUTE

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


def _one_of_each_event() -> list[dict]:
    """One event of every kind Rasa 3.6 knows, as an action server would send it."""
    from datetime import datetime

    from rasa.shared.core import events as ev

    intent = {"name": "ask_question", "confidence": 0.9}
    user = ev.UserUttered(
        "hi",
        intent,
        [{"entity": "city", "value": "Paris", "start": 0, "end": 2}],
        {"text": "hi", "intent": intent, "intent_ranking": [intent]},
        input_channel="rest",
        message_id="m1",
    )
    reminder = ev.ReminderScheduled(
        "remind", datetime(2030, 1, 1), name="r", kill_on_user_message=True
    )
    made = [
        user,
        ev.ActionExecuted("action_answer_faq", policy="RulePolicy", confidence=1.0),
        ev.SlotSet("language", "en"),
        ev.EntitiesAdded([{"entity": "city", "value": "Paris"}]),
        ev.DefinePrevUserUtteredFeaturization(True),
        ev.ReminderCancelled(name="r"),
        reminder,
        ev.ActionExecutionRejected("action_x", policy="p", confidence=0.5),
        ev.LoopInterrupted(True),
        ev.ActiveLoop("form_x"),
        ev.AllSlotsReset(),
        ev.ConversationResumed(),
        ev.ConversationPaused(),
        ev.FollowupAction("action_handoff"),
        ev.StoryExported("x.yml"),
        ev.Restarted(),
        ev.UserUtteranceReverted(),
        ev.ActionReverted(),
        ev.BotUttered("answer", {"custom": {"type": "faq_answer"}}, {"m": 1}),
        ev.SessionStarted(),
        ev.AgentUttered("from the agent"),
    ]
    return [event.as_dict() for event in made]


def _variants(event: dict) -> list[dict]:
    """The event itself, without each key in turn, and with each value of the wrong kind."""
    out = [event]
    for key in event:
        out.append({k: v for k, v in event.items() if k != key})
        for wrong in (None, 1, 1.5, True, "x", [], {}, [1]):
            out.append({**event, key: wrong})
    return out


def test_the_quick_check_accepts_exactly_what_the_full_schema_accepts() -> None:
    """Every kind of event, each with every key missing and every value of every JSON kind,
    and the responses above: the quick check and Rasa's whole schema agree on each one."""
    schema = RemoteAction.action_response_format_spec()
    quick = rasa_speedups.event_dispatch_check(schema)
    assert quick is not None
    full = rasa_speedups._cached_validator()
    events = _one_of_each_event()
    names = {event["event"] for event in events}
    cases = [VALID, *INVALID, {}, {"events": []}, {"events": None}, [], "x"]
    for event in events:
        cases += [{"events": [variant]} for variant in _variants(event)]
        cases += [{"events": [event, {**event, "event": name}]} for name in names]
    verdicts = [(quick(case), full.is_valid(case)) for case in cases]
    assert all(ours == stock for ours, stock in verdicts), [
        case for case, (ours, stock) in zip(cases, verdicts, strict=True) if ours != stock
    ][:3]
    accepted = sum(stock for _, stock in verdicts)
    assert len(cases) > 1000 and 300 < accepted < len(cases) - 300  # both answers are exercised


def test_a_schema_of_another_shape_gets_no_quick_check() -> None:
    schema = RemoteAction.action_response_format_spec()
    assert rasa_speedups.event_dispatch_check({"type": "object"}) is None
    items = schema["properties"]["events"]["items"]
    twice = {**items, "oneOf": [*items["oneOf"], items["oneOf"][0]]}
    same_name = {**schema, "properties": {**schema["properties"], "events": {"items": twice}}}
    assert rasa_speedups.event_dispatch_check(same_name) is None


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


# --- the action call's event window ------------------------------------------------------------


def _long_tracker(user_turns: int):  # type: ignore[no-untyped-def]
    """A session of ``user_turns`` question turns; the language slot is set before them."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (
        ActionExecuted,
        BotUttered,
        SessionStarted,
        SlotSet,
        UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.load("bot/domain.yml")
    events = [ActionExecuted("action_session_start"), SessionStarted(), SlotSet("language", "es")]
    events.append(ActionExecuted("action_listen"))
    for turn in range(user_turns):
        events += [
            UserUttered(f"question {turn}", {"name": "ask_question", "confidence": 1.0}),
            ActionExecuted("action_answer_faq"),
            BotUttered(f"answer {turn}", {"custom": {"type": "faq_answer", "faq_id": f"f{turn}"}}),
            SlotSet("consecutive_fallbacks", turn),
            ActionExecuted("action_listen"),
        ]
    return DialogueStateTracker.from_events("citizen-1", events, domain.slots), domain


def _stock_call(tracker, domain):  # type: ignore[no-untyped-def]
    original = getattr(RemoteAction._action_call_format, ORIGINAL_ATTRIBUTE)
    return original(RemoteAction("action_answer_faq", None), tracker, domain)


def test_an_action_call_carries_the_last_turns_and_everything_else_unchanged() -> None:
    assert rasa_speedups.install_action_tracker_window(turns=20) is True
    tracker, domain = _long_tracker(30)
    ours = RemoteAction("action_answer_faq", None)._action_call_format(tracker, domain)
    stock = _stock_call(tracker, domain)

    events = ours["tracker"]["events"]
    users = [e["text"] for e in events if e["event"] == "user"]
    assert users == [f"question {turn}" for turn in range(10, 30)]
    assert events == stock["tracker"]["events"][-len(events) :]  # the same dicts, in order
    assert len(stock["tracker"]["events"]) == 4 + 30 * 5
    # A slot set before the window (the language, before the first question) still arrives.
    assert ours["tracker"]["slots"]["language"] == "es"
    for key in set(stock) | set(stock["tracker"]):
        if key in ("tracker", "events"):
            continue
        if key in stock:
            assert ours[key] == stock[key], key
        else:
            assert ours["tracker"][key] == stock["tracker"][key], key


def test_a_short_session_and_a_window_of_zero_send_everything() -> None:
    tracker, domain = _long_tracker(5)
    assert rasa_speedups.install_action_tracker_window(turns=20) is True
    short = RemoteAction("action_answer_faq", None)._action_call_format(tracker, domain)
    assert short == _stock_call(tracker, domain)

    long_tracker, domain = _long_tracker(30)
    try:
        assert rasa_speedups.install_action_tracker_window(turns=0) is True
        whole = RemoteAction("action_answer_faq", None)._action_call_format(long_tracker, domain)
        assert whole == _stock_call(long_tracker, domain)
    finally:
        rasa_speedups.install_action_tracker_window()


@pytest.mark.parametrize(("value", "turns"), [("", 20), (" 5 ", 5), ("0", 0)])
def test_the_window_comes_from_the_environment(value: str, turns: int) -> None:
    assert rasa_speedups.action_tracker_turns({"ASKAGENCY_ACTION_TRACKER_TURNS": value}) == turns
    assert rasa_speedups.action_tracker_turns({}) == rasa_speedups.DEFAULT_ACTION_TRACKER_TURNS


@pytest.mark.parametrize("value", ["-1", "many", "2.5", "+5", "1_0", "٣"])
def test_a_bad_window_is_refused_by_name(value: str) -> None:
    with pytest.raises(ValueError, match="ASKAGENCY_ACTION_TRACKER_TURNS must be a whole number"):
        rasa_speedups.action_tracker_turns({"ASKAGENCY_ACTION_TRACKER_TURNS": value})
