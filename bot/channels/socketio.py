"""socket.io channel that emits ONE ``bot_uttered`` event per bot message.

Fixes two problems of rasa 3.6's stock channel:

* a flat ``custom`` dict was passed as keyword arguments to ``sio.emit`` and crashed; here the
  event payload is ``{"text", "buttons"?, "custom"?}`` with ``custom`` kept whole;
* with ``session_persistence`` the socket never joined its session room because
  python-socketio 5.x made ``enter_room`` a coroutine that the stock code does not await, so no
  bot message reached the client.

Keeps the stock name ``socketio`` and its credentials keys and events (``session_request``,
``session_confirm``, user/bot message events).

Conversation ownership (bot/channels/web_guard.py): ``session_request`` carries
``{"session_id", "token"}`` of a conversation the server issued earlier; a missing or wrong
token gets a NEW conversation instead. ``session_confirm`` answers ``{"session_id", "token"}``
and binds the socket to that conversation: the socket joins only its room, and its messages go
only to that conversation (a message must name it as ``session_id``; any other is refused). Messages
over ``max_message_chars`` get the "too long" reply without reaching Rasa; packets over
``askagency.limits.MAX_WEB_BODY_BYTES`` are refused by the socket.io server itself.

Photos and files (bot/channels/web_attachments.py): ``user_uttered`` may carry
``"attachments": [id, ...]`` of files the widget stored through the console; Rasa then gets
``/share_attachment`` with the ids and the typed text (the caption) in metadata set by the server.

Several Rasa replicas (the scale profile): a widget's socket lives on the replica it connected
to, but an agent reply or a turn may be processed by another. When the channels share a Redis
(:func:`bot.channels.shared_state.shared_redis_url`: the scale profile's, or ``redis_url`` in
the channel's ``rate_limit:`` block) the server uses python-socketio's ``AsyncRedisManager``:
every emit to a room is published on the Redis channel :data:`SOCKETIO_CHANNEL` and delivered by
whichever replica holds that room's sockets. Without Redis, rooms are this process's own.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import rasa.core.channels.channel
from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from rasa.core.channels.socketio import SocketIOOutput as RasaSocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncRedisManager, AsyncServer

from askagency.limits import MAX_WEB_BODY_BYTES
from bot import action_guard
from bot.channels import web_attachments, web_guard
from bot.channels.message import citizen_text, client_message
from bot.channels.ratelimit import ALLOW, SILENT, RateLimiter, client_ip, limiter_for, notice

logger = logging.getLogger(__name__)

# Redis pub/sub channel of the replicas' socket.io servers (pub/sub ignores Redis db numbers).
SOCKETIO_CHANNEL = "askagency-socketio"

# Custom-action failures answer the citizen instead of leaving them without a reply.
action_guard.install()


class SocketIOOutput(RasaSocketIOOutput):
    """Emits each bot message whole, to the socket's room (its session id or socket id)."""

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        await self._send_message(recipient_id, client_message(message))


async def join_room(sio: AsyncServer, sid: str, room: str, namespace: str | None) -> None:
    """``enter_room`` is a coroutine in python-socketio 5.x and a plain call in older releases."""
    result = sio.enter_room(sid, room, namespace=namespace)
    if inspect.isawaitable(result):
        await result


async def leave_room(sio: AsyncServer, sid: str, room: str, namespace: str | None) -> None:
    """``leave_room``: a coroutine in python-socketio 5.x, a plain call before."""
    result = sio.leave_room(sid, room, namespace=namespace)
    if inspect.isawaitable(result):
        await result


