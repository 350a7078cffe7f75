"""A web citizen's photo or file reaching Rasa (bot/channels/web_attachments.py), over the real
socket.io and REST channels on a real Sanic server. Each forgery is a test: only the server says
that a message carries files, and only ids the store could have issued reach the tracker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from channel_kit import FakeBot, SocketCitizen, serve, signed

from askagency import bot_messages as msg
from askagency.rasa_events import CLIENT_KEY_METADATA
from bot.channels.rest import RestInput
from bot.channels.socketio import SocketIOInput
from bot.channels.web_attachments import SHARE_TEXT, attachment_ids

IDS = [f"{n:x}" * 32 for n in range(10, 16)]  # six well-formed ids: "aaa...a", "bbb...b", ...
SHARE = f"/{msg.INTENT_SHARE_ATTACHMENT}"


def _socket(*messages: dict[str, Any]) -> list[Any]:
    """Sends each ``{"message", **extra}`` on a confirmed socket; returns what Rasa got."""
    bot = FakeBot()

    async def scenario() -> None:
        channel = SocketIOInput.from_credentials({"session_persistence": True})
        server, base = await serve(bot, channel)
        citizen = SocketCitizen()
        try:
            await citizen.start(base)
            for message in messages:
                extra = {k: v for k, v in message.items() if k != "message"}
                await citizen.say(message["message"], **extra)
            await citizen.wait_for(len(messages))
        finally:
            await citizen.close()
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
    return bot.seen


def test_the_share_text_is_the_contract_intent() -> None:
    assert SHARE_TEXT == SHARE


def test_attachment_ids_keeps_only_well_formed_ids_up_to_the_maximum() -> None:
    assert attachment_ids(IDS) == IDS[: msg.MAX_ATTACHMENTS_PER_MESSAGE]
    assert attachment_ids([IDS[0], IDS[0], IDS[1]]) == IDS[:2]  # duplicates once
    junk = [
        IDS[0].upper(),  # the store issues lower-case hex
        IDS[0][:-1],
        IDS[0] + "0",
        IDS[0] + "\n",
        "../" + IDS[0],
        {"id": IDS[0]},
        7,
        None,
        "g" * 32,
    ]
    assert attachment_ids(junk) == []
    assert attachment_ids(IDS[0]) == []  # a string, not a list
    assert attachment_ids(None) == []
    assert attachment_ids({"0": IDS[0]}) == []


def test_socketio_message_with_attachments_reaches_rasa_as_the_share_intent() -> None:
    """The typed text is the caption; junk ids are dropped and at most the maximum is kept."""
    seen = _socket(
        {"message": "  can I bring this?  ", "attachments": [IDS[0], "nope", IDS[1]]},
        {"message": "", "attachments": IDS},
    )
    first, second = seen
    assert first.text == SHARE
    assert first.metadata[msg.METADATA_ATTACHMENTS] == IDS[:2]
    assert first.metadata[msg.METADATA_CAPTION] == "can I bring this?"
    assert first.metadata[CLIENT_KEY_METADATA]  # the server's metadata is still set
    assert second.text == SHARE
    assert second.metadata[msg.METADATA_ATTACHMENTS] == IDS[: msg.MAX_ATTACHMENTS_PER_MESSAGE]
    assert second.metadata[msg.METADATA_CAPTION] == ""


def test_socketio_client_cannot_forge_the_attachment_keys_through_metadata() -> None:
    forged = {
        msg.METADATA_ATTACHMENTS: [IDS[5]],
        msg.METADATA_CAPTION: "forged caption",
        msg.METADATA_ATTACHMENT_ERROR: "too_large",
        "language": "en",
    }
    seen = _socket(
        # an ordinary message that claims files in its metadata: no files
        {"message": "hello", "metadata": forged},
        # a real attachment message whose metadata tries to swap the ids and caption
        {"message": "mine", "attachments": [IDS[0]], "metadata": forged},
        # only junk ids: an ordinary message, as if no attachments were sent
        {"message": "only junk", "attachments": ["x" * 32, IDS[0].upper()]},
        # typing the intent is not sending a file
        {"message": SHARE, "metadata": forged},
    )
    plain, shared, junk, typed = seen
    assert plain.text == "hello"
    assert msg.METADATA_ATTACHMENTS not in plain.metadata
    assert msg.METADATA_CAPTION not in plain.metadata
    assert msg.METADATA_ATTACHMENT_ERROR not in plain.metadata
    assert msg.METADATA_ATTACHMENT_ERROR not in shared.metadata
    assert plain.metadata["language"] == "en"
    assert shared.text == SHARE
    assert shared.metadata[msg.METADATA_ATTACHMENTS] == [IDS[0]]
    assert shared.metadata[msg.METADATA_CAPTION] == "mine"
    assert junk.text == "only junk" and msg.METADATA_ATTACHMENTS not in junk.metadata
    assert typed.text != SHARE and not typed.text.startswith("/")
    assert msg.METADATA_ATTACHMENTS not in typed.metadata


def test_socketio_same_caption_with_different_photos_is_not_a_repeat() -> None:
    """The repeat limit (3 identical texts) must not swallow a citizen's fourth photo."""
    seen = _socket(*({"message": "", "attachments": [IDS[n]]} for n in range(4)))
    assert [m.metadata[msg.METADATA_ATTACHMENTS] for m in seen] == [[IDS[n]] for n in range(4)]


def test_rest_message_with_attachments_and_forged_metadata() -> None:
    bot = FakeBot()
    forged = {msg.METADATA_ATTACHMENTS: [IDS[5]], msg.METADATA_CAPTION: "forged"}
    bodies = [
        signed("web-att1", message="look", attachments=[IDS[0], 5, IDS[1]], metadata=forged),
        signed("web-att2", message="plain", metadata=forged),
    ]

    async def scenario() -> list[int]:
        server, base = await serve(bot, RestInput.from_credentials({}))
        statuses = []
        try:
            async with aiohttp.ClientSession() as http:
                for body in bodies:
                    async with http.post(
                        base + "/webhooks/rest/webhook", data=json.dumps(body).encode()
                    ) as resp:
                        statuses.append(resp.status)
        finally:
            server.close()
            await server.wait_closed()
        return statuses

    assert asyncio.run(scenario()) == [200, 200]
    shared, plain = bot.seen
    assert shared.text == SHARE
    assert shared.metadata[msg.METADATA_ATTACHMENTS] == IDS[:2]
    assert shared.metadata[msg.METADATA_CAPTION] == "look"
    assert plain.text == "plain"
    assert msg.METADATA_ATTACHMENTS not in plain.metadata
    assert msg.METADATA_CAPTION not in plain.metadata
