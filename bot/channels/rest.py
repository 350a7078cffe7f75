"""REST channel that answers with ONE JSON object per bot message.

The stock ``rest`` channel returns text, buttons and custom JSON of one bot message as separate
list items, so a client cannot tell which metadata belongs to which text. This subclass keeps the
name ``rest`` (URL ``/webhooks/rest/webhook``) and the request format, but every list item is
``{"recipient_id", "text", "buttons"?, "custom"?}``. Malformed requests get a 400 with a reason
instead of a 500.

Who may write into a conversation (bot/channels/web_guard.py): a client first asks
``POST /webhooks/rest/session`` for ``{"conversation_id", "token"}`` and then sends
``{"sender": <conversation_id>, "token": <token>, "message": ...}``; an integration holding the
server secret may sign its own ids instead. ``sender`` is required (no shared ``default``
conversation), ids of the messaging platforms are refused, and ``input_channel`` is always
``rest``: a client never chooses where replies are sent. Bodies over
``askagency.limits.MAX_WEB_BODY_BYTES`` and messages over ``max_message_chars`` get the "too
long" reply without reaching Rasa.

Photos and files (bot/channels/web_attachments.py): the body may carry ``"attachments": [id,
...]`` of files stored through the console's ``POST /api/widget/attachments`` (same conversation
token); Rasa then gets ``/share_attachment`` with the ids and the text as caption in metadata.
"""

from __future__ import annotations

import asyncio
import json
import logging
from asyncio import CancelledError, Queue
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import QueueOutputChannel
from rasa.core.channels.rest import RestInput as RasaRestInput
from rasa.utils.endpoints import bool_arg
from sanic import Blueprint, response
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from askagency.conversation_ids import RULE, is_addressable
from askagency.limits import MAX_REQUEST_BYTES, MAX_WEB_BODY_BYTES
from askagency.numbers import ascii_int
from bot import action_guard
from bot.channels import web_attachments, web_guard
from bot.channels.message import citizen_text, client_message
from bot.channels.ratelimit import (
    ALLOW,
    RATE_LIMITED,
    SILENT,
    RateLimiter,
    client_ip,
    limiter_for,
    notice,
)

logger = logging.getLogger(__name__)

# Custom-action failures answer the citizen instead of leaving them without a reply.
action_guard.install()


class WebhookRequestError(ValueError):
    """The webhook body cannot be turned into a user message."""


def parse_webhook_body(body: Any) -> tuple[str, str, dict[str, Any] | None, Any]:
    """Validate a webhook body; returns ``(sender, message, metadata, token)``.

    ``sender`` is required, ``message`` must be a string, ``metadata`` an object. A client's
    ``input_channel`` is ignored: replies go back through this channel only.
    """
    if not isinstance(body, dict):
        raise WebhookRequestError("the request body must be a JSON object")
    message = body.get("message")
    if not isinstance(message, str):
        raise WebhookRequestError('"message" must be a string')
    sender = body.get("sender")
    if sender is None or sender == "":
        raise WebhookRequestError(
            '"sender" is required: POST /webhooks/rest/session gives a conversation id '
            'and its "token"'
        )
    if not isinstance(sender, (str, int)) or isinstance(sender, bool):
        raise WebhookRequestError('"sender" must be a string')
    if not is_addressable(str(sender)):
        # A person's reply could never reach such a conversation (see askagency.conversation_ids).
        raise WebhookRequestError(f'"sender" must be {RULE}')
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise WebhookRequestError('"metadata" must be a JSON object')
    return str(sender), citizen_text(message), metadata, body.get("token")


def _payload_too_large(request: Request, _exc: Exception) -> HTTPResponse:
    length = request.headers.get("content-length", "")
    size = ascii_int(length) or MAX_REQUEST_BYTES
    return response.json([web_guard.too_long_body(size)], status=413)


class SingleMessageCollectingOutput(CollectingOutputChannel):
    """Collects one ``{"recipient_id", "text", "buttons"?, "custom"?}`` per bot message."""

    @classmethod
    def name(cls) -> str:
        return "collector"

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await self._persist_message({"recipient_id": recipient_id, **client_message(message)})


class SingleMessageQueueOutput(QueueOutputChannel):
    """Streaming variant (``?stream=true``): same objects, one JSON line each."""

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await self._persist_message({"recipient_id": recipient_id, **client_message(message)})


