"""A scripted stand-in for Rasa's socket.io channel and tracker API, for fast widget tests.

Runs under ``.venv-rasa`` (it has python-socketio and aiohttp). It speaks the same protocol as
``bot/channels/socketio.py`` (``session_request {session_id?, token?}`` -> ``session_confirm
{session_id, token}``, signed with the same secret the console checks; ``user_uttered`` ->
one ``bot_uttered`` per message with ``custom`` kept whole) and serves
``GET /conversations/{id}/tracker?token=...`` from the events it recorded, so the console's
history endpoint can be exercised too. It also lets a test play the agent:
``POST /test/agent/{session_id}`` with ``{"text", "agent", "after_hours"?, "expected_reply_at"?,
"image"?, "attachment"?}``; ``GET /test/sockets/{session_id}`` says how many sockets are joined.

It exists because agent replies and after-hours notices need a staffed handoff that the real
stack cannot produce on demand; everything the real stack can produce is tested against it.

Usage: ``python fake_rasa.py PORT TOKEN``
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from askagency.bot_messages import MessageType  # noqa: E402
from askagency.conversation_token import (  # noqa: E402
    ConversationSigner,
    secret_from_environment,
)

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 5205
TOKEN = sys.argv[2] if len(sys.argv) > 2 else "fake-token"
XSS = "<img src=x onerror=window.__xss=1>"

sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
app = web.Application()
sio.attach(app, socketio_path="/socket.io")
EVENTS: dict[str, list[dict[str, Any]]] = {}
RECEIVED: list[dict[str, Any]] = []
SIGNER = ConversationSigner(secret_from_environment(Path(os.environ["ASKAGENCY_DATA_DIR"])))
BOUND: dict[str, str] = {}  # socket id -> its conversation
FILE_KEYS = ("image", "attachment")  # bot message keys of an agent's photo or file


def reply_for(text: str, language: str) -> list[dict[str, Any]]:
    """The scripted bot: enough variety to render every message kind the widget supports."""
    lowered = text.lower()
    if text.startswith("/feedback_"):
        return [
            {"text": "Thank you for the feedback!", "custom": {"type": MessageType.FEEDBACK_ACK}}
        ]
    if text == "/ask_human":
        return [
            {
                "text": "OK, I'll connect you with a person.",
                "custom": {
                    "type": MessageType.HANDOFF,
                    "reason": "requested",
                    "after_hours": True,
                    "expected_reply_at": "2030-01-07T09:00:00Z",
                },
            }
        ]
    if text.startswith("/choose_faq"):
        return [answer("liquids-medication", "Medications in liquid form are allowed.")]
    if "laptop" in lowered:
        reply = "Sí, puede llevar su portátil." if language == "es" else "Yes, laptops are allowed."
        return [answer("laptop-carry-on", reply)]
    if "liquid" in lowered:
        return [
            {
                "text": "Did you mean one of these?",
                "buttons": [
                    {"title": "Liquids in carry-on", "payload": '/choose_faq{"faq_id":"liquids"}'},
                    {
                        "title": "Liquid medication",
                        "payload": '/choose_faq{"faq_id":"liquids-medication"}',
                    },
                ],
                "custom": {
                    "type": MessageType.CLARIFY,
                    "options": ["liquids", "liquids-medication"],
                },
            }
        ]
    if "xss" in lowered:
        return [
            {
                "text": f"Answer with markup {XSS} and a link https://example.gov/ok.",
                "custom": {
                    "type": MessageType.FAQ_ANSWER,
                    "faq_id": "xss",
                    "source_url": "javascript:window.__xss=2",
                },
            }
        ]
    return [{"text": "Sorry, I didn't get that.", "custom": {"type": MessageType.FALLBACK}}]


def answer(faq_id: str, text: str) -> dict[str, Any]:
    """Like the real action: the text ends with a "Source:" line for text-only channels."""
    url = f"https://www.example.gov/travel/{faq_id}"
    return {
        "text": f"{text}\nSource: {url}",
        "custom": {
            "type": MessageType.FAQ_ANSWER,
            "faq_id": faq_id,
            "score": 0.9,
            "source_url": url,
        },
    }


def record_bot(session_id: str, message: dict[str, Any]) -> None:
    data = {"buttons": message.get("buttons"), "custom": message.get("custom")}
    for key in FILE_KEYS:
        if message.get(key):
            data[key] = message[key]
    EVENTS.setdefault(session_id, []).append(
        {"event": "bot", "timestamp": time.time(), "text": message.get("text"), "data": data}
    )


@sio.on("session_request")
async def session_request(sid: str, data: Any) -> None:
    data = data if isinstance(data, dict) else {}
    session_id, token = data.get("session_id"), data.get("token")
    if not SIGNER.verify(session_id, token):
        session_id, token = SIGNER.issue()
    BOUND[sid] = session_id
    await sio.enter_room(sid, session_id)
    await sio.emit("session_confirm", {"session_id": session_id, "token": token}, room=sid)


@sio.on("disconnect")
async def disconnect(sid: str, *_reason: Any) -> None:
    BOUND.pop(sid, None)


@sio.on("user_uttered")
async def user_uttered(sid: str, data: dict[str, Any]) -> None:
    session_id = BOUND.get(sid)
    if session_id is None or data.get("session_id") != session_id:
        return  # like the real channel: only the socket's own, confirmed conversation
    RECEIVED.append(data)
    metadata = data.get("metadata") or {}
    EVENTS.setdefault(session_id, []).append(
        {"event": "user", "timestamp": time.time(), "text": data["message"], "metadata": metadata}
    )
    for message in reply_for(data["message"], metadata.get("language", "en")):
        record_bot(session_id, message)
        await sio.emit("bot_uttered", message, room=session_id)


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def tracker(request: web.Request) -> web.Response:
    if request.query.get("token") != TOKEN:
        return web.json_response({"message": "unauthorized"}, status=401)
    events = EVENTS.get(request.match_info["sid"], [])
    return web.json_response({"sender_id": request.match_info["sid"], "events": events})


async def agent(request: web.Request) -> web.Response:
    body = await request.json()
    session_id = request.match_info["sid"]
    custom = {"type": MessageType.AGENT_MESSAGE, "agent": body.get("agent", "Agent")}
    for key in ("after_hours", "expected_reply_at"):
        if key in body:
            custom[key] = body[key]
    message = {"text": body["text"], "custom": custom}
    for key in FILE_KEYS:  # an agent's photo or PDF: signed links, as the real bot utters them
        if key in body:
            message[key] = body[key]
    record_bot(session_id, message)
    await sio.emit("bot_uttered", message, room=session_id)
    return web.json_response({"ok": True})


async def received(_request: web.Request) -> web.Response:
    return web.json_response(RECEIVED)


async def sockets(request: web.Request) -> web.Response:
    """How many sockets are joined to a conversation: a test that closes a tab waits for 0
    before playing the agent, so the message cannot still reach the closing tab."""
    session_id = request.match_info["sid"]
    return web.json_response({"sockets": sum(bound == session_id for bound in BOUND.values())})


app.router.add_get("/", health)
app.router.add_get("/conversations/{sid}/tracker", tracker)
app.router.add_post("/test/agent/{sid}", agent)
app.router.add_get("/test/received", received)
app.router.add_get("/test/sockets/{sid}", sockets)

if __name__ == "__main__":
    # On SIGTERM aiohttp waits for open connections to end (60 s by default), and a browser's
    # socket stays open: every teardown waited for the test's 10 s kill timeout.
    web.run_app(app, host="127.0.0.1", port=PORT, print=None, shutdown_timeout=0.5)
