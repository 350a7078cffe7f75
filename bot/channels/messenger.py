"""Facebook Messenger (Meta Graph API webhooks + Send API).

Webhook ``/webhooks/messenger/webhook``:

* ``GET`` with ``hub.mode=subscribe``, ``hub.verify_token`` and ``hub.challenge``: Meta's
  subscription check; the challenge is echoed when the verify token matches.
* ``POST``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, key = app secret>``.
  ``object == "page"`` events; per ``entry[].messaging[]``: ``message.text`` (typed),
  ``message.quick_reply.payload`` and ``postback.payload`` (our buttons), ``message.attachments``
  of type ``image`` or ``file`` (``payload.url`` on Meta's CDN, fetched without any token:
  bot/channels/media.py); echoes of the page's own messages, deliveries, reads, stickers and
  other attachment types are ignored.

Replies: ``POST {api_base_url}/{graph_version}/me/messages?access_token=<page token>`` with
``messaging_type: RESPONSE``, or ``MESSAGE_TAG`` + ``tag: HUMAN_AGENT`` for an agent's replies and
close (allowed up to 7 days after the citizen's last message instead of 24 hours). An agent's
image or file goes first as an attachment by URL (``type: image`` / ``file``; Meta fetches the
signed link), the link as text if Meta refuses it. Buttons become quick replies (at most 13,
titles at most 20 characters; longer titles are also listed, numbered, in the text and a typed
number selects).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from rasa.core.channels.channel import OutputChannel
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.common import (
    Choice,
    Incoming,
    MediaRef,
    Option,
    OutgoingMedia,
    Parsed,
    as_dict,
    as_list,
    choices_of,
    from_a_person,
    id_text,
    json_object,
    numbered_list,
    outgoing_media,
    same_secret,
    split_text,
    text_of,
    truncate,
)
from bot.channels.platform import PlatformInput, PlatformOutput

logger = logging.getLogger(__name__)

TEXT_LIMIT = 2000
QUICK_REPLY_TITLE_LIMIT = 20
QUICK_REPLY_MAX = 13
PAYLOAD_LIMIT = 1000
MEDIA_TYPES = ("image", "file")
# Meta's CDNs, where attachment URLs point (scontent-*.xx.fbcdn.net, lookaside.fbsbx.com).
CDN_HOSTS = ".fbcdn.net,.fbsbx.com"


def signature_of(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def valid_signature(body: bytes, header: str | None, app_secret: str) -> bool:
    return same_secret((header or "").strip().lower(), signature_of(body, app_secret))


def parse_events(body: bytes) -> Parsed:
    """The messages in a Messenger webhook body; never raises."""
    data = json_object(body)
    if isinstance(data, Parsed):
        return data
    parsed = Parsed()
    if data.get("object") != "page":
        parsed.ignored.append(f"object {str(data.get('object'))[:40]!r}")
        return parsed
    for entry in as_list(data.get("entry")):
        for event in as_list(as_dict(entry).get("messaging")):
            incoming = _incoming(as_dict(event), parsed)
            if incoming:
                parsed.messages.append(incoming)
    return parsed


def _incoming(event: dict[str, Any], parsed: Parsed) -> Incoming | None:
    sender = id_text(as_dict(event.get("sender")).get("id"))
    page = id_text(as_dict(event.get("recipient")).get("id"))  # picks the location
    if sender is None:
        parsed.ignored.append("event without sender id")
        return None
    message = event.get("message")
    postback = event.get("postback")
    if isinstance(message, dict):
        if message.get("is_echo"):
            parsed.ignored.append("echo of the page's own message")
            return None
        mid = id_text(message.get("mid"))
        payload = as_dict(message.get("quick_reply")).get("payload")
        if mid and isinstance(payload, str) and payload:
            return Incoming(sender, payload, mid, is_payload=True, recipient=page)
        text = message.get("text")
        media = _media(message)
        if mid and media:
            caption = text if isinstance(text, str) else ""
            return Incoming(sender, caption, mid, recipient=page, media=media)
        if mid and isinstance(text, str):
            return Incoming(sender, text, mid, recipient=page)
        parsed.ignored.append("message without text or photo (sticker, video, audio...)")
        return None
    if isinstance(postback, dict):
        payload = postback.get("payload")
        mid = id_text(postback.get("mid")) or _postback_id(sender, event)
        if isinstance(payload, str) and payload and mid:
            return Incoming(sender, payload, mid, is_payload=True, recipient=page)
        parsed.ignored.append("postback without payload")
        return None
    kinds = sorted(k for k in event if k not in ("sender", "recipient", "timestamp"))
    parsed.ignored.append(f"event {','.join(kinds)[:60] or 'empty'}")
    return None


def _media(message: dict[str, Any]) -> tuple[MediaRef, ...]:
    """The photos and files of a message; stickers (images with a ``sticker_id``, like the
    thumbs-up) are reactions, not files."""
    found = []
    for attachment in as_list(message.get("attachments")):
        attachment = as_dict(attachment)
        payload = as_dict(attachment.get("payload"))
        url = payload.get("url")
        kind = attachment.get("type")
        if kind in MEDIA_TYPES and "sticker_id" not in payload and isinstance(url, str) and url:
            found.append(MediaRef(url, content_type=str(kind)))
    return tuple(found)


def _postback_id(sender: str, event: dict[str, Any]) -> str | None:
    """Older postbacks have no ``mid``; sender + timestamp identifies a redelivery."""
    timestamp = id_text(event.get("timestamp"))
    return f"postback-{sender}-{timestamp}" if timestamp else None


def build_messages(psid: str, message: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Choice]]:
    """Send API bodies for one client message, and the choices a typed number selects. An
    image or file is the first body (:func:`media_body`)."""
    media = outgoing_media(message)
    text = text_of(message, media)
    choices = [c for c in choices_of(message) if len(c.payload) <= PAYLOAD_LIMIT][:QUICK_REPLY_MAX]
    numbered = any(len(c.title) > QUICK_REPLY_TITLE_LIMIT for c in choices)
    if numbered:
        text = (text + "\n\n" if text else "") + numbered_list([c.title for c in choices])
    parts = split_text(text, TEXT_LIMIT)
    if choices and not parts:
        parts = ["…"]
    # A person's reply (and their close) may come hours or days after the citizen's last
    # message: Meta allows it for 7 days with the HUMAN_AGENT tag, where a RESPONSE is refused
    # after 24 hours. The bot's own messages are RESPONSEs (the tag is for people only).
    if from_a_person(message.get("custom")):
        kind: dict[str, str] = {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    else:
        kind = {"messaging_type": "RESPONSE"}
    bodies = [{"recipient": {"id": psid}, **kind, "message": {"text": part}} for part in parts]
    if media is not None:
        bodies.insert(0, {"recipient": {"id": psid}, **kind, "message": media_body(media)})
    if choices:
        bodies[-1]["message"]["quick_replies"] = [
            {
                "content_type": "text",
                "title": truncate(
                    f"{n}. {c.title}" if numbered else c.title, QUICK_REPLY_TITLE_LIMIT
                ),
                "payload": c.payload,
            }
            for n, c in enumerate(choices, start=1)
        ]
    return bodies, choices if numbered else []


def media_body(media: OutgoingMedia) -> dict[str, Any]:
    """A Send API ``message`` with the image or file at ``media.url`` (Meta fetches it)."""
    kind = "image" if media.is_image else "file"
    return {"attachment": {"type": kind, "payload": {"url": media.url, "is_reusable": False}}}


class MessengerOutput(PlatformOutput):
    channel_name = "messenger"

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        channel = self.channel
        bodies, numbered = build_messages(channel.platform_id(conversation_id), message)
        channel.choices.remember(conversation_id, numbered)
        url = (
            f"{channel.config['api_base_url'].rstrip('/')}/{channel.config['graph_version']}"
            "/me/messages"
        )
        for body in bodies:
            result = await channel.http.request(
                "POST",
                url,
                label="send",
                json_body=body,
                params={"access_token": channel.config["page_access_token"]},
            )
            attachment = as_dict(body["message"].get("attachment"))
            if not result.ok and attachment:  # Meta could not take the file: send its link
                link = {**body, "message": {"text": attachment["payload"]["url"]}}
                result = await channel.http.request(
                    "POST",
                    url,
                    label="send",
                    json_body=link,
                    params={"access_token": channel.config["page_access_token"]},
                )
            if not result.ok:
                return


class MessengerInput(PlatformInput):
    """``bot.channels.messenger.MessengerInput`` in credentials.yml; env
    ``ASKAGENCY_MESSENGER_*``."""

    env_prefixes = ("MESSENGER",)
    options = (
        Option("verify_token", secret=True),
        Option("app_secret", secret=True),
        Option("page_access_token", secret=True),
        Option("api_base_url", "https://graph.facebook.com"),
        Option("graph_version", "v19.0"),
    )
    url_secret = "page_access_token"
    media_host_names = CDN_HOSTS
    required = ("app_secret", "page_access_token")

    @classmethod
    def name(cls) -> str:
        return "messenger"

    def get_output_channel(self) -> OutputChannel:
        return MessengerOutput(self)

    def read_webhook(self, request: Request) -> Parsed | HTTPResponse:
        body = request.body or b""
        header = request.headers.get("X-Hub-Signature-256")
        if not valid_signature(body, header, self.config["app_secret"]):
            return self.forbidden("missing or wrong X-Hub-Signature-256")
        return parse_events(body)

    def acknowledge(self) -> HTTPResponse:
        return response.text("EVENT_RECEIVED")

    def add_routes(self, blueprint: Blueprint) -> None:
        @blueprint.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            mode = request.args.get("hub.mode")
            token = request.args.get("hub.verify_token")
            challenge = request.args.get("hub.challenge")
            if not self.config.get("verify_token"):
                return self.forbidden(
                    f"verification refused: {self.env_name('verify_token')} unset"
                )
            if mode != "subscribe" or not same_secret(token, self.config["verify_token"]):
                return self.forbidden("verification with a wrong hub.mode or hub.verify_token")
            if not challenge:
                return self.bad_request("verification without hub.challenge")
            return response.text(challenge)
