"""``POST /attachments`` on the real action server (Sanic, the shared secret, the migrated test
database): a platform's file is sanitized and stored for its conversation; a file over the limit
is refused from its Content-Length (or, chunked, as soon as it passes the limit) without the
server waiting for the rest; anything else is refused with the sanitizer's reason."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from PIL import Image
from sanic import Sanic
from sqlalchemy import func, select

from actions.server import ATTACHMENT_NAME_HEADER, ATTACHMENTS_PATH, build_app
from askagency.config import get_settings
from askagency.db import get_engine, session_scope
from askagency.ports import free_port
from askagency.secrets import ACTION_SECRET_HEADER
from attachments.models import Attachment
from tests.net import closed_port
from tests.unit.attachments.files import GPS_IFD, exif_with_gps, image_bytes, pdf, png_declaring

SECRET = "s" * 43
LIMIT = 4096
HEADERS = {ACTION_SECRET_HEADER: SECRET}


@pytest.fixture
async def server(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, int]]:
    monkeypatch.setenv("ASKAGENCY_ATTACHMENT_MAX_BYTES", str(LIMIT))
    get_settings.cache_clear()
    Sanic.test_mode = True
    app = build_app(warm_up=False, secret=SECRET)
    port = free_port()
    served = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert served is not None
    await served.startup()
    await served.start_serving()
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        served.close()
        await served.wait_closed()


async def post(
    base: str, body: bytes, headers: dict[str, str] | None = None, **query: str
) -> tuple[int, dict[str, Any]]:
    params = {"conversation_id": "c1", "channel": "socketio", **query}
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            base + ATTACHMENTS_PATH,
            params=params,
            data=body,
            headers=HEADERS if headers is None else headers,
        ) as answer,
    ):
        return answer.status, await answer.json(content_type=None)


def stored() -> list[Attachment]:
    with session_scope() as session:
        rows = session.scalars(select(Attachment)).all()
        for row in rows:
            _ = row.data  # loaded while the session is open
        return list(rows)


def count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Attachment)) or 0


async def test_a_platform_photo_is_sanitized_and_stored(server: tuple[str, int]) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 90, 200)).save(
        buffer, format="JPEG", exif=exif_with_gps().tobytes()
    )
    name = quote("Fotó 1.heic")
    status, body = await post(
        server[0],
        buffer.getvalue() + b"PK\x03\x04payload",
        {**HEADERS, ATTACHMENT_NAME_HEADER: name},
        conversation_id="telegram-42",
        channel="telegram",
    )

    assert status == 201, body
    assert body["kind"] == "image" and set(body) == {"id", "kind", "name"}
    [row] = stored()
    assert (row.id, row.conversation_id, row.channel) == (body["id"], "telegram-42", "telegram")
    assert (row.direction, row.mime, row.name) == ("citizen", "image/jpeg", "Fotó 1.jpg")
    assert b"PK\x03\x04" not in row.data
    assert GPS_IFD not in Image.open(io.BytesIO(row.data)).getexif()


async def test_a_pdf_is_stored_as_a_document(server: tuple[str, int]) -> None:
    status, body = await post(server[0], pdf())
    assert (status, body["kind"]) == (201, "document")
    assert stored()[0].data == pdf()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (image_bytes("GIF", mode="P", color=1), "unsupported_type"),
        (b"<html><script>alert(1)</script></html>", "unsupported_type"),
        (image_bytes("PNG", size=(200, 200))[:200], "damaged"),
        (png_declaring(30_000, 30_000), "too_many_pixels"),
    ],
    ids=["empty", "gif", "html", "truncated", "bomb"],
)
async def test_refused_files_say_why_and_store_nothing(
    server: tuple[str, int], data: bytes, code: str
) -> None:
    status, body = await post(server[0], data)
    assert (status, body["error"]) == (422, code)
    assert body["message"]
    assert count() == 0


async def test_without_the_secret_nothing_is_stored(server: tuple[str, int]) -> None:
    status, _ = await post(server[0], pdf(), headers={ACTION_SECRET_HEADER: "guess" * 9})
    assert status == 401
    status, _ = await post(server[0], pdf(), headers={})
    assert status == 401
    assert count() == 0


@pytest.mark.parametrize(
    ("conversation_id", "channel"),
    [
        ("", "socketio"),
        ("a b", "socketio"),
        ("a/b", "socketio"),
        ("x" * 200, "socketio"),
        ("telegram-42", "socketio"),  # a web client cannot write into a platform conversation
        ("telegram-42", "sms"),  # nor one platform into another's
        ("c1", "telegram"),
        ("c1", "ftp"),
        ("c1", ""),
    ],
)
async def test_a_bad_conversation_or_channel_is_400(
    server: tuple[str, int], conversation_id: str, channel: str
) -> None:
    status, body = await post(server[0], pdf(), conversation_id=conversation_id, channel=channel)
    assert status == 400, body
    assert count() == 0


async def raw_request(port: int, head: bytes, body_start: bytes) -> bytes:
    """Sends the request head and the start of a body that never completes; returns what the
    server answers within 5 s (it must not wait for the rest)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body_start)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), timeout=5)
    finally:
        writer.close()


def request_head(extra: str) -> bytes:
    return (
        f"POST {ATTACHMENTS_PATH}?conversation_id=c1&channel=socketio HTTP/1.1\r\n"
        f"Host: localhost\r\n{ACTION_SECRET_HEADER}: {SECRET}\r\n{extra}\r\n"
    ).encode()


async def test_a_declared_oversize_body_is_refused_before_it_is_read(
    server: tuple[str, int],
) -> None:
    answer = await raw_request(
        server[1], request_head(f"Content-Length: {LIMIT + 1}\r\n"), b"\xff\xd8\xff"
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"too_large" in answer
    assert count() == 0


async def test_a_chunked_body_is_cut_off_once_past_the_limit(server: tuple[str, int]) -> None:
    chunk = b"\x00" * (LIMIT + 10)
    answer = await raw_request(
        server[1],
        request_head("Transfer-Encoding: chunked\r\n"),
        f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n",  # and never the final chunk
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert count() == 0


async def test_a_body_at_the_limit_is_accepted(server: tuple[str, int]) -> None:
    data = pdf(b"%" + b"x" * (LIMIT - len(pdf(b"")) - 2) + b"\n")
    assert len(data) == LIMIT
    status, body = await post(server[0], data)
    assert status == 201, body
    status, body = await post(server[0], data + b"\n")
    assert (status, body["error"]) == (413, "too_large")


async def test_a_database_outage_is_503_so_the_channel_can_say_try_again(
    server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    with closed_port() as port:
        monkeypatch.setenv(
            "ASKAGENCY_DATABASE_URL", f"postgresql+psycopg://u:p@127.0.0.1:{port}/nowhere"
        )
        get_settings.cache_clear()
        get_engine.cache_clear()
        status, body = await post(server[0], pdf())
    assert (status, body["error"]) == (503, "unavailable")
