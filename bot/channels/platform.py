"""Base classes of the platform channels: configuration, webhook plumbing, hand-over to Rasa.

A webhook request is checked (size, secret configured, signature), parsed, acknowledged at
once, and each new message is processed in a background task: platforms expect their webhook
answered within seconds and redeliver otherwise, while a Rasa turn with a custom action can
take longer. Conversation ids are ``<channel>-<platform id>`` (e.g. ``telegram-12345``) so ids
of different platforms never share a tracker; the output channel strips the prefix again. They
contain only URL-unreserved characters, so they read the same in every URL and log (Rasa's HTTP
API, Sanic 21, does not percent-decode ``/conversations/<id>/...``: see handoff/rasa_api.py).
Messages from other sender ids are ignored.

Buttons carry server-side tokens, never Rasa payloads (bot/channels/buttons.py): a platform
client can send any "button payload" it likes, and a payload is intent syntax.

A message with photos or files (``Incoming.media``) becomes the server-built
``/share_attachment`` once its files are fetched and stored (bot/channels/media.py), with their
ids and the caption in the metadata, or the reject code when none could be stored: a photo-only
message is always answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, ClassVar

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from askagency import bot_messages as msg
from askagency.channels import log_ref, platform_message_id
from bot.channels.buttons import EXPIRED_TEXT, ButtonTokens
from bot.channels.choices import PendingChoices
from bot.channels.common import (
    MAX_BODY_BYTES,
    ChannelLocations,
    Incoming,
    MediaRef,
    Option,
    Parsed,
    log_ignored,
    resolve_options,
    user_text,
)
from bot.channels.http import RetryPolicy
from bot.channels.media import (
    DEFAULT_MAX_BYTES,
    AttachmentUploads,
    MediaHosts,
    MediaHttp,
    MediaSource,
    ingest,
)
from bot.channels.message import client_message
from bot.channels.shared_state import shared_redis_url, state_for

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
SAFE_ID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
# What Rasa gets for a message with files: built here, never typed (typed "/" is stripped).
SHARE_ATTACHMENT_TEXT = f"/{msg.INTENT_SHARE_ATTACHMENT}"

COMMON_OPTIONS = (
    Option("timeout_s", 10.0, float),
    Option("max_attempts", 3, int),
    Option("retry_backoff_s", 0.5, float),
    # A platform redelivers a webhook it thinks failed (Telegram until it gets a 2xx, Messenger
    # and X for hours); ids seen in this window are dropped. Shared by the replicas through
    # Redis when configured (bot/channels/shared_state.py), else per process.
    Option("dedup_ttl_s", 86400.0, float),
    # How long options sent as a numbered list can be picked by number (shared like the ids).
    Option("choices_ttl_s", 3600.0, float),
    # How long a button shown on a platform can be pressed (its token is kept this long).
    Option("button_ttl_s", 7 * 86400.0, float),
    # The agency location this channel's messages are about (common.ChannelLocations):
    # "DEN", or "+13035550100=DEN,+13125550100=ORD" per number, page or account written to.
    Option("location", ""),
    # A citizen's photo or file larger than this is not downloaded (reading stops there).
    Option("media_max_bytes", DEFAULT_MAX_BYTES, int),
    # Hosts files may be fetched from besides the API base URL's origin (comma-separated: HTTPS
    # host names, ".example.com" for any host under it, or "scheme://host:port" origins); empty:
    # the platform's own CDNs (PlatformInput.media_host_names).
    Option("media_hosts", ""),
)


class PlatformInput(InputChannel):
    """An input channel for one messaging platform; subclasses add parsing and routes."""

    env_prefixes: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[tuple[Option, ...]] = ()
    # Settings without which no webhook can be trusted (checked on every request).
    required: ClassVar[tuple[str, ...]] = ()
    # The setting that travels inside request URLs (a token) and must be kept out of logs.
    url_secret: ClassVar[str | None] = None
    # The platform's media CDNs (see the media_hosts option and bot/channels/media.py).
    media_host_names: ClassVar[str] = ""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config or resolve_options(self.env_prefixes, {}, self.all_options())
        self.state = state_for(shared_redis_url(None))
        self.choices = PendingChoices(self.state, self.name(), float(self.config["choices_ttl_s"]))
        self.buttons = ButtonTokens(self.name(), self.state, float(self.config["button_ttl_s"]))
        self.locations = ChannelLocations.parse(self.config["location"], self.env_name("location"))
        self.http = MediaHttp(
            self.name(),
            RetryPolicy(
                timeout_s=float(self.config["timeout_s"]),
                max_attempts=max(1, int(self.config["max_attempts"])),
                backoff_s=float(self.config["retry_backoff_s"]),
            ),
            redact=self.redact,
        )
        self.uploads = AttachmentUploads.from_environ()
        self._tasks: set[asyncio.Task] = set()
        # Per conversation: a lock and how many messages hold or wait for it.
        self._order: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        missing = self.missing_settings()
        if missing:  # normal for a newcomer without platform accounts: INFO, not WARNING
            logger.info(
                "%s channel is not configured (%s unset): its webhook rejects every request "
                "with 403. See docs/channels.md.",
                self.name(),
                ", ".join(self.env_name(key) for key in missing),
            )

    @classmethod
    def all_options(cls) -> tuple[Option, ...]:
        return cls.options + COMMON_OPTIONS

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> PlatformInput:
        return cls(resolve_options(cls.env_prefixes, credentials, cls.all_options()))

    @classmethod
    def env_name(cls, key: str) -> str:
        """The variable(s) that set ``key``, for log lines (SMS: its own or the Twilio one)."""
        return " or ".join(f"ASKAGENCY_{prefix}_{key.upper()}" for prefix in cls.env_prefixes)

    def redact(self, text: str) -> str:
        """Removes the secret that appears in request URLs from log lines."""
        secret = self.config.get(self.url_secret) if self.url_secret else None
        return text.replace(secret, "***") if secret else text

    def missing_settings(self) -> list[str]:
        return [key for key in self.required if not self.config.get(key)]

    # --- conversation ids ---------------------------------------------------------------------

    def conversation_id(self, sender: str) -> str:
        return f"{self.name()}-{sender}"

    def platform_id(self, conversation_id: str) -> str:
        prefix = f"{self.name()}-"
        return (
            conversation_id[len(prefix) :]
            if conversation_id.startswith(prefix)
            else (conversation_id)
        )

    # --- request handling ---------------------------------------------------------------------

    def refuse(self, request: Request) -> HTTPResponse | None:
        """403 when the channel cannot check signatures; 413 for oversized bodies."""
        missing = self.missing_settings()
        if missing:
            logger.warning(
                "%s webhook refused (403): channel not configured, set %s",
                self.name(),
                ", ".join(self.env_name(key) for key in missing),
            )
            return response.json({"error": "channel not configured"}, status=403)
        if len(request.body or b"") > MAX_BODY_BYTES:
            logger.warning(
                "%s webhook refused (413): body over %d bytes", self.name(), MAX_BODY_BYTES
            )
            return response.json({"error": "body too large"}, status=413)
        return None

    def forbidden(self, why: str) -> HTTPResponse:
        logger.warning("%s webhook refused (403): %s", self.name(), why)
        return response.json({"error": "invalid signature"}, status=403)

    def bad_request(self, why: str) -> HTTPResponse:
        logger.warning("%s webhook rejected (400): %s", self.name(), why)
        return response.json({"error": why}, status=400)

    def accept(self, on_new_message: OnNewMessage, parsed: Parsed) -> int:
        """Starts processing every message not seen before; returns how many were started."""
        log_ignored(self.name(), parsed)
        started = 0
        for incoming in parsed.messages:
            if not SAFE_ID.match(incoming.sender):
                logger.warning(
                    "%s webhook: sender id %r is not a plain platform id; ignored",
                    self.name(),
                    incoming.sender[:80],
                )
                continue
            key = f"{self.name()}\x00{incoming.message_id}"
            if not self.state.first_seen(key, float(self.config["dedup_ttl_s"])):
                logger.info(
                    "%s webhook: message %s already processed (platform redelivery); skipped",
                    self.name(),
                    incoming.message_id,
                )
                continue
            self.spawn(self.handle(on_new_message, incoming))
            started += 1
        return started

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Waits for the messages being processed (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def in_order(self, conversation_id: str) -> AsyncIterator[None]:
        """One conversation's messages are handled one at a time, in the order they arrived
        (asyncio locks are fair): "STOP" then "START" then a question must not race, now that
        checking the opt-out list waits for the database."""
        lock, users = self._order.setdefault(conversation_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                self._order.pop(conversation_id, None)

    async def handle(self, on_new_message: OnNewMessage, incoming: Incoming) -> None:
        conversation_id = self.conversation_id(incoming.sender)
        async with self.in_order(conversation_id):
            await self._handle(on_new_message, conversation_id, incoming)

    async def _handle(
        self, on_new_message: OnNewMessage, conversation_id: str, incoming: Incoming
    ) -> None:
        try:
            text = await self.prepare(conversation_id, incoming)
            if text is None:
                return
            metadata: dict[str, Any] = {"channel_message_id": incoming.message_id}
            if incoming.language:
                metadata["language"] = incoming.language
            location = self.locations.for_address(incoming.recipient)
            if location:
                metadata["location"] = location
            if incoming.media and text == SHARE_ATTACHMENT_TEXT:
                metadata.update(await self.attachment_metadata(conversation_id, incoming))
            await on_new_message(
                UserMessage(
                    text,
                    self.get_output_channel(),
                    conversation_id,
                    input_channel=self.name(),
                    message_id=platform_message_id(self.name(), incoming.message_id),
                    metadata=metadata,
                )
            )
        except asyncio.CancelledError:
            logger.error("%s message %s: processing cancelled", self.name(), incoming.message_id)
            raise
        except Exception:
            logger.exception("%s message %s: processing failed", self.name(), incoming.message_id)

    async def attachment_metadata(self, conversation_id: str, incoming: Incoming) -> dict[str, Any]:
        """The files of ``incoming`` fetched and stored: their ids and the caption (cleaned like
        typed text), or an empty list and the reject code when none could be stored."""
        result = await ingest(
            incoming.media,
            resolve=self.media_source,
            http=self.http,
            hosts=self.media_hosts(),
            max_bytes=int(self.config["media_max_bytes"]),
            uploads=self.uploads,
            conversation_id=conversation_id,
            channel=self.name(),
        )
        metadata: dict[str, Any] = {
            msg.METADATA_ATTACHMENTS: result.ids,
            msg.METADATA_CAPTION: user_text(incoming.text).strip(),
        }
        if result.error:
            metadata[msg.METADATA_ATTACHMENT_ERROR] = result.error
        return metadata

    def media_hosts(self) -> MediaHosts:
        """Where this platform's files may be fetched from (bot/channels/media.py)."""
        names = str(self.config.get("media_hosts") or "") or self.media_host_names
        return MediaHosts.of([str(self.config.get("api_base_url") or "")], names)

    async def media_source(self, ref: MediaRef) -> MediaSource | str:
        """How to fetch ``ref`` (a URL, no credentials), or a reject code. Platforms whose
        files need credentials or a look-up override this."""
        return MediaSource(ref.ref, name=ref.name)

    async def prepare(self, conversation_id: str, incoming: Incoming) -> str | None:
        """The text Rasa gets: the payload of one of our buttons (pressed, or picked by its
        number), else the typed text without intent syntax. None: do not process. A message
        with files is :data:`SHARE_ATTACHMENT_TEXT` (its caption goes in the metadata).

        A press whose token this conversation was not given (forged, or expired) is not
        processed; the citizen is told the option expired."""
        if incoming.is_payload:
            self.choices.remember(conversation_id, [])
            payload = self.buttons.redeem(conversation_id, incoming.text)
            if payload is None:
                logger.info("%s: unknown or expired button pressed; not processed", self.name())
                await self.get_output_channel().send_response(
                    conversation_id, {"text": EXPIRED_TEXT}
                )
            return payload
        if incoming.media:
            return SHARE_ATTACHMENT_TEXT
        chosen = self.choices.resolve(conversation_id, incoming.text)
        if chosen is not None:
            payload = self.buttons.redeem(conversation_id, chosen)
            if payload is not None:
                return payload
        return user_text(incoming.text)

    def read_webhook(self, request: Request) -> Parsed | HTTPResponse:
        """Checks the platform's signature and parses the body: the messages, or the 403/400
        answer (:meth:`forbidden`, :meth:`bad_request`) when the request cannot be trusted."""
        raise NotImplementedError

    def acknowledge(self) -> HTTPResponse:
        """The 200 answer the platform expects for an accepted webhook."""
        return response.json({"status": "ok"})

    def add_routes(self, blueprint: Blueprint) -> None:
        """Extra routes a platform needs besides ``POST /webhook`` (e.g. a GET verification)."""

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """``GET /`` (health), the platform's own routes and ``POST /webhook``: refused when
        unconfigured or oversized, verified and parsed, acknowledged at once."""
        blueprint = Blueprint(f"askagency_{self.name()}_webhook", __name__)

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok", "configured": not self.missing_settings()})

        @blueprint.listener("after_server_stop")
        async def close_http(*_: Any) -> None:
            await self.http.close()

        self.add_routes(blueprint)

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            refused = self.refuse(request)
            if refused:
                return refused
            parsed = self.read_webhook(request)
            if isinstance(parsed, HTTPResponse):
                return parsed
            if parsed.error:
                return self.bad_request(parsed.error)
            self.accept(on_new_message, parsed)
            return self.acknowledge()

        return blueprint


class PlatformOutput(OutputChannel):
    """Sends the one client message shape (:func:`client_message`) through a platform API.

    Never raises: a failed send is logged (by :class:`PlatformHttp`) and the turn goes on.
    """

    channel_name: ClassVar[str] = "platform"

    def __init__(self, channel: PlatformInput) -> None:
        self.channel = channel

    @classmethod
    def name(cls) -> str:
        return cls.channel_name

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        shaped = client_message(message)
        if not shaped:
            return
        if shaped.get("buttons"):  # the platform only ever sees tokens (bot/channels/buttons.py)
            shaped["buttons"] = [
                {
                    "title": b["title"],
                    "payload": self.channel.buttons.issue(recipient_id, b["payload"]),
                }
                for b in shaped["buttons"]
            ]
        try:
            await self.deliver(recipient_id, shaped)
        except Exception:
            logger.exception(
                "%s: sending a message to %s failed", self.name(), log_ref(recipient_id)
            )

    async def deliver(self, conversation_id: str, message: dict[str, Any]) -> None:
        raise NotImplementedError

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})
