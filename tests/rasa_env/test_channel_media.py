"""Photos and files citizens send on the platforms (bot/channels/media.py): fetched from the
platform with its credentials, stored through the action server's ``POST /attachments``, and
handed to Rasa as ``/share_attachment`` with the ids, the caption, or the reason none could be
stored. Every platform API, media host and the action server are real local HTTP servers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import aiohttp
import pytest
from aiohttp import web
from channel_kit import (
    FAST,
    FakeBot,
    FakePlatform,
    LocalServer,
    Recorded,
    migrated_database,
    rasa_message,
    serve,
)
from PIL import Image

from askagency import bot_messages as msg
from askagency.ports import free_port
from askagency.secrets import ACTION_SECRET_HEADER
from bot.channels.common import (
    MediaRef,
    OutgoingMedia,
    outgoing_media,
    plain_text_of,
    text_of,
)
from bot.channels.media import (
    MAX_FILES,
    TOO_LARGE,
    UNAVAILABLE,
    AttachmentUploads,
    MediaHosts,
    header_name,
    upload_url,
)
from bot.channels.messenger import MessengerInput, parse_events, signature_of
from bot.channels.platform import SHARE_ATTACHMENT_TEXT, PlatformInput
from bot.channels.telegram import TelegramInput, parse_update
from bot.channels.twilio import SmsInput, parse_form, parse_message
from bot.channels.twilio import signature_of as twilio_signature
from bot.channels.x import XInput, hmac_b64
from bot.channels.x import parse_events as parse_x_events

ACTION_SECRET = "action-secret-for-the-media-tests-0123456789"
_no_caption = {msg.METADATA_CAPTION: ""}
TWILIO_SID, TWILIO_TOKEN = "AC123", "auth-token"
BOT_TOKEN = "123:ABC-secret"


def png(color: str = "red", size: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, "PNG")
    return out.getvalue()


def store_id(data: bytes) -> str:
    """The id the fake store gives ``data`` (32 hex characters, like attachments.store)."""
    return hashlib.md5(data).hexdigest()


@dataclass
class FakeFiles(FakePlatform):
    """A platform API that also serves files: ``files`` by path, ``redirects`` by path,
    ``streamed`` paths without a Content-Length, every file after ``file_delay_s``; Telegram's
    ``getFile`` answers from ``file_paths`` (file id -> path)."""

    files: dict[str, bytes] = field(default_factory=dict)
    file_paths: dict[str, str] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    streamed: set[str] = field(default_factory=set)
    file_delay_s: float = 0.0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.endswith("/getFile"):
            body = await request.read()
            self.requests.append(
                Recorded(request.method, path, dict(request.query), dict(request.headers), body)
            )
            found = self.file_paths.get(json.loads(body).get("file_id"))
            if found is None:
                return web.json_response({"ok": False, "description": "file not found"}, status=400)
            return web.json_response({"ok": True, "result": {"file_path": found}})
        if not (path.startswith("/media/") or "/file/" in path or path in self.redirects):
            return await super()._handle(request)
        self.requests.append(
            Recorded(request.method, path, dict(request.query), dict(request.headers), b"")
        )
        if path in self.redirects:
            return web.Response(status=302, headers={"Location": self.redirects[path]})
        if self.file_delay_s:
            await asyncio.sleep(self.file_delay_s)
        data = self.files.get(path)
        if data is None:
            return web.Response(status=404)
        if path not in self.streamed:
            return web.Response(body=data, content_type="image/png")
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(data), 1024):
                await resp.write(data[start : start + 1024])
            await resp.write_eof()
        return resp

    def fetched(self, prefix: str = "/media/") -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith(prefix) or "/file/" in r.path]


@dataclass
class FakeStore(LocalServer):
    """The action server's ``POST /attachments``: checks the shared secret, records the bytes,
    answers 201 with an id, or the ``script`` answers first."""

    secret: str = ACTION_SECRET
    script: list[tuple[int, Any]] = field(default_factory=list)
    received: list[Recorded] = field(default_factory=list)
    refused: int = 0

    async def _handle(self, request: web.Request) -> web.Response:
        if request.headers.get(ACTION_SECRET_HEADER) != self.secret:
            self.refused += 1
            return web.json_response({"error": "missing or wrong secret"}, status=401)
        data = await request.read()
        self.received.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), data)
        )
        if self.script:
            status, body = self.script.pop(0)
            return web.json_response(body, status=status)
        return web.json_response({"id": store_id(data), "kind": "image"}, status=201)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/attachments", self._handle)


@dataclass
class Rig:
    fake: FakeFiles
    store: FakeStore
    bot: FakeBot
    channel: PlatformInput
    base: str
    http: aiohttp.ClientSession

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        async with self.http.post(self.base + path, data=body, headers=headers) as resp:
            await self.channel.drain()
            return resp.status

    def shared(self) -> list[dict[str, Any]]:
        """The metadata of each ``/share_attachment`` the bot got (the message id and language
        left out)."""
        return [
            {k: v for k, v in m.metadata.items() if k not in ("channel_message_id", "language")}
            for m in self.bot.seen
            if m.text == SHARE_ATTACHMENT_TEXT
        ]


@contextlib.asynccontextmanager
async def rig(
    make: Callable[[str], PlatformInput],
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeFiles | None = None,
    store: FakeStore | None = None,
) -> AsyncIterator[Rig]:
    """The fake platform (API + files), the fake action server (its URL and secret in the
    environment, as the launcher sets them for Rasa) and the channel on a real Sanic server."""
    fake = fake or FakeFiles()
    store = store or FakeStore()
    api = await fake.start()
    await store.start()
    monkeypatch.setenv("ASKAGENCY_ACTION_URL", store.url + "/webhook")
    monkeypatch.setenv("ASKAGENCY_ACTION_SECRET", ACTION_SECRET)
    bot = FakeBot()
    channel = make(api)
    server, base = await serve(bot, channel)
    try:
        async with aiohttp.ClientSession() as http:
            yield Rig(fake, store, bot, channel, base, http)
    finally:
        await server.close()
        await channel.http.close()
        await store.stop()
        await fake.stop()


# --- Messenger: the generic path (no credentials on Meta's CDN) -----------------------------


def messenger(api: str, **extra: Any) -> MessengerInput:
    return MessengerInput.from_credentials(
        {"app_secret": "app-secret", "page_access_token": "page-token", "api_base_url": api}
        | FAST
        | extra
    )


def messenger_event(psid: str, mid: str, *urls: str, **message: Any) -> bytes:
    attachments = [{"type": "image", "payload": {"url": url}} for url in urls]
    event = {
        "sender": {"id": psid},
        "recipient": {"id": "PAGE"},
        "timestamp": 1700000000000,
        "message": {"mid": mid, "attachments": attachments, **message},
    }
    return json.dumps({"object": "page", "entry": [{"id": "PAGE", "messaging": [event]}]}).encode()


async def post_messenger(r: Rig, body: bytes) -> int:
    return await r.post(
        "/webhooks/messenger/webhook",
        body,
        {"X-Hub-Signature-256": signature_of(body, "app-secret")},
    )


def test_messenger_parses_photos_and_files_but_not_stickers() -> None:
    body = json.loads(messenger_event("u1", "m1", "https://scontent.xx.fbcdn.net/a.jpg"))
    event = body["entry"][0]["messaging"][0]
    event["message"]["attachments"] += [
        {"type": "file", "payload": {"url": "https://cdn.fbsbx.com/b.pdf"}},
        {"type": "video", "payload": {"url": "https://video.xx.fbcdn.net/c.mp4"}},
        {"type": "image", "payload": {"url": "https://x.fbcdn.net/s.png", "sticker_id": 3692}},
    ]
    (message,) = parse_events(json.dumps(body).encode()).messages
    assert message.text == "" and [m.ref for m in message.media] == [
        "https://scontent.xx.fbcdn.net/a.jpg",
        "https://cdn.fbsbx.com/b.pdf",
    ]
    sticker_only = parse_events(
        messenger_event("u1", "m2", "https://x.fbcdn.net/s.png").replace(
            b'"url"', b'"sticker_id": 369239263222822, "url"'
        )
    )
    assert not sticker_only.messages and sticker_only.ignored


def test_a_photo_only_message_is_stored_and_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    photo = png()

    async def scenario() -> Rig:
        fake = FakeFiles(files={"/media/a.png": photo})
        async with rig(messenger, monkeypatch, fake) as r:
            assert await post_messenger(r, messenger_event("u1", "m1", fake.url + "/media/a.png"))
            assert await post_messenger(r, messenger_event("u1", "m1", fake.url + "/media/a.png"))
            return r

    r = asyncio.run(scenario())
    (seen,) = r.bot.seen  # the redelivery was dropped
    assert seen.text == "/" + msg.INTENT_SHARE_ATTACHMENT
    assert seen.metadata == {
        "channel_message_id": "m1",
        msg.METADATA_ATTACHMENTS: [store_id(photo)],
        msg.METADATA_CAPTION: "",
    }
    (upload,) = r.store.received
    assert upload.body == photo
    assert upload.query == {"conversation_id": "messenger-u1", "channel": "messenger"}
    # Meta's CDN URLs need no token: none is sent with the download.
    (download,) = r.fake.fetched()
    assert "Authorization" not in download.headers and download.query == {}
    # Never silence: the bot's answer went out.
    assert r.fake.sent("/me/messages")[0].json()["message"]["text"] == "You said: /share_attachment"


def test_every_failure_still_reaches_the_bot_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photos = [png(color) for color in ("red", "green", "blue", "white", "black")]
    big = png("red", 400) + b"\0" * 5000

    async def scenario() -> tuple[Rig, FakePlatform]:
        evil = FakePlatform()
        await evil.start()
        fake = FakeFiles(
            files={
                "/media/big-streamed": big,
                "/media/big-declared": big,
                "/media/ok.png": photos[0],
                **{f"/media/{i}.png": p for i, p in enumerate(photos)},
            },
            streamed={"/media/big-streamed"},
            redirects={"/media/away": evil.url + "/media/ok.png"},
        )
        store = FakeStore(script=[(422, {"error": "unsupported_type", "message": "not a photo"})])
        try:
            async with rig(
                lambda api: messenger(api, media_max_bytes=4096), monkeypatch, fake, store
            ) as r:
                url = fake.url
                await post_messenger(r, messenger_event("a", "m1", url + "/media/ok.png"))
                await post_messenger(r, messenger_event("b", "m2", url + "/media/missing"))
                await post_messenger(r, messenger_event("c", "m3", url + "/media/big-streamed"))
                await post_messenger(r, messenger_event("d", "m4", url + "/media/big-declared"))
                await post_messenger(r, messenger_event("e", "m5", evil.url + "/media/ok.png"))
                await post_messenger(r, messenger_event("f", "m6", url + "/media/away"))
                five = [f"{url}/media/{i}.png" for i in range(5)]
                await post_messenger(r, messenger_event("g", "m7", *five))
                # An agent's URL trick: the host is 127.0.0.1 only in the user part.
                trick = f"http://127.0.0.1:{url.rsplit(':', 1)[1]}@{evil.url[7:]}/media/ok.png"
                await post_messenger(r, messenger_event("h", "m8", trick))
                await post_messenger(r, messenger_event("i", "m9", "file:///etc/passwd"))
                both = (url + "/media/missing", url + "/media/1.png")
                await post_messenger(r, messenger_event("j", "m10", *both))
                return r, evil
        finally:
            await evil.stop()

    r, evil = asyncio.run(scenario())
    failed = {msg.METADATA_ATTACHMENTS: [], msg.METADATA_CAPTION: ""}
    unavailable = {**failed, msg.METADATA_ATTACHMENT_ERROR: UNAVAILABLE}
    too_large = {**failed, msg.METADATA_ATTACHMENT_ERROR: TOO_LARGE}
    assert (
        r.shared()
        == [
            {**failed, msg.METADATA_ATTACHMENT_ERROR: "unsupported_type"},  # the store refused it
            unavailable,  # 404
            too_large,  # reading stopped at the limit
            too_large,  # Content-Length over it
            unavailable,  # another host: not fetched
            unavailable,  # redirected to another host: not followed
            {msg.METADATA_ATTACHMENTS: [store_id(p) for p in photos[:MAX_FILES]], **_no_caption},
            unavailable,  # the host only in the URL's user part
            unavailable,  # not http(s)
            {msg.METADATA_ATTACHMENTS: [store_id(photos[1])], **_no_caption},  # 1 of 2: no error
        ]
    )
    assert not evil.requests  # SSRF: the foreign host never got a request
    assert [u.body for u in r.store.received] == [photos[0], *photos[:MAX_FILES], photos[1]]
    fetched = [f.path for f in r.fake.fetched()]
    assert fetched.count("/media/missing") == 2  # once per message: a 404 is not retried
    assert "/media/4.png" not in fetched  # the fifth file is never downloaded


def test_a_slow_media_host_and_a_down_action_server(monkeypatch: pytest.MonkeyPatch) -> None:
    photo = png()

    async def scenario() -> Rig:
        fake = FakeFiles(files={"/media/a.png": photo})
        slow = {"timeout_s": 0.3, "max_attempts": 2, "retry_backoff_s": 0.01}
        async with rig(lambda api: messenger(api, **slow), monkeypatch, fake) as r:
            fake.file_delay_s = 1.0
            await post_messenger(r, messenger_event("a", "m1", fake.url + "/media/a.png"))
            fake.file_delay_s = 0.0
            r.channel.uploads = AttachmentUploads(
                f"http://127.0.0.1:{free_port()}/attachments", "s"
            )
            await post_messenger(r, messenger_event("b", "m2", fake.url + "/media/a.png"))
            r.channel.uploads = AttachmentUploads(r.store.url + "/attachments", "wrong-secret")
            await post_messenger(r, messenger_event("c", "m3", fake.url + "/media/a.png"))
            return r

    r = asyncio.run(scenario())
    failed = {msg.METADATA_ATTACHMENTS: [], msg.METADATA_CAPTION: ""}
    assert r.shared() == [{**failed, msg.METADATA_ATTACHMENT_ERROR: UNAVAILABLE}] * 3
    assert len([f for f in r.fake.fetched() if f.path == "/media/a.png"]) == 2 + 1 + 1
    assert r.store.refused == 1 and not r.store.received


# --- Twilio: basic auth to the API host only ---------------------------------------------------


def test_twilio_parses_num_media() -> None:
    pairs, _ = parse_form(
        urlencode(
            {
                "MessageSid": "MM1",
                "From": "+15551112222",
                "Body": "",
                "NumMedia": "2",
                "MediaUrl0": "https://api.twilio.com/m/0",
                "MediaContentType0": "image/jpeg",
                "MediaUrl1": "https://api.twilio.com/m/1",
                "MediaContentType1": "application/pdf",
            }
        ).encode()
    )
    (message,) = parse_message(pairs, whatsapp=False).messages
    assert message.media == (
        MediaRef("https://api.twilio.com/m/0", "image/jpeg"),
        MediaRef("https://api.twilio.com/m/1", "application/pdf"),
    )
    bogus, _ = parse_form(b"MessageSid=MM2&From=%2B15551112222&Body=&NumMedia=many")
    assert not parse_message(bogus, whatsapp=False).messages


def test_twilio_mms_with_a_caption(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    photo = png("blue")
    media_path = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/MM1/Media/ME1"

    async def scenario() -> tuple[Rig, FakeFiles]:
        cdn = FakeFiles(files={"/media/ME1.png": photo})
        await cdn.start()
        fake = FakeFiles(redirects={media_path: cdn.url + "/media/ME1.png"})

        def make(api: str) -> SmsInput:
            return SmsInput.from_credentials(
                {
                    "account_sid": TWILIO_SID,
                    "auth_token": TWILIO_TOKEN,
                    "from_number": "+15550000000",
                    "api_base_url": api,
                    "database_url": migrated_database(tmp_path),
                    "opt_out_db": str(tmp_path / "legacy.db"),
                    "media_hosts": cdn.url,
                    **FAST,
                }
            )

        try:
            async with rig(make, monkeypatch, fake) as r:
                url = r.base + "/webhooks/sms/webhook"

                async def post(sid: str, sender: str, body: str) -> None:
                    form = {
                        "MessageSid": sid,
                        "From": sender,
                        "To": "+15550000000",
                        "Body": body,
                        "NumMedia": "1",
                        "MediaUrl0": fake.url + media_path,
                        "MediaContentType0": "image/png",
                    }
                    signature = twilio_signature(url, sorted(form.items()), TWILIO_TOKEN)
                    headers = {
                        "X-Twilio-Signature": signature,
                        "Content-Type": "application/x-www-form-urlencoded",
                    }
                    assert await r.post("/webhooks/sms/webhook", urlencode(form).encode(), headers)

                await post("MM1", "+15551112222", ' /agent_message{"x": 1} can I bring this? ')
                await post("MM2", "+15553334444", "STOP")  # a keyword with a photo: opt-out
                await post("MM3", "+15553334444", "")  # opted out: nothing fetched or stored
                return r, cdn
        finally:
            await cdn.stop()

    r, cdn = asyncio.run(scenario())
    assert r.shared() == [
        {
            msg.METADATA_ATTACHMENTS: [store_id(photo)],
            msg.METADATA_CAPTION: 'agent_message{"x": 1} can I bring this?',
        }
    ]
    assert len(r.bot.seen) == 1
    (api_call,) = r.fake.fetched(prefix="/2010-04-01/Accounts/AC123/Messages/MM1/Media")
    basic = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert api_call.headers["Authorization"] == f"Basic {basic}"
    (cdn_call,) = cdn.fetched()
    assert "Authorization" not in cdn_call.headers  # the CDN never sees the account's token
    (upload,) = r.store.received
    assert upload.body == photo and upload.query["conversation_id"] == "sms-15551112222"


def test_twilio_credentials_never_go_to_another_host(tmp_path: Path) -> None:
    channel = SmsInput.from_credentials(
        {
            "account_sid": TWILIO_SID,
            "auth_token": TWILIO_TOKEN,
            "from_number": "+15550000000",
            "api_base_url": "https://api.twilio.com",
        }
    )
    own = asyncio.run(channel.media_source(MediaRef("https://api.twilio.com/x/Media/ME1")))
    cdn = asyncio.run(channel.media_source(MediaRef("https://mms.twiliocdn.com/x")))
    lookalike = asyncio.run(channel.media_source(MediaRef("https://api.twilio.com.evil.io/x")))
    assert not isinstance(own, str) and own.auth is not None
    assert not isinstance(cdn, str) and cdn.auth is None
    assert not isinstance(lookalike, str) and lookalike.auth is None
    hosts = channel.media_hosts()
    assert hosts.allows("https://mms.twiliocdn.com/x")
    assert not hosts.allows("https://api.twilio.com.evil.io/x")


# --- Telegram: getFile, then the file URL with the bot token ------------------------------------


def telegram_update(update_id: int, caption: str | None = None, **media: Any) -> bytes:
    message: dict[str, Any] = {
        "message_id": update_id,
        "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "language_code": "de"},
        **media,
    }
    if caption is not None:
        message["caption"] = caption
    return json.dumps({"update_id": update_id, "message": message}).encode()


PHOTO_SIZES = [
    {"file_id": "small", "width": 90, "height": 60, "file_size": 900},
    {"file_id": "large", "width": 1280, "height": 853, "file_size": 90000},
    {"file_id": "medium", "width": 320, "height": 213, "file_size": 9000},
]


def test_telegram_parses_the_largest_photo_and_documents() -> None:
    (photo,) = parse_update(
        telegram_update(1, "Darf ich das mitnehmen?", photo=PHOTO_SIZES)
    ).messages
    assert photo.text == "Darf ich das mitnehmen?" and photo.language == "de"
    assert photo.media == (MediaRef("large", "image", size=90000),)
    document = {"file_id": "doc", "file_name": "ticket.pdf", "mime_type": "application/pdf"}
    (doc,) = parse_update(telegram_update(2, document=document)).messages
    assert doc.text == "" and doc.media == (MediaRef("doc", "application/pdf", "ticket.pdf"),)
    assert not parse_update(telegram_update(3, sticker={"file_id": "s"})).messages


def test_telegram_photo_document_and_refusals(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    photo, pdf = png("green"), b"%PDF-1.4\n%%EOF\n"
    file_prefix = f"/file/bot{BOT_TOKEN}"

    def make(api: str) -> TelegramInput:
        return TelegramInput.from_credentials(
            {
                "bot_token": BOT_TOKEN,
                "secret_token": "s3cret",
                "api_base_url": api,
                "media_max_bytes": 100_000,
                **FAST,
            }
        )

    async def scenario() -> Rig:
        fake = FakeFiles(
            files={f"{file_prefix}/photos/file_1.jpg": photo, f"{file_prefix}/docs/t.pdf": pdf},
            file_paths={
                "large": "photos/file_1.jpg",
                "d1": "docs/t.pdf",
                "d3": "../../etc/passwd",
                "d4": "photos/gone.jpg",
            },
        )
        async with rig(make, monkeypatch, fake) as r:
            headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
            path = "/webhooks/telegram/webhook"
            await r.post(path, telegram_update(1, "/start", photo=PHOTO_SIZES), headers)
            document = {"file_id": "d1", "file_name": "Bordkarte-Müller.pdf"}
            await r.post(path, telegram_update(2, document=document), headers)
            too_big = {"file_id": "d2", "file_name": "scan.pdf", "file_size": 200_000}
            await r.post(path, telegram_update(3, document=too_big), headers)
            await r.post(path, telegram_update(4, document={"file_id": "d3"}), headers)
            await r.post(path, telegram_update(5, document={"file_id": "d4"}), headers)
            await r.post(path, telegram_update(6, document={"file_id": "unknown"}), headers)
            return r

    r = asyncio.run(scenario())
    failed = {msg.METADATA_ATTACHMENTS: [], msg.METADATA_CAPTION: ""}
    assert r.shared() == [
        # A caption is not a command: "/start" with a photo shares the photo.
        {msg.METADATA_ATTACHMENTS: [store_id(photo)], msg.METADATA_CAPTION: "start"},
        {msg.METADATA_ATTACHMENTS: [store_id(pdf)], msg.METADATA_CAPTION: ""},
        {**failed, msg.METADATA_ATTACHMENT_ERROR: TOO_LARGE},  # declared size: not fetched
        {**failed, msg.METADATA_ATTACHMENT_ERROR: UNAVAILABLE},  # a path leaving the folder
        {**failed, msg.METADATA_ATTACHMENT_ERROR: UNAVAILABLE},  # 404 on download
        {**failed, msg.METADATA_ATTACHMENT_ERROR: UNAVAILABLE},  # getFile refused
    ]
    file_ids = [call.json()["file_id"] for call in r.fake.sent("/getFile")]
    assert file_ids == ["large", "d1", "d3", "d4", "unknown"]
    assert unquote(r.store.received[1].headers["X-Attachment-Name"]) == "Bordkarte-Müller.pdf"
    assert BOT_TOKEN not in caplog.text  # the token sits in the download URL's path


# --- X: the media URL needs the account's OAuth signature ---------------------------------------


def x_dm(event_id: str, media_url: str, text: str) -> bytes:
    data = {
        "text": text,
        "attachment": {
            "type": "media",
            "media": {
                "type": "photo",
                "media_url_https": media_url,
                "url": "https://t.co/AbC123",
            },
        },
    }
    event = {
        "type": "message_create",
        "id": event_id,
        "message_create": {
            "target": {"recipient_id": "1000"},
            "sender_id": "2000",
            "message_data": data,
        },
    }
    return json.dumps({"for_user_id": "1000", "direct_message_events": [event]}).encode()


def test_x_parses_a_photo_and_drops_its_link_from_the_caption() -> None:
    body = x_dm(
        "e1", "https://ton.twitter.com/1.1/ton/data/dm/1/2/a.jpg", "is this ok? https://t.co/AbC123"
    )
    (message,) = parse_x_events(body, "1000").messages
    assert message.text == "is this ok?"
    assert message.media == (
        MediaRef("https://ton.twitter.com/1.1/ton/data/dm/1/2/a.jpg", "image"),
    )


def test_x_photo_is_fetched_with_an_oauth_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    photo = png("white")

    def make(api: str) -> XInput:
        return XInput.from_credentials(
            {
                "consumer_key": "ck",
                "consumer_secret": "cs",
                "access_token": "at",
                "access_token_secret": "ats",
                "api_base_url": api,
                **FAST,
            }
        )

    async def scenario() -> Rig:
        fake = FakeFiles(files={"/media/dm.jpg": photo})
        async with rig(make, monkeypatch, fake) as r:
            body = x_dm("e1", fake.url + "/media/dm.jpg?name=orig", "https://t.co/AbC123")
            signature = "sha256=" + hmac_b64("cs", body)
            await r.post("/webhooks/x/webhook", body, {"x-twitter-webhooks-signature": signature})
            return r

    r = asyncio.run(scenario())
    assert r.shared() == [{msg.METADATA_ATTACHMENTS: [store_id(photo)], msg.METADATA_CAPTION: ""}]
    (download,) = r.fake.fetched()
    authorization = download.headers["Authorization"]
    assert authorization.startswith("OAuth ") and 'oauth_consumer_key="ck"' in authorization
    assert 'oauth_token="at"' in authorization and download.query == {"name": "orig"}


# --- the pieces --------------------------------------------------------------------------------


def test_media_hosts_allow_only_the_platforms_origins() -> None:
    hosts = MediaHosts.of(["https://graph.facebook.com"], ".fbcdn.net, lookaside.fbsbx.com")
    assert hosts.allows("https://graph.facebook.com/v19.0/x")
    assert hosts.allows("https://scontent-ams4-1.xx.fbcdn.net/v/a.jpg?x=1")
    assert hosts.allows("https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1")
    for url in (
        "https://evilfbcdn.net/a.jpg",  # a suffix, not a subdomain
        "http://scontent.xx.fbcdn.net/a.jpg",  # CDN names: HTTPS only
        "https://graph.facebook.com:8443/x",  # another port
        "https://graph.facebook.com@169.254.169.254/latest/meta-data",
        "https://other.fbsbx.com/a",
        "file:///etc/passwd",
        "gopher://graph.facebook.com/",
        "https://[::1/",
    ):
        assert not hosts.allows(url), url


def test_upload_url_and_header_names() -> None:
    assert upload_url("http://127.0.0.1:5055/webhook") == "http://127.0.0.1:5055/attachments"
    assert upload_url("http://lb:8080/actions/webhook/") == "http://lb:8080/actions/attachments"
    # Percent-encoded UTF-8, as the action server reads it (unquote); no header injection.
    assert header_name("Ñandú\r\nX-Evil: 1.jpg") == "%C3%91and%C3%BAX-Evil%3A 1.jpg"
    assert unquote(header_name("飛行機 (1).png")) == "飛行機 (1).png"
    assert len(header_name("a" * 500)) == 200


def test_text_only_platforms_get_an_attachment_link() -> None:
    attachment = {"type": "file", "url": "https://x/media/1", "name": "a.pdf"}
    assert plain_text_of({"text": "Here", "attachment": attachment}) == "Here\nhttps://x/media/1"
    assert plain_text_of({"image": "https://x/media/2"}) == "https://x/media/2"


def test_uploads_come_from_rasas_environment() -> None:
    uploads = AttachmentUploads.from_environ(
        {"ASKAGENCY_ACTION_URL": "http://127.0.0.1:5055/webhook", "ASKAGENCY_ACTION_SECRET": "s"}
    )
    assert uploads == AttachmentUploads("http://127.0.0.1:5055/attachments", "s")
    assert AttachmentUploads.from_environ({}) == AttachmentUploads("", "")


def test_unconfigured_action_server_is_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)

    async def scenario() -> Any:
        channel = messenger("https://graph.facebook.com")
        channel.uploads = AttachmentUploads()
        try:
            return await channel.uploads.store(
                channel.http, b"x", conversation_id="messenger-1", channel="messenger", name=""
            )
        finally:
            await channel.http.close()

    stored = asyncio.run(scenario())
    assert stored.attachment_id is None and stored.code == UNAVAILABLE
    assert "ASKAGENCY_ACTION_URL" in caplog.text


# --- outbound: an agent's image or file, sent natively ----------------------------------------

SIGNED = "https://agency.example/media/0123456789abcdef0123456789abcdef?exp=1&sig=ab"
AGENT = {"type": msg.MessageType.AGENT_MESSAGE.value, "agent": "Dana", "message_id": 7}
PDF = {"type": "file", "url": SIGNED, "name": "rules.pdf", "mime": "application/pdf"}


def test_outgoing_media_of_a_bot_message() -> None:
    image = outgoing_media({"image": SIGNED})
    assert image == OutgoingMedia(SIGNED, is_image=True)
    assert outgoing_media({"attachment": PDF}) == OutgoingMedia(
        SIGNED, is_image=False, name="rules.pdf", mime="application/pdf"
    )
    assert outgoing_media({"image": "javascript:alert(1)"}) is None
    assert outgoing_media({"text": "hi"}) is None
    assert text_of({"text": "Here", "image": SIGNED}, image) == "Here"
    assert text_of({"text": "Here", "image": SIGNED}, None) == f"Here\n{SIGNED}"


async def deliver(channel: PlatformInput, conversation_id: str, **draft: Any) -> None:
    try:
        await channel.get_output_channel().send_response(conversation_id, rasa_message(**draft))
    finally:
        await channel.http.close()


def agent_files_through(
    make: Callable[[str], PlatformInput],
    conversation_id: str,
    drafts: Sequence[dict[str, Any]],
    script: Sequence[tuple[int, Any, dict[str, str]]] = (),
) -> FakePlatform:
    """The agent's ``drafts`` sent one by one through a channel made by ``make(api_url)`` to a
    stand-in platform answering with ``script``: the platform, with what it received."""

    async def scenario() -> FakePlatform:
        fake = FakePlatform(script=list(script))
        api = await fake.start()
        try:
            for draft in drafts:
                await deliver(make(api), conversation_id, **draft, custom=AGENT)
        finally:
            await fake.stop()
        return fake

    return asyncio.run(scenario())


def test_messenger_sends_an_agents_file_as_an_attachment() -> None:
    fake = agent_files_through(
        messenger,
        "messenger-u1",
        [{"text": "The rules", "attachment": PDF}, {"image": SIGNED}],
        script=[(200, {}, {}), (200, {}, {}), (400, {"error": "bad url"}, {})],
    )
    sends = [r.json() for r in fake.sent("/me/messages")]
    tag = {"recipient": {"id": "u1"}, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    assert sends == [
        {
            **tag,
            "message": {
                "attachment": {"type": "file", "payload": {"url": SIGNED, "is_reusable": False}}
            },
        },
        {**tag, "message": {"text": "The rules"}},
        # Meta refused the image: its link instead.
        {
            **tag,
            "message": {
                "attachment": {"type": "image", "payload": {"url": SIGNED, "is_reusable": False}}
            },
        },
        {**tag, "message": {"text": SIGNED}},
    ]


def test_telegram_sends_photos_and_documents_by_url() -> None:
    def make(api: str) -> TelegramInput:
        return TelegramInput.from_credentials(
            {"bot_token": BOT_TOKEN, "secret_token": "s", "api_base_url": api, **FAST}
        )

    fake = agent_files_through(
        make,
        "telegram-42",
        [{"text": "Like this", "image": SIGNED}, {"attachment": PDF}],
        script=[
            (200, {"ok": True}, {}),
            (200, {"ok": True}, {}),
            (400, {"ok": False, "description": "wrong file identifier/HTTP URL specified"}, {}),
        ],
    )
    calls = [(r.path.rsplit("/", 1)[1], r.json()) for r in fake.requests]
    assert calls == [
        ("sendPhoto", {"chat_id": 42, "photo": SIGNED}),
        ("sendMessage", {"chat_id": 42, "text": "Like this"}),
        ("sendDocument", {"chat_id": 42, "document": SIGNED}),
        ("sendMessage", {"chat_id": 42, "text": SIGNED}),  # refused: the link
    ]


def test_twilio_sends_media_url_and_falls_back_to_the_link(tmp_path: Path) -> None:
    def make(api: str) -> SmsInput:
        return SmsInput.from_credentials(
            {
                "account_sid": TWILIO_SID,
                "auth_token": TWILIO_TOKEN,
                "from_number": "+15550000000",
                "api_base_url": api,
                "database_url": migrated_database(tmp_path),
                "opt_out_db": str(tmp_path / "legacy.db"),
                **FAST,
            }
        )

    refused = {"code": 21612, "message": "cannot route MMS to this number"}
    fake = agent_files_through(
        make,
        "sms-15551112222",
        [{"text": "Like this", "image": SIGNED}, {"attachment": PDF}],
        script=[(201, {"sid": "MM1"}, {}), (400, refused, {})],
    )
    forms = [r.form() for r in fake.sent("/Messages.json")]
    assert [(f.get("Body", ""), f.get("MediaUrl")) for f in forms] == [
        ("Like this", SIGNED),
        ("", SIGNED),
        (SIGNED, None),  # Twilio refused the MMS: the link as text
    ]


def test_x_sends_the_link() -> None:
    def make(api: str) -> XInput:
        return XInput.from_credentials(
            {
                "consumer_key": "ck",
                "consumer_secret": "cs",
                "access_token": "at",
                "access_token_secret": "ats",
                "api_base_url": api,
                **FAST,
            }
        )

    fake = agent_files_through(make, "x-2000", [{"text": "The rules", "attachment": PDF}])
    (sent,) = fake.sent("/direct_messages/events/new.json")
    data = sent.json()["event"]["message_create"]["message_data"]
    assert data == {"text": f"The rules\n{SIGNED}"}