class RestInput(RasaRestInput):
    """``rest`` channel with one object per bot message and 400s for malformed bodies."""

    limiter: RateLimiter | None = None

    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> RestInput:
        """``rate_limit:`` under the channel in credentials.yml (bot/channels/ratelimit.py)."""
        channel = cls()
        channel.limiter = limiter_for(credentials)
        return channel

    def _limiter(self) -> RateLimiter:
        if self.limiter is None:
            self.limiter = limiter_for(None)
        return self.limiter

    @staticmethod
    async def on_message_wrapper(
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        text: str,
        queue: Queue,
        sender_id: str,
        input_channel: str,
        metadata: dict[str, Any] | None,
    ) -> None:
        collector = SingleMessageQueueOutput(queue)
        message = UserMessage(
            text, collector, sender_id, input_channel=input_channel, metadata=metadata
        )
        try:
            await on_new_message(message)
        finally:
            await queue.put("DONE")

    def _stream(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        text: str,
        sender_id: str,
        input_channel: str,
        metadata: dict[str, Any] | None,
    ) -> Callable[[Any], Awaitable[None]]:
        async def stream(resp: Any) -> None:
            queue: Queue = Queue()
            task = asyncio.ensure_future(
                self.on_message_wrapper(
                    on_new_message, text, queue, sender_id, input_channel, metadata
                )
            )
            while True:
                result = await queue.get()
                if result == "DONE":
                    break
                await resp.write(json.dumps(result) + "\n")
            await task

        return stream

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("askagency_rest_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.listener("before_server_start")
        async def cap_request_size(app: Any, _loop: Any) -> None:
            # Sanic reads up to 100 MB by default; bigger bodies are cut off at the socket and
            # answered with the same "too long" message as an oversized webhook body.
            app.config.REQUEST_MAX_SIZE = min(app.config.REQUEST_MAX_SIZE, MAX_REQUEST_BYTES)
            app.error_handler.add(PayloadTooLarge, _payload_too_large)

        @webhook.route("/session", methods=["POST"])
        async def session(request: Request) -> HTTPResponse:
            """A new conversation id and its token (the only way to start a conversation
            without the server secret)."""
            limiter = self._limiter()
            ip = client_ip(
                request.ip, request.headers.get("X-Forwarded-For"), limiter.limits.trusted_proxies
            )
            if limiter.check(None, ip, "") == RATE_LIMITED:
                return response.json(
                    {"error": "too many new conversations from your address; try again later"},
                    status=429,
                    headers={"Retry-After": "60"},
                )
            conversation_id, token = web_guard.signer().issue()
            return response.json({"conversation_id": conversation_id, "token": token})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            size = len(request.body or b"")
            if size > MAX_WEB_BODY_BYTES:
                return response.json([web_guard.too_long_body(size)], status=413)
            try:
                body = json.loads(request.body or b"null")
            except (ValueError, RecursionError):
                return response.json({"error": "the request body is not valid JSON"}, status=400)
            try:
                sender, text, metadata, token = parse_webhook_body(body)
            except WebhookRequestError as exc:
                return response.json({"error": str(exc)}, status=400)
            refused = web_guard.ownership_error(sender, token)
            if refused:
                logger.info("REST message refused: %s", refused)
                return response.json({"error": refused}, status=403)
            input_channel = self.name()
            attachment_ids = web_attachments.attachment_ids(body.get("attachments"))

            limiter = self._limiter()
            ip = client_ip(
                request.ip, request.headers.get("X-Forwarded-For"), limiter.limits.trusted_proxies
            )
            verdict = limiter.check(sender, ip, web_attachments.limiter_text(text, attachment_ids))
            if verdict != ALLOW:
                logger.info("REST message not processed: %s", verdict)
                if verdict == SILENT:
                    return response.json([])
                reply = [{"recipient_id": sender, **notice(verdict)}]
                if verdict == RATE_LIMITED:
                    return response.json(reply, status=429, headers={"Retry-After": "60"})
                return response.json(reply)
            long_reply = web_guard.too_long(text, metadata)
            if long_reply is not None:
                return response.json([{"recipient_id": sender, **long_reply}])
            metadata = web_guard.server_metadata(metadata, ip)
            # Last: the attachment keys are the server's, whatever the client's metadata said.
            text, metadata = web_attachments.to_rasa(text, attachment_ids, metadata)

            if bool_arg(request, "stream", default=False):
                return response.stream(
                    self._stream(on_new_message, text, sender, input_channel, metadata),
                    content_type="text/event-stream",
                )

            collector = SingleMessageCollectingOutput()
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        collector,
                        sender,
                        input_channel=input_channel,
                        metadata=metadata,
                    )
                )
            except CancelledError:
                logger.error("REST message timed out")
            except Exception:
                logger.exception("REST message failed")
            return response.json(collector.messages)

        return webhook
