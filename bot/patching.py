"""Replacing a Rasa method with a faster equivalent, once (bot/rasa_speedups.py,
bot/dialogue_states.py)."""

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


def replace(owner: type, name: str, original: Callable[..., Any], new: Callable[..., Any]) -> None:
    """Installs ``new`` as ``owner.name``, remembering Rasa's ``original``."""
    setattr(new, ORIGINAL_ATTRIBUTE, original)
    setattr(owner, name, new)
