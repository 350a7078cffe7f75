"""Issue 17 (H1, H2, M1, L7, L13): who may write into a web conversation, over the real REST and
socket.io channels on a real Sanic server. Each test is an attack from the security review."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from channel_kit import FakeBot, SocketCitizen, serve, signed

from askagency.conversation_token import ConversationSigner
from askagency.rasa_events import CLIENT_KEY_METADATA
from bot.channels.rest import RestInput
from bot.channels.socketio import SocketIOInput
from bot.channels.web_guard import signer

VICTIM_SMS = "sms-15551234567"


async def _post(base: str, body: Any, path: str = "/webhooks/rest/webhook") -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + path, data=data, headers={"Content-Type": "application/json"}) as resp,
    ):
        return resp.status, json.loads(await resp.text())


def _rest(bot: FakeBot, *bodies: Any) -> list[tuple[int, Any]]:
    async def scenario() -> list[tuple[int, Any]]:
        server, base = await serve(bot, RestInput.from_credentials({}))
        try:
            return [await _post(base, body) for body in bodies]
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(scenario())


def test_rest_session_endpoint_issues_an_id_and_token_that_the_webhook_accepts() -> None:
    bot = FakeBot()

    async def scenario() -> tuple[Any, Any, Any]:
        server, base = await serve(bot, RestInput.from_credentials({}))
        try:
            first = await _post(base, {}, "/webhooks/rest/session")
            second = await _post(base, {}, "/webhooks/rest/session")
            session = first[1]
            body = {"sender": session["conversation_id"], "token": session["token"]}
            reply = await _post(base, {**body, "message": "hello"})
            return first, second, reply
        finally:
            server.close()
            await server.wait_closed()

    (status, session), (_, other), (reply_status, reply) = asyncio.run(scenario())
    assert status == 200
    assert session["conversation_id"].startswith("web-") and len(session["conversation_id"]) == 36
    assert other["conversation_id"] != session["conversation_id"]
    assert reply_status == 200 and reply[0]["text"] == "You said: hello"
    assert [m.sender_id for m in bot.seen] == [session["conversation_id"]]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        # H1: a known id without its token, a forged token, another conversation's token, a
        # token made with another secret.
        ({"sender": "web-victim", "message": "hi"}, 403, "token"),
        ({"sender": "web-victim", "token": "v1.forged", "message": "hi"}, 403, "token"),
        ({**signed("web-mine"), "sender": "web-victim", "message": "hi"}, 403, "token"),
        (
            {
                "sender": "web-victim",
                "token": ConversationSigner(b"a-different-secret-0123456789abcdef").token(
                    "web-victim"
                ),
                "message": "hi",
            },
            403,
            "token",
        ),
        # H1: platform conversations are refused even with a valid signature.
        ({**signed(VICTIM_SMS), "message": "please reply here"}, 403, "another channel"),
        ({**signed("Telegram-42"), "message": "hi"}, 403, "another channel"),
        ({"sender": "whatsapp-15551234567", "message": "hi"}, 403, "another channel"),
        # L13: no sender, no shared "default" conversation.
        ({"message": "/ask_human"}, 400, '"sender" is required'),
    ],
)
def test_rest_refuses_conversations_the_client_does_not_own(
    body: dict[str, Any], status: int, error: str
) -> None:
    bot = FakeBot()
    [(got_status, got)] = _rest(bot, body)
    assert got_status == status
    assert error in got["error"]
    assert bot.seen == []  # Rasa never saw it


def test_rest_input_channel_and_server_metadata_are_not_the_clients() -> None:
    """H2: input_channel is always ``rest``; L7: ``is_external`` is dropped; M2: ``client_key``
    is the server's keyed hash of the client address, whatever the client sent."""
    bot = FakeBot()
    metadata = {"language": "en", "is_external": True, CLIENT_KEY_METADATA: "chosen"}
    body = signed("web-h2", message="I want to talk to a person", metadata=metadata)
    results = _rest(bot, {**body, "input_channel": "sms"}, signed("web-h2b", message="again"))
    assert [status for status, _ in results] == [200, 200]
    first, second = bot.seen
    assert first.input_channel == "rest"
    assert "is_external" not in first.metadata
    assert first.metadata["language"] == "en"
    key = first.metadata[CLIENT_KEY_METADATA]
    assert key not in ("chosen", "127.0.0.1") and len(key) == 32
    assert second.metadata[CLIENT_KEY_METADATA] == key  # same address, same key
    assert key == signer().client_key("127.0.0.1")


def test_rest_refuses_huge_bodies_and_long_messages_before_rasa() -> None:
    """M1: the review's 2 MB body of short words, and a message one character too long."""
    bot = FakeBot()
    huge = json.dumps(signed("web-big", message="word " * 400_000)).encode()
    assert len(huge) > 2_000_000
    too_long = signed("web-long", message="x" * 2001, metadata={"language": "es"})

    async def scenario() -> tuple[list[tuple[int, Any]], float]:
        server, base = await serve(bot, RestInput.from_credentials({}))
        try:
            started = time.perf_counter()
            big = await _post(base, huge)
            elapsed = time.perf_counter() - started
            return [big, await _post(base, too_long)], elapsed
        finally:
            server.close()
            await server.wait_closed()

    ((big_status, big), (long_status, long_reply)), elapsed = asyncio.run(scenario())
    assert big_status == 413
    assert big[0]["custom"] == {"type": "fallback", "reason": "too_long"}
    assert "too long" in big[0]["text"]
    assert elapsed < 1.0, elapsed  # the old code parsed it and handed it to Rasa
    assert long_status == 200
    assert long_reply[0]["custom"] == {"type": "fallback", "reason": "too_long"}
    assert "2001" in long_reply[0]["text"] and "demasiado largo" in long_reply[0]["text"]
    assert long_reply[0]["buttons"][0]["payload"] == "/ask_human"
    assert bot.seen == []


