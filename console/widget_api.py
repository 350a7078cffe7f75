"""The widget's endpoints: its history (``GET /api/widget/history?session_id=...``) and the
citizen's photos and files (``POST /api/widget/attachments?session_id=...``).

A citizen who reloads the page, or comes back after closing the tab, must see the same
conversation, including agent replies that arrived meanwhile. Rasa's tracker store already holds
every message, so the console reads it through Rasa's HTTP API instead of keeping a second copy,
and hands the widget only what it displays (no slots, intents or scores of user messages).

The conversation id is issued by Rasa's socket.io channel together with a signed token
(askagency/conversation_token.py); the widget sends the token in the ``X-Conversation-Token``
header and this endpoint recomputes it with the same server secret. Without the right token
there is no history: knowing (or guessing) an id is not enough. Ids of the messaging platforms
are refused whatever the token.

A photo or PDF is uploaded before the message that carries it: the body is the file itself (raw
bytes, the browser's ``Content-Type``, which proves nothing: attachments.sanitize reads the
content), its name percent-encoded in ``X-Attachment-Name``. The answer ``{"id", "kind",
"name"}`` gives the id the widget then sends with its socket.io message (``"attachments"``). Same
token check as the history; a declared ``Content-Length`` over ``attachment_max_bytes`` is
refused before a byte is read, and uploads are limited per client address and per conversation.
Refusals are ``{"error": <attachments.sanitize.RejectCode>, "message"}`` so the widget can tell
the citizen why in their language.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
from aiohttp import web

from askagency import bot_messages as msg
from askagency.bot_messages import MessageType, is_type
from askagency.config import Settings
from askagency.conversation_ids import is_addressable, is_platform_id
from askagency.conversation_token import ConversationSigner, load_secret
from askagency.rasa_events import is_external_event
from attachments import store
from attachments.sanitize import Limits, RejectCode, Rejected, sanitize
from console.keys import SETTINGS_KEY
from console.login_limit import TRUSTED_KEY, LoginLimiter, client_address

logger = logging.getLogger(__name__)

HISTORY_PATH = "/api/widget/history"
ATTACHMENTS_PATH = "/api/widget/attachments"
TOKEN_HEADER = "X-Conversation-Token"
NAME_HEADER = "X-Attachment-Name"
# The channel the widget's messages arrive on (bot/channels/socketio.py), recorded per file.
WIDGET_CHANNEL = "socketio"
# Uploads per client address and per conversation: a burst (a few photos at once), then a
# steady rate; far above a citizen showing an item, far below filling the database.
UPLOAD_BURST = 10
UPLOADS_PER_MINUTE = 10.0
MAX_NAME_CHARS = 1000  # of the decoded header; attachments.store shortens the display name
_READ_CHUNK = 64 * 1024
_SHARE_TEXT = f"/{msg.INTENT_SHARE_ATTACHMENT}"
MAX_MESSAGES = 500
RASA_TIMEOUT_S = 5.0
# Bot-message keys the widget understands; anything else in the tracker stays server-side.
_BOT_DATA_KEYS = ("image", "attachment")

HTTP_KEY = web.AppKey("widget_http", aiohttp.ClientSession)
SIGNER_KEY = web.AppKey("widget_signer", ConversationSigner)
UPLOAD_LIMITER_KEY = web.AppKey("widget_upload_limiter", LoginLimiter)


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


def _shared_files(metadata: dict[str, Any], timestamp: Any) -> dict[str, Any]:
    """A citizen's file message as history shows it: the caption and how many files."""
    caption = metadata.get(msg.METADATA_CAPTION)
    ids = metadata.get(msg.METADATA_ATTACHMENTS)
    count = len(ids) if isinstance(ids, list) else 0
    return {
        "role": "citizen",
        "text": caption if isinstance(caption, str) else "",
        "attachments": max(count, 1),
        "timestamp": timestamp,
    }


