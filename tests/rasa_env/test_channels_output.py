"""bot/channels: one client message per bot message, over REST and a real socket.io connection.

Bot messages are built the way Rasa builds them for a custom action's reply
(``create_bot_utterance(...).message()``), then sent through the channels' output classes. The
end-to-end cases start the channels' blueprints on a real Sanic server and talk to it with
aiohttp and a python-socketio client.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest
from channel_kit import SocketCitizen, serve, signed
from rasa.core.actions.action import create_bot_utterance
from rasa.core.channels.channel import UserMessage

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
        # Ids an agent's reply could never reach through Rasa's /conversations/<id> API.
        ({"sender": "a b", "message": "hi"}, '"sender" must be letters'),
        ({"sender": "%2B1555", "message": "hi"}, '"sender" must be letters'),
        ({"sender": "josé", "message": "hi"}, '"sender" must be letters'),
        ({"sender": "x" * 129, "message": "hi"}, "at most 128"),
        ({"sender": "a", "message": "hi", "metadata": "en"}, '"metadata"'),
        # L13: no shared "default" conversation.
        ({"message": "hi"}, '"sender" is required'),
        ({"sender": "", "message": "hi"}, '"sender" is required'),
    ],
)
def test_parse_webhook_body_rejects_malformed_bodies(body: Any, error: str) -> None:
    with pytest.raises(WebhookRequestError, match=error):
        parse_webhook_body(body)


def test_parse_webhook_body_accepts_the_rest_format() -> None:
    body = {"sender": 7, "message": "hi", "metadata": {"language": "es"}, "token": "t"}
    assert parse_webhook_body(body) == ("7", "hi", {"language": "es"}, "t")
    # H2: a client's input_channel is not even read.
    with_channel = {"sender": "a", "message": "hi", "input_channel": "sms"}
    assert parse_webhook_body(with_channel) == ("a", "hi", None, None)


# --- end to end on a real Sanic server ---------------------------------------------------------


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
        server, base = await serve(fake_bot, RestInput())
        url = f"{base}/webhooks/rest/webhook"
        results = []
        try:
            async with aiohttp.ClientSession() as http:
                body = signed("s1", message="hi", metadata={"language": "en"})
                async with http.post(url, json=body) as resp:
                    results.append((resp.status, await resp.json()))
                async with http.post(url, data=b"{not json") as resp:
                    results.append((resp.status, await resp.json()))
                async with http.post(url, json=signed("s1")) as resp:
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
        server, base = await serve(fake_bot, channel)
        citizen = SocketCitizen()
        try:
            session_id = await citizen.start(base, "sess-42")
            await citizen.say("hi", metadata={"language": "es"})
            received = await citizen.wait_for(2)
            # Messages without session_id are ignored, not answered to someone else.
            await citizen.client.emit("user_uttered", {"message": "lost"})
            await asyncio.sleep(0.3)
        finally:
            await citizen.close()
            await server.close()
        return session_id, received

    session_id, received = asyncio.run(scenario())

    assert session_id == "sess-42"
    assert received == [
        {"text": "You said: hi (es)", "buttons": BUTTONS, "custom": CUSTOM},
        {"text": "Second", "custom": {"type": "prompt"}},
    ]


def test_socketio_replaces_a_session_id_no_reply_could_reach() -> None:
    async def scenario() -> tuple[str, list[Any]]:
        channel = SocketIOInput(session_persistence=True)
        server, base = await serve(fake_bot, channel)
        citizen = SocketCitizen()
        try:
            session_id = await citizen.start(base, "a b/c")
            await citizen.say("hi")
            received = await citizen.wait_for(2)
        finally:
            await citizen.close()
            await server.close()
        return session_id, received

    session_id, received = asyncio.run(scenario())

    assert session_id != "a b/c" and re.fullmatch(r"web-[0-9a-f]{32}", session_id)
    assert [message["text"] for message in received] == ["You said: hi (?)", "Second"]


def test_socketio_output_channel_for_messages_the_citizen_did_not_trigger() -> None:
    channel = SocketIOInput()
    assert channel.get_output_channel() is None
    channel.blueprint(fake_bot)
    assert isinstance(channel.get_output_channel(), SocketIOOutput)
