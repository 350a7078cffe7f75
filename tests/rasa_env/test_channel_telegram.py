"""Telegram channel: secret-token header, updates, inline keyboards, callback queries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from channel_kit import CLARIFY_BUTTONS, FAST, FakeBot, FakePlatform, serve

from bot.channels.telegram import EXPIRED_TEXT, TelegramInput, chat_id_value, parse_update

BOT_TOKEN = "123:ABC-secret"
SECRET = "webhook-secret"


def update(update_id: int, text: str, chat_id: int = 42, **sender: Any) -> bytes:
    return json.dumps(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id * 10,
                "date": 1700000000,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": False, "language_code": "es", **sender},
                "text": text,
            },
        }
    ).encode()


def callback(update_id: int, data: str, chat_id: int = 42) -> bytes:
    return json.dumps(
        {
            "update_id": update_id,
            "callback_query": {
                "id": f"cq{update_id}",
                "from": {"id": chat_id, "is_bot": False, "language_code": "en"},
                "message": {"message_id": 1, "chat": {"id": chat_id, "type": "private"}},
                "data": data,
            },
        }
    ).encode()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("BOT_TOKEN", "SECRET_TOKEN", "API_BASE_URL"):
        monkeypatch.delenv(f"ASKAGENCY_TELEGRAM_{key}", raising=False)


def test_parse_messages_callbacks_and_ignored_updates() -> None:
    parsed = parse_update(update(7, "can I bring a laptop?"))
    (message,) = parsed.messages
    assert (message.sender, message.text, message.message_id, message.language) == (
        "42",
        "can I bring a laptop?",
        "update-7",
        "es",
    )
    (press,) = parse_update(callback(8, "o:abc")).messages
    assert press.is_payload and press.extra == {"callback_query_id": "cq8"}

    group = json.loads(update(9, "hi"))
    group["message"]["chat"]["type"] = "group"
    assert not parse_update(json.dumps(group).encode()).messages
    edited = parse_update(json.dumps({"update_id": 10, "edited_message": {}}).encode())
    assert edited.error is None and not edited.messages and edited.ignored
    assert parse_update(b'{"message": {}}').error == "update without an integer update_id"
    assert parse_update(b"\xff").error


def test_chat_ids_are_sent_back_as_telegram_gave_them() -> None:
    assert chat_id_value("12345") == 12345
    assert chat_id_value("-100123") == -100123  # a group
    # Not a number Telegram makes: kept as text, never a crash in int() ("²" passes isdigit).
    for odd in ("²", "-²", "--5", "٣", "@channel"):
        assert chat_id_value(odd) == odd


def test_webhook_end_to_end() -> None:
    async def scenario() -> dict[str, Any]:
        fake = FakePlatform()
        api = await fake.start()
        bot = FakeBot()
        channel = TelegramInput.from_credentials(
            {"bot_token": BOT_TOKEN, "secret_token": SECRET, "api_base_url": api, **FAST}
        )
        server, base = await serve(bot, channel)
        url = base + "/webhooks/telegram/webhook"
        out: dict[str, Any] = {}
        try:
            async with aiohttp.ClientSession() as http:

                async def post(body: bytes, secret: str | None = SECRET) -> int:
                    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
                    async with http.post(url, data=body, headers=headers) as resp:
                        await channel.drain()
                        return resp.status

                out["codes"] = [
                    await post(update(1, "/start")),
                    await post(update(1, "/start")),  # redelivered update_id
                    await post(update(2, "hi"), secret="wrong"),
                    await post(update(3, "hi"), secret=None),
                    await post(b"{not json"),
                    await post(json.dumps({"update_id": 4, "poll": {}}).encode()),
                    await post(update(5, "options")),
                ]
                keyboard = fake.sent("/sendMessage")[-1].json()["reply_markup"]["inline_keyboard"]
                out["keyboard"] = keyboard
                await post(callback(6, keyboard[1][0]["callback_data"]))
                await post(callback(7, "o:forged"))
                await post(callback(8, keyboard[0][0]["callback_data"], chat_id=99))
                await post(callback(9, '/agent_message{"handoff_text": "x"}'))  # C1
        finally:
            await server.close()
            await channel.http.close()
            await fake.stop()
        out["bot"], out["fake"] = bot, fake
        return out

    out = asyncio.run(scenario())
    assert out["codes"] == [200, 200, 403, 403, 400, 200, 200]
    seen = out["bot"].seen
    assert [m.text for m in seen] == ["/greet", "options", CLARIFY_BUTTONS[1]["payload"]]
    assert seen[0].sender_id == "telegram-42" and seen[0].input_channel == "telegram"
    assert seen[0].metadata == {"channel_message_id": "update-1", "language": "es"}

    keyboard = out["keyboard"]
    assert [row[0]["text"] for row in keyboard] == [b["title"] for b in CLARIFY_BUTTONS]
    assert all(len(row[0]["callback_data"].encode()) <= 64 for row in keyboard)

    fake: FakePlatform = out["fake"]
    assert all(f"/bot{BOT_TOKEN}/" in r.path for r in fake.requests)
    sends = fake.sent("/sendMessage")
    assert sends[0].json() == {"chat_id": 42, "text": "You said: /greet"}
    answers = [r.json() for r in fake.sent("/answerCallbackQuery")]
    assert answers == [
        {"callback_query_id": "cq6"},
        {"callback_query_id": "cq7", "text": EXPIRED_TEXT},
        {"callback_query_id": "cq8", "text": EXPIRED_TEXT},  # another chat's button
        {"callback_query_id": "cq9", "text": EXPIRED_TEXT},  # a payload, not one of our tokens
    ]


def test_bot_token_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        fake = FakePlatform(script=[(401, {"ok": False, "description": "Unauthorized"}, {})])
        api = await fake.start()
        channel = TelegramInput.from_credentials(
            {"bot_token": BOT_TOKEN, "secret_token": SECRET, "api_base_url": api, **FAST}
        )
        try:
            await channel.get_output_channel().send_text_message("telegram-42", "hello")
        finally:
            await channel.http.close()
            await fake.stop()

    asyncio.run(scenario())
    assert "Unauthorized" in caplog.text
    assert BOT_TOKEN not in caplog.text
