"""Photos end to end on the real stack (issue 21, item 1): a citizen in the widget's channel
uploads a photo through the console, sends it over socket.io with a caption, the bot hands the
conversation to a person, the agent sees the photo in the inbox (staff only), replies with an
image of their own, and the citizen's client receives a signed link that opens exactly that
image until it is tampered with. Also the attacks: another conversation's photo named in a
message, an upload with another conversation's token, a staff URL without a login.
"""

from __future__ import annotations

import io
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from PIL import Image

from askagency.bot_messages import MessageType
from askagency.launcher import Stack
from tests.e2e import test_handoff
from tests.e2e.test_handoff import Console, SocketCitizen

pytestmark = pytest.mark.e2e
# The agents and their logged-in console session, as the handoff tests make them.
agents, console = test_handoff.agents, test_handoff.console

PHOTO_REPLY = "Thank you for the photo. I can't look at pictures myself, but a person can."


def photo(colour: tuple[int, int, int], exif_gps: bool = False) -> bytes:
    """A JPEG, optionally with a GPS position in its EXIF (as a phone writes it)."""
    image = Image.new("RGB", (64, 48), colour)
    out = io.BytesIO()
    exif = Image.Exif()
    if exif_gps:
        exif[0x8825] = {1: "N", 2: (40.0, 38.0, 0.0), 3: "W", 4: (73.0, 46.0, 0.0)}
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def upload(
    http: aiohttp.ClientSession, stack: Stack, citizen: SocketCitizen, data: bytes, **kw: Any
) -> tuple[int, dict[str, Any]]:
    headers = {
        "X-Conversation-Token": kw.get("token", citizen.token),
        "Content-Type": "image/jpeg",
        "X-Attachment-Name": "my%20bag.jpg",
    }
    session_id = kw.get("session_id", citizen.session_id)
    async with http.post(
        f"{stack.cfg.console_url}/api/widget/attachments",
        params={"session_id": session_id},
        data=data,
        headers=headers,
    ) as resp:
        return resp.status, await resp.json()


async def share(citizen: SocketCitizen, ids: list[str], caption: str = "") -> None:
    await citizen.sio.emit(
        "user_uttered",
        {"message": caption, "session_id": citizen.session_id, "attachments": ids},
    )


async def test_a_photo_goes_to_a_person_who_sends_one_back(stack: Stack, console: Console) -> None:
    citizen = SocketCitizen(stack.cfg.rasa_url)
    await citizen.connect()
    try:
        async with aiohttp.ClientSession() as http:
            status, stored = await upload(http, stack, citizen, photo((200, 30, 30), True))
            assert status == 201 and stored["kind"] == "image", stored
            assert stored["name"] == "my bag.jpg"
        await share(citizen, [stored["id"]], "can I bring this?")
        handoff = await citizen.next()
        assert handoff["custom"]["type"] == MessageType.HANDOFF, handoff
        assert handoff["custom"]["reason"] == "attachment"
        assert handoff["text"].startswith(PHOTO_REPLY)

        ticket = await console.ticket_for(citizen.session_id)
        assert ticket["reason"] == "attachment"
        _, detail = await console.get(f"/api/tickets/{ticket['id']}")
        (message,) = [m for m in detail["messages"] if m["direction"] == "citizen"]
        assert message["text"] == "can I bring this?"
        (attachment,) = message["attachments"]
        assert attachment["id"] == stored["id"] and attachment["mime"] == "image/jpeg"

        # The agent's browser sees the photo, re-encoded: no GPS position left in it.
        async with console.http.get(stack.cfg.console_url + attachment["url"]) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "image/jpeg"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            seen = await resp.read()
        assert Image.open(io.BytesIO(seen)).size == (64, 48)
        assert 0x8825 not in Image.open(io.BytesIO(seen)).getexif()
        # Nobody else does: no login, no file (the id alone is not enough).
        async with (
            aiohttp.ClientSession() as stranger,
            stranger.get(
                stack.cfg.console_url + attachment["url"],
                allow_redirects=False,
                headers={"Accept": "application/json"},
            ) as resp,
        ):
            assert resp.status in (302, 303, 401), resp.status

        # The agent replies with a photo of their own.
        form = aiohttp.FormData()
        form.add_field("file", photo((30, 30, 200)), filename="allowed.jpg")
        form.add_field("text", "This one is fine.")
        async with console.http.post(
            f"{stack.cfg.console_url}/api/tickets/{ticket['id']}/attachments",
            data=form,
            headers={"X-CSRF-Token": console.csrf},
        ) as resp:
            assert resp.status == 201, await resp.text()
        reply = await citizen.next()
        assert reply["custom"]["type"] == MessageType.AGENT_MESSAGE, reply
        assert reply["text"] == "This one is fine."
        link = reply["image"]
        assert urlsplit(link).path.startswith("/media/")
        async with aiohttp.ClientSession() as http:
            async with http.get(link) as resp:
                assert resp.status == 200 and resp.headers["Content-Type"] == "image/jpeg"
                sent_back = Image.open(io.BytesIO(await resp.read())).convert("RGB")
            assert sent_back.getpixel((10, 10))[2] > 150  # the agent's blue photo
            tampered = link.replace("sig=", "sig=0")
            async with http.get(tampered) as resp:
                assert resp.status == 403
            # The citizen's own upload is never public, even with a link made for it.
            citizens = link.replace(urlsplit(link).path, f"/media/{stored['id']}")
            async with http.get(citizens) as resp:
                assert resp.status == 403
        await console.wait_delivery(ticket["id"])
    finally:
        await citizen.sio.disconnect()


async def test_another_conversations_photo_cannot_be_used(stack: Stack) -> None:
    owner, thief = SocketCitizen(stack.cfg.rasa_url), SocketCitizen(stack.cfg.rasa_url)
    await owner.connect()
    await thief.connect()
    try:
        async with aiohttp.ClientSession() as http:
            status, stored = await upload(http, stack, owner, photo((10, 200, 10)))
            assert status == 201
            # Uploading into the owner's conversation needs the owner's token.
            status, refused = await upload(
                http, stack, thief, photo((1, 2, 3)), session_id=owner.session_id
            )
            assert status == 403, refused
        # Naming the owner's photo in the thief's own conversation opens no ticket.
        await share(thief, [stored["id"], uuid.uuid4().hex], "look")
        answer = await thief.next()
        assert answer["custom"] == {"type": "prompt", "reason": "attachment_refused"}, answer
        assert "couldn't receive your file" in answer["text"]
    finally:
        await owner.sio.disconnect()
        await thief.sio.disconnect()


async def test_a_file_the_store_refuses_is_explained_before_anything_is_sent(
    stack: Stack,
) -> None:
    citizen = SocketCitizen(stack.cfg.rasa_url)
    await citizen.connect()
    try:
        gif = io.BytesIO()
        Image.new("RGB", (4, 4)).save(gif, "GIF")
        async with aiohttp.ClientSession() as http:
            status, refused = await upload(http, stack, citizen, gif.getvalue())
        assert status == 415 and refused["error"] == "unsupported_type", refused
    finally:
        await citizen.sio.disconnect()
