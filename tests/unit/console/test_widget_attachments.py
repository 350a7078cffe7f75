"""POST /api/widget/attachments: a citizen's photo or PDF, stored for the message that carries
it, on the real console app with a real (migrated SQLite) database and real Pillow. Each refusal
is an attack or a mistake a citizen's browser can make."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from askagency import bot_messages as msg
from askagency.config import Settings
from askagency.conversation_token import ConversationSigner
from askagency.db import get_sessionmaker
from attachments import store
from attachments.models import Attachment
from console.app import create_app
from console.login_limit import LoginLimiter
from console.widget_api import (
    ATTACHMENTS_PATH,
    NAME_HEADER,
    TOKEN_HEADER,
    UPLOAD_LIMITER_KEY,
    messages_from_tracker,
)

SID = "web-0123456789abcdef0123456789abcdef"
OTHER = "web-fedcba9876543210fedcba9876543210"
SECRET = "widget-attachment-tests-conversation-secret-0123"
SIGNER = ConversationSigner(SECRET.encode())
ORIGIN = "https://www.agency.example"
MAX_BYTES = 64 * 1024


def owner(session_id: str = SID, **extra: str) -> dict[str, str]:
    """The headers the widget sends: the conversation's signed token (and any ``extra``)."""
    return {TOKEN_HEADER: SIGNER.token(session_id), **extra}


