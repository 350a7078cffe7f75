"""Twilio Programmable Messaging: SMS (channel ``sms``) and WhatsApp (channel ``whatsapp``).

Webhooks ``/webhooks/sms/webhook`` and ``/webhooks/whatsapp/webhook`` (set them as the number's
"A message comes in" URL, HTTP POST). Twilio signs each request in ``X-Twilio-Signature``:
base64(HMAC-SHA1(auth token, URL + every POST parameter name and value, sorted by name)). The
URL is the one Twilio called, so behind a proxy set ``webhook_url`` to the public URL. The form
carries ``MessageSid``, ``From`` (``whatsapp:+1...`` for WhatsApp), ``To``, ``Body`` and, for a
photo or file (MMS, WhatsApp), ``NumMedia`` with ``MediaUrl{i}`` / ``MediaContentType{i}``;
status callbacks are ignored. Media URLs are on the API host and need the account's basic auth
(sent there only); they redirect to Twilio's CDN (``mms.twiliocdn.com``, or S3 for media stored
before "Enforce HTTP Auth on Media URLs"), which is fetched without credentials.

Replies go through the REST API, ``POST {api_base_url}/2010-04-01/Accounts/<sid>/Messages.json``
(the webhook answers an empty TwiML ``<Response/>`` at once, so a slow turn never hits Twilio's
15 s webhook timeout). SMS has no buttons: options are a numbered list and the reply "2" picks
option 2. Long SMS answers are split between words into single-segment messages marked
``(1/3)``; WhatsApp messages are split at 1600 characters. An agent's image or file goes as
``MediaUrl`` with the last part (Twilio fetches the signed link: MMS, WhatsApp), or as its link
in the text when Twilio refuses it (e.g. no MMS to that number). A person's reply more than 24 hours
after the citizen's last WhatsApp message (WhatsApp refuses free-form text then) goes as the
Content Template ``reply_template_sid`` with the reply as its variable. STOP/START/HELP are
handled here and never reach the bot (see :mod:`bot.channels.sms`); every outbound text first
checks the shared opt-out list for the number it is addressed to (askagency/opt_out.py) and is
not sent to a number that opted out, or when the list cannot be read (fail closed).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from rasa.core.channels.channel import OutputChannel
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from askagency.channels import log_ref
from askagency.opt_out import OptOutList, database_url, normalise_number
from bot.channels.common import (
    Incoming,
    MediaRef,
    Option,
    Parsed,
    choices_of,
    default_data_dir,
    from_a_person,
    numbered_list,
    outgoing_media,
    plain_text_of,
    same_secret,
    split_text,
    text_of,
)
from bot.channels.http import SendResult
from bot.channels.media import MediaSource, origin
from bot.channels.platform import PlatformInput, PlatformOutput
from bot.channels.shared_state import digest
from bot.channels.sms import Keyword, import_legacy_list, keyword_of, segment_rule

logger = logging.getLogger(__name__)

WHATSAPP_PREFIX = "whatsapp:"
E164 = re.compile(r"^\+[1-9][0-9]{4,14}$")
WHATSAPP_LIMIT = 1600  # Twilio's maximum Body length
# WhatsApp's customer service window (24 h after the citizen's last message), less a minute so
# a reply sent at its very end is not refused on the way.
WHATSAPP_WINDOW_S = 24 * 3600 - 60
TEMPLATE_VARIABLE_LIMIT = 1024
MAX_FORM_FIELDS = 200
UNSUBSCRIBED_ERROR = 21610  # Twilio: "Attempt to send to unsubscribed recipient"
# Twilio allows 10 media per message; bot/channels/media.py takes the first 4.
MAX_MEDIA_FIELDS = 10
# Where Twilio's media URLs redirect (see the module doc).
CDN_HOSTS = ".twiliocdn.com,s3-external-1.amazonaws.com"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

DEFAULT_HELP = (
    "Text your question and I will answer from our official FAQ. Reply STOP to stop "
    "messages, START to start again."
)
DEFAULT_STOP = (
    "You are unsubscribed and will get no more messages from this number. Reply START to "
    "subscribe again."
)
DEFAULT_START = "You are subscribed again. Text your question any time. Reply STOP to unsubscribe."


def parse_form(body: bytes) -> tuple[list[tuple[str, str]] | None, str | None]:
    """``application/x-www-form-urlencoded`` pairs, or an error; never raises."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"body is not a valid form ({type(exc).__name__}: {str(exc)[:80]})"
    return pairs, None


