"""Test kit for the platform channels: a fake platform API, a Sanic server mounting channels,
and a fake bot that answers the way Rasa does after a custom action."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from rasa.core.actions.action import create_bot_utterance
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from askagency.ports import free_port

CLARIFY_BUTTONS = [
    {"title": "Can I bring a lighter in my carry-on bag?", "payload": '/choose_faq{"faq_id":"a"}'},
    {"title": "Can I pack a lighter in checked bags?", "payload": '/choose_faq{"faq_id":"b"}'},
    {"title": "Torch lighters", "payload": '/choose_faq{"faq_id":"c"}'},
]

_app_names = itertools.count()
PROJECT_ROOT = Path(__file__).resolve().parents[2]
_template_db: Path | None = None


def migrated_database(directory: Path) -> str:
    """A SQLite product database at the latest schema, as ``make run`` has it. Alembic lives in
    the app env (.venv), so one template is migrated there per session and copied per test."""
    global _template_db
    if _template_db is None:
        template = Path(tempfile.mkdtemp(prefix="askagency-rasa-env-")) / "askagency.db"
        subprocess.run(
            [
                str(PROJECT_ROOT / ".venv" / "bin" / "python"),
                "-c",
                "import sys; from askagency.migrate import upgrade; upgrade(sys.argv[1])",
                f"sqlite:///{template}",
            ],
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
        )
        _template_db = template
    target = directory / "askagency.db"
    shutil.copy(_template_db, target)
    return f"sqlite:///{target}"


def rasa_message(**draft: Any) -> dict[str, Any]:
    """The dict Rasa's processor hands to ``OutputChannel.send_response``."""
    return create_bot_utterance(dict(draft)).message()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


@dataclass
class LocalServer:
    """An aiohttp app on a free local port: ``start`` returns its URL, ``stop`` shuts it down.
    Subclasses say what it answers in ``add_routes``."""

    runner: web.AppRunner | None = None
    url: str = ""

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> str:
        app = web.Application()
        self.add_routes(app)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


@dataclass
class FakePlatform(LocalServer):
    """A local HTTP server standing in for a platform's send API. ``script`` holds
    (status, json body, headers) answers used in order; afterwards every call gets 200."""

    requests: list[Recorded] = field(default_factory=list)
    script: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    delay_s: float = 0.0

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.script:
            status, body, headers = self.script.pop(0)
            return web.json_response(body, status=status, headers=headers)
        return web.json_response({"ok": True, "result": {}, "sid": "SM1", "message_id": "m1"})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    def sent(self, suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(suffix)]


@dataclass
class FakeBot:
    """Answers like Rasa: "options" gets the clarify buttons, anything else an echo."""

    seen: list[UserMessage] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.seen.append(message)
        if message.text == "options":
            reply = rasa_message(
                text="Did you mean one of these?",
                buttons=CLARIFY_BUTTONS,
                custom={"type": "clarify", "options": []},
            )
        else:
            reply = rasa_message(text=f"You said: {message.text}", custom={"type": "echo"})
        assert message.output_channel is not None
        await message.output_channel.send_response(message.sender_id, reply)


async def serve(handler: Any, *channels: Any) -> tuple[Any, str]:
    """Mounts ``channels`` on a real Sanic server under /webhooks/ like ``rasa run``."""
    Sanic.test_mode = True
    app = Sanic(f"platform_channels_test_{next(_app_names)}")
    register(list(channels), app, route="/webhooks/")
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    await server.startup()
    await server.start_serving()
    app.ctx.agent = type("Agent", (), {"handle_message": staticmethod(handler)})()
    return server, f"http://127.0.0.1:{port}"


def signed(sender: str, **body: Any) -> dict[str, Any]:
    """A REST body for ``sender`` with its conversation token (signed with the test secret)."""
    from bot.channels.web_guard import signer

    return {"sender": sender, "token": signer().token(sender), **body}


class SocketCitizen:
    """The widget's side of the socket.io channel: a confirmed session, bot messages kept."""

    def __init__(self) -> None:
        import socketio

        self.client = socketio.AsyncClient()
        self.received: list[Any] = []
        self.session_id = ""
        self.token = ""
        self.client.on("bot_uttered", self.received.append)

    async def start(
        self, base: str, session_id: str | None = None, token: str | None = None
    ) -> str:
        """Connects (long-polling) and asks for ``session_id`` with ``token`` (default: its
        valid token; no ``session_id``: a new conversation); returns the confirmed id."""
        from bot.channels.web_guard import signer

        confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.client.on("session_confirm", confirmed.set_result)
        await self.client.connect(base, transports=["polling"])
        request: dict[str, Any] = {}
        if session_id is not None:
            request = {"session_id": session_id, "token": token or signer().token(session_id)}
        await self.client.emit("session_request", request)
        answer = await asyncio.wait_for(confirmed, 5)
        self.session_id, self.token = answer["session_id"], answer["token"]
        return self.session_id

    async def say(self, text: str, **extra: Any) -> None:
        await self.client.emit(
            "user_uttered", {"message": text, "session_id": self.session_id, **extra}
        )

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[Any]:
        """The bot messages, once there are ``count`` of them (or the timeout passed)."""
        for _ in range(int(timeout_s / 0.05)):
            if len(self.received) >= count:
                break
            await asyncio.sleep(0.05)
        return self.received

    async def close(self) -> None:
        # A polite disconnect over long-polling waits for the open poll (up to 25 s).
        await self.client.eio.disconnect(abort=True)


FAST = {"timeout_s": 2.0, "max_attempts": 3, "retry_backoff_s": 0.01}
