"""X (Twitter) direct messages through the Account Activity API.

Webhook ``/webhooks/x/webhook`` (register it as the Account Activity webhook URL):

* ``GET ?crc_token=...``: the Challenge-Response Check, answered with
  ``{"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret, crc_token))}``. That is
  the very construction of the POST signature, so the endpoint would sign any webhook body an
  attacker sent as a ``crc_token``; only tokens shaped like X's (16-128 base64/url-safe
  characters, which no JSON body can be) are answered, anything else is a 400.
* ``POST``: ``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256 of the raw body, key =
  consumer secret>``. ``direct_message_events[]`` of type ``message_create`` become messages;
  a quick-reply answer's ``metadata`` is our button token (bot/channels/buttons.py); a photo
  (``message_data.attachment.media`` of type ``photo``) is fetched from ``media_url_https`` on
  ``ton.twitter.com`` with a GET signed like the replies (OAuth 1.0a user context), and the
  t.co link X appends to the text for it is removed from the caption. Messages
  the account itself sent (``sender_id == for_user_id``, the echo of every reply) and every
  other event type are ignored.

Replies: ``POST {api_base_url}/1.1/direct_messages/events/new.json`` signed with OAuth 1.0a
(consumer key/secret + the account's access token/secret); buttons become a ``quick_reply`` of
type ``options`` (labels at most 36 characters, descriptions 72, at most 20 options).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from rasa.core.channels.channel import OutputChannel
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.common import (
    Incoming,
    MediaRef,
    Option,
    Parsed,
    as_dict,
    choices_of,
    id_text,
    json_object,
    plain_text_of,
    same_secret,
    split_text,
    truncate,
)
from bot.channels.media import MediaSource
from bot.channels.platform import PlatformInput, PlatformOutput

logger = logging.getLogger(__name__)

TEXT_LIMIT = 10_000
LABEL_LIMIT = 36
DESCRIPTION_LIMIT = 72
METADATA_LIMIT = 1000
OPTIONS_MAX = 20
SEND_PATH = "/1.1/direct_messages/events/new.json"
# X's CRC tokens are short base64 strings; a webhook body (a JSON object) never matches.
CRC_TOKEN = re.compile(r"^[A-Za-z0-9+/=_-]{16,128}$")
# Where DM media lives; only reachable with the account's OAuth signature.
MEDIA_HOSTS = "ton.twitter.com"


def hmac_b64(secret: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def crc_response(crc_token: str, consumer_secret: str) -> dict[str, str]:
    """The CRC answer; raises ValueError for a token not shaped like X's (see module doc)."""
    if not CRC_TOKEN.match(crc_token):
        raise ValueError("crc_token is not 16-128 base64 characters")
    return {"response_token": "sha256=" + hmac_b64(consumer_secret, crc_token.encode())}


def valid_signature(body: bytes, header: str | None, consumer_secret: str) -> bool:
    return same_secret((header or "").strip(), "sha256=" + hmac_b64(consumer_secret, body))


def parse_events(body: bytes, own_user_id: str | None = None) -> Parsed:
    """The DMs in an Account Activity body; never raises. ``own_user_id``: when configured,
    events for any other subscribed account are ignored (replies go out as this account)."""
    data = json_object(body)
    if isinstance(data, Parsed):
        return data
    parsed = Parsed()
    for_user = id_text(data.get("for_user_id"))
    events = data.get("direct_message_events")
    if not isinstance(events, list):
        kinds = ",".join(sorted(k for k in data if k.endswith("_events")))[:80]
        parsed.ignored.append(f"event types {kinds or 'none'}")
        return parsed
    if own_user_id and for_user and for_user != own_user_id:
        parsed.ignored.append(f"events for another account {for_user}")
        return parsed
    for event in events:
        event = as_dict(event)
        if event.get("type") != "message_create":
            parsed.ignored.append(f"direct message event {str(event.get('type'))[:40]!r}")
            continue
        event_id = id_text(event.get("id"))
        create = as_dict(event.get("message_create"))
        sender = id_text(create.get("sender_id"))
        data_ = as_dict(create.get("message_data"))
        if not event_id or not sender:
            parsed.ignored.append("message_create without id or sender")
            continue
        if sender in {for_user, own_user_id} - {None}:
            parsed.ignored.append("the account's own message")
            continue
        quick = as_dict(data_.get("quick_reply_response")).get("metadata")
        media, link = _media(data_)
        if isinstance(quick, str) and quick:
            parsed.messages.append(
                Incoming(sender, quick, event_id, is_payload=True, recipient=for_user)
            )
        elif media:
            text = data_.get("text") if isinstance(data_.get("text"), str) else ""
            caption = text.replace(link, "").strip() if link else text
            parsed.messages.append(
                Incoming(sender, caption, event_id, recipient=for_user, media=media)
            )
        elif isinstance(data_.get("text"), str):
            parsed.messages.append(Incoming(sender, data_["text"], event_id, recipient=for_user))
        else:
            parsed.ignored.append("message_create without text")
    return parsed


def _media(data: dict[str, Any]) -> tuple[tuple[MediaRef, ...], str]:
    """A DM's photo (X allows one attachment) and the t.co link standing for it in the text."""
    attachment = as_dict(data.get("attachment"))
    media = as_dict(attachment.get("media"))
    url = media.get("media_url_https")
    if attachment.get("type") != "media" or media.get("type") != "photo":
        return (), ""
    if not isinstance(url, str) or not url:
        return (), ""
    link = media.get("url")
    return (MediaRef(url, "image"),), link if isinstance(link, str) else ""


