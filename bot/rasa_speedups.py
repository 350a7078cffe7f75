"""Rasa 3.6 hot-path fixes found by profiling a loaded Rasa server (docs/scale.md).

py-spy on the Rasa server under REST load showed 18% of its busy time in
``RemoteAction._validate_action_result``: ``jsonschema.validate`` first checks the *schema*
against the JSON-Schema meta-schema on every call, for every action server response, although
the schema (Rasa's constant ``EVENTS_SCHEMA``) never changes. Here the validator is built and
its schema checked once, and an invalid response raises the same ``ValidationError`` with the
same message as before. A valid response is recognised without checking each event against all
23 event schemas of the schema's ``oneOf`` (``event_dispatch_check``: 5% of Rasa's busy time on
FAQ turns in py-spy, 2026-12-06).

py-spy on Rasa during one 200-turn conversation (2026-12-05): 23% of its busy time in
``rasa.shared.utils.common.all_subclasses``. Every stored event that Rasa loads back (the whole
session, on every turn) is turned into its class by ``Event.resolve_by_type``, which walks the
whole ``Event`` class tree for each one. Here the name-to-class map is built once and rebuilt
only when a name is not found (a subclass imported later); the first match in the same order
wins, as before, and unknown names behave exactly as before.

A long conversation (issue 19): Rasa sends the action server the whole session with every
custom-action call, so the 200th turn of a conversation sent about 1,000 events, which Rasa
turned into dicts and JSON and the action server parsed again, for actions that read only the
last few exchanges (the previous question and answer, the last three questions for the rephrase
check, the last bot message; ``actions/tracker_info.py``, ``handoff/triggers.py``). Here the call
carries the events from the ``ASKAGENCY_ACTION_TRACKER_TURNS``-th last user message on (default
``DEFAULT_ACTION_TRACKER_TURNS``; 0 sends the whole session, as stock Rasa does); slots, the
latest message and the other tracker fields are sent as before, so nothing the actions read from
them changes.

Loading the trained model without Rasa's one-example training step is bot/model_loading.py
(installed from here too).

Installed from ``bot/__init__.py`` when Rasa is importable, i.e. inside every Rasa process that
loads our channels or NLU component; a Rasa version without the patched method is left alone.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from askagency.numbers import ascii_int
from bot import dialogue_states, model_loading
from bot.patching import rasa_original, replace

logger = logging.getLogger(__name__)

ACTION_TRACKER_TURNS_ENV = "ASKAGENCY_ACTION_TRACKER_TURNS"
# 20 citizen messages: the actions look back at most 4 (the rephrase window of 3, plus the
# current one), and the agent-message redelivery check only as far as a retry's few seconds.
DEFAULT_ACTION_TRACKER_TURNS = 20

_installed = False


def _cached_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def event_dispatch_check(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    """A yes/no check equal to ``is_valid`` of Rasa's action-response schema, faster.

    The schema says each event is ``oneOf`` 23 event schemas, so every event of a response was
    checked against all 23. Each of them requires its own ``event`` name (a ``const``), so an
    event can only ever match the one its name picks: checking that one, plus the rest of the
    response with the events left out, accepts exactly what the whole schema accepts. None when
    the schema is not of that shape (another Rasa version): the caller then validates in full.
    """
    import copy

    from jsonschema.validators import validator_for

    try:
        items = schema["properties"]["events"]["items"]
        branches = items["oneOf"]
        names = [branch["properties"]["event"]["const"] for branch in branches]
    except (KeyError, TypeError):
        return None
    if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        return None
    cls = validator_for(schema)
    common = {key: value for key, value in items.items() if key != "oneOf"}
    per_event = {
        name: cls({"allOf": [common, branch]}) for name, branch in zip(names, branches, strict=True)
    }
    rest = copy.deepcopy(schema)
    rest["properties"]["events"]["items"] = {}
    rest_validator = cls(rest)

    def is_valid(result: Any) -> bool:
        if not rest_validator.is_valid(result):
            return False
        events = result.get("events", []) if isinstance(result, dict) else []
        for event in events:
            name = event.get("event") if isinstance(event, dict) else None
            check = per_event.get(name) if isinstance(name, str) else None
            if check is None or not check.is_valid(event):
                return False
        return True

    return is_valid


def _event_class_cache() -> Any:
    """``Event.resolve_by_type`` with a name -> class map (see the module docstring)."""
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event

    classes: dict[str, Any] = {}

    def rebuild() -> None:
        classes.clear()
        for cls in rasa.shared.utils.common.all_subclasses(Event):
            classes.setdefault(cls.type_name, cls)

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        found = classes.get(type_name)
        if found is None:
            rebuild()
            found = classes.get(type_name)
        if found is not None:
            return found
        if type_name == "topic":
            return None  # Rasa's own backwards compatibility for old TopicSet events
        if default is not None:
            return default
        raise ValueError(f"Unknown event name '{type_name}'.")

    return staticmethod(resolve_by_type)


def install_event_class_cache() -> bool:
    """Patches ``Event.resolve_by_type``; True when the patch is active."""
    try:
        from rasa.shared.core.events import Event
    except ImportError:
        return False
    if getattr(Event.resolve_by_type, "_askagency_cached", False):
        return True
    cached = _event_class_cache()
    cached.__func__._askagency_cached = True
    Event.resolve_by_type = cached  # type: ignore[method-assign]
    return True


def action_tracker_turns(environ: Mapping[str, str] | None = None) -> int:
    """How many of the latest user messages (with everything after each) an action call
    carries; 0 = the whole session. Anything but a whole number >= 0 is refused by name."""
    raw = (os.environ if environ is None else environ).get(ACTION_TRACKER_TURNS_ENV, "").strip()
    if not raw:
        return DEFAULT_ACTION_TRACKER_TURNS
    turns = ascii_int(raw)
    if turns is None:
        raise ValueError(f"{ACTION_TRACKER_TURNS_ENV} must be a whole number >= 0, got {raw!r}")
    return turns


def latest_turns(events: Sequence[Any], turns: int, is_user: Callable[[Any], bool]) -> list[Any]:
    """``events`` from the ``turns``-th last one for which ``is_user`` holds; all of them when
    there are fewer such events or ``turns`` is 0."""
    if turns > 0:
        seen = 0
        for index in range(len(events) - 1, -1, -1):
            if is_user(events[index]):
                seen += 1
                if seen == turns:
                    return list(itertools.islice(events, index, None))  # may be a deque
    return list(events)


class _StateOnly:
    """What ``RemoteAction._action_call_format`` reads of a tracker, with a given state."""

    def __init__(self, sender_id: str, state: dict[str, Any]) -> None:
        self.sender_id = sender_id
        self._state = state

    def current_state(self, event_verbosity: Any = None) -> dict[str, Any]:
        return self._state


def install_action_tracker_window(turns: int | None = None) -> bool:
    """Patches ``RemoteAction._action_call_format`` to send the events of the latest ``turns``
    user messages (default: the environment's; see the module docstring); True when active."""
    try:
        from rasa.core.actions.action import RemoteAction
        from rasa.shared.core.events import UserUttered
        from rasa.shared.core.trackers import EventVerbosity
    except ImportError:
        return False
    original = rasa_original(RemoteAction, "_action_call_format", "event window")
    if original is None:
        return False
    window = action_tracker_turns() if turns is None else turns

    def _action_call_format(self: Any, tracker: Any, domain: Any) -> dict[str, Any]:
        if window <= 0:
            return original(self, tracker, domain)
        # Rasa's own method builds the request (and decides whether the domain goes along);
        # it reads only the tracker's sender id and state, and gets the state with the
        # window's events, so only those are turned into dicts.
        state = tracker.current_state(EventVerbosity.NONE)
        recent = latest_turns(tracker.events, window, lambda e: isinstance(e, UserUttered))
        state["events"] = [event.as_dict() for event in recent]
        return original(self, _StateOnly(tracker.sender_id, state), domain)

    replace(RemoteAction, "_action_call_format", original, _action_call_format)
    return True


def install() -> bool:
    """Patches ``RemoteAction._validate_action_result``, ``RemoteAction._action_call_format``,
    ``Event.resolve_by_type``, ``Domain.states_for_tracker_history`` (bot/dialogue_states.py)
    and ``RasaModel.load`` (bot/model_loading.py); True when the patches are active."""
    global _installed
    if _installed:
        return True
    install_event_class_cache()
    install_action_tracker_window()
    dialogue_states.install()
    model_loading.install()
    try:
        from jsonschema.exceptions import best_match
        from rasa.core.actions.action import RemoteAction
        from rasa.shared.constants import DOCS_BASE_URL
    except ImportError:
        return False
    original = rasa_original(RemoteAction, "_validate_action_result", "cached validation")
    if original is None:
        return False
    validator = _cached_validator()
    quick_check = event_dispatch_check(RemoteAction.action_response_format_spec())

    def _validate_action_result(self: Any, result: dict[str, Any]) -> bool:
        if quick_check is not None and quick_check(result):
            return True
        # Invalid (or a Rasa whose schema has another shape): the full validation's best error.
        error = best_match(validator.iter_errors(result))
        if error is not None:
            error.message += (
                ". Failed to validate Action server response from API, "
                "make sure your response from the Action endpoint is valid. "
                "For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
            raise error
        return True

    replace(RemoteAction, "_validate_action_result", original, _validate_action_result)
    _installed = True
    return True
