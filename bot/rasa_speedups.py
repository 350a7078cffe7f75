"""Rasa 3.6 hot-path fixes found by profiling a loaded Rasa server (docs/scale.md).

py-spy on the Rasa server under REST load showed 18% of its busy time in
``RemoteAction._validate_action_result``: ``jsonschema.validate`` first checks the *schema*
against the JSON-Schema meta-schema on every call, for every action server response, although
the schema (Rasa's constant ``EVENTS_SCHEMA``) never changes. Here the validator is built and
its schema checked once; each response is still validated in full, and an invalid response
raises the same ``ValidationError`` with the same message as before.

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


def install() -> bool:
    """Patches ``RemoteAction._validate_action_result``; True when the patch is active."""
    global _installed
    if _installed:
        return True
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