def signature_of(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    data = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode("utf-8", "replace"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """The URL as given, and with the default port added or removed: Twilio signs the URL as
    configured in its console, which may or may not spell the port out."""
    variants = [url]
    try:  # the Host header is the sender's choice: "host:abc" or "[::1" must not raise
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return variants
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if default is None or not parts.hostname:
        return variants
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    if port == default:
        variants.append(urlunsplit(parts._replace(netloc=userinfo + host)))
    elif port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{userinfo}{host}:{default}")))
    return variants


def valid_signature(
    urls: Sequence[str], params: list[tuple[str, str]], header: str | None, auth_token: str
) -> bool:
    if not header:
        return False
    return any(
        same_secret(header.strip(), signature_of(variant, params, auth_token))
        for url in urls
        for variant in url_variants(url)
    )


def parse_message(pairs: list[tuple[str, str]], whatsapp: bool) -> Parsed:
    """The inbound message of a Twilio webhook form; never raises."""
    form = dict(pairs)
    parsed = Parsed()
    if "Body" not in form and ("MessageStatus" in form or "SmsStatus" in form):
        parsed.ignored.append(f"status callback {form.get('MessageStatus', '')[:20]!r}")
        return parsed
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
    sender = form.get("From", "").strip()
    if not sid or not sender:
        return Parsed(error="form without MessageSid or From: not a Twilio message webhook")
    if sender.startswith(WHATSAPP_PREFIX) != whatsapp:
        parsed.ignored.append(
            f"{'SMS' if whatsapp else 'WhatsApp'} message on the "
            f"{'WhatsApp' if whatsapp else 'SMS'} webhook (check the number's webhook URL)"
        )
        return parsed
    body = form.get("Body", "")
    media = media_of(form)
    if not body.strip() and not media:
        parsed.ignored.append("message without text or media")
        return parsed
    address = sender[len(WHATSAPP_PREFIX) :] if whatsapp else sender
    if not E164.match(address):
        parsed.ignored.append("sender is not an E.164 phone number")
        return parsed
    # The conversation id carries the digits only ("sms-15551234567"): see platform.py.
    # The number the citizen wrote to picks the location (a number per airport).
    recipient = form.get("To", "").strip().removeprefix(WHATSAPP_PREFIX) or None
    parsed.messages.append(Incoming(address[1:], body, sid, recipient=recipient, media=media))
    return parsed


def media_of(form: dict[str, str]) -> tuple[MediaRef, ...]:
    """``MediaUrl{i}`` / ``MediaContentType{i}`` for i below ``NumMedia`` (at most 10)."""
    try:
        count = int(form.get("NumMedia", "0").strip() or 0)
    except ValueError:
        return ()
    refs = []
    for index in range(max(0, min(count, MAX_MEDIA_FIELDS))):
        url = form.get(f"MediaUrl{index}", "").strip()
        if url:
            refs.append(MediaRef(url, content_type=form.get(f"MediaContentType{index}", "")))
    return tuple(refs)


def unsubscribed(result: SendResult) -> bool:
    """Twilio refused the message because the number opted out (at Twilio or the carrier)."""
    return isinstance(result.body, dict) and result.body.get("code") == UNSUBSCRIBED_ERROR


_lists: dict[str, OptOutList] = {}


def opt_out_list(url: str) -> OptOutList:
    """One list (one connection pool) per database in this process, shared by SMS and
    WhatsApp."""
    found = _lists.get(url)
    if found is None:
        found = _lists[url] = OptOutList(url)
    return found


class TwilioOutput(PlatformOutput):
    channel_name = "twilio"

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        channel: TwilioInput = self.channel  # type: ignore[assignment]
        media = outgoing_media(message)
        text = text_of(message, media)
        choices = choices_of(message)
        if choices:
            text = (text + "\n\n" if text else "") + numbered_list([c.title for c in choices])
        channel.choices.remember(conversation_id, choices)
        await channel.send_text(conversation_id, text, media_url=media.url if media else None)


class SmsOutput(TwilioOutput):
    channel_name = "sms"


class WhatsAppOutput(TwilioOutput):
    channel_name = "whatsapp"

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        """A person's reply after WhatsApp's 24-hour window closed goes as the configured
        template (WhatsApp refuses free-form text then); everything else as text."""
        channel: TwilioInput = self.channel  # type: ignore[assignment]
        if from_a_person(message.get("custom")) and not channel.window_open(conversation_id):
            template = str(channel.config.get("reply_template_sid") or "")
            if template:
                await channel.send_template(conversation_id, template, plain_text_of(message))
                return
            logger.warning(
                "whatsapp: %s last wrote more than 24 hours ago and no reply template is set "
                "(%s); WhatsApp will refuse this reply",
                log_ref(conversation_id),
                channel.env_name("reply_template_sid"),
            )
        await super().deliver(conversation_id, message)


class TwilioInput(PlatformInput):
    """Shared by :class:`SmsInput` and :class:`WhatsAppInput`."""

    whatsapp: ClassVar[bool] = False
    output_class: ClassVar[type[TwilioOutput]] = TwilioOutput
    options = (
        Option("account_sid"),
        Option("auth_token", secret=True),
        # An API key may send instead of the account's auth token (signatures always use it).
        Option("api_key_sid"),
        Option("api_key_secret", secret=True),
        Option("from_number"),
        Option("messaging_service_sid"),
        Option("webhook_url"),
        Option("api_base_url", "https://api.twilio.com"),
        # 0: one SMS segment per message (160 GSM-7 / 70 UCS-2 characters).
        Option("max_chars", 0, int),
        # Off when Twilio's Advanced Opt-Out already answers STOP/START/HELP for the number.
        Option("keyword_replies", True, bool),
        Option("help_text", DEFAULT_HELP),
        Option("stop_text", DEFAULT_STOP),
        Option("start_text", DEFAULT_START),
        # The product database that holds the opt-out list (default: ASKAGENCY_DATABASE_URL,
        # else the SQLite file in the data folder, as every other process resolves it).
        Option("database_url"),
        # The old per-process list (SQLite, keyed by conversation id): imported once, renamed.
        Option("opt_out_db"),
        # WhatsApp: a Twilio Content Template (an "HX..." SID) approved by WhatsApp, with one
        # variable {{1}} for the text, sent for a person's reply once the citizen's last message
        # is more than 24 hours old (free-form text is refused then).
        Option("reply_template_sid"),
    )
    required = ("account_sid", "auth_token")
    media_host_names = CDN_HOSTS

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._opt_outs: OptOutList | None = None

    def missing_settings(self) -> list[str]:
        missing = super().missing_settings()
        if not (self.config.get("from_number") or self.config.get("messaging_service_sid")):
            missing.append("from_number")
        return missing

    def opt_outs(self) -> OptOutList:
        """The shared list; on first use, the STOPs of the old per-process file are moved in."""
        if self._opt_outs is None:
            opt_outs = opt_out_list(self.config.get("database_url") or database_url())
            legacy = self.config.get("opt_out_db") or default_data_dir() / "channel_opt_out.db"
            import_legacy_list(Path(legacy), opt_outs)
            self._opt_outs = opt_outs
        return self._opt_outs

    def number(self, conversation_id: str) -> str | None:
        """The E.164 number a conversation's messages go to (None: not a phone number)."""
        return normalise_number(self.platform_id(conversation_id))

    async def is_opted_out(self, conversation_id: str) -> bool:
        """True for a number that sent STOP; also when the list cannot be read (fail closed:
        a message not sent is better than one sent against a STOP)."""
        number = self.number(conversation_id)
        if number is None:
            return True
        try:
            return await asyncio.to_thread(self.opt_outs().is_opted_out, self.name(), number)
        except Exception as exc:
            logger.error(
                "%s: the opt-out list cannot be read (%s: %s); message to %s not sent",
                self.name(),
                type(exc).__name__,
                exc,
                log_ref(conversation_id),
            )
            return True

    async def record_opt_out(self, conversation_id: str, opted_out: bool) -> None:
        number = self.number(conversation_id)
        if number is None:
            return
        store = self.opt_outs()
        change = store.opt_out if opted_out else store.opt_in
        await asyncio.to_thread(change, self.name(), number)
        logger.info(
            "%s: %s %s",
            self.name(),
            log_ref(conversation_id),
            "opted out (STOP)" if opted_out else "opted in again (START)",
        )

    def get_output_channel(self) -> OutputChannel:
        return self.output_class(self)

    def address(self, conversation_id: str) -> str:
        number = self.number(conversation_id) or ""
        return WHATSAPP_PREFIX + number if self.whatsapp else number

    def parts(self, text: str) -> list[str]:
        limit = int(self.config["max_chars"])
        if self.whatsapp:
            return split_text(text, limit or WHATSAPP_LIMIT, mark_parts=True)
        if limit > 0:
            return split_text(text, limit, mark_parts=True)
        segment, measure = segment_rule(text)
        return split_text(text, segment, measure=measure, mark_parts=True)  # type: ignore[arg-type]

    async def send_text(
        self,
        conversation_id: str,
        text: str,
        *,
        keyword_reply: bool = False,
        media_url: str | None = None,
    ) -> None:
        """Sends ``text`` (split) via the Messages API; stops at the first failed part.
        ``media_url`` goes with the last part; refused, that part is sent again with the link.

        Nothing is sent to a number on the opt-out list, except the answer to a STOP or HELP
        keyword (``keyword_reply``), which carriers require."""
        if not keyword_reply and await self.is_opted_out(conversation_id):
            logger.info(
                "%s: %s opted out (STOP); message not sent", self.name(), log_ref(conversation_id)
            )
            return
        url, auth, sender = self._messages_url(), self._auth(), self._sender()
        parts = self.parts(text) or ([""] if media_url else [])
        for index, part in enumerate(parts):
            form = {"To": self.address(conversation_id), **sender, "Body": part}
            with_media = bool(media_url) and index == len(parts) - 1
            if with_media:
                form["MediaUrl"] = str(media_url)
            result = await self.http.request(
                "POST", url, label="send message", form=form, auth=auth
            )
            if not result.ok and with_media and not unsubscribed(result):
                form.pop("MediaUrl")
                form["Body"] = "\n".join(p for p in (part, str(media_url)) if p)
                result = await self.http.request(
                    "POST", url, label="send message", form=form, auth=auth
                )
            if not result.ok:
                if unsubscribed(result):
                    await self.record_opt_out(conversation_id, opted_out=True)
                return

    def window_open(self, conversation_id: str) -> bool:
        """True while the citizen's last message is less than 24 hours old (WhatsApp's customer
        service window), as recorded by :meth:`prepare` in the channels' shared state. Unknown
        (a restart without Redis, an evicted key) counts as closed: the template also works
        inside the window."""
        return self.state.recall(self._window_key(conversation_id)) is not None

    def _window_key(self, conversation_id: str) -> str:
        return f"window:{self.name()}:{digest(self.number(conversation_id) or conversation_id)}"

    async def send_template(self, conversation_id: str, content_sid: str, text: str) -> None:
        """Sends the Content Template ``content_sid`` with ``text`` as its variable 1 (cut to
        WhatsApp's 1,024 characters for a variable)."""
        if await self.is_opted_out(conversation_id):
            logger.info(
                "%s: %s opted out; template not sent", self.name(), log_ref(conversation_id)
            )
            return
        variables = json.dumps({"1": text[:TEMPLATE_VARIABLE_LIMIT]}, ensure_ascii=False)
        form = {
            "To": self.address(conversation_id),
            **self._sender(),
            "ContentSid": content_sid,
            "ContentVariables": variables,
        }
        await self.http.request(
            "POST", self._messages_url(), label="send template", form=form, auth=self._auth()
        )

    async def media_source(self, ref: MediaRef) -> MediaSource | str:
        """Basic auth only when the media URL is on the configured API origin: never to a host
        that is not Twilio's own (a redirect to the CDN goes without it: media.py)."""
        own = origin(ref.ref) is not None and origin(ref.ref) == origin(
            str(self.config["api_base_url"])
        )
        return MediaSource(ref.ref, auth=self._auth() if own else None, name=ref.name)

    def _messages_url(self) -> str:
        config = self.config
        return (
            f"{config['api_base_url'].rstrip('/')}/2010-04-01/Accounts/"
            f"{config['account_sid']}/Messages.json"
        )

    def _auth(self) -> aiohttp.BasicAuth:
        config = self.config
        if config.get("api_key_sid") and config.get("api_key_secret"):
            return aiohttp.BasicAuth(config["api_key_sid"], config["api_key_secret"])
        return aiohttp.BasicAuth(config["account_sid"], config["auth_token"])

    def _sender(self) -> dict[str, str]:
        if self.config.get("messaging_service_sid"):
            return {"MessagingServiceSid": self.config["messaging_service_sid"]}
        return {"From": self.from_address()}

    def from_address(self) -> str:
        number = str(self.config.get("from_number") or "")
        if self.whatsapp and not number.startswith(WHATSAPP_PREFIX):
            return WHATSAPP_PREFIX + number
        return number

    async def prepare(self, conversation_id: str, incoming: Incoming) -> str | None:
        opted_out = await self.is_opted_out(conversation_id)
        keyword = keyword_of(incoming.text, opted_out)
        replies = bool(self.config["keyword_replies"])
        if keyword is Keyword.STOP:
            await self.record_opt_out(conversation_id, opted_out=True)
            if replies:
                await self.send_text(conversation_id, self.config["stop_text"], keyword_reply=True)
            return None
        if keyword is Keyword.START:
            await self.record_opt_out(conversation_id, opted_out=False)
            if replies:
                await self.send_text(conversation_id, self.config["start_text"])
            return None
        if keyword is Keyword.HELP:
            if replies:
                await self.send_text(conversation_id, self.config["help_text"], keyword_reply=True)
            return None
        if opted_out:
            logger.info(
                "%s: message from opted-out %s not processed", self.name(), log_ref(conversation_id)
            )
            return None
        if self.whatsapp:  # the citizen wrote: WhatsApp's 24-hour window (re)opens
            self.state.remember(self._window_key(conversation_id), "1", WHATSAPP_WINDOW_S)
        return await super().prepare(conversation_id, incoming)

    def signed_urls(self, request: Request) -> list[str]:
        if self.config.get("webhook_url"):
            return [self.config["webhook_url"]]
        urls = [request.url]
        proto = request.headers.get("X-Forwarded-Proto")
        host = request.headers.get("X-Forwarded-Host")
        if proto or host:
            try:
                parts = urlsplit(request.url)
            except ValueError:
                return urls
            urls.append(
                urlunsplit(
                    parts._replace(
                        scheme=(proto or parts.scheme).split(",")[0].strip(),
                        netloc=(host or parts.netloc).split(",")[0].strip(),
                    )
                )
            )
        return urls

    def read_webhook(self, request: Request) -> Parsed | HTTPResponse:
        header = request.headers.get("X-Twilio-Signature")
        if not header:
            return self.forbidden("missing X-Twilio-Signature")
        pairs, error = parse_form(request.body or b"")
        if pairs is None:
            return self.bad_request(error or "body is not a valid form")
        if not valid_signature(self.signed_urls(request), pairs, header, self.config["auth_token"]):
            return self.forbidden(
                "wrong X-Twilio-Signature (if Rasa is behind a proxy, set "
                f"ASKAGENCY_{self.env_prefixes[0]}_WEBHOOK_URL to the URL registered at Twilio)"
            )
        return parse_message(pairs, self.whatsapp)

    def acknowledge(self) -> HTTPResponse:
        return response.text(EMPTY_TWIML, content_type="text/xml")


class SmsInput(TwilioInput):
    """``bot.channels.twilio.SmsInput``; env ``ASKAGENCY_SMS_*``, then ``ASKAGENCY_TWILIO_*``."""

    env_prefixes = ("SMS", "TWILIO")
    output_class = SmsOutput

    @classmethod
    def name(cls) -> str:
        return "sms"


class WhatsAppInput(TwilioInput):
    """``bot.channels.twilio.WhatsAppInput``; env ``ASKAGENCY_WHATSAPP_*``, then
    ``ASKAGENCY_TWILIO_*``."""

    env_prefixes = ("WHATSAPP", "TWILIO")
    whatsapp = True
    output_class = WhatsAppOutput

    @classmethod
    def name(cls) -> str:
        return "whatsapp"
