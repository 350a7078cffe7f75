"""The widget's history endpoint: ``GET /api/widget/history?session_id=...``.

A citizen who reloads the page, or comes back after closing the tab, must see the same
conversation, including agent replies that arrived meanwhile. Rasa's tracker store already holds
every message, so the console reads it through Rasa's HTTP API instead of keeping a second copy,
and hands the widget only what it displays (no slots, intents or scores of user messages).

The conversation id is issued by Rasa's socket.io channel together with a signed token
(askagency/conversation_token.py); the widget sends the token in the ``X-Conversation-Token``
header and this endpoint recomputes it with the same server secret. Without the right token
there is no history: knowing (or guessing) an id is not enough. Ids of the messaging platforms
are refused whatever the token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from askagency.bot_messages import MessageType, is_type
from askagency.config import Settings
from askagency.conversation_ids import is_addressable, is_platform_id
from askagency.conversation_token import ConversationSigner, load_secret
from askagency.rasa_events import is_external_event
from console.keys import SETTINGS_KEY

logger = logging.getLogger(__name__)

HISTORY_PATH = "/api/widget/history"
TOKEN_HEADER = "X-Conversation-Token"
MAX_MESSAGES = 500
RASA_TIMEOUT_S = 5.0
# Bot-message keys the widget understands; anything else in the tracker stays server-side.
_BOT_DATA_KEYS = ("image", "attachment")

HTTP_KEY = web.AppKey("widget_http", aiohttp.ClientSession)
SIGNER_KEY = web.AppKey("widget_signer", ConversationSigner)


class RasaUnavailable(Exception):
    """Rasa could not be reached or answered with an error; the message is safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def valid_session_id(value: str | None) -> bool:
    """An id Rasa can address that is not a messaging platform's."""
    return bool(value) and is_addressable(value) and not is_platform_id(value)


def _buttons(raw: Any) -> list[dict[str, str]]:
    buttons = []
    for button in raw or ():
        if isinstance(button, dict) and button.get("payload") is not None:
            payload = str(button["payload"])
            title = button.get("title")
            buttons.append({"title": payload if title is None else str(title), "payload": payload})
    return buttons


def _button_title(payload: str, shown_buttons: Iterable[dict[str, str]]) -> str | None:
    """The label the citizen clicked: a payload like ``/choose_faq{...}`` is not for reading."""
    for button in shown_buttons:
        if button["payload"] == payload:
            return button["title"]
    return None


def messages_from_tracker(tracker: dict[str, Any]) -> list[dict[str, Any]]:
    """The visible conversation in a Rasa tracker, oldest first.

    Citizen messages typed as button payloads are given the clicked button's title; the raw
    payload stays in ``payload`` so the widget can hide control messages such as feedback.
    Bot messages whose ``custom.type`` is ``agent_message`` get the role ``agent``.
    """
    messages: list[dict[str, Any]] = []
    last_buttons: list[dict[str, str]] = []
    for event in tracker.get("events") or ():
        if not isinstance(event, dict):
            continue
        kind = event.get("event")
        timestamp = event.get("timestamp")
        if kind == "user":
            text = event.get("text")
            metadata = event.get("metadata") or {}
            if not isinstance(metadata, dict):
                metadata = {}
            if not isinstance(text, str) or not text or is_external_event(text, metadata):
                continue
            message: dict[str, Any] = {"role": "citizen", "text": text, "timestamp": timestamp}
            if text.startswith("/"):
                message["payload"] = text
                title = _button_title(text, last_buttons)
                if title is not None:
                    message["text"] = title
            if metadata.get("faq_id") is not None:
                message["faq_id"] = metadata["faq_id"]
            messages.append(message)
        elif kind == "bot":
            data = event.get("data") or {}
            if not isinstance(data, dict):
                data = {}
            text = event.get("text")
            buttons = _buttons(data.get("buttons") or data.get("quick_replies"))
            custom = data.get("custom") if isinstance(data.get("custom"), dict) else None
            if not text and not buttons and not custom:
                continue
            role = "agent" if is_type(custom, MessageType.AGENT_MESSAGE) else "bot"
            message = {"role": role, "text": text or "", "timestamp": timestamp}
            if buttons:
                message["buttons"] = buttons
                last_buttons = buttons
            if custom:
                message["custom"] = custom
            for key in _BOT_DATA_KEYS:
                if data.get(key):
                    message[key] = data[key]
            messages.append(message)
    return messages[-MAX_MESSAGES:]


