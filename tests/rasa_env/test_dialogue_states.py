"""bot.dialogue_states: the states Rasa's policies get are exactly those of Rasa's own replay,
after every event of a conversation with new sessions, a restart, undos and a form; a turn
replays only its own events."""

from __future__ import annotations

from typing import Any

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

import bot  # noqa: F401 - importing the package installs the speed-ups
from bot import dialogue_states
from bot.patching import ORIGINAL_ATTRIBUTE

DOMAIN = Domain.load("bot/domain.yml")
ORIGINAL = getattr(Domain.states_for_tracker_history, ORIGINAL_ATTRIBUTE)


def _question(turn: int) -> list[Any]:
    intent = {"name": "ask_question", "confidence": 0.9}
    return [
        UserUttered(f"question {turn}", intent, parse_data={"intent": intent, "text": "q"}),
        ActionExecuted("action_answer_faq"),
        SlotSet("language", "es" if turn % 3 == 0 else "en"),
        SlotSet("last_faq_id", f"faq-{turn}"),
        BotUttered(f"answer {turn}"),
        ActionExecuted("action_listen"),
    ]


def _session_start() -> list[Any]:
    return [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
    ]


def _greeting() -> list[Any]:
    greet = {"name": "greet", "confidence": 1.0}
    return [
        UserUttered("hello", greet),
        ActionExecuted("utter_greet"),
        BotUttered("Hi!"),
        ActionExecuted("action_listen"),
    ]


CONVERSATION = [
    ActionExecuted("action_listen"),
    *_session_start(),
    *_greeting(),
    *[event for turn in range(6) for event in _question(turn)],
    *_session_start(),
    *[event for turn in range(6, 9) for event in _question(turn)],
    Restarted(),
    ActionExecuted("action_listen"),
    *_question(9),
    *_greeting(),
]


def _states(tracker: DialogueStateTracker, **flags: Any) -> list[Any]:
    return DOMAIN.states_for_tracker_history(tracker, **flags)


def _count_states(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per state Rasa's domain computes from now on."""
    calls: list[int] = []
    active_state = Domain.get_active_state

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return active_state(self, *args, **kwargs)

    monkeypatch.setattr(Domain, "get_active_state", counted)
    return calls


@pytest.mark.parametrize("omit_unset_slots", [False, True])
def test_the_states_after_every_event_are_rasas(omit_unset_slots: bool) -> None:
    tracker = DialogueStateTracker(f"states-1-{omit_unset_slots}", DOMAIN.slots)
    longest = 0
    for event in CONVERSATION:
        tracker.update(event)
        ours = _states(tracker, omit_unset_slots=omit_unset_slots)
        assert ours == ORIGINAL(DOMAIN, tracker, omit_unset_slots=omit_unset_slots)
        longest = max(longest, len(ours))
    assert longest == 17 and len(ours) == 6  # the new session and the restart start again


def test_undos_a_form_and_copies_get_rasas_states() -> None:
    tracker = DialogueStateTracker("states-2", DOMAIN.slots)
    tail = [
        *_question(1),
        UserUtteranceReverted(),
        *_question(2),
        ActionReverted(),
        *_question(3),
        ActiveLoop("some_form"),
        ActionExecuted("some_form"),
        ActiveLoop(None),
        *_question(4),
    ]
    for event in [*CONVERSATION[:20], *tail]:
        tracker.update(event)
        assert _states(tracker) == ORIGINAL(DOMAIN, tracker)
        copy = tracker.copy()
        assert _states(copy) == ORIGINAL(DOMAIN, copy)
    earlier = tracker.travel_back_in_time(tracker.events[25].timestamp)
    assert _states(earlier) == ORIGINAL(DOMAIN, earlier)


def test_the_ml_variant_is_rasas_and_leaves_the_kept_states(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracker = DialogueStateTracker("states-3", DOMAIN.slots)
    for event in CONVERSATION:
        tracker.update(event)
    flags = {"ignore_rule_only_turns": True, "rule_only_data": {"slots": [], "loops": []}}
    _states(tracker)
    assert _states(tracker, **flags) == ORIGINAL(DOMAIN, tracker, **flags)
    # An ML policy asking between two rule predictions does not make the next one replay:
    # one new event, one final state.
    calls = _count_states(monkeypatch)
    tracker.update(UserUttered("again"))
    ours = _states(tracker)
    assert len(calls) == 1
    assert ours == ORIGINAL(DOMAIN, tracker)


def test_callers_may_edit_what_they_get() -> None:
    """Rasa's featurizer deletes keys from the last state it gets."""
    tracker = DialogueStateTracker("states-4", DOMAIN.slots)
    for event in CONVERSATION[:30]:
        tracker.update(event)
    for state in _states(tracker):
        for sub in state.values():
            sub.clear()
    assert _states(tracker) == ORIGINAL(DOMAIN, tracker)


def test_a_turn_replays_only_its_own_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """200 question turns, then one more: Rasa's replay takes a state before each of the
    session's 400 actions; ours takes the two of the new turn and the final one."""
    tracker = DialogueStateTracker("states-5", DOMAIN.slots)
    for event in [*_session_start(), *[e for turn in range(200) for e in _question(turn)]]:
        tracker.update(event)
    _states(tracker)
    calls = _count_states(monkeypatch)
    for event in _question(200):
        tracker.update(event)
    ours = _states(tracker)
    assert len(calls) == 3
    calls.clear()
    assert ours == ORIGINAL(DOMAIN, tracker)
    assert len(calls) == len(ours) == 2 * 201 + 2


def test_only_the_latest_conversations_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialogue_states, "RECENT_CONVERSATIONS", 2)
    trackers = [DialogueStateTracker(f"kept-{i}", DOMAIN.slots) for i in range(3)]
    for tracker in trackers:
        for event in CONVERSATION[:12]:
            tracker.update(event)
        _states(tracker)
    for tracker in trackers:
        tracker.update(UserUttered("again"))
        assert _states(tracker) == ORIGINAL(DOMAIN, tracker)
