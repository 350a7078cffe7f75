"""The dialogue states of a conversation, extended turn by turn instead of replayed (issue 19).

Before each prediction Rasa 3.6's RulePolicy (our only policy, which forces ``max_history`` to
None) turns the whole session into states: ``Domain.states_for_tracker_history`` replays every
applied event into a fresh tracker and takes its state before each action. A turn makes two or
three predictions, so at 200 question turns (about 1,000 events) a turn replayed the session
two or three times: 6-13 ms each (docs/scale.md, point 5), the growth left in a long
conversation's turns.

Here the states of a conversation are kept with the tracker that replayed them (latest
``RECENT_CONVERSATIONS``), and a call whose tracker holds the same event objects plus new ones
replays only the new ones. The result is the list Rasa builds, whenever the replay is a plain
append: the kept prefix is compared event by event (identity), and a call falls back to Rasa's
own method when the session holds what makes Rasa's ``applied_events`` look back (an undo:
``ActionReverted``, ``UserUtteranceReverted``; a form: ``ActiveLoop``) or asks for the
ML-policy variant (``ignore_rule_only_turns``). A restart or a new session starts the
kept states again from it, as Rasa's replay does. Callers get copies of the states (Rasa's
featurizer edits the last one in place).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from bot.patching import rasa_original, replace

RECENT_CONVERSATIONS = 512


@dataclass
class _Replay:
    domain: Any  # the domain whose states these are
    events: list[Any]  # the tracker's events it covers, compared by identity
    tracker: Any  # the tracker replaying them (Rasa's ``init_copy`` plus the applied events)
    states: list[Any]  # the state before each action among them


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return {name: dict(sub) if isinstance(sub, dict) else sub for name, sub in state.items()}


def install() -> bool:
    """Patches ``Domain.states_for_tracker_history``; True when active."""
    try:
        from rasa.shared.core.domain import Domain
        from rasa.shared.core.events import (
            ActionExecuted,
            ActionReverted,
            ActiveLoop,
            Restarted,
            SessionStarted,
            UserUtteranceReverted,
        )
    except ImportError:
        return False
    original = rasa_original(Domain, "states_for_tracker_history", "kept dialogue states")
    if original is None:
        return False
    look_back = (ActionReverted, UserUtteranceReverted, ActiveLoop)
    resets = (Restarted, SessionStarted)
    replays: OrderedDict[tuple[str, bool], _Replay] = OrderedDict()

    def extend(domain: Any, replay: _Replay, new: list[Any], omit_unset_slots: bool) -> None:
        for event in new:
            if isinstance(event, ActionExecuted):
                state = domain.get_active_state(replay.tracker, omit_unset_slots=omit_unset_slots)
                replay.states.append(domain._clean_state(state))
            replay.tracker.update(event)
        replay.events.extend(new)

    def states_for_tracker_history(
        self: Any,
        tracker: Any,
        omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False,
        rule_only_data: Any = None,
    ) -> list[Any]:
        if ignore_rule_only_turns:  # an ML policy's call leaves the kept states alone
            return original(self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        key = (tracker.sender_id, omit_unset_slots)
        events = tracker.events
        replay = replays.pop(key, None)
        if replay is not None and not (
            replay.domain is self
            and len(replay.events) <= len(events)
            and all(a is b for a, b in zip(replay.events, events, strict=False))
        ):
            replay = None
        start = len(replay.events) if replay is not None else 0
        new = list(itertools.islice(events, start, len(events)))
        if any(isinstance(event, look_back) for event in new):
            return original(self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        last_reset = max((i for i, e in enumerate(new) if isinstance(e, resets)), default=None)
        if replay is None or last_reset is not None:
            # Rasa's applied events start after the latest restart or session start.
            applied_from = 0 if last_reset is None else last_reset + 1
            covered = list(itertools.islice(events, 0, start + applied_from))
            replay = _Replay(self, covered, tracker.init_copy(), [])
            new = new[applied_from:]
        extend(self, replay, new, omit_unset_slots)
        replays[key] = replay
        while len(replays) > RECENT_CONVERSATIONS:
            replays.popitem(last=False)
        final = self._clean_state(
            self.get_active_state(replay.tracker, omit_unset_slots=omit_unset_slots)
        )
        # Copies: a state holds the replaying tracker's own sub-dicts (its latest action).
        return [*(_copy(state) for state in replay.states), _copy(final)]

    replace(Domain, "states_for_tracker_history", original, states_for_tracker_history)
    return True
