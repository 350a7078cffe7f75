"""bot/channels: one client message per bot message, over REST and a real socket.io connection.

Bot messages are built the way Rasa builds them for a custom action's reply
(``create_bot_utterance(...).message()``), then sent through the channels' output classes. The
end-to-end cases start the channels' blueprints on a real Sanic server and talk to it with
aiohttp and a python-socketio client.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from typing import Any

import aiohttp
import pytest
import socketio
from rasa.core.actions.action import create_bot_utterance
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from bot.channels.message import client_message
from bot.channels.rest import (
    RestInput,
    SingleMessageCollectingOutput,
    WebhookRequestError,
    parse_webhook_body,
)
from bot.channels.socketio import SocketIOInput, SocketIOOutput, join_room

CUSTOM = {"type": "clarify", "options": [{"faq_id": "a", "title": "A?", "score": 0.5}]}
BUTTONS = [{"title": "A?", "payload": '/choose_faq{"faq_id":"a"}'}]


def rasa_message(**draft: Any) -> dict[str, Any]:
    """The dict Rasa's processor hands to ``OutputChannel.send_response``."""
    return create_bot_utterance(dict(draft)).message()


def test_client_message_keeps_text_buttons_and_custom_together() -> None:
    message = rasa_message(
        text="Did you mean one of these?", buttons=BUTTONS, custom=CUSTOM, template="x"
    )

    assert client_message(message) == {
        "text": "Did you mean one of these?",
        "buttons": BUTTONS,
        "custom": CUSTOM,
    }


def test_client_message_maps_quick_replies_and_drops_empty_parts() -> None:
    message = {
        "text": "",
        "quick_replies": [{"title": "Yes", "payload": "/affirm", "content_type": "text"}, "bad"],
        "custom": None,
        "image": None,
        "timestamp": 1.0,
    }

    assert client_message(message) == {"buttons": [{"title": "Yes", "payload": "/affirm"}]}


def test_rest_collector_returns_one_object_per_bot_message() -> None:
    out = SingleMessageCollectingOutput()

    async def send() -> None:
        await out.send_response(
            "u1", rasa_message(text="Answer.\n\nSecond paragraph.", buttons=BUTTONS, custom=CUSTOM)
        )
        await out.send_response("u1", rasa_message(text="Hi", custom={"type": "greeting"}))

    asyncio.run(send())

    assert out.messages == [
        {
            "recipient_id": "u1",
            "text": "Answer.\n\nSecond paragraph.",
            "buttons": BUTTONS,
            "custom": CUSTOM,
        },
        {"recipient_id": "u1", "text": "Hi", "custom": {"type": "greeting"}},
    ]


class RecordingSio:
    def __init__(self) -> None:
        self.emitted: list[tuple] = []
        self.rooms: list[tuple] = []

    async def emit(self, event: str, data: Any = None, **kwargs: Any) -> None:
        self.emitted.append((event, data, kwargs))

    async def enter_room(self, sid: str, room: str, namespace: Any = None) -> None:
        self.rooms.append((sid, room, namespace))


def test_socketio_output_emits_one_event_with_flat_custom() -> None:
    sio = RecordingSio()
    out = SocketIOOutput(sio, "bot_uttered")  # type: ignore[arg-type]

    asyncio.run(
        out.send_response("room-1", rasa_message(text="Pick one", buttons=BUTTONS, custom=CUSTOM))
    )

    assert sio.emitted == [
        (
            "bot_uttered",
            {"text": "Pick one", "buttons": BUTTONS, "custom": CUSTOM},
            {"room": "room-1"},
        )
    ]


def test_join_room_awaits_the_coroutine_and_accepts_a_plain_call() -> None:
    sio = RecordingSio()
    asyncio.run(join_room(sio, "sid", "session", None))  # type: ignore[arg-type]
    assert sio.rooms == [("sid", "session", None)]

    class SyncSio:
        rooms: list[tuple] = []

        def enter_room(self, sid: str, room: str, namespace: Any = None) -> None:
            self.rooms.append((sid, room))

    sync = SyncSio()
    asyncio.run(join_room(sync, "sid", "session", None))  # type: ignore[arg-type]
    assert sync.rooms == [("sid", "session")]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (None, "JSON object"),
        ([], "JSON object"),
        ({"sender": "a"}, '"message"'),
        ({"sender": "a", "message": 5}, '"message"'),
        ({"sender": {"x": 1}, "message": "hi"}, '"sender"'),
        ({"sender": "a", "message": "hi", "metadata": "en"}, '"metadata"'),
        ({"sender": "a", "message": "hi", "input_channel": 3}, '"input_channel"'),
    ],
)
def test_parse_webhook_body_rejects_malformed_bodies(body: Any, error: str) -> None:
    with pytest.raises(WebhookRequestError, match=error):
        parse_webhook_body(body)


