"""Rasa 3.6 hot-path fixes found by profiling a loaded Rasa server (docs/scale.md).

py-spy on the Rasa server under REST load showed 18% of its busy time in
``RemoteAction._validate_action_result``: ``jsonschema.validate`` first checks the *schema*
against the JSON-Schema meta-schema on every call, for every action server response, although
the schema (Rasa's constant ``EVENTS_SCHEMA``) never changes. Here the validator is built and
its schema checked once; each response is still validated in full, and an invalid response
raises the same ``ValidationError`` with the same message as before.

py-spy on Rasa during one 200-turn conversation (2026-12-05): 23% of its busy time in
``rasa.shared.utils.common.all_subclasses``. Every stored event that Rasa loads back (the whole
session, on every turn) is turned into its class by ``Event.resolve_by_type``, which walks the
whole ``Event`` class tree for each one. Here the name-to-class map is built once and rebuilt
only when a name is not found (a subclass imported later); the first match in the same order
wins, as before, and unknown names behave exactly as before.

Installed from ``bot/__init__.py`` when Rasa is importable, i.e. inside every Rasa process that
loads our channels or NLU component; a Rasa version without the patched method is left alone.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

_installed = False


def _cached_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


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


def install() -> bool:
    """Patches ``RemoteAction._validate_action_result`` and ``Event.resolve_by_type``; True
    when the patches are active."""
    global _installed
    if _installed:
        return True
    install_event_class_cache()
    try:
        from jsonschema.exceptions import best_match
        from rasa.core.actions.action import RemoteAction
        from rasa.shared.constants import DOCS_BASE_URL
    except ImportError:
        return False
    if not hasattr(RemoteAction, "_validate_action_result"):
        logger.warning("Rasa has no RemoteAction._validate_action_result: speed-up not installed")
        return False
    validator = _cached_validator()

    def _validate_action_result(self: Any, result: dict[str, Any]) -> bool:
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

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    _installed = True
    return True