class SocketIOInput(RasaSocketIOInput):
    """socket.io input whose replies use :class:`SocketIOOutput`."""

    limiter: RateLimiter | None = None

    @classmethod
    def name(cls) -> str:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> SocketIOInput:
        """Stock keys plus ``rate_limit:`` (bot/channels/ratelimit.py)."""
        channel = super().from_credentials(credentials)
        assert isinstance(channel, SocketIOInput)
        channel.limiter = limiter_for(credentials)
        return channel

    def get_output_channel(self) -> OutputChannel | None:
        """Used when Rasa sends a message the citizen did not trigger (e.g. an agent reply via
        ``/conversations/{id}/execute?output_channel=latest``)."""
        if self.sio is None:
            logger.warning("socket.io output requested before the channel was started")
            return None
        return SocketIOOutput(self.sio, self.bot_message_evt)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        limiter = self.limiter or limiter_for(None)
        redis_url = limiter.limits.redis_url
        # cors_allowed_origins=[] leaves CORS to Sanic (Rasa's --cors), as the stock channel does.
        sio = AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=[],
            max_http_buffer_size=MAX_WEB_BODY_BYTES,
            # An emit is delivered by this replica first, then published: with Redis down the
            # widgets connected here still get their replies (python-socketio logs the failure).
            client_manager=AsyncRedisManager(
                redis_url,
                channel=SOCKETIO_CHANNEL,
                redis_options={"socket_connect_timeout": 1.0},
            )
            if redis_url
            else None,
        )
        webhook = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: str, environ: dict, auth: dict | None) -> bool:
            if not self.jwt_key:
                return True
            token = auth.get("token") if isinstance(auth, dict) else None
            payload = None
            if token:
                payload = rasa.core.channels.channel.decode_bearer_token(
                    token, self.jwt_key, self.jwt_algorithm
                )
            if not payload:
                logger.info("socket.io connection %s refused: missing or invalid token", sid)
                return False
            return True

        @sio.on("disconnect", namespace=self.namespace)
        async def disconnect(sid: str) -> None:
            logger.debug("socket.io %s disconnected", sid)

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: dict | None) -> None:
            data = data if isinstance(data, dict) else {}
            session_id = data.get("session_id")
            session_id = str(session_id) if isinstance(session_id, (str, int)) else None
            token = data.get("token")
            refused = web_guard.ownership_error(session_id, token)
            if refused:
                if session_id:
                    logger.info("socket.io %s: new conversation instead (%s)", sid, refused)
                session_id, token = web_guard.signer().issue()
            assert session_id is not None
            # A second request on the same socket is the widget's "New conversation": the
            # socket stops hearing the old conversation (a late agent reply stays in its
            # history, it does not appear in the new one).
            previous = (await sio.get_session(sid, namespace=self.namespace)).get("conversation_id")
            await sio.save_session(sid, {"conversation_id": session_id}, namespace=self.namespace)
            if self.session_persistence:
                if previous and previous != session_id:
                    await leave_room(sio, sid, str(previous), self.namespace)
                await join_room(sio, sid, session_id, self.namespace)
            await sio.emit(
                "session_confirm",
                {"session_id": session_id, "token": token},
                room=sid,
                namespace=self.namespace,
            )

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any) -> None:
            if not isinstance(data, dict):
                logger.warning("socket.io %s sent a message that is not an object; ignored", sid)
                return
            if self.session_persistence:
                bound = (await sio.get_session(sid, namespace=self.namespace)).get(
                    "conversation_id"
                )
                if not bound:
                    logger.warning(
                        "socket.io %s sent a message before its session was confirmed; ignored "
                        "(send session_request first)",
                        sid,
                    )
                    return
                if str(data.get("session_id")) != bound:
                    logger.warning(
                        "socket.io %s sent a message without its own session_id; ignored", sid
                    )
                    return
                sender_id = str(bound)
            else:
                sender_id = sid

            metadata = data.get(self.metadata_key) or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {}
            if not isinstance(metadata, dict):
                metadata = {}
            text = data.get("message", "")
            if not isinstance(text, str):
                text = str(text)
            text = citizen_text(text)
            attachment_ids = web_attachments.attachment_ids(data.get("attachments"))

            output = SocketIOOutput(sio, self.bot_message_evt)
            environ = sio.get_environ(sid, namespace=self.namespace) or {}
            request = environ.get("sanic.request")
            peer = getattr(request, "ip", None) or environ.get("REMOTE_ADDR")
            forwarded = request.headers.get("X-Forwarded-For") if request is not None else None
            ip = client_ip(peer, forwarded, limiter.limits.trusted_proxies)
            verdict = limiter.check(
                sender_id, ip, web_attachments.limiter_text(text, attachment_ids)
            )
            if verdict != ALLOW:
                logger.info("socket.io message from %s not processed: %s", sid, verdict)
                if verdict != SILENT:
                    await output.send_response(sender_id, notice(verdict))
                return
            long_reply = web_guard.too_long(text, metadata)
            if long_reply is not None:
                await output.send_response(sender_id, long_reply)
                return
            metadata = web_guard.server_metadata(metadata, ip)
            # Last: the attachment keys are the server's, whatever the client's metadata said.
            text, metadata = web_attachments.to_rasa(text, attachment_ids, metadata)

            message = UserMessage(
                text,
                output,
                sender_id,
                input_channel=self.name(),
                metadata=metadata,
            )
            await on_new_message(message)

        return webhook
