"""The console's client for Rasa's HTTP API (``rasa run --enable-api --auth-token ...``).

Agent replies and the hand-back are *external intents* triggered on the citizen's conversation
with an explicit ``output_channel``: the channel recorded on the ticket, checked against the
conversation id (askagency/channels.py), never ``latest`` (the channel of the last message,
which a REST client could name). Rasa runs the matching rule's action, which utters the message
through that channel (a platform's send API; socket.io pushes it to the citizen's room and the
tracker keeps it for REST clients and the widget's history; see docs/handoff.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from askagency.bot_messages import INTENT_AGENT_MESSAGE, INTENT_HANDOFF_CLOSED
from askagency.conversation_ids import RULE, is_addressable

AGENT_MESSAGE_INTENT = INTENT_AGENT_MESSAGE
HANDOFF_CLOSED_INTENT = INTENT_HANDOFF_CLOSED


class RasaError(Exception):
    """Rasa did not accept the request. ``permanent``: retrying the same request cannot
    succeed without an operator fixing something (bad token, intent missing in the model)."""

    def __init__(self, message: str, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.permanent = permanent


def conversation_path(conversation_id: str) -> str:
    """The URL path segment that reaches ``conversation_id`` on Rasa's HTTP API.

    Raises a permanent :class:`RasaError` for an id no URL can reach, instead of quoting it and
    silently creating a different, empty conversation in the tracker store.
    """
    if not is_addressable(conversation_id):
        raise RasaError(
            f"conversation id {conversation_id[:80]!r} cannot be addressed through Rasa's HTTP "
            f"API ({RULE})",
            permanent=True,
        )
    return conversation_id


class RasaClient:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.token = token

    def _params(self, **extra: str) -> dict[str, str]:
        params = dict(extra)
        if self.token:
            params["token"] = self.token
        return params

    async def trigger_intent(
        self,
        conversation_id: str,
        intent: str,
        entities: Mapping[str, Any],
        output_channel: str,
    ) -> dict[str, Any]:
        """Runs ``intent`` on the conversation and sends what the bot says through
        ``output_channel`` (a registered input channel's name, from
        :func:`askagency.channels.delivery_channel`); returns Rasa's body (``tracker`` and, for
        channels without push, ``messages``)."""
        if not output_channel or output_channel == "latest":
            raise RasaError("an explicit output channel is required", permanent=True)
        url = f"{self.base_url}/conversations/{conversation_path(conversation_id)}/trigger_intent"
        body = {"name": intent, "entities": dict(entities)}
        params = self._params(output_channel=output_channel, include_events="AFTER_RESTART")
        return await self._request("POST", url, params, body)

    async def tracker(self, conversation_id: str) -> dict[str, Any]:
        url = f"{self.base_url}/conversations/{conversation_path(conversation_id)}/tracker"
        return await self._request("GET", url, self._params(include_events="ALL"), None)

    async def _request(
        self, method: str, url: str, params: dict[str, str], body: Any
    ) -> dict[str, Any]:
        try:
            async with self.http.request(method, url, params=params, json=body) as resp:
                text = await resp.text()
                if resp.status in (401, 403):
                    raise RasaError(
                        f"Rasa refused the token (HTTP {resp.status}); check rasa_token",
                        resp.status,
                        permanent=True,
                    )
                if resp.status == 404:
                    raise RasaError(
                        f"Rasa answered 404: {text[:200]} (is the model trained with the "
                        "handoff intents?)",
                        404,
                        permanent=True,
                    )
                if resp.status >= 400:
                    raise RasaError(f"Rasa answered HTTP {resp.status}: {text[:200]}", resp.status)
                try:
                    data = await resp.json(content_type=None)
                except ValueError as exc:
                    raise RasaError("Rasa sent a body that is not JSON", resp.status) from exc
                return data if isinstance(data, dict) else {}
        except aiohttp.ClientError as exc:
            raise RasaError(f"Rasa is not reachable: {type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise RasaError("Rasa did not answer in time") from exc


def bot_event_with(tracker: Mapping[str, Any], message_id: int) -> dict[str, Any] | None:
    """The bot event that carries our ``custom.message_id`` (proof of delivery), or None."""
    for event in reversed(tracker.get("events") or []):
        if not isinstance(event, dict) or event.get("event") != "bot":
            continue
        data = event.get("data") or {}
        custom = data.get("custom") if isinstance(data, dict) else None
        if isinstance(custom, dict) and str(custom.get("message_id")) == str(message_id):
            return event
    return None
