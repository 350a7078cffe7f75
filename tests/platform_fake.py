"""A fake of the four platforms' send APIs (Messenger, X, Twilio SMS/WhatsApp, Telegram) and the
settings that point a stack's channels at it.

One local aiohttp server, in a thread, records every send-API call and checks its
authentication the way each platform does (Graph API access token, OAuth 1.0a signature, HTTP
Basic, Telegram bot token in the path). The shared test stack (tests/stack.py) and the scale
profile's stack (tests/e2e/test_scale_load.py) run their channels against one.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from aiohttp import web

from askagency.ports import free_port

PAGE_TOKEN = "fb-page-token"
APP_SECRET = "fb-app-secret"
VERIFY_TOKEN = "fb-verify"
X_KEY, X_SECRET, X_TOKEN, X_TOKEN_SECRET, X_ME = "x-ck", "x-cs", "x-at", "x-ats", "9000"
TW_SID, TW_TOKEN, TW_FROM, WA_FROM = "AC00e2e", "tw-auth-token", "+15550001111", "+14155238886"
TG_TOKEN, TG_SECRET = "424242:e2e-bot-token", "tg-webhook-secret"
X_CRC = "Y3JjLXRva2VuLWZyb20teC1lMmU="  # shaped like X's CRC tokens (short base64)


@dataclass
class Call:
    platform: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))

    def to(self) -> str | None:
        """The recipient, however the platform spells it."""
        try:
            if self.platform == "twilio":
                return self.form().get("To")
            data = self.json()
        except ValueError:
            return None
        if self.platform == "messenger":
            return str(data["recipient"]["id"])
        if self.platform == "x":
            return str(data["event"]["message_create"]["target"]["recipient_id"])
        if self.platform == "telegram" and "chat_id" in data:
            return str(data["chat_id"])
        return None


def _pct(value: str) -> str:
    return quote(value, safe="-._~")


def oauth_ok(method: str, url: str, header: str) -> bool:
    """Verifies an OAuth 1.0a HMAC-SHA1 Authorization header (JSON body: not signed)."""
    if not header.startswith("OAuth "):
        return False
    fields = {}
    for part in header[6:].split(","):
        key, _, value = part.strip().partition("=")
        fields[unquote(key)] = unquote(value.strip('"'))
    signature = fields.pop("oauth_signature", "")
    if fields.get("oauth_consumer_key") != X_KEY or fields.get("oauth_token") != X_TOKEN:
        return False
    params = "&".join(f"{k}={v}" for k, v in sorted((_pct(k), _pct(v)) for k, v in fields.items()))
    base = "&".join([method, _pct(url), _pct(params)])
    key = f"{_pct(X_SECRET)}&{_pct(X_TOKEN_SECRET)}"
    expected = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest())
    return hmac.compare_digest(signature, expected.decode())


@dataclass
class PlatformFake:
    """All four send APIs on one local port, served from a thread with its own event loop."""

    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)
    # Files the platform holds for download (a citizen's MMS photo), by path: (type, bytes).
    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_for(self, marker: str, statuses: list[int]) -> None:
        """The next calls whose body contains ``marker`` get these statuses, in order."""
        with self._lock:
            self.failures[marker] = list(statuses)

    def _authorised(self, request: web.Request, body: bytes) -> tuple[str, bool]:
        path = request.path
        if path.endswith("/me/messages"):
            return "messenger", request.query.get("access_token") == PAGE_TOKEN
        if path == "/1.1/direct_messages/events/new.json":
            return "x", oauth_ok("POST", self.url + path, request.headers.get("Authorization", ""))
        if path.startswith("/2010-04-01/Accounts/"):
            basic = "Basic " + base64.b64encode(f"{TW_SID}:{TW_TOKEN}".encode()).decode()
            right_account = path == f"/2010-04-01/Accounts/{TW_SID}/Messages.json"
            return "twilio", right_account and request.headers.get("Authorization") == basic
        if path.startswith("/bot"):
            return "telegram", path.startswith(f"/bot{TG_TOKEN}/")
        return "unknown", False

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.method == "GET" and request.path in self.media:
            return self._download(request)
        platform, authorised = self._authorised(request, body)
        status = 200 if authorised else 401
        with self._lock:
            for marker, statuses in self.failures.items():
                if statuses and marker.encode() in body:
                    status = statuses.pop(0)
                    break
            self.calls.append(
                Call(
                    platform, request.path, dict(request.query), dict(request.headers), body, status
                )
            )
        if status != 200:
            return web.json_response({"error": {"message": f"fake says {status}"}}, status=status)
        return web.json_response({"ok": True, "result": True, "sid": "SM" + uuid.uuid4().hex})

    def _download(self, request: web.Request) -> web.Response:
        """Twilio serves an MMS's media to the account's HTTP Basic credentials only."""
        basic = "Basic " + base64.b64encode(f"{TW_SID}:{TW_TOKEN}".encode()).decode()
        authorised = request.headers.get("Authorization") == basic
        with self._lock:
            self.calls.append(
                Call(
                    "twilio",
                    request.path,
                    {},
                    dict(request.headers),
                    b"",
                    200 if authorised else 401,
                )
            )
        if not authorised:
            return web.json_response({"message": "Authenticate"}, status=401)
        content_type, data = self.media[request.path]
        return web.Response(body=data, content_type=content_type)

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", port).start()
            ready.set()

        def run() -> None:
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "fake platform did not start"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def matching(self, predicate: Callable[[Call], bool]) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if predicate(c)]

    def wait(
        self, predicate: Callable[[Call], bool], count: int = 1, timeout: float = 45.0
    ) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(predicate)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise AssertionError(f"expected {count} calls, got {self.matching(predicate)}")


def channel_settings(fake_url: str) -> dict[str, str]:
    """The settings an operator would give a stack for all four platforms, with their API base
    URLs at ``fake_url`` and quick retries (the tests of retries wait for them)."""
    settings = {
        "ASKAGENCY_MESSENGER_APP_SECRET": APP_SECRET,
        "ASKAGENCY_MESSENGER_PAGE_ACCESS_TOKEN": PAGE_TOKEN,
        "ASKAGENCY_MESSENGER_VERIFY_TOKEN": VERIFY_TOKEN,
        "ASKAGENCY_MESSENGER_API_BASE_URL": fake_url,
        "ASKAGENCY_X_CONSUMER_KEY": X_KEY,
        "ASKAGENCY_X_CONSUMER_SECRET": X_SECRET,
        "ASKAGENCY_X_ACCESS_TOKEN": X_TOKEN,
        "ASKAGENCY_X_ACCESS_TOKEN_SECRET": X_TOKEN_SECRET,
        "ASKAGENCY_X_USER_ID": X_ME,
        "ASKAGENCY_X_API_BASE_URL": fake_url,
        "ASKAGENCY_TWILIO_ACCOUNT_SID": TW_SID,
        "ASKAGENCY_TWILIO_AUTH_TOKEN": TW_TOKEN,
        "ASKAGENCY_TWILIO_API_BASE_URL": fake_url,
        "ASKAGENCY_SMS_FROM_NUMBER": TW_FROM,
        "ASKAGENCY_WHATSAPP_FROM_NUMBER": WA_FROM,
        "ASKAGENCY_TELEGRAM_BOT_TOKEN": TG_TOKEN,
        "ASKAGENCY_TELEGRAM_SECRET_TOKEN": TG_SECRET,
        "ASKAGENCY_TELEGRAM_API_BASE_URL": fake_url,
    }
    for prefix in ("MESSENGER", "X", "TWILIO", "TELEGRAM"):
        settings[f"ASKAGENCY_{prefix}_RETRY_BACKOFF_S"] = "0.05"
    return settings
