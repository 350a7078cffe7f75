"""Photos and files in the inbox over real HTTP (issue 21, item 1): staff see a citizen's photo
only when logged in with a ticket-reading role, citizens' clients fetch an agent's file only by a
valid signed link, an agent sends a sanitized file as a reply, and every file response carries
the headers that keep a hostile file inert. Real console app, real SQLite, real Pillow."""

from __future__ import annotations

import asyncio
import io
import json
import random
import struct
import zlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from sqlalchemy import select

from askagency.bot_messages import ENTITY_HANDOFF_ATTACHMENT, INTENT_AGENT_MESSAGE
from askagency.clock import FakeClock
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from askagency.staff import Role
from attachments import links, store
from attachments.models import Attachment
from attachments.sanitize import Clean, Kind, Limits, sanitize
from console.app import create_app
from console.attachment_views import FILE_CSP, content_disposition
from console.auth import create_user
from handoff import service
from tests.console_helpers import PASSWORD
from tests.console_helpers import login as console_login
from tests.fakes import FakeRasa, console_fake_rasa

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(out, format="GIF")
    return out.getvalue()


def bomb_png(side: int = 30_000) -> bytes:
    """A few hundred bytes whose header declares ``side`` x ``side`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture
async def fake_rasa(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeRasa]:
    async with console_fake_rasa(monkeypatch) as fake:
        yield fake


@pytest.fixture
async def client(
    tmp_settings: Settings, db_url: str, fake_rasa: FakeRasa
) -> AsyncIterator[TestClient]:
    get_settings.cache_clear()
    with session_scope() as session:
        create_user(session, "ana", PASSWORD, Role.AGENT, "Ana")
        create_user(session, "vic", PASSWORD, Role.VIEWER)
        create_user(session, "eddie", PASSWORD, Role.EDITOR)
    async with TestClient(TestServer(create_app(get_settings()))) as test_client:
        yield test_client


def limits() -> Limits:
    return Limits.from_settings(get_settings())


def open_ticket(conversation: str = "conv-1") -> int:
    with session_scope() as session:
        return service.open_ticket(
            session, conversation_id=conversation, reason="attachment", channel="socketio"
        ).ticket.id


def citizen_photo(conversation: str = "conv-1", data: bytes | None = None) -> tuple[int, str]:
    """A citizen message on the open ticket with a photo, as the channels store it."""
    with session_scope() as session:
        message = service.add_citizen_message(session, conversation, "can I bring this?")
        assert message is not None
        attachment = store.save(
            session,
            sanitize(data or png(), limits()),
            conversation_id=conversation,
            channel="socketio",
            direction="citizen",
            name="knife.png",
        )
        store.link_to_message(session, [attachment.id], message.id)
        return message.id, attachment.id


def agent_file(conversation: str = "conv-1", clean: Clean | None = None, name: str = "") -> str:
    with session_scope() as session:
        return store.save(
            session,
            clean or sanitize(png(), limits()),
            conversation_id=conversation,
            channel="socketio",
            direction="agent",
            name=name or "answer.png",
        ).id


def file_form(data: bytes, name: str, content_type: str, text: str | None = None) -> FormData:
    form = FormData()
    form.add_field("file", data, filename=name, content_type=content_type)
    if text is not None:
        form.add_field("text", text)
    return form


def assert_inert(resp, content_type: str) -> None:  # type: ignore[no-untyped-def]
    """The headers every file response carries."""
    assert resp.headers["Content-Type"] == content_type
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == FILE_CSP == "default-src 'none'; sandbox"
    assert resp.headers["Cache-Control"] == "private, no-store"


def attachment_rows() -> list[Attachment]:
    with session_scope() as session:
        rows = list(session.scalars(select(Attachment)))
        session.expunge_all()
        return rows


# ----------------------------------------------------------------------------- staff route
async def test_staff_sees_the_citizens_photo_thumbnail_and_download(client: TestClient) -> None:
    ticket_id = open_ticket()
    message_id, attachment_id = citizen_photo()
    await console_login(client, "ana")

    detail = await (await client.get(f"/api/tickets/{ticket_id}")).json()
    (message,) = detail["messages"]
    assert message["id"] == message_id and message["text"] == "can I bring this?"
    (listed,) = message["attachments"]
    assert listed["id"] == attachment_id and listed["kind"] == "image"
    assert (listed["width"], listed["height"], listed["mime"]) == (64, 48, "image/png")
    assert listed["name"] == "knife.png"
    assert listed["url"] == f"/console/attachments/{attachment_id}"
    assert listed["thumbnail_url"] == f"/console/attachments/{attachment_id}?variant=thumbnail"
    assert listed["download_url"] == f"/console/attachments/{attachment_id}?download=1"
    assert "image/png" in detail["uploads"]["accept"]
    assert detail["uploads"]["max_bytes"] == get_settings().attachment_max_bytes

    full = await client.get(listed["url"])
    assert full.status == 200
    assert_inert(full, "image/png")
    assert full.headers["Content-Disposition"].startswith('inline; filename="knife.png"')
    assert full.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert Image.open(io.BytesIO(await full.read())).size == (64, 48)

    thumb = await client.get(listed["thumbnail_url"])
    assert thumb.status == 200
    assert_inert(thumb, "image/jpeg")
    assert Image.open(io.BytesIO(await thumb.read())).format == "JPEG"

    download = await client.get(listed["download_url"])
    assert download.headers["Content-Disposition"].startswith('attachment; filename="knife.png"')
    assert (await client.get(listed["url"] + "?variant=huge")).status == 400


async def test_staff_route_requires_login_and_a_ticket_reading_role(client: TestClient) -> None:
    open_ticket()
    _, attachment_id = citizen_photo()
    url = f"/console/attachments/{attachment_id}"

    anonymous = await client.get(url + "?variant=thumbnail", allow_redirects=False)
    assert anonymous.status == 302
    assert anonymous.headers["Location"].startswith("/console/login?next=/console/attachments/")
    as_json = await client.get(url, headers={"Accept": "application/json"})
    assert as_json.status == 401

    # A viewer or an editor (no access to tickets) cannot tell a real id from an unknown one.
    for username in ("vic", "eddie"):
        await console_login(client, username)
        real = await client.get(url)
        unknown = await client.get("/console/attachments/" + "0" * 32)
        assert real.status == unknown.status == 404, username
        assert await real.text() == await unknown.text()

    await console_login(client, "ana")
    assert (await client.get(url)).status == 200
    for bad in ("0" * 32, "..%2F..%2Fetc%2Fpasswd", "' OR 1=1 --", attachment_id.upper()):
        assert (await client.get("/console/attachments/" + bad)).status == 404, bad


async def test_a_pdf_is_only_ever_a_download_and_odd_types_are_opaque(client: TestClient) -> None:
    open_ticket()
    pdf_id = agent_file(clean=sanitize(PDF, limits()), name="Checklist für Reisende.pdf")
    # A row the sanitizer could never have written (a bug, a hand-edited database): HTML.
    html_id = agent_file(
        clean=Clean(
            Kind.DOCUMENT, "text/html", b"<script>alert(1)</script>", None, None, None, "html"
        )
    )
    await console_login(client, "ana")

    pdf = await client.get(f"/console/attachments/{pdf_id}")
    assert_inert(pdf, "application/pdf")
    disposition = pdf.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Checklist f_r Reisende.pdf"')
    assert "filename*=UTF-8''Checklist%20f%C3%BCr%20Reisende.pdf" in disposition
    assert await pdf.read() == PDF  # kept byte for byte
    assert (await client.get(f"/console/attachments/{pdf_id}?variant=thumbnail")).status == 404

    html = await client.get(f"/console/attachments/{html_id}")
    assert_inert(html, "application/octet-stream")
    assert html.headers["Content-Disposition"].startswith("attachment;")


def test_content_disposition_cannot_be_broken_by_a_file_name() -> None:
    for name in ('a"; filename="evil.html', "x\r\nSet-Cookie: a=b.pdf", "../../etc/passwd", ""):
        header = content_disposition(name, inline=False)
        fallback = header.split(";")[1]
        assert "\r" not in header and "\n" not in header
        assert fallback.count('"') == 2, header  # the quoted fallback is never closed early
        assert "/" not in fallback
    assert (
        content_disposition("", inline=True) == "inline; filename=\"file\"; filename*=UTF-8''file"
    )


# ----------------------------------------------------------------------------- public route
async def test_signed_link_serves_an_agents_file_until_it_expires(
    client: TestClient, clock: FakeClock
) -> None:
    open_ticket()
    attachment_id = agent_file()
    settings = get_settings()
    secret = links.link_secret(settings)
    ttl = settings.attachment_link_ttl_s
    url = links.signed_url("", attachment_id, secret=secret, now=clock(), ttl_s=ttl)
    assert url.startswith(f"/media/{attachment_id}?exp=")

    resp = await client.get(url)  # no console session: the citizen's side
    assert resp.status == 200
    assert_inert(resp, "image/png")
    assert resp.headers["Content-Disposition"].startswith("inline;")
    assert Image.open(io.BytesIO(await resp.read())).size == (64, 48)
    head = await client.head(url)  # platforms may ask before fetching
    assert head.status == 200
    assert (await client.get(url + "&variant=thumbnail")).headers["Content-Type"] == "image/jpeg"

    clock.advance(seconds=ttl - 1)
    assert (await client.get(url)).status == 200
    clock.advance(seconds=1)
    expired = await client.get(url)
    assert expired.status == 403 and "expired" in await expired.text()


async def test_tampered_links_and_citizens_files_are_refused(
    client: TestClient, clock: FakeClock
) -> None:
    open_ticket()
    agents = agent_file()
    other_agents = agent_file()
    _, citizens = citizen_photo()
    secret = links.link_secret(get_settings())

    def sign(attachment_id: str, key: bytes = secret) -> tuple[str, str]:
        url = links.signed_url("", attachment_id, secret=key, now=clock(), ttl_s=3600)
        query = dict(part.split("=") for part in url.split("?")[1].split("&"))
        return query["exp"], query["sig"]

    exp, sig = sign(agents)
    assert (await client.get(f"/media/{agents}?exp={exp}&sig={sig}")).status == 200
    refused = [
        f"/media/{other_agents}?exp={exp}&sig={sig}",  # another file, same signature
        f"/media/{agents}?exp={int(exp) + 86400}&sig={sig}",  # a later expiry
        f"/media/{agents}?exp={exp}&sig={'0' * 64}",
        f"/media/{agents}?exp={exp}&sig={sig[:-1]}",
        f"/media/{agents}?exp={exp}",
        f"/media/{agents}",
        f"/media/{agents}?exp={exp}&sig={sign(agents, b'another-installation')[1]}",
    ]
    for url in refused:
        assert (await client.get(url)).status == 403, url

    # A citizen's own upload is never public, even with a correct signature for its id.
    exp, sig = sign(citizens)
    assert (await client.get(f"/media/{citizens}?exp={exp}&sig={sig}")).status == 404
    # Logged-in staff do not change that: /media is the citizen's door.
    await console_login(client, "ana")
    assert (await client.get(f"/media/{citizens}?exp={exp}&sig={sig}")).status == 404
    unknown = "ab" * 16
    exp, sig = sign(unknown)
    assert (await client.get(f"/media/{unknown}?exp={exp}&sig={sig}")).status == 404


# ----------------------------------------------------------------------------- agent upload
async def test_agent_sends_a_photo_that_is_stored_linked_and_delivered(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    ticket_id = open_ticket()
    token = await console_login(client, "ana")
    photo = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "secret description"  # ImageDescription: metadata that must not survive
    Image.new("RGB", (40, 30), (10, 200, 10)).save(photo, format="JPEG", exif=exif)

    resp = await client.post(
        f"/api/tickets/{ticket_id}/attachments",
        data=file_form(photo.getvalue(), "answer.png", "image/jpeg", "  This one is fine.  "),
        headers={"X-CSRF-Token": token},
    )
    assert resp.status == 201, await resp.text()
    message = await resp.json()
    assert message["direction"] == "agent" and message["delivery_status"] == "pending"
    assert message["text"] == "This one is fine."
    (sent,) = message["attachments"]
    assert sent["kind"] == "image"
    assert sent["name"] == "answer.jpg"  # the extension of what the file really is

    (row,) = attachment_rows()
    with session_scope() as session:
        stored = session.get(Attachment, sent["id"])
        assert stored is not None
        assert (stored.direction, stored.message_id) == ("agent", message["id"])
        assert (stored.conversation_id, stored.channel) == ("conv-1", "socketio")
        assert b"secret description" not in stored.data
        ana = stored.uploaded_by
        ticket = service.get_ticket(session, ticket_id)
        assert ticket.assigned_agent_id == ana and ticket.first_agent_reply_at is not None

    for _ in range(100):  # the outbox worker hands it to Rasa with the attachment id
        if fake_rasa.calls:
            break
        await asyncio.sleep(0.05)
    (call,) = fake_rasa.calls
    assert call.name == INTENT_AGENT_MESSAGE
    assert call.entities[ENTITY_HANDOFF_ATTACHMENT] == sent["id"]
    assert call.entities["handoff_text"] == "This one is fine."

    # A file without a caption is a message too; a text reply carries no attachment entity.
    bare = await client.post(
        f"/api/tickets/{ticket_id}/attachments",
        data=file_form(PDF, "rules.pdf", "application/pdf"),
        headers={"X-CSRF-Token": token},
    )
    assert bare.status == 201 and (await bare.json())["text"] == ""
    await client.post(
        f"/api/tickets/{ticket_id}/replies",
        json={"text": "Anything else?"},
        headers={"X-CSRF-Token": token},
    )
    for _ in range(100):
        if len(fake_rasa.calls) == 3:
            break
        await asyncio.sleep(0.05)
    assert [ENTITY_HANDOFF_ATTACHMENT in c.entities for c in fake_rasa.calls] == [True, True, False]
    detail = await (await client.get(f"/api/tickets/{ticket_id}")).json()
    kinds = [[a["kind"] for a in m["attachments"]] for m in detail["messages"]]
    assert kinds == [["image"], ["document"], []]


async def test_refused_uploads_store_nothing(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_id = open_ticket()
    token = await console_login(client, "ana")
    url = f"/api/tickets/{ticket_id}/attachments"
    headers = {"X-CSRF-Token": token}

    async def post(form: FormData, expect: int, code: str | None = None) -> dict:
        resp = await client.post(url, data=form, headers=headers)
        body = await resp.json()
        assert resp.status == expect, body
        if code is not None:
            assert body["details"] == {"code": code}, body
        return body

    await post(file_form(gif(), "cat.gif", "image/gif"), 422, "unsupported_type")
    # Declared type and name say PNG; the content is an HTML page.
    html = b"<html><script>alert(document.cookie)</script></html>"
    body = await post(file_form(html, "photo.png", "image/png"), 422, "unsupported_type")
    assert "PDF" in body["error"]
    await post(file_form(b"<svg onload=alert(1)/>", "x.svg", "image/svg+xml"), 422)
    await post(file_form(b"", "empty.png", "image/png"), 422, "empty")
    await post(file_form(png()[:60], "cut.png", "image/png"), 422, "damaged")
    await post(file_form(bomb_png(), "bomb.png", "image/png"), 422, "too_many_pixels")
    # A PDF with something in front of its header (a polyglot) is not a PDF.
    await post(file_form(b"<html>" + PDF, "doc.pdf", "application/pdf"), 422, "unsupported_type")
    text_only = FormData()
    text_only.add_field("text", "no file here")
    await post(text_only, 400)
    not_a_file = FormData()
    not_a_file.add_field("file", "just text")
    await post(not_a_file, 400)
    json_body = await client.post(url, json={"text": "hi"}, headers=headers)
    assert json_body.status == 400
    long_caption = file_form(png(), "a.png", "image/png", "x" * 4001)
    await post(long_caption, 400)
    assert attachment_rows() == []


async def test_upload_size_limit_is_enforced(
    tmp_settings: Settings, db_url: str, fake_rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASKAGENCY_ATTACHMENT_MAX_BYTES", "4000")
    get_settings.cache_clear()
    with session_scope() as session:
        create_user(session, "ana", PASSWORD, Role.AGENT, "Ana")
    ticket_id = open_ticket()
    async with TestClient(TestServer(create_app(get_settings()))) as client:
        token = await console_login(client, "ana")
        big = Image.frombytes("RGB", (64, 64), random.Random(0).randbytes(64 * 64 * 3))
        out = io.BytesIO()
        big.save(out, format="PNG")
        assert len(out.getvalue()) > 4000
        for data in (out.getvalue(), PDF + b"%" * 80_000):  # by the bytes, and by Content-Length
            resp = await client.post(
                f"/api/tickets/{ticket_id}/attachments",
                data=file_form(data, "big.png", "image/png"),
                headers={"X-CSRF-Token": token},
            )
            body = await resp.json()
            assert resp.status == 413 and body["details"] == {"code": "too_large"}, body
            assert "at most" in body["error"]
    assert attachment_rows() == []


async def test_upload_checks_csrf_role_and_ticket_state(client: TestClient) -> None:
    ticket_id = open_ticket()
    url = f"/api/tickets/{ticket_id}/attachments"
    form = lambda: file_form(png(), "a.png", "image/png")  # noqa: E731

    assert (await client.post(url, data=form())).status == 401
    viewer = await console_login(client, "vic")
    refused = await client.post(url, data=form(), headers={"X-CSRF-Token": viewer})
    assert refused.status == 403 and "role" in (await refused.json())["error"]

    token = await console_login(client, "ana")
    forged = await client.post(url, data=form())  # no CSRF token: a cross-site form post
    assert forged.status == 403
    wrong = await client.post(url, data=form(), headers={"X-CSRF-Token": "not-the-token"})
    assert wrong.status == 403
    missing = await client.post(
        "/api/tickets/999/attachments", data=form(), headers={"X-CSRF-Token": token}
    )
    assert missing.status == 404
    await client.post(
        f"/api/tickets/{ticket_id}/close", json={"resolved": True}, headers={"X-CSRF-Token": token}
    )
    closed = await client.post(url, data=form(), headers={"X-CSRF-Token": token})
    assert closed.status == 409 and "closed" in (await closed.json())["error"]
    assert attachment_rows() == []  # the file of a refused reply is not kept


async def test_event_stream_carries_a_new_citizen_photo(client: TestClient) -> None:
    await console_login(client, "ana")
    ticket_id = open_ticket()
    resp = await client.get(f"/api/tickets/{ticket_id}/events?after=0")
    assert resp.status == 200
    message_id, attachment_id = citizen_photo()
    frame = b""
    while b"\n\n" not in frame:
        frame += await asyncio.wait_for(resp.content.readany(), timeout=5)
    event, data = frame.decode().split("\n")[:2]
    assert event == "event: message"
    message = json.loads(data.removeprefix("data: "))
    assert message["id"] == message_id
    assert [a["id"] for a in message["attachments"]] == [attachment_id]
    resp.close()


async def test_openapi_documents_the_upload(client: TestClient) -> None:
    await console_login(client, "vic")
    spec = await (await client.get("/api/openapi.json")).json()
    upload = spec["paths"]["/api/tickets/{ticket_id}/attachments"]["post"]
    assert {"409", "413", "422"} <= set(upload["responses"])


async def test_a_failed_file_reply_keeps_its_file_when_retried(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    ticket_id = open_ticket()
    token = await console_login(client, "ana")
    headers = {"X-CSRF-Token": token}
    fake_rasa.mode = "unauthorized"  # a permanent failure: the reply is marked failed
    resp = await client.post(
        f"/api/tickets/{ticket_id}/attachments",
        data=file_form(png(), "a.png", "image/png"),
        headers=headers,
    )
    sent = await resp.json()
    for _ in range(100):
        detail = await (await client.get(f"/api/tickets/{ticket_id}")).json()
        if detail["messages"][0]["delivery_status"] == "failed":
            break
        await asyncio.sleep(0.05)
    assert detail["messages"][0]["delivery_status"] == "failed"
    fake_rasa.mode = "ok"
    retried = await client.post(
        f"/api/tickets/{ticket_id}/messages/{sent['id']}/retry", json={}, headers=headers
    )
    body = await retried.json()
    assert body["delivery_status"] == "pending"
    assert [a["id"] for a in body["attachments"]] == [a["id"] for a in sent["attachments"]]
    for _ in range(100):
        if fake_rasa.calls:
            break
        await asyncio.sleep(0.05)
    assert fake_rasa.calls[-1].entities[ENTITY_HANDOFF_ATTACHMENT] == sent["attachments"][0]["id"]
