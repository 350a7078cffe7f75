"""Telegram (Bot API webhook).

Webhook ``/webhooks/telegram/webhook``, registered with ``setWebhook`` and a ``secret_token``;
Telegram sends that secret in ``X-Telegram-Bot-Api-Secret-Token`` on every update, and a request
without the right one is refused. Handled updates (private chats only):

* ``message.text`` (``/start`` greets; other ``/commands`` are read as plain words);
* ``callback_query``: a press on one of our inline keyboard buttons.

Replies: ``POST {api_base_url}/bot<token>/sendMessage``; buttons become an inline keyboard, one
button per row. Telegram caps ``callback_data`` at 64 bytes and a client can send any data, so
each button carries a random token bound to the chat (bot/channels/buttons.py, like every
platform) for ``button_ttl_s``: a forged or expired token is answered with "expired" and not
processed. Button presses are acknowledged with ``answerCallbackQuery`` so the client stops its
spinner.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.core.channels.channel import OutputChannel
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.buttons import EXPIRED_TEXT
from bot.channels.common import (
    Incoming,
    Option,
    Parsed,
    as_dict,
    choices_of,
    id_text,
    json_object,
    language_tag,
    plain_text_of,
    same_secret,
    split_text,
    truncate,
)
from bot.channels.platform import PlatformInput, PlatformOutput

logger = logging.getLogger(__name__)

TEXT_LIMIT = 4096
BUTTON_TEXT_LIMIT = 64
START_PAYLOAD = "/greet"


def parse_update(body: bytes) -> Parsed:
    """The message in a Telegram update; never raises."""
    data = json_object(body)
    if isinstance(data, Parsed):
        return data
    update_id = data.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int):
        return Parsed(error="update without an integer update_id")
    parsed = Parsed()
    message_id = f"update-{update_id}"
    if isinstance(data.get("message"), dict):
        message = data["message"]
        chat = as_dict(message.get("chat"))
        sender = as_dict(message.get("from"))
        chat_id = id_text(chat.get("id"))
        if chat.get("type") != "private" or chat_id is None:
            parsed.ignored.append(f"message in a {str(chat.get('type'))[:20]} chat")
        elif sender.get("is_bot") is True:
            parsed.ignored.append("message from a bot")
        elif not isinstance(message.get("text"), str):
            parsed.ignored.append("message without text")
        else:
            parsed.messages.append(
                Incoming(
                    chat_id,
                    message["text"],
                    message_id,
                    language=language_tag(sender.get("language_code")),
                )
            )
        return parsed
    if isinstance(data.get("callback_query"), dict):
        query = data["callback_query"]
        chat = as_dict(as_dict(query.get("message")).get("chat"))
        chat_id = id_text(chat.get("id")) or id_text(as_dict(query.get("from")).get("id"))
        query_id = id_text(query.get("id"))
        callback = query.get("data")
        if chat_id is None or query_id is None or not isinstance(callback, str):
            parsed.ignored.append("callback_query without chat, id or data")
        else:
            parsed.messages.append(
                Incoming(
                    chat_id,
                    callback,
                    message_id,
                    is_payload=True,
                    language=language_tag(as_dict(query.get("from")).get("language_code")),
                    extra={"callback_query_id": query_id},
                )
            )
        return parsed
    kinds = ",".join(sorted(k for k in data if k != "update_id"))[:60]
    parsed.ignored.append(f"update kind {kinds or 'empty'}")
    return parsed


def keyboard(buttons: list[tuple[str, str]]) -> dict[str, Any]:
    """``buttons``: (label, callback_data) pairs, one per row."""
    return {
        "inline_keyboard": [
            [{"text": truncate(label, BUTTON_TEXT_LIMIT), "callback_data": data}]
            for label, data in buttons
        ]
    }


def chat_id_value(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


class TelegramOutput(PlatformOutput):
    channel_name = "telegram"

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        channel: TelegramInput = self.channel  # type: ignore[assignment]
        chat_id = channel.platform_id(conversation_id)
        parts = split_text(plain_text_of(message), TEXT_LIMIT)
        choices = choices_of(message)
        if choices and not parts:
            parts = ["…"]
        for index, part in enumerate(parts):
            body: dict[str, Any] = {"chat_id": chat_id_value(chat_id), "text": part}
            if choices and index == len(parts) - 1:
                # Payloads are already tokens (PlatformOutput.send_response).
                body["reply_markup"] = keyboard([(c.title, c.payload) for c in choices])
            result = await channel.http.request(
                "POST", channel.method_url("sendMessage"), label="sendMessage", json_body=body
            )
            if not result.ok:
                return


class TelegramInput(PlatformInput):
    """``bot.channels.telegram.TelegramInput`` in credentials.yml; env ``ASKAGENCY_TELEGRAM_*``."""

    env_prefixes = ("TELEGRAM",)
    options = (
        Option("bot_token", secret=True),
        Option("secret_token", secret=True),
        Option("api_base_url", "https://api.telegram.org"),
    )
    url_secret = "bot_token"
    required = ("bot_token", "secret_token")

    @classmethod
    def name(cls) -> str:
        return "telegram"

    def method_url(self, method: str) -> str:
        return f"{self.config['api_base_url'].rstrip('/')}/bot{self.config['bot_token']}/{method}"

    def get_output_channel(self) -> OutputChannel:
        return TelegramOutput(self)

    async def prepare(self, conversation_id: str, incoming: Incoming) -> str | None:
        query_id = incoming.extra.get("callback_query_id")
        if query_id is not None:
            payload = self.buttons.redeem(conversation_id, incoming.text)
            valid = payload is not None
            await self.http.request(
                "POST",
                self.method_url("answerCallbackQuery"),
                label="answerCallbackQuery",
                json_body={
                    "callback_query_id": query_id,
                    **({} if valid else {"text": EXPIRED_TEXT}),
                },
            )
            if payload is None:
                logger.info("telegram: unknown or expired button pressed; not processed")
                return None
            self.choices.remember(conversation_id, [])
            return payload
        command = (
            incoming.text.strip().split(maxsplit=1)[0].split("@", 1)[0]
            if incoming.text.strip()
            else ""
        )
        if command == "/start":
            return START_PAYLOAD
        return await super().prepare(conversation_id, incoming)

    def read_webhook(self, request: Request) -> Parsed | HTTPResponse:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        if not same_secret(given, self.config["secret_token"]):
            return self.forbidden("missing or wrong X-Telegram-Bot-Api-Secret-Token")
        return parse_update(request.body or b"")

    def acknowledge(self) -> HTTPResponse:
        return response.json({"ok": True})
