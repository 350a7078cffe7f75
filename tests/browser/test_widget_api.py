"""GET /api/widget/history against a stand-in for Rasa's HTTP API (no browser needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from askagency.bot_messages import MessageType
from askagency.config import Settings
from askagency.conversation_token import ConversationSigner
from console.app import create_app
from console.widget_api import TOKEN_HEADER, messages_from_tracker, valid_session_id

SID = "web-0123456789abcdef0123456789abcdef"
TOKEN = "history-token"  # Rasa's API token
SECRET = "widget-api-tests-conversation-secret-0123456789"
SIGNER = ConversationSigner(SECRET.encode())


def owner(session_id: str) -> dict[str, str]:
    """The header the widget sends: the conversation's signed token."""
    return {TOKEN_HEADER: SIGNER.token(session_id)}


TRACKER_EVENTS: list[dict[str, Any]] = [
    {"event": "action", "name": "action_session_start", "timestamp": 1.0},
    {"event": "session_started", "timestamp": 1.0},
    {"event": "user", "text": "liquids", "timestamp": 2.0, "metadata": {"language": "en"}},
    {
        "event": "bot",
        "text": "Did you mean one of these?",
        "timestamp": 2.1,
        "data": {
            "buttons": [
                {"title": "Liquids rule", "payload": '/choose_faq{"faq_id": "l1"}'},
                {"title": "Liquid medication", "payload": '/choose_faq{"faq_id": "l2"}'},
            ],
            "custom": {"type": MessageType.CLARIFY, "options": ["l1", "l2"]},
        },
    },
    {"event": "user", "text": '/choose_faq{"faq_id": "l2"}', "timestamp": 3.0},
    {"event": "slot", "name": "faq_id", "value": "l2", "timestamp": 3.0},
    {
        "event": "bot",
        "text": "Medication is allowed.",
        "timestamp": 3.1,
        "data": {
            "custom": {
                "type": MessageType.FAQ_ANSWER,
                "faq_id": "l2",
                "source_url": "https://x.gov/m",
            }
        },
    },
    {"event": "user", "text": "/feedback_good", "timestamp": 4.0, "metadata": {"faq_id": "l2"}},
    {"event": "user", "text": "/ask_human", "timestamp": 5.0},
    {
        "event": "user",
        "text": "EXTERNAL: agent_message",
        "timestamp": 5.9,
        "metadata": {"is_external": True},
        "parse_data": {"intent": {"name": "agent_message"}},
    },
    {
        "event": "bot",
        "text": "Hi, Maria here.",
        "timestamp": 6.0,
        "data": {"custom": {"type": MessageType.AGENT_MESSAGE, "agent": "Maria"}},
    },
    {"event": "bot", "text": None, "timestamp": 7.0, "data": {}},
]


def test_session_id_rules() -> None:
    assert valid_session_id(SID)
    assert valid_session_id("01234567-89ab-cdef-0123-456789abcdef")
    assert not valid_session_id("")
    assert not valid_session_id(None)
    assert not valid_session_id("../" + SID)
    assert not valid_session_id("x" * 129)
    for platform_id in ("sms-15551234567", "WhatsApp-1555", "telegram-42", "messenger-1", "x-9"):
        assert not valid_session_id(platform_id)


def test_citizen_cannot_hide_messages_with_the_external_prefix_or_flag() -> None:
    """L7: only Rasa's own external events (prefix AND is_external) are hidden."""
    events = [
        {"event": "user", "text": "EXTERNAL: abusive text", "timestamp": 1.0},
        {"event": "user", "text": "hidden?", "timestamp": 2.0, "metadata": {"is_external": 1}},
        {
            "event": "user",
            "text": "EXTERNAL: agent_message",
            "timestamp": 3.0,
            "metadata": {"is_external": True},
        },
    ]
    texts = [m["text"] for m in messages_from_tracker({"events": events})]
    assert texts == ["EXTERNAL: abusive text", "hidden?"]


def test_messages_from_tracker_keeps_only_what_the_widget_shows() -> None:
    messages = messages_from_tracker({"events": TRACKER_EVENTS})
    assert [(m["role"], m["text"]) for m in messages] == [
        ("citizen", "liquids"),
        ("bot", "Did you mean one of these?"),
        ("citizen", "Liquid medication"),  # the clicked button's title, not the payload
        ("bot", "Medication is allowed."),
        ("citizen", "/feedback_good"),
        ("citizen", "/ask_human"),
        ("agent", "Hi, Maria here."),
    ]
    assert messages[2]["payload"] == '/choose_faq{"faq_id": "l2"}'
    assert messages[1]["buttons"][1] == {
        "title": "Liquid medication",
        "payload": '/choose_faq{"faq_id": "l2"}',
    }
    assert messages[3]["custom"]["source_url"] == "https://x.gov/m"
    assert messages[4]["faq_id"] == "l2"
    assert "payload" not in messages[0]
    assert all("timestamp" in m for m in messages)
    assert messages_from_tracker({}) == []
    assert messages_from_tracker({"events": ["junk", {"event": "user", "text": 5}]}) == []