# --- OAuth 1.0a (RFC 5849), HMAC-SHA1 --------------------------------------------------------


def _pct(value: str) -> str:
    return quote(value, safe="-._~")


def oauth1_signature(
    method: str, url: str, params: Mapping[str, str], consumer_secret: str, token_secret: str
) -> str:
    """``params``: oauth_* parameters plus query and form parameters (a JSON body is not
    signed). ``url`` without its query string."""
    pairs = sorted((_pct(k), _pct(v)) for k, v in params.items())
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    base = "&".join([method.upper(), _pct(url), _pct(normalized)])
    key = f"{_pct(consumer_secret)}&{_pct(token_secret)}"
    return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()


def oauth1_header(
    method: str,
    url: str,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
    extra_params: Mapping[str, str] | None = None,
    nonce: str | None = None,
    timestamp: int | None = None,
) -> str:
    oauth = {
        "oauth_consumer_key": consumer_key,
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(timestamp if timestamp is not None else int(time.time())),
        "oauth_token": token,
        "oauth_version": "1.0",
    }
    signed = {**oauth, **(extra_params or {})}
    oauth["oauth_signature"] = oauth1_signature(method, url, signed, consumer_secret, token_secret)
    return "OAuth " + ", ".join(f'{_pct(k)}="{_pct(v)}"' for k, v in sorted(oauth.items()))


def build_events(user_id: str, message: dict[str, Any]) -> list[dict[str, Any]]:
    """``direct_messages/events/new`` bodies for one client message."""
    parts = split_text(plain_text_of(message), TEXT_LIMIT)
    choices = [c for c in choices_of(message) if len(c.payload) <= METADATA_LIMIT][:OPTIONS_MAX]
    if choices and not parts:
        parts = ["…"]
    events = []
    for part in parts:
        data: dict[str, Any] = {"text": part}
        events.append(
            {
                "event": {
                    "type": "message_create",
                    "message_create": {"target": {"recipient_id": user_id}, "message_data": data},
                }
            }
        )
    if choices:
        events[-1]["event"]["message_create"]["message_data"]["quick_reply"] = {
            "type": "options",
            "options": [
                {
                    "label": truncate(c.title, LABEL_LIMIT),
                    **(
                        {"description": truncate(c.title, DESCRIPTION_LIMIT)}
                        if len(c.title) > LABEL_LIMIT
                        else {}
                    ),
                    "metadata": c.payload,
                }
                for c in choices
            ],
        }
    return events


class XOutput(PlatformOutput):
    channel_name = "x"

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        channel = self.channel
        config = channel.config
        url = config["api_base_url"].rstrip("/") + SEND_PATH

        def headers() -> dict[str, str]:
            return {
                "Authorization": oauth1_header(
                    "POST",
                    url,
                    config["consumer_key"],
                    config["consumer_secret"],
                    config["access_token"],
                    config["access_token_secret"],
                ),
            }

        for body in build_events(channel.platform_id(conversation_id), message):
            result = await channel.http.request(
                "POST", url, label="send DM", json_body=body, headers=headers
            )
            if not result.ok:
                return


class XInput(PlatformInput):
    """``bot.channels.x.XInput`` in credentials.yml; env ``ASKAGENCY_X_*``."""

    env_prefixes = ("X",)
    options = (
        Option("consumer_key"),
        Option("consumer_secret", secret=True),
        Option("access_token", secret=True),
        Option("access_token_secret", secret=True),
        Option("user_id"),
        Option("api_base_url", "https://api.twitter.com"),
    )
    required = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
    media_host_names = MEDIA_HOSTS

    @classmethod
    def name(cls) -> str:
        return "x"

    def get_output_channel(self) -> OutputChannel:
        return XOutput(self)

    async def media_source(self, ref: MediaRef) -> MediaSource | str:
        """DM media needs a GET signed with the account's OAuth 1.0a keys, like a reply; each
        request (redirects on X's own origin too) gets a fresh signature over its URL and query.
        The signature goes only to the media URL's origin, which must be one of X's hosts."""
        config = self.config

        def headers(url: str) -> dict[str, str]:
            parts = urlsplit(url)
            bare = urlunsplit(parts._replace(query="", fragment=""))
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            return {
                "Authorization": oauth1_header(
                    "GET",
                    bare,
                    config["consumer_key"],
                    config["consumer_secret"],
                    config["access_token"],
                    config["access_token_secret"],
                    extra_params=query,
                )
            }

        own = self.media_hosts().allows(ref.ref)
        return MediaSource(ref.ref, headers=headers if own else None, name=ref.name)

    def read_webhook(self, request: Request) -> Parsed | HTTPResponse:
        body = request.body or b""
        header = request.headers.get("x-twitter-webhooks-signature")
        if not valid_signature(body, header, self.config["consumer_secret"]):
            return self.forbidden("missing or wrong x-twitter-webhooks-signature")
        return parse_events(body, self.config.get("user_id"))

    def add_routes(self, blueprint: Blueprint) -> None:
        @blueprint.route("/webhook", methods=["GET"])
        async def crc(request: Request) -> HTTPResponse:
            if not self.config.get("consumer_secret"):
                return self.forbidden(f"CRC refused: {self.env_name('consumer_secret')} unset")
            token = request.args.get("crc_token")
            if not token:
                return self.bad_request("CRC request without crc_token")
            try:
                return response.json(crc_response(token, self.config["consumer_secret"]))
            except ValueError as exc:  # never sign arbitrary input: it could be a webhook body
                return self.bad_request(f"CRC refused: {exc}")