def test_parse_webhook_body_accepts_the_rest_format() -> None:
    body = {"sender": 7, "message": "hi", "metadata": {"language": "es"}}
    assert parse_webhook_body(body) == ("7", "hi", {"language": "es"}, None)


# --- end to end on a real Sanic server ---------------------------------------------------------

_app_names = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _serve(handler: Any, *channels: Any) -> tuple[Any, int]:
    # Test mode lets several Sanic apps start in one process (Sanic 21's touch-up otherwise
    # fails on the second one).
    Sanic.test_mode = True
    app = Sanic(f"channels_test_{next(_app_names)}")
    register(list(channels), app, route="/webhooks/")
    port = _free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    await server.startup()
    await server.start_serving()
    app.ctx.agent = type("Agent", (), {"handle_message": staticmethod(handler)})()
    return server, port


async def fake_bot(message: UserMessage) -> None:
    """Answers like Rasa does after a custom action: one BotUttered per reply."""
    metadata = message.metadata or {}
    await message.output_channel.send_response(
        message.sender_id,
        rasa_message(
            text=f"You said: {message.text} ({metadata.get('language', '?')})",
            buttons=BUTTONS,
            custom=CUSTOM,
        ),
    )
    await message.output_channel.send_response(
        message.sender_id, rasa_message(text="Second", custom={"type": "prompt"})
    )


def test_rest_webhook_end_to_end() -> None:
    async def scenario() -> list[Any]:
        server, port = await _serve(fake_bot, RestInput())
        url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
        results = []
        try:
            async with aiohttp.ClientSession() as http:
                body = {"sender": "s1", "message": "hi", "metadata": {"language": "en"}}
                async with http.post(url, json=body) as resp:
                    results.append((resp.status, await resp.json()))
                async with http.post(url, data=b"{not json") as resp:
                    results.append((resp.status, await resp.json()))
                async with http.post(url, json={"sender": "s1"}) as resp:
                    results.append((resp.status, await resp.json()))
                async with http.post(url + "?stream=true", json=body) as resp:
                    lines = [json.loads(x) for x in (await resp.text()).splitlines() if x]
                    results.append((resp.status, lines))
        finally:
            await server.close()
        return results

    ok, not_json, no_message, streamed = asyncio.run(scenario())

    expected = [
        {"recipient_id": "s1", "text": "You said: hi (en)", "buttons": BUTTONS, "custom": CUSTOM},
        {"recipient_id": "s1", "text": "Second", "custom": {"type": "prompt"}},
    ]
    assert ok == (200, expected)
    assert not_json == (400, {"error": "the request body is not valid JSON"})
    assert no_message == (400, {"error": '"message" must be a string'})
    assert streamed == (200, expected)


def test_socketio_end_to_end_with_session_persistence() -> None:
    async def scenario() -> tuple[str, list[Any]]:
        channel = SocketIOInput(session_persistence=True)
        server, port = await _serve(fake_bot, channel)
        client = socketio.AsyncClient()
        received: list[Any] = []
        confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        client.on("session_confirm", lambda sid: confirmed.set_result(sid))
        client.on("bot_uttered", lambda data: received.append(data))
        try:
            await client.connect(f"http://127.0.0.1:{port}", transports=["polling"])
            await client.emit("session_request", {"session_id": "sess-42"})
            session_id = await asyncio.wait_for(confirmed, 5)
            await client.emit(
                "user_uttered",
                {"message": "hi", "session_id": session_id, "metadata": {"language": "es"}},
            )
            for _ in range(100):
                if len(received) >= 2:
                    break
                await asyncio.sleep(0.05)
            # Messages without session_id are ignored, not answered to someone else.
            await client.emit("user_uttered", {"message": "lost"})
            await asyncio.sleep(0.3)
        finally:
            # A polite disconnect over long-polling waits for the open poll (up to 25 s).
            await client.eio.disconnect(abort=True)
            await server.close()
        return session_id, received

    session_id, received = asyncio.run(scenario())

    assert session_id == "sess-42"
    assert received == [
        {"text": "You said: hi (es)", "buttons": BUTTONS, "custom": CUSTOM},
        {"text": "Second", "custom": {"type": "prompt"}},
    ]


def test_socketio_output_channel_for_messages_the_citizen_did_not_trigger() -> None:
    channel = SocketIOInput()
    assert channel.get_output_channel() is None
    channel.blueprint(fake_bot)
    assert isinstance(channel.get_output_channel(), SocketIOOutput)
