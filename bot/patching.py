"""Replacing a Rasa method with a faster equivalent, once (bot/rasa_speedups.py,
bot/dialogue_states.py, bot/model_loading.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

ORIGINAL_ATTRIBUTE = "_askagency_original"


def rasa_original(owner: type, name: str, what: str) -> Callable[..., Any] | None:
    """Rasa's own ``owner.name`` (also after our replacement, which keeps it), or None with a
    warning when this Rasa version has no such method: ``what`` is then not installed."""
    current = getattr(owner, name, None)
    if current is None:
        logger.warning("Rasa has no %s.%s: %s not installed", owner.__name__, name, what)
        return None
    return getattr(current, ORIGINAL_ATTRIBUTE, current)


def replace(owner: type, name: str, original: Callable[..., Any], new: Any) -> None:
    """Installs ``new`` as ``owner.name``, remembering Rasa's ``original``. ``new`` may be a
    ``classmethod``: the mark then goes on its function, which is what ``owner.name`` reads."""
    setattr(getattr(new, "__func__", new), ORIGINAL_ATTRIBUTE, original)
    setattr(owner, name, new)
