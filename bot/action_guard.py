"""A failed or slow action server becomes a polite reply instead of silence.

Rasa 3.6 logs an exception when a custom action cannot be run (connection refused, 5xx, timeout)
and continues with *no* events, so the citizen gets no answer at all, and a hung action server
holds the conversation for Rasa's fixed 5-minute request timeout. Rasa has no hook for this, so
:func:`install` wraps ``RemoteAction.run`` once per process (the REST channel module calls it,
and every AskAgency Rasa server loads that channel):

* the call gets a deadline (``ASKAGENCY_ACTION_TIMEOUT_S``, default 10 s);
* on failure the action returns one ``BotUttered`` with the "can't look that up right now" text,
  a "Talk to a person" button and ``custom = {"type": "fallback", "reason": "unavailable"}``.
  Being an event, the reply is stored in the tracker and reaches the event broker, so analytics
  counts the turn as a failure;
* form validation rejections (``ActionExecutionRejection``) are Rasa's normal control flow and
  pass through unchanged.

Nothing is cached about the failure: the next message calls the action server again, so answers
resume as soon as it is back, with no Rasa restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.shared.core.events import BotUttered, Event
from rasa.shared.exceptions import RasaException

from askagency.bot_messages import INTENT_ASK_HUMAN, FallbackReason, fallback

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
FALLBACK_CUSTOM = fallback(FallbackReason.UNAVAILABLE)

# Same texts as actions/messages.py "unavailable" / "talk_to_person" (kept here because Rasa's
# environment must not depend on the action server's package).
TEXTS = {
    "en": (
        "Sorry, I can't look that up right now. Please try again in a few minutes, "
        "or talk to a person.",
        "Talk to a person",
    ),
    "es": (
        "Lo siento, ahora no puedo consultar eso. Inténtelo de nuevo en unos minutos "
        "o hable con una persona.",
        "Hablar con una persona",
    ),
}

_FAILURES = (RasaException, aiohttp.ClientError, asyncio.TimeoutError, OSError)
_ORIGINAL_ATTR = "_askagency_original_run"


def action_timeout_s() -> float:
    """Deadline of one action call; invalid or non-positive values fall back to the default."""
    raw = os.environ.get("ASKAGENCY_ACTION_TIMEOUT_S", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        logger.warning("ASKAGENCY_ACTION_TIMEOUT_S=%r is not a number; using the default", raw)
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def unavailable_event(language: str | None) -> BotUttered:
    """The reply of a turn whose custom action could not run."""
    text, button = TEXTS.get((language or "en")[:2].lower(), TEXTS["en"])
    return BotUttered(
        text=text,
        data={
            "buttons": [{"title": button, "payload": "/" + INTENT_ASK_HUMAN}],
            "custom": dict(FALLBACK_CUSTOM),
        },
        metadata={"askagency_failure": "action_server_unavailable"},
    )


def _language(tracker: Any) -> str | None:
    try:
        value = tracker.get_slot("language")
    except Exception:  # noqa: BLE001 (a domain without the slot)
        return None
    return value if isinstance(value, str) else None


def guarded(
    run: Callable[..., Awaitable[list[Event]]],
) -> Callable[..., Awaitable[list[Event]]]:
    """``run`` with a deadline and a fallback reply instead of an exception."""

    async def guarded_run(
        self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any
    ) -> list[Event]:
        timeout = action_timeout_s()
        try:
            return await asyncio.wait_for(
                run(self, output_channel, nlg, tracker, domain), timeout=timeout
            )
        except ActionExecutionRejection:
            raise
        except asyncio.TimeoutError:  # noqa: UP041 (not the builtin on Python 3.10)
            logger.error(
                "custom action %r took longer than %.1f s (ASKAGENCY_ACTION_TIMEOUT_S); "
                "answering with the 'unavailable' fallback",
                self.name(),
                timeout,
            )
        except _FAILURES as exc:
            logger.error(
                "custom action %r failed (%s); answering with the 'unavailable' fallback",
                self.name(),
                exc,
            )
        return [unavailable_event(_language(tracker))]

    setattr(guarded_run, _ORIGINAL_ATTR, run)
    return guarded_run


def install() -> None:
    """Wrap ``RemoteAction.run`` once (idempotent: every channel module may call it)."""
    if hasattr(RemoteAction.run, _ORIGINAL_ATTR):
        return
    RemoteAction.run = guarded(RemoteAction.run)  # type: ignore[method-assign]
    logger.info(
        "action server failures answer with a fallback (timeout %.1f s)", action_timeout_s()
    )