def png(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(out, "GIF")
    return out.getvalue()


@pytest.fixture
def settings(db_url: str, tmp_settings: Settings) -> Settings:
    """The migrated test database, the test's conversation secret, a small file limit and one
    page allowed to embed the widget."""
    return tmp_settings.model_copy(
        update={
            "conversation_secret": SECRET,
            "attachment_max_bytes": MAX_BYTES,
            "widget_origins": [ORIGIN],
        }
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


@pytest.fixture
def db(settings: Settings) -> Iterator[Session]:
    session = get_sessionmaker(settings.database_url)()
    try:
        yield session
    finally:
        session.close()


def stored(db: Session) -> list[Attachment]:
    db.expire_all()
    return list(db.scalars(select(Attachment)))


async def upload(client: TestClient, body: Any, session_id: str = SID, **headers: str) -> Any:
    return await client.post(
        ATTACHMENTS_PATH,
        params={"session_id": session_id},
        data=body,
        headers={"Content-Type": "image/png", **headers},
    )


async def test_a_png_is_stored_for_the_conversation(client: TestClient, db: Session) -> None:
    name = quote("Maleta de mamá.png")  # the widget percent-encodes: headers are Latin-1
    resp = await upload(client, png(), **owner(**{NAME_HEADER: name}))
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert set(body) == {"id", "kind", "name"}
    assert body["kind"] == "image" and body["name"] == "Maleta de mamá.png"
    assert store.ID_PATTERN.fullmatch(body["id"])
    assert resp.headers["Cache-Control"] == "no-store"
    [row] = stored(db)
    assert row.id == body["id"]
    assert row.conversation_id == SID
    assert (row.direction, row.channel, row.kind, row.mime) == (
        "citizen",
        "socketio",
        "image",
        "image/png",
    )
    assert (row.width, row.height) == (40, 30)
    # The action's ownership check finds it for this conversation, and only for it.
    assert [a.id for a in store.owned_by(db, SID, [body["id"]])] == [body["id"]]
    assert store.owned_by(db, OTHER, [body["id"]]) == []


async def test_without_the_conversations_token_nothing_is_stored(
    client: TestClient, db: Session
) -> None:
    attempts = [
        {},
        {TOKEN_HEADER: ""},
        {TOKEN_HEADER: "v1.forged"},
        owner(OTHER),  # a real token, of another conversation
        {TOKEN_HEADER: ConversationSigner(b"another-server-secret-0123456789").token(SID)},
    ]
    for headers in attempts:
        resp = await upload(client, png(), **headers)
        assert resp.status == 403, headers
        body = await resp.json()
        assert body["error"] == "forbidden" and TOKEN_HEADER in body["message"]
    assert stored(db) == []


async def test_platform_and_malformed_ids_are_refused_even_when_signed(
    client: TestClient, db: Session
) -> None:
    """A web client must not put files into a citizen's SMS/WhatsApp/... conversation."""
    for bad in ("sms-15551234567", "WhatsApp-1555", "telegram-42", "../" + SID, "x" * 200, ""):
        resp = await upload(client, png(), session_id=bad, **owner(bad))
        assert resp.status == 400, bad
        assert (await resp.json())["error"] == "bad_session"
    assert stored(db) == []


async def test_oversize_by_header_is_refused_before_the_body_is_read(
    client: TestClient, db: Session
) -> None:
    """A declared 1 GB upload is answered at once: the server waits for none of it."""
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST {ATTACHMENTS_PATH}?session_id={SID} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"{TOKEN_HEADER}: {SIGNER.token(SID)}\r\n"
        "Content-Type: image/png\r\n"
        f"Content-Length: {10**9}\r\n\r\n"
    )
    writer.write(head.encode())
    await writer.drain()
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
        rest = await asyncio.wait_for(reader.readuntil(b'"}'), timeout=5)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert b'"error": "too_large"' in rest
    assert stored(db) == []


async def test_oversize_without_a_length_is_cut_off(client: TestClient, db: Session) -> None:
    """A chunked body (no Content-Length to check) is read only up to the limit."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BYTES // 1024 + 2):
            yield b"\0" * 1024

    resp = await upload(client, chunks(), **owner())
    assert resp.status == 413
    assert (await resp.json())["error"] == "too_large"
    assert stored(db) == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (gif(), 415, "unsupported_type"),  # a real image of a type we do not take
        (b"<html><script>alert(1)</script></html>", 415, "unsupported_type"),
        (png()[:60], 422, "damaged"),  # a PNG cut short
        (b"", 422, "empty"),
    ],
)
async def test_files_we_cannot_use_are_refused_with_a_code(
    client: TestClient, db: Session, body: bytes, status: int, code: str
) -> None:
    resp = await upload(client, body, **owner())
    assert resp.status == status
    answer = await resp.json()
    assert answer["error"] == code and answer["message"]
    assert stored(db) == []


async def test_uploads_are_rate_limited(settings: Settings, db: Session) -> None:
    """A script flooding the database with photos: the third upload gets 429."""
    app = create_app(settings)
    app[UPLOAD_LIMITER_KEY] = LoginLimiter(2, 0.0, clock=lambda: 0.0)
    async with TestClient(TestServer(app)) as client:
        statuses = [(await upload(client, png(), **owner())).status for _ in range(3)]
        limited = await upload(client, png(), **owner())
        assert int(limited.headers["Retry-After"]) > 0
        assert (await limited.json())["error"] == "rate_limited"
    assert statuses == [201, 201, 429]
    assert len(stored(db)) == 2


async def test_only_the_widgets_pages_may_upload_from_a_browser(client: TestClient) -> None:
    def preflight(origin: str) -> Any:
        return client.options(
            ATTACHMENTS_PATH,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": f"{TOKEN_HEADER.lower()},content-type",
            },
        )

    allowed = await preflight(ORIGIN)
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert TOKEN_HEADER in allowed.headers["Access-Control-Allow-Headers"]
    assert NAME_HEADER in allowed.headers["Access-Control-Allow-Headers"]
    foreign = await preflight("https://evil.example")
    assert "Access-Control-Allow-Origin" not in foreign.headers

    resp = await upload(client, png(), **owner(Origin=ORIGIN))
    assert resp.status == 201
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_history_shows_a_citizens_file_as_its_caption_and_a_count() -> None:
    ids = ["a" * 32, "b" * 32]
    events = [
        {
            "event": "user",
            "text": f"/{msg.INTENT_SHARE_ATTACHMENT}",
            "timestamp": 1.0,
            "metadata": {msg.METADATA_ATTACHMENTS: ids, msg.METADATA_CAPTION: "can I bring it?"},
        },
        {"event": "user", "text": f"/{msg.INTENT_SHARE_ATTACHMENT}", "timestamp": 2.0},
        {
            "event": "bot",
            "text": None,
            "timestamp": 3.0,
            "data": {"image": "https://console.example/media/" + "c" * 32 + "?exp=1&sig=2"},
        },
    ]
    first, second, image = messages_from_tracker({"events": events})
    assert first == {
        "role": "citizen",
        "text": "can I bring it?",
        "attachments": 2,
        "timestamp": 1.0,
    }
    assert "payload" not in first  # not a control message the widget would hide
    assert second["text"] == "" and second["attachments"] == 1
    assert image["role"] == "bot" and image["image"].startswith("https://console.example/media/")


def test_the_channels_id_rule_is_the_stores() -> None:
    """bot/channels/web_attachments.py checks ids with the contract's copy of the rule (Rasa's
    environment cannot import the store): both must accept exactly the same ids."""
    import re

    rule = re.compile(msg.ATTACHMENT_ID_PATTERN)
    for value in (store.new_id(), "a" * 32, "A" * 32, "a" * 31, "g" * 32, "a" * 33):
        assert bool(rule.fullmatch(value)) == store.is_valid_id(value), value
    assert msg.MAX_ATTACHMENTS_PER_MESSAGE == store.MAX_PER_MESSAGE


def test_the_widgets_file_picker_offers_what_the_sanitizer_accepts() -> None:
    """The widget's ``accept=`` list is written in JavaScript; it must not drift from the
    sanitizer's (a type offered but refused, or accepted but never offered)."""
    import re
    from pathlib import Path

    from attachments.sanitize import ACCEPTED_MIME_TYPES

    widget = Path(__file__).resolve().parents[3] / "console" / "static" / "widget"
    match = re.search(
        r'var ACCEPTED_TYPES = "([^"]+)";', (widget / "askagency-widget.js").read_text()
    )
    assert match
    assert tuple(match.group(1).split(",")) == ACCEPTED_MIME_TYPES