async def fake_rasa_app(seen: list[web.Request]) -> web.Application:
    async def tracker(request: web.Request) -> web.Response:
        seen.append(request)
        if request.query.get("token") != TOKEN:
            return web.json_response({"message": "unauthorized"}, status=401)
        if request.match_info["sid"] == SID:
            return web.json_response({"sender_id": SID, "events": TRACKER_EVENTS})
        if request.match_info["sid"].startswith("ffff"):
            return web.Response(status=500, text="boom")
        return web.json_response({"sender_id": request.match_info["sid"], "events": []})

    app = web.Application()
    app.router.add_get("/conversations/{sid}/tracker", tracker)
    return app


@pytest.fixture
async def rasa() -> AsyncIterator[tuple[TestServer, list[web.Request]]]:
    seen: list[web.Request] = []
    server = TestServer(await fake_rasa_app(seen))
    await server.start_server()
    yield server, seen
    await server.close()


async def console_client(rasa_url: str, token: str, tmp_path: Path) -> TestClient:
    settings = Settings(
        data_dir=tmp_path, rasa_url=rasa_url, rasa_token=token, conversation_secret=SECRET
    )
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    return client


async def test_history_ok(rasa: tuple[TestServer, list[web.Request]], tmp_path: Path) -> None:
    server, seen = rasa
    client = await console_client(str(server.make_url("")).rstrip("/"), TOKEN, tmp_path)
    try:
        resp = await client.get(
            "/api/widget/history", params={"session_id": SID}, headers=owner(SID)
        )
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        body = await resp.json()
        assert body["session_id"] == SID
        assert len(body["messages"]) == 7
        assert seen[-1].query["token"] == TOKEN
    finally:
        await client.close()


async def test_history_errors(rasa: tuple[TestServer, list[web.Request]], tmp_path: Path) -> None:
    server, _ = rasa
    rasa_url = str(server.make_url("")).rstrip("/")
    client = await console_client(rasa_url, TOKEN, tmp_path)
    try:
        for bad in ("", "x" * 500, "../conversations", SID + "<script>", "sms-15551234567"):
            resp = await client.get(
                "/api/widget/history", params={"session_id": bad}, headers=owner(bad)
            )
            assert resp.status == 400, bad
            assert "session_id" in (await resp.json())["error"]
        resp = await client.get("/api/widget/history")
        assert resp.status == 400

        resp = await client.get(
            "/api/widget/history", params={"session_id": "a" * 32}, headers=owner("a" * 32)
        )
        assert resp.status == 404
        assert (await resp.json())["error"]

        resp = await client.get(
            "/api/widget/history", params={"session_id": "f" * 32}, headers=owner("f" * 32)
        )
        assert resp.status == 502
        assert "500" in (await resp.json())["error"]
    finally:
        await client.close()

    wrong_token = await console_client(rasa_url, "wrong", tmp_path)
    try:
        resp = await wrong_token.get(
            "/api/widget/history", params={"session_id": SID}, headers=owner(SID)
        )
        assert resp.status == 502
        assert "token" in (await resp.json())["error"]
    finally:
        await wrong_token.close()


async def test_history_rasa_down_is_503(tmp_path: Path) -> None:
    from askagency.ports import free_port

    client = await console_client(f"http://127.0.0.1:{free_port()}", TOKEN, tmp_path)
    try:
        resp = await client.get(
            "/api/widget/history", params={"session_id": SID}, headers=owner(SID)
        )
        assert resp.status == 503
        body = await resp.json()
        assert "not reachable" in body["error"]
    finally:
        await client.close()


async def test_history_needs_the_conversations_own_token(
    rasa: tuple[TestServer, list[web.Request]], tmp_path: Path
) -> None:
    """H1: knowing a conversation id is not enough to read it (old code: 200 for any id)."""
    server, seen = rasa
    client = await console_client(str(server.make_url("")).rstrip("/"), TOKEN, tmp_path)
    try:
        other = "web-ffffffffffffffffffffffffffffffff"
        attempts = [
            {},
            {TOKEN_HEADER: ""},
            {TOKEN_HEADER: "v1.forged"},
            owner(other),  # a valid token, but of another conversation
            {TOKEN_HEADER: ConversationSigner(b"another-server-secret-0123456789").token(SID)},
        ]
        for headers in attempts:
            resp = await client.get(
                "/api/widget/history", params={"session_id": SID}, headers=headers
            )
            assert resp.status == 403, headers
            assert TOKEN_HEADER in (await resp.json())["error"]
        assert seen == []  # Rasa was never asked

        preflight = await client.options(
            "/api/widget/history",
            headers={
                "Origin": "https://agency.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": TOKEN_HEADER.lower(),
            },
        )
        assert preflight.status == 204
        assert TOKEN_HEADER in preflight.headers["Access-Control-Allow-Headers"]
    finally:
        await client.close()