async def fetch_tracker(
    http: aiohttp.ClientSession, settings: Settings, session_id: str
) -> dict[str, Any]:
    """GET Rasa's tracker; Rasa's ``--auth-token`` is checked on the ``token`` query parameter."""
    url = f"{settings.rasa_url.rstrip('/')}/conversations/{quote(session_id, safe='')}/tracker"
    params = {"token": settings.rasa_token} if settings.rasa_token else {}
    try:
        async with http.get(url, params=params) as resp:
            if resp.status in (401, 403):
                raise RasaUnavailable(
                    502, "The assistant's server refused the console's token (check rasa_token)."
                )
            if resp.status == 404:
                return {"events": []}
            if resp.status != 200:
                raise RasaUnavailable(
                    502, f"The assistant's server answered HTTP {resp.status}; try again later."
                )
            body = await resp.json(content_type=None)
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        logger.warning("widget history: Rasa at %s not reachable: %s", settings.rasa_url, exc)
        raise RasaUnavailable(
            503, "The assistant's server (Rasa) is not reachable right now; try again shortly."
        ) from exc
    except ValueError as exc:
        raise RasaUnavailable(502, "The assistant's server sent an unreadable answer.") from exc
    return body if isinstance(body, dict) else {"events": []}


_CORS = {"Access-Control-Allow-Origin": "*"}


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    # Any page embedding the widget may read its own conversation; no cookies are involved.
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store", **_CORS})


async def widget_history_preflight(_: web.Request) -> web.Response:
    """CORS preflight: the token travels in a header (not the URL, which proxies log)."""
    return web.Response(
        status=204,
        headers={
            **_CORS,
            "Access-Control-Allow-Methods": "GET",
            "Access-Control-Allow-Headers": TOKEN_HEADER,
            "Access-Control-Max-Age": "600",
        },
    )


async def widget_history(request: web.Request) -> web.Response:
    """The visible messages of one widget conversation, for the widget to redraw after a reload."""
    session_id = request.query.get("session_id", "").strip()
    if not valid_session_id(session_id):
        return _json({"error": "session_id must be the id the assistant issued."}, status=400)
    if not request.app[SIGNER_KEY].verify(session_id, request.headers.get(TOKEN_HEADER)):
        return _json(
            {"error": f"the {TOKEN_HEADER} header is missing or not this conversation's token."},
            status=403,
        )
    settings = request.app[SETTINGS_KEY]
    try:
        tracker = await fetch_tracker(request.app[HTTP_KEY], settings, session_id)
    except RasaUnavailable as exc:
        return _json({"error": exc.message}, status=exc.status)
    messages = messages_from_tracker(tracker)
    if not messages:
        return _json({"error": "No conversation for this session_id."}, status=404)
    return _json({"session_id": session_id, "messages": messages})


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=RASA_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[HTTP_KEY] = session
        yield


def setup(app: web.Application) -> None:
    """Wire the widget API into the console app (called by ``console.app.create_app``)."""
    settings: Settings = app[SETTINGS_KEY]
    app[SIGNER_KEY] = ConversationSigner(
        load_secret(settings.data_dir, settings.conversation_secret)
    )
    app.cleanup_ctx.append(_http_client)
    app.router.add_get(HISTORY_PATH, widget_history)
    app.router.add_route("OPTIONS", HISTORY_PATH, widget_history_preflight)
