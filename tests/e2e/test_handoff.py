"""Human handoff end to end: the real Rasa server, action server and console.

A citizen (socket.io like the widget, or REST) is handed to a person; an agent created with
``askagency users create`` logs in over HTTP, sees the ticket, replies; the reply reaches the
citizen's channel through Rasa's ``trigger_intent`` API; citizen messages during the handoff
reach the ticket and get no bot answer; closing gives the conversation back to the bot; a reply
written while Rasa is down stays pending and is delivered after Rasa restarts.

The stack runs with the default configuration: low-confidence answers *offer* a person (the
test clicks the offer) and staffed hours are "always"; agents post a presence heartbeat first,
so what the citizen is told does not depend on the time of day.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from askagency.bot_messages import FIELD_OUT_OF_SCOPE, MessageType
from askagency.launcher import Stack
from tests.stack import RestClient, cli, custom_of

pytestmark = pytest.mark.e2e

PASSWORD = "e2e agent password"
LAPTOP_QUESTION = "can I bring my laptop in my carry-on"
# Questions the NLU sends to the FAQ search and the sample KB cannot answer (low confidence).
OUT_OF_SCOPE = "how many moons does jupiter have"
OUT_OF_SCOPE_2 = "where do I register my boat"


def create_agent(data_dir: Path, username: str, display_name: str) -> None:
    os.environ["ASKAGENCY_NEW_PASSWORD"] = PASSWORD
    try:
        proc = cli(
            data_dir,
            "users",
            "create",
            username,
            "--role",
            "agent",
            "--display-name",
            display_name,
            "--languages",
            "en,es",
            check=False,
        )
    finally:
        os.environ.pop("ASKAGENCY_NEW_PASSWORD", None)
    assert proc.returncode == 0 or "already exists" in proc.stdout, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def agents(stack: Stack) -> tuple[str, str]:
    create_agent(stack.cfg.data_dir, "eve", "Agent Eve")
    create_agent(stack.cfg.data_dir, "sam", "Agent Sam")
    return "eve", "sam"


class Console:
    """An agent's browser session against the console's JSON API."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.http = http
        self.csrf = ""

    async def login(self, username: str) -> None:
        async with self.http.post(
            self.base_url + "/console/login",
            data={"username": username, "password": PASSWORD, "next": "/console/inbox"},
        ) as resp:
            page = await resp.text()
            assert resp.status == 200 and "Agent inbox" in page, page[:300]
        marker = 'name="csrf-token" content="'
        self.csrf = page.split(marker, 1)[1].split('"', 1)[0]
        assert self.csrf

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base_url + path) as resp:
            return resp.status, await resp.json()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf}
        async with self.http.post(self.base_url + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def ticket_for(self, conversation_id: str) -> dict[str, Any]:
        status, listing = await self.get("/api/tickets?limit=500")
        assert status == 200, listing
        found = [t for t in listing["tickets"] if t["conversation_id"] == conversation_id]
        assert len(found) == 1, listing
        return found[0]

    async def wait_delivery(self, ticket_id: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            _, detail = await self.get(f"/api/tickets/{ticket_id}")
            outbox = [m for m in detail["messages"] if m["delivery_status"]]
            if outbox and all(m["delivery_status"] == "delivered" for m in outbox):
                return detail["messages"]
            assert time.monotonic() < deadline, detail["messages"]
            await asyncio.sleep(0.3)


@pytest.fixture
async def console(stack: Stack, agents: tuple[str, str]) -> AsyncIterator[Console]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        agent = Console(stack.cfg.console_url, http)
        await agent.login(agents[0])
        status, presence = await agent.post("/api/agents/heartbeat", {})
        assert status == 200 and presence["agents_online"] >= 1
        yield agent


class SocketCitizen:
    """The widget's side of Rasa's socket.io channel."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session_id = ""  # issued by the server in session_confirm, with its token
        self.token = ""
        self.sio = socketio.AsyncClient(reconnection=False)
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.confirmed = asyncio.Event()
        self.sio.on("bot_uttered", self._on_bot)
        self.sio.on("session_confirm", self._on_confirm)

    async def _on_bot(self, data: dict[str, Any]) -> None:
        await self.inbox.put(data)

    async def _on_confirm(self, data: Any) -> None:
        self.session_id, self.token = data["session_id"], data["token"]
        self.confirmed.set()

    async def connect(self) -> None:
        await self.sio.connect(self.url, socketio_path="/socket.io", transports=["websocket"])
        await self.sio.emit("session_request", {})  # a new conversation
        await asyncio.wait_for(self.confirmed.wait(), 10)

    async def say(self, text: str) -> None:
        await self.sio.emit("user_uttered", {"message": text, "session_id": self.session_id})

    async def next(self, timeout: float = 30.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def silence(self, seconds: float) -> list[dict[str, Any]]:
        await asyncio.sleep(seconds)
        heard = []
        while not self.inbox.empty():
            heard.append(self.inbox.get_nowait())
        return heard


async def tracker_bot_messages(stack: Stack, sender: str) -> list[dict[str, Any]]:
    url = f"{stack.cfg.rasa_url}/conversations/{sender}/tracker"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, params={"token": stack.cfg.rasa_token}) as resp,
    ):
        tracker = await resp.json()
    return [
        {"text": e.get("text"), **((e.get("data") or {}).get("custom") or {})}
        for e in tracker["events"]
        if e.get("event") == "bot"
    ]


async def test_socketio_citizen_and_agent_full_round_trip(stack: Stack, console: Console) -> None:
    citizen = SocketCitizen(stack.cfg.rasa_url)
    await citizen.connect()
    try:
        await citizen.say("I want to talk to a person")
        handoff = await citizen.next()
        assert handoff["custom"]["type"] == MessageType.HANDOFF, handoff
        assert handoff["custom"]["reason"] == "requested"
        assert handoff["custom"]["after_hours"] is False
        # L9: the citizen is not told the ticket number, the staffing or the priority.
        assert not {"ticket_id", "agents_online", "priority"} & set(handoff["custom"])

        ticket = await console.ticket_for(citizen.session_id)
        assert (ticket["reason"], ticket["status"], ticket["channel"]) == (
            "requested",
            "waiting",
            "socketio",
        )

        # During the handoff the bot stays silent and the agent gets the messages.
        await citizen.say(LAPTOP_QUESTION)
        await citizen.say("hello")
        assert await citizen.silence(3.0) == []
        _, detail = await console.get(f"/api/tickets/{ticket['id']}")
        citizen_texts = [m["text"] for m in detail["messages"] if m["direction"] == "citizen"]
        assert citizen_texts == [LAPTOP_QUESTION, "hello"]

        status, queued = await console.post(
            f"/api/tickets/{ticket['id']}/replies", {"text": "Hi, this is Eve. Yes, you can."}
        )
        assert status == 201 and queued["delivery_status"] == "pending"
        reply = await citizen.next()
        assert reply["text"] == "Hi, this is Eve. Yes, you can."
        assert reply["custom"]["type"] == MessageType.AGENT_MESSAGE
        assert reply["custom"]["agent"] == "Agent Eve"
        await console.wait_delivery(ticket["id"])
        _, detail = await console.get(f"/api/tickets/{ticket['id']}")
        assert detail["ticket"]["status"] == "assigned"
        assert detail["ticket"]["first_response_seconds"] >= 0

        status, _ = await console.post(f"/api/tickets/{ticket['id']}/close", {"resolved": True})
        assert status == 200
        closed = await citizen.next()
        assert (
            closed["custom"]["type"] == MessageType.HANDOFF_CLOSED and closed["custom"]["resolved"]
        )

        # The bot is back: the next question gets an FAQ answer.
        await citizen.say(LAPTOP_QUESTION)
        answer = await citizen.next()
        assert answer["custom"]["type"] == MessageType.FAQ_ANSWER, answer

        status, error = await console.post(
            f"/api/tickets/{ticket['id']}/replies", {"text": "one more thing"}
        )
        assert status == 409 and "closed" in error["error"]
    finally:
        await citizen.sio.disconnect()


async def test_rest_low_confidence_offer_two_agents_and_tracker_delivery(
    stack: Stack, rest: RestClient, console: Console, agents: tuple[str, str]
) -> None:
    sender = f"rest-{uuid.uuid4().hex}"
    fallback = custom_of(rest.send(sender, OUT_OF_SCOPE))[0]
    assert fallback["type"] == MessageType.FALLBACK and fallback["reason"] == "low_confidence"
    handoff = custom_of(rest.send(sender, "/ask_human"))[0]  # the offered button's payload
    assert handoff["type"] == MessageType.HANDOFF and handoff["reason"] == "low_confidence"
    assert rest.send(sender, "/ask_human") == []  # already with a person: relayed, silent

    ticket = await console.ticket_for(sender)
    assert ticket["channel"] == "rest" and "ticket_id" not in handoff
    assert rest.send(sender, "are you there?") == []  # no bot answer during the handoff

    # A second agent answers at the same moment: both replies arrive, in the order written.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        other = Console(stack.cfg.console_url, http)
        await other.login(agents[1])
        first, second = await asyncio.gather(
            console.post(f"/api/tickets/{ticket['id']}/replies", {"text": "first reply"}),
            other.post(f"/api/tickets/{ticket['id']}/replies", {"text": "second reply"}),
        )
    assert first[0] == second[0] == 201
    messages = await console.wait_delivery(ticket["id"])
    written = [
        m["text"] for m in sorted(messages, key=lambda m: m["id"]) if m["direction"] == "agent"
    ]
    # REST has no push: the replies are in the conversation's tracker, in creation order.
    delivered = [
        m["text"]
        for m in await tracker_bot_messages(stack, sender)
        if m.get("type") == MessageType.AGENT_MESSAGE
    ]
    assert delivered == written and set(written) == {"first reply", "second reply"}

    status, _ = await console.post(f"/api/tickets/{ticket['id']}/close", {"resolved": False})
    assert status == 200
    await console.wait_delivery(ticket["id"])
    answer = custom_of(rest.send(sender, LAPTOP_QUESTION))[0]
    assert answer["type"] == MessageType.FAQ_ANSWER


async def test_the_citizen_goes_back_to_the_assistant(
    stack: Stack, rest: RestClient, console: Console
) -> None:
    """Issue 21, item 3, with the real Rasa and action server: the handoff message's "Back to
    the assistant" button and typed words leave a waiting handoff, the ticket closes in the
    inbox and the bot answers the next question; a hand-back after a timeout says why."""
    sender = f"rest-{uuid.uuid4().hex}"
    handoff = rest.send(sender, "/ask_human")
    assert custom_of(handoff)[0]["type"] == MessageType.HANDOFF
    assert handoff[0]["buttons"] == [
        {"title": "Back to the assistant", "payload": "/cancel_handoff"}
    ]
    ticket = await console.ticket_for(sender)
    left = custom_of(rest.send(sender, "/cancel_handoff"))[0]
    assert (left["type"], left["ended_by"], left["resolved"]) == (
        "handoff_closed",
        "citizen",
        False,
    )
    _, detail = await console.get(f"/api/tickets/{ticket['id']}")
    assert detail["ticket"]["status"] == "closed_unresolved"
    assert detail["messages"][-1]["text"] == "the citizen went back to the assistant"
    assert custom_of(rest.send(sender, LAPTOP_QUESTION))[0]["type"] == MessageType.FAQ_ANSWER
    # The old button pressed again: the bot says it is listening, nothing else happens.
    again = custom_of(rest.send(sender, "/cancel_handoff"))[0]
    assert again == {"type": "prompt", "reason": "not_in_handoff"}

    typed = f"rest-{uuid.uuid4().hex}"
    rest.send(typed, "/ask_human")
    assert rest.send(typed, "I need to cancel my booking") == []  # for the person: relayed
    words = custom_of(rest.send(typed, "Cancel"))[0]
    assert (words["type"], words["ended_by"]) == ("handoff_closed", "citizen")

    # The console's sweeper hands a timed-out ticket back like this (handoff.delivery).
    timed_out = f"rest-{uuid.uuid4().hex}"
    rest.send(timed_out, "/ask_human")
    url = f"{stack.cfg.rasa_url}/conversations/{timed_out}/trigger_intent"
    body = {
        "name": "handoff_closed",
        "entities": {"handoff_resolved": False, "handoff_timed_out": True, "handoff_message": 1},
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body, params={"token": stack.cfg.rasa_token}) as resp,
    ):
        assert resp.status == 200, await resp.text()
    closed = (await tracker_bot_messages(stack, timed_out))[-1]
    assert closed["type"] == "handoff_closed" and closed["ended_by"] == "timeout"
    assert "could take your conversation in time" in closed["text"]
    assert custom_of(rest.send(timed_out, LAPTOP_QUESTION))[0]["type"] == MessageType.FAQ_ANSWER
    _, typed_ticket = await console.get(
        f"/api/tickets/{(await console.ticket_for(timed_out))['id']}"
    )
    await console.post(f"/api/tickets/{typed_ticket['ticket']['id']}/close", {"resolved": False})


async def test_the_agent_sees_the_note_of_the_entry_that_took_the_question(
    rest: RestClient, console: Console
) -> None:
    """A question the sample's bookings entry takes, then "Talk to a person": the ticket names
    the entry (from the bot's own fallback, not from the client) and the inbox's detail carries
    the note the agency wrote on it for staff (where to send the citizen)."""
    sender = f"rest-{uuid.uuid4().hex}"
    fallback = custom_of(rest.send(sender, "cancel my flight and get a refund"))[0]
    assert fallback[FIELD_OUT_OF_SCOPE] == "out-of-scope-flights-bookings", fallback
    handoff = custom_of(rest.send(sender, "/ask_human"))[0]
    assert handoff["type"] == MessageType.HANDOFF and handoff["reason"] == "low_confidence"
    ticket = await console.ticket_for(sender)
    assert ticket["out_of_scope_entry"] == "out-of-scope-flights-bookings"
    _, detail = await console.get(f"/api/tickets/{ticket['id']}")
    assert "handled by your airline or travel agent" in detail["out_of_scope_note"]
    status, _ = await console.post(f"/api/tickets/{ticket['id']}/close", {"resolved": False})
    assert status == 200


async def test_two_fallbacks_in_a_row_hand_off(rest: RestClient, console: Console) -> None:
    sender = f"rest-{uuid.uuid4().hex}"
    assert custom_of(rest.send(sender, OUT_OF_SCOPE))[0]["type"] == MessageType.FALLBACK
    second = custom_of(rest.send(sender, OUT_OF_SCOPE_2))[0]
    assert second["type"] == MessageType.HANDOFF and second["reason"] == "repeated_fallback", second
    ticket = await console.ticket_for(sender)
    status, _ = await console.post(f"/api/tickets/{ticket['id']}/close", {"resolved": False})
    assert status == 200


async def test_reply_while_rasa_is_down_is_kept_and_delivered_after_restart(
    stack: Stack, rest: RestClient, console: Console
) -> None:
    sender = f"rest-{uuid.uuid4().hex}"
    handoff = custom_of(rest.send(sender, "I want to talk to a person"))[0]
    assert handoff["type"] == MessageType.HANDOFF
    ticket_id = (await console.ticket_for(sender))["id"]
    stack.stop("rasa")
    try:
        status, queued = await console.post(
            f"/api/tickets/{ticket_id}/replies", {"text": "Sorry for the wait."}
        )
        assert status == 201
        deadline = time.monotonic() + 20
        while True:
            _, detail = await console.get(f"/api/tickets/{ticket_id}")
            message = next(m for m in detail["messages"] if m["id"] == queued["id"])
            if message["attempts"] >= 1:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.3)
        assert message["delivery_status"] == "pending"
        assert "not reachable" in message["last_error"]
    finally:
        stack.restart("rasa")
    await console.wait_delivery(ticket_id, timeout=60)
    texts = [m["text"] for m in await tracker_bot_messages(stack, sender)]
    assert texts.count("Sorry for the wait.") == 1
    status, _ = await console.post(f"/api/tickets/{ticket_id}/close", {"resolved": True})
    assert status == 200


async def test_unknown_ticket_is_a_clear_404(console: Console) -> None:
    status, error = await console.post("/api/tickets/987654/replies", {"text": "hello"})
    assert status == 404 and "does not exist" in error["error"]


async def test_ticket_flood_is_paged_and_closed_as_spam_without_messaging(
    stack: Stack, rest: RestClient, console: Console
) -> None:
    """M3: a flood of tickets is listed a page at a time, and the bulk spam close ends the
    handoffs without a hand-back message to any of the flooding conversations (on paid
    channels each would have been an SMS), while a normal close still reaches its citizen."""
    run = uuid.uuid4().hex[:8]
    senders = [f"spam-{run}-{i}" for i in range(4)]
    ids = []
    for sender in senders:
        handoff = custom_of(rest.send(sender, "I want to talk to a person"))[0]
        assert handoff["type"] == MessageType.HANDOFF, handoff
        ids.append((await console.ticket_for(sender))["id"])
    status, page = await console.get("/api/tickets?limit=2")
    assert status == 200 and len(page["tickets"]) == 2
    assert page["total"] >= 4 and page["next_offset"] == 2
    status, result = await console.post("/api/tickets/close-spam", {"ticket_ids": ids})
    assert status == 200 and result["closed"] == sorted(ids)

    control = f"control-{run}"
    assert (
        custom_of(rest.send(control, "I want to talk to a person"))[0]["type"]
        == MessageType.HANDOFF
    )
    control_id = (await console.ticket_for(control))["id"]
    status, _ = await console.post(f"/api/tickets/{control_id}/close", {"resolved": True})
    assert status == 200
    deadline = time.monotonic() + 30
    while not any(
        m.get("type") == MessageType.HANDOFF_CLOSED
        for m in await tracker_bot_messages(stack, control)
    ):
        assert time.monotonic() < deadline, "the normal close never reached the citizen"
        await asyncio.sleep(0.3)
    for sender in senders:
        told = [m.get("type") for m in await tracker_bot_messages(stack, sender)]
        assert told == ["handoff"], (sender, told)