def messages_from_tracker(tracker: dict[str, Any]) -> list[dict[str, Any]]:
    """The visible conversation in a Rasa tracker, oldest first.

    Citizen messages typed as button payloads are given the clicked button's title; the raw
    payload stays in ``payload`` so the widget can hide control messages such as feedback.
    A photo or file the citizen sent (``/share_attachment``) becomes its caption with
    ``attachments``, the number of files, for the widget's placeholder: the files themselves are
    not served to the widget. Bot messages whose ``custom.type`` is ``agent_message`` get the
    role ``agent``.
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
            if text == _SHARE_TEXT:
                messages.append(_shared_files(metadata, timestamp))
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
            files = any(data.get(key) for key in _BOT_DATA_KEYS)
            if not text and not buttons and not custom and not files:
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


# --- photos and files ------------------------------------------------------------------------
# HTTP status of each refusal: too big, not a type we take, or a file we could not use.
_REJECT_STATUS = {RejectCode.TOO_LARGE: 413, RejectCode.UNSUPPORTED: 415}
_REJECT_MESSAGES = {
    RejectCode.EMPTY: "The file is empty.",
    RejectCode.TOO_LARGE: "The file is too large.",
    RejectCode.UNSUPPORTED: "Only photos (JPEG, PNG, WebP, HEIC) and PDF files can be sent.",
    RejectCode.DAMAGED: "The file could not be read; it may be damaged.",
    RejectCode.TOO_MANY_PIXELS: "The image is too large (too many pixels).",
}


def _upload_cors(request: web.Request) -> dict[str, str]:
    """CORS for uploads: only the pages allowed to embed the widget (``widget_origins``, else
    the console's own, as Rasa's socket.io allows) may send a file from a browser."""
    origin = request.headers.get("Origin", "").rstrip("/")
    if origin and origin in request.app[SETTINGS_KEY].cors_origins():
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


def _upload_json(request: web.Request, body: dict[str, Any], status: int) -> web.Response:
    return web.json_response(
        body, status=status, headers={"Cache-Control": "no-store", **_upload_cors(request)}
    )


def _refusal(request: web.Request, code: RejectCode) -> web.Response:
    body = {"error": code.value, "message": _REJECT_MESSAGES[code]}
    return _upload_json(request, body, _REJECT_STATUS.get(code, 422))


async def widget_attachments_preflight(request: web.Request) -> web.Response:
    """CORS preflight of an upload: POST with the token, the file's type and its name."""
    return web.Response(
        status=204,
        headers={
            **_upload_cors(request),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": f"{TOKEN_HEADER}, {NAME_HEADER}, Content-Type",
            "Access-Control-Max-Age": "600",
        },
    )


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is longer than ``limit`` (a chunked upload has no
    Content-Length to refuse it by)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _file_name(request: web.Request) -> str:
    """The name the browser gave the file (percent-encoded UTF-8: headers are Latin-1)."""
    raw = request.headers.get(NAME_HEADER, "")[: MAX_NAME_CHARS * 3]
    return unquote(raw, errors="replace")[:MAX_NAME_CHARS]


def _upload_wait(request: web.Request, session_id: str) -> float:
    """Seconds until this client and this conversation may upload again (0: now)."""
    limiter = request.app[UPLOAD_LIMITER_KEY]
    address = client_address(request, request.app[TRUSTED_KEY])
    return max(limiter.take(f"address:{address}"), limiter.take(f"conversation:{session_id}"))


def _save(settings: Settings, data: bytes, session_id: str, name: str) -> dict[str, str]:
    """Sanitize and store one citizen file (blocking: CPU and database; run in a thread)."""
    clean = sanitize(data, Limits.from_settings(settings))
    return store.save_citizen_file(
        clean,
        conversation_id=session_id,
        channel=WIDGET_CHANNEL,
        name=name,
        database_url=settings.database_url,
    )


async def widget_attachments(request: web.Request) -> web.Response:
    """Store a photo or PDF the citizen is about to send; answers its id for the message."""
    session_id = request.query.get("session_id", "").strip()
    if not valid_session_id(session_id):
        body = {
            "error": "bad_session",
            "message": "session_id must be the id the assistant issued.",
        }
        return _upload_json(request, body, 400)
    if not request.app[SIGNER_KEY].verify(session_id, request.headers.get(TOKEN_HEADER)):
        message = f"the {TOKEN_HEADER} header is missing or not this conversation's token."
        return _upload_json(request, {"error": "forbidden", "message": message}, 403)
    wait = _upload_wait(request, session_id)
    if wait > 0:
        body = {"error": "rate_limited", "message": "Too many files; please wait a moment."}
        response = _upload_json(request, body, 429)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    settings: Settings = request.app[SETTINGS_KEY]
    limit = settings.attachment_max_bytes
    if request.content_length is not None and request.content_length > limit:
        return _refusal(request, RejectCode.TOO_LARGE)
    data = await _read_at_most(request, limit)
    if data is None:
        return _refusal(request, RejectCode.TOO_LARGE)
    try:
        saved = await asyncio.to_thread(_save, settings, data, session_id, _file_name(request))
    except Rejected as exc:
        logger.info("widget upload for %s refused: %s", session_id, exc.code)
        return _refusal(request, exc.code)
    return _upload_json(request, saved, 201)


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
    app[UPLOAD_LIMITER_KEY] = LoginLimiter(UPLOAD_BURST, UPLOADS_PER_MINUTE)
    app.router.add_post(ATTACHMENTS_PATH, widget_attachments)
    app.router.add_route("OPTIONS", ATTACHMENTS_PATH, widget_attachments_preflight)