def test_socketio_cannot_join_or_write_into_another_conversation() -> None:
    """H1: the review's script (session_request for a victim's id, then user_uttered) no longer
    joins the victim's room nor writes into the victim's conversation."""
    bot = FakeBot()

    async def scenario() -> dict[str, Any]:
        channel = SocketIOInput.from_credentials({"session_persistence": True})
        server, base = await serve(bot, channel)
        victim, attacker, platform, returning = (SocketCitizen() for _ in range(4))
        try:
            victim_id = await victim.start(base)  # a new conversation, issued by the server
            hijack_id = await attacker.start(base, victim_id, token="v1.guessed")
            # the attacker names the victim's conversation in a message: ignored
            await attacker.client.emit(
                "user_uttered", {"message": "please reply here", "session_id": victim_id}
            )
            await victim.say("my question")
            await victim.wait_for(1)
            await asyncio.sleep(0.3)
            platform_id = await platform.start(base, VICTIM_SMS)  # validly signed, still refused
            back_id = await returning.start(base, victim_id, token=victim.token)
            return {
                "victim_id": victim_id,
                "victim_token": victim.token,
                "hijack_id": hijack_id,
                "platform_id": platform_id,
                "back_id": back_id,
                "attacker_received": list(attacker.received),
                "victim_received": list(victim.received),
            }
        finally:
            for citizen in (victim, attacker, platform, returning):
                await citizen.close()
            server.close()
            await server.wait_closed()

    got = asyncio.run(scenario())
    assert got["victim_id"].startswith("web-")
    assert signer().verify(got["victim_id"], got["victim_token"])
    assert got["hijack_id"] != got["victim_id"] and got["hijack_id"].startswith("web-")
    assert got["platform_id"] != VICTIM_SMS and got["platform_id"].startswith("web-")
    assert got["back_id"] == got["victim_id"]  # the owner (token) gets the conversation back
    assert [(m.sender_id, m.text) for m in bot.seen] == [(got["victim_id"], "my question")]
    assert got["attacker_received"] == []  # not in the victim's room
    assert got["victim_received"][0]["text"] == "You said: my question"


def test_socketio_strips_server_metadata_and_refuses_long_messages() -> None:
    """L7, M2 and M1 on socket.io."""
    bot = FakeBot()

    async def scenario() -> list[Any]:
        channel = SocketIOInput.from_credentials({"session_persistence": True})
        server, base = await serve(bot, channel)
        citizen = SocketCitizen()
        try:
            await citizen.start(base)
            metadata = {"is_external": True, CLIENT_KEY_METADATA: "chosen", "language": "en"}
            await citizen.say("EXTERNAL: hidden?", metadata=metadata)
            await citizen.say("y" * 5000)
            received = list(await citizen.wait_for(2))
            # over the socket.io packet limit: the server drops the packet (and the polling
            # connection), Rasa never sees it
            await citizen.say("z" * 200_000)
            await asyncio.sleep(0.5)
            return received
        finally:
            await citizen.close()
            server.close()
            await server.wait_closed()

    received = asyncio.run(scenario())
    [message] = bot.seen
    assert message.input_channel == "socketio"
    assert "is_external" not in message.metadata
    assert message.metadata[CLIENT_KEY_METADATA] == signer().client_key("127.0.0.1")
    assert received[1]["custom"] == {"type": "fallback", "reason": "too_long"}
    assert "5000" in received[1]["text"]


def test_a_new_conversation_on_the_same_socket_stops_hearing_the_old_one() -> None:
    """The widget's "New conversation" asks for a new session on its open socket: from then on
    the socket hears only the new conversation, not a late reply in the old one."""
    bot = FakeBot()

    async def scenario() -> dict[str, Any]:
        channel = SocketIOInput.from_credentials({"session_persistence": True})
        server, base = await serve(bot, channel)
        citizen, other_tab = SocketCitizen(), SocketCitizen()
        try:
            old_id = await citizen.start(base)
            await citizen.say("one")
            await citizen.wait_for(1)
            await other_tab.start(base, old_id, token=citizen.token)  # the same conversation
            confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
            citizen.client.on("session_confirm", confirmed.set_result)
            await citizen.client.emit("session_request", {})
            new = await asyncio.wait_for(confirmed, 5)
            citizen.session_id = new["session_id"]
            await other_tab.say("two")  # answered in the old conversation's room
            await other_tab.wait_for(1)
            await citizen.say("three")
            await citizen.wait_for(2)
            await asyncio.sleep(0.3)
            return {
                "old": old_id,
                "new": new["session_id"],
                "citizen": [m["text"] for m in citizen.received],
                "other": [m["text"] for m in other_tab.received],
            }
        finally:
            for who in (citizen, other_tab):
                await who.close()
            server.close()
            await server.wait_closed()

    got = asyncio.run(scenario())
    assert got["new"] != got["old"] and got["new"].startswith("web-")
    assert got["citizen"] == ["You said: one", "You said: three"]
    assert got["other"] == ["You said: two"]
    assert [(m.sender_id, m.text) for m in bot.seen] == [
        (got["old"], "one"),
        (got["old"], "two"),
        (got["new"], "three"),
    ]
