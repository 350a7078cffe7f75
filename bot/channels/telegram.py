"""Telegram (Bot API webhook).

Webhook ``/webhooks/telegram/webhook``, registered with ``setWebhook`` and a ``secret_token``;
Telegram sends that secret in ``X-Telegram-Bot-Api-Secret-Token`` on every update, and a request
without the right one is refused. Handled updates (private chats only):

* ``message.text`` (``/start`` greets; other ``/commands`` are read as plain words);
* ``message.photo`` (the largest size) or ``message.document``, with ``caption``: the file is
  looked up with ``getFile`` and downloaded from ``{api_base_url}/file/bot<token>/<file_path>``
  (bot/channels/media.py);
* ``callback_query``: a press on one of our inline keyboard buttons.

Replies: ``POST {api_base_url}/bot<token>/sendMessage``; buttons become an inline keyboard, one
button per row. An agent's image or file goes first with ``sendPhoto`` / ``sendDocument`` by URL
(Telegram fetches the signed link), its link as text if Telegram cannot take it. Telegram caps
``callback_data`` at 64 bytes and a client can send any data, so each button carries a random
token bound to the chat (bot/channels/buttons.py, like every platform) for ``button_ttl_s``: a
forged or expired token is answered with "expired" and not processed. Button presses are
acknowledged with ``answerCallbackQuery`` so the client stops its spinner.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from rasa.core.channels.channel import OutputChannel
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from askagency.numbers import ascii_int
from bot.channels.buttons import EXPIRED_TEXT
from bot.channels.common import (
    Incoming,
    MediaRef,
    Option,
    Parsed,
    as_dict,
    as_list,
    choices_of,
    id_text,
    json_object,
    language_tag,
    outgoing_media,
    same_secret,
    split_text,
    text_of,
    truncate,
)
from bot.channels.media import UNAVAILABLE, MediaSource
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
        elif media_of(message):
            caption = message.get("caption")
            parsed.messages.append(
                Incoming(
                    chat_id,
                    caption if isinstance(caption, str) else "",
                    message_id,
                    language=language_tag(sender.get("language_code")),
                    media=media_of(message),
                )
            )
        elif not isinstance(message.get("text"), str):
            parsed.ignored.append("message without text, photo or document")
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


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def media_of(message: dict[str, Any]) -> tuple[MediaRef, ...]:
    """The photo (its largest size: Telegram lists several) or the document of a message."""
    sizes = [as_dict(size) for size in as_list(message.get("photo"))]
    sizes = [size for size in sizes if isinstance(size.get("file_id"), str) and size["file_id"]]
    if sizes:
        largest = max(
            sizes,
            key=lambda s: (
                (_size(s.get("width")) or 0) * (_size(s.get("height")) or 0)
                or (_size(s.get("file_size")) or 0)
            ),
        )
        return (MediaRef(largest["file_id"], "image", size=_size(largest.get("file_size"))),)
    document = as_dict(message.get("document"))
    if isinstance(document.get("file_id"), str) and document["file_id"]:
        name, mime = document.get("file_name"), document.get("mime_type")
        return (
            MediaRef(
                document["file_id"],
                mime if isinstance(mime, str) else "",
                name if isinstance(name, str) else "",
                _size(document.get("file_size")),
            ),
        )
    return ()


def keyboard(buttons: list[tuple[str, str]]) -> dict[str, Any]:
    """``buttons``: (label, callback_data) pairs, one per row."""
    return {
        "inline_keyboard": [
            [{"text": truncate(label, BUTTON_TEXT_LIMIT), "callback_data": data}]
            for label, data in buttons
        ]
    }


def chat_id_value(chat_id: str) -> int | str:
    """Telegram's chat ids are integers (groups' negative); anything else is kept as text."""
    value = ascii_int(chat_id.removeprefix("-"))
    if value is None:
        return chat_id
    return -value if chat_id.startswith("-") else value


class TelegramOutput(PlatformOutput):
    channel_name = "telegram"

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        channel: TelegramInput = self.channel  # type: ignore[assignment]
        chat_id = channel.platform_id(conversation_id)
        media = outgoing_media(message)
        text = text_of(message, media)
        if media is not None:
            method, field = (
                ("sendPhoto", "photo") if media.is_image else ("sendDocument", "document")
            )
            sent = await channel.http.request(
                "POST",
                channel.method_url(method),
                label=method,
                json_body={"chat_id": chat_id_value(chat_id), field: media.url},
            )
            if not sent.ok:  # Telegram could not fetch or take the file: send its link
                text = "\n".join(part for part in (text, media.url) if part)
        parts = split_text(text, TEXT_LIMIT)
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

    async def media_source(self, ref: MediaRef) -> MediaSource | str:
        """``getFile`` gives the file's path; the download URL carries the bot token, on the
        API host only. A path that could leave the bot's file folder is refused."""
        result = await self.http.request(
            "POST", self.method_url("getFile"), label="getFile", json_body={"file_id": ref.ref}
        )
        body = result.body if isinstance(result.body, dict) else {}
        path = as_dict(body.get("result")).get("file_path")
        if not result.ok or not isinstance(path, str) or not path or ".." in path.split("/"):
            return UNAVAILABLE
        base = self.config["api_base_url"].rstrip("/")
        url = f"{base}/file/bot{self.config['bot_token']}/{quote(path.lstrip('/'), safe='/')}"
        return MediaSource(url, name=ref.name)

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
        if incoming.media:  # a caption is not a command
            return await super().prepare(conversation_id, incoming)
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
