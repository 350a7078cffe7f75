"""The agent inbox over real HTTP: pages, JSON API, errors, CSRF, roles, canned replies, the
SSE stream, and the outbox worker delivering to a stand-in Rasa."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event

from askagency.bot_messages import MessageType
from askagency.config import Settings, get_settings
from askagency.db import get_engine, session_scope
from askagency.staff import Role
from console.app import create_app
from console.auth import create_user
from handoff import service
from handoff.models import Ticket
from knowledge_base import store
from knowledge_base.store import FaqInput
from tests.console_helpers import PASSWORD
from tests.console_helpers import login as console_login
from tests.fakes import FakeRasa, console_fake_rasa

SEED_EVENTS: list[dict] = [
    {"event": "user", "text": "can i bring a sword", "timestamp": 1.0},
    {
        "event": "bot",
        "text": "Sorry, I couldn't find an answer.",
        "timestamp": 1.1,
        "data": {"custom": {"type": MessageType.FALLBACK}},
    },
    {
        "event": "user",
        "text": "EXTERNAL: agent_message",
        "timestamp": 2.0,
        "metadata": {"is_external": True},
    },
]


@pytest.fixture
async def fake_rasa(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeRasa]:
    async with console_fake_rasa(monkeypatch, SEED_EVENTS) as fake:
        yield fake


@pytest.fixture
async def client(
    tmp_settings: Settings, db_url: str, fake_rasa: FakeRasa
) -> AsyncIterator[TestClient]:
    get_settings.cache_clear()
    with session_scope() as session:
        create_user(session, "ana", PASSWORD, Role.AGENT, "Ana", ["en", "es"])
        create_user(session, "vic", PASSWORD, Role.VIEWER)
        store.create_faq(
            session,
            FaqInput(
                id="liquids",
                language="en",
                category="security",
                question="Can I bring liquids?",
                answer="Up to 100 ml per container.",
                variants=("shampoo bottle",),
                status="published",
            ),  # type: ignore[arg-type]
            "test",
        )
        store.create_faq(
            session,
            FaqInput(
                id="laptops",
                language="en",
                category="security",
                question="Can I bring my laptop?",
                answer="Yes, take it out at screening.",
                status="published",
            ),  # type: ignore[arg-type]
            "test",
        )
    async with TestClient(TestServer(create_app(get_settings()))) as test_client:
        yield test_client


async def login(client: TestClient, username: str = "ana") -> str:
    """Ana, the agent, by default."""
    return await console_login(client, username)


def open_ticket(conversation: str = "conv-1", reason: str = "low_confidence") -> int:
    with session_scope() as session:
        return service.open_ticket(
            session,
            conversation_id=conversation,
            reason=reason,
            channel="socketio",
            trigger_text="can i bring a sword",
        ).ticket.id


async def test_inbox_lists_and_agent_replies_and_closes(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    token = await login(client)
    ticket_id = open_ticket()
    page = await client.get("/console/inbox")
    assert page.status == 200 and "inbox.js" in await page.text()
    assert (await client.get(f"/console/inbox/{ticket_id}")).status == 200

    listing = await (await client.get("/api/tickets")).json()
    assert [t["id"] for t in listing["tickets"]] == [ticket_id]
    row = listing["tickets"][0]
    assert row["reason"] == "low_confidence" and row["status"] == "waiting"
    assert listing["me"]["languages"] == ["en", "es"]

    headers = {"X-CSRF-Token": token}
    resp = await client.post(
        f"/api/tickets/{ticket_id}/replies", json={"text": "Hi, I am Ana."}, headers=headers
    )
    assert resp.status == 201
    assert (await resp.json())["delivery_status"] == "pending"
    for _ in range(100):  # the worker delivers within a few polls
        detail = await (await client.get(f"/api/tickets/{ticket_id}")).json()
        if detail["messages"][0]["delivery_status"] == "delivered":
            break
        await asyncio.sleep(0.05)
    assert detail["messages"][0]["delivery_status"] == "delivered"
    assert detail["ticket"]["status"] == "assigned"
    assert detail["ticket"]["assigned_agent"]["name"] == "Ana"
    assert detail["ticket"]["first_response_seconds"] is not None
    with session_scope() as session:  # stored under the agency's staffed hours, for analytics
        ticket = session.get(Ticket, ticket_id)
        wall = (ticket.first_agent_reply_at - ticket.created_at).total_seconds()
        in_hours = ticket.first_response_staffed_s
    assert in_hours is not None and 0 <= in_hours <= wall
    assert fake_rasa.calls[0].entities["handoff_text"] == "Hi, I am Ana."
    assert fake_rasa.calls[0].entities["handoff_agent"] == "Ana"

    transcript = await (await client.get(f"/api/tickets/{ticket_id}/transcript")).json()
    texts = [m["text"] for m in transcript["messages"]]
    assert "can i bring a sword" in texts and "EXTERNAL: agent_message" not in texts

    note = await client.post(
        f"/api/tickets/{ticket_id}/notes", json={"text": "VIP"}, headers=headers
    )
    assert note.status == 201
    closed = await client.post(
        f"/api/tickets/{ticket_id}/close", json={"resolved": True}, headers=headers
    )
    assert closed.status == 200
    assert (await closed.json())["ticket"]["status"] == "closed_resolved"
    for _ in range(100):
        if any(c.name == "handoff_closed" for c in fake_rasa.calls):
            break
        await asyncio.sleep(0.05)
    assert fake_rasa.calls[-1].name == "handoff_closed"
    assert fake_rasa.calls[-1].entities["handoff_resolved"] is True


async def test_errors_are_clear_json(client: TestClient) -> None:
    token = await login(client)
    headers = {"X-CSRF-Token": token}
    missing = await client.post("/api/tickets/999/replies", json={"text": "hi"}, headers=headers)
    assert missing.status == 404 and "does not exist" in (await missing.json())["error"]
    ticket_id = open_ticket()
    await client.post(f"/api/tickets/{ticket_id}/close", json={"resolved": False}, headers=headers)
    late = await client.post(
        f"/api/tickets/{ticket_id}/replies", json={"text": "hi"}, headers=headers
    )
    assert late.status == 409 and "closed" in (await late.json())["error"]
    other = open_ticket("conv-2")
    empty = await client.post(f"/api/tickets/{other}/replies", json={"text": ""}, headers=headers)
    assert empty.status == 400 and (await empty.json())["details"][0]["field"] == "text"
    broken = await client.post(
        f"/api/tickets/{other}/replies",
        data=b"{nope",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert broken.status == 400
    forged = await client.post(f"/api/tickets/{other}/replies", json={"text": "hi"})
    assert forged.status == 403
    retry = await client.post(f"/api/tickets/{other}/messages/999/retry", json={}, headers=headers)
    assert retry.status == 404
    with session_scope() as session:
        assert service.messages_after(session, other) == []


async def test_roles_and_login_required(client: TestClient) -> None:
    assert (await client.get("/api/tickets")).status == 401
    await login(client, "vic")
    assert (await client.get("/api/tickets")).status == 403
    assert (await client.get("/console/inbox")).status == 403


async def test_assign_transfer_heartbeat_and_canned(client: TestClient) -> None:
    token = await login(client)
    headers = {"X-CSRF-Token": token}
    ticket_id = open_ticket()
    me = (await (await client.get("/api/tickets")).json())["me"]["id"]
    assigned = await client.post(
        f"/api/tickets/{ticket_id}/assign", json={"agent_id": me}, headers=headers
    )
    assert (await assigned.json())["ticket"]["assigned_agent"]["id"] == me
    back = await client.post(
        f"/api/tickets/{ticket_id}/assign", json={"agent_id": None}, headers=headers
    )
    assert (await back.json())["ticket"]["status"] == "waiting"
    bad = await client.post(
        f"/api/tickets/{ticket_id}/assign", json={"agent_id": 4242}, headers=headers
    )
    assert bad.status == 400

    beat = await client.post("/api/agents/heartbeat", json={}, headers=headers)
    assert (await beat.json())["agents_online"] == 1

    canned = await (await client.get("/api/canned-replies?q=shamp&language=en")).json()
    assert [r["faq_id"] for r in canned["results"]] == ["liquids"]  # prefix of a variant word
    both = await (await client.get("/api/canned-replies?q=can+i+bring")).json()
    assert {r["faq_id"] for r in both["results"]} == {"liquids", "laptops"}
    none = await (await client.get("/api/canned-replies?q=passport")).json()
    assert none["results"] == []


async def test_sse_streams_new_citizen_messages(client: TestClient) -> None:
    await login(client)
    ticket_id = open_ticket()
    resp = await client.get(f"/api/tickets/{ticket_id}/events?after=0")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    with session_scope() as session:
        service.add_citizen_message(session, "conv-1", "Hello? Anyone there?")
    frame = b""
    while b"\n\n" not in frame:
        frame += await asyncio.wait_for(resp.content.readany(), timeout=5)
    event, data = frame.decode().split("\n")[:2]
    assert event == "event: message"
    message = json.loads(data.removeprefix("data: "))
    assert message["direction"] == "citizen" and message["text"] == "Hello? Anyone there?"
    resp.close()
    assert (await client.get("/api/tickets/777/events")).status == 404


async def test_openapi_documents_the_inbox_api(client: TestClient) -> None:
    await console_login(client, "vic")
    spec = await (await client.get("/api/openapi.json")).json()
    assert "/api/tickets/{ticket_id}/replies" in spec["paths"]
    assert "409" in spec["paths"]["/api/tickets/{ticket_id}/replies"]["post"]["responses"]


# --- M3: a flood of tickets costs one page, and is cleared without messaging anyone ----------


async def test_inbox_list_is_paged_and_counted_in_sql(client: TestClient) -> None:
    """M3: /api/tickets serialised every open ticket and lazy-loaded each one's messages
    (N+1 queries), so a ticket flood made the inbox time out."""
    token = await login(client)
    ids = [open_ticket(f"flood-{i}") for i in range(120)]
    for ticket_id in ids[:60]:  # pending replies on many tickets: counted in one query
        resp = await client.post(
            f"/api/tickets/{ticket_id}/replies",
            json={"text": "hello"},
            headers={"X-CSRF-Token": token},
        )
        assert resp.status == 201
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = get_engine(get_settings().database_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        first = await (await client.get("/api/tickets")).json()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(first["tickets"]) == 50 and first["total"] == 120 and first["next_offset"] == 50
    message_queries = [s for s in statements if "handoff_message" in s]
    assert len(message_queries) <= 1, message_queries
    assert len(statements) < 15, statements
    listed = [t["id"] for t in first["tickets"]]
    last = await (await client.get("/api/tickets?offset=100&limit=50")).json()
    assert len(last["tickets"]) == 20 and last["next_offset"] is None
    middle = await (await client.get("/api/tickets?offset=50")).json()
    listed += [t["id"] for t in middle["tickets"]] + [t["id"] for t in last["tickets"]]
    assert sorted(listed) == ids  # every ticket on exactly one page
    pending = {t["id"]: t["pending_replies"] for t in first["tickets"] + middle["tickets"]}
    assert all(pending[i] in (0, 1) for i in ids[:60]) and all(pending[i] == 0 for i in ids[60:100])
    for bad in ("limit=501", "limit=-1", "offset=x"):
        resp = await client.get(f"/api/tickets?{bad}")
        assert resp.status == 400, bad
        body = await resp.json()
        field = bad.split("=")[0]
        assert body["error"].startswith(f"query parameter {field}: "), body
        assert body["details"][0]["field"] == field


async def test_close_as_spam_sends_nothing_to_the_citizen(
    client: TestClient, fake_rasa: FakeRasa
) -> None:
    """M3: clearing a flood one "close" at a time queued a hand-back message per ticket (an SMS
    each on paid channels). The bulk spam close closes them and sends nothing."""
    token = await login(client)
    headers = {"X-CSRF-Token": token}
    spam = [open_ticket(f"spam-{i}") for i in range(3)]
    control = open_ticket("real-citizen")
    forged = await client.post("/api/tickets/close-spam", json={"ticket_ids": spam})
    assert forged.status == 403  # CSRF as everywhere
    resp = await client.post(
        "/api/tickets/close-spam", json={"ticket_ids": [*spam, 999]}, headers=headers
    )
    assert resp.status == 200
    assert (await resp.json())["closed"] == spam
    again = await client.post("/api/tickets/close-spam", json={"ticket_ids": spam}, headers=headers)
    assert (await again.json())["closed"] == []
    too_many = await client.post(
        "/api/tickets/close-spam", json={"ticket_ids": list(range(1, 502))}, headers=headers
    )
    assert too_many.status == 400
    listing = await (await client.get("/api/tickets")).json()
    assert [t["id"] for t in listing["tickets"]] == [control]
    # A normal close is delivered; by the time it is, a spam hand-back would have been too.
    await client.post(f"/api/tickets/{control}/close", json={"resolved": True}, headers=headers)
    for _ in range(100):
        if "real-citizen" in fake_rasa.conversations:
            break
        await asyncio.sleep(0.05)
    assert fake_rasa.conversations == ["real-citizen"]
    detail = await (await client.get(f"/api/tickets/{spam[0]}")).json()
    assert detail["ticket"]["status"] == "closed_unresolved"
    assert "closed as spam" in detail["messages"][-1]["text"]
    vic = await login(client, "vic")
    viewer = await client.post(
        "/api/tickets/close-spam", json={"ticket_ids": [control]}, headers={"X-CSRF-Token": vic}
    )
    assert viewer.status == 403 and "role" in (await viewer.json())["error"]


async def test_event_streams_per_user_are_capped(client: TestClient) -> None:
    """L15: every SSE stream polls the database each second for ten minutes, and one session
    could open any number of them."""
    from console.api_tickets import SSE_MAX_PER_USER

    await login(client)
    ticket_id = open_ticket()
    url = f"/api/tickets/{ticket_id}/events"
    streams = [await client.get(url) for _ in range(SSE_MAX_PER_USER)]
    assert all(s.status == 200 for s in streams)
    refused = await client.get(url)
    assert refused.status == 429
    assert "too many open event streams" in (await refused.json())["error"]
    streams.pop().close()  # closing a tab frees its slot
    for _ in range(50):
        again = await client.get(url)
        if again.status == 200:
            break
        await asyncio.sleep(0.1)
    assert again.status == 200
    again.close()
    for stream in streams:
        stream.close()


async def test_the_ticket_carries_the_contact_the_citizen_left(client: TestClient) -> None:
    """The e-mail address or phone number a citizen left for a reply, with a link built on the
    server from the re-validated value; markup never becomes a contact, and a stored value that
    no longer passes the detector (tampered with in the database) is not shown at all."""
    from handoff.models import Ticket

    await login(client)
    mail, phone, tampered = open_ticket("conv-m"), open_ticket("conv-p"), open_ticket("conv-t")
    with session_scope() as session:
        service.add_citizen_message(session, "conv-m", "please write to ana+tsa@example.org")
        service.add_citizen_message(session, "conv-p", "my number is +34 612 345 678")
        service.add_citizen_message(session, "conv-t", '"><img src=x onerror=alert(1)>@x.org')
        assert session.get(Ticket, tampered).contact is None  # not an e-mail address
        bad = session.get(Ticket, tampered)
        bad.contact, bad.contact_kind = '"><img src=x onerror=alert(1)>@x.org', "email"

    ticket = (await (await client.get(f"/api/tickets/{mail}")).json())["ticket"]
    assert ticket["contact"] == "ana+tsa@example.org" and ticket["contact_kind"] == "email"
    assert ticket["contact_url"] == "mailto:ana+tsa@example.org"
    ticket = (await (await client.get(f"/api/tickets/{phone}")).json())["ticket"]
    assert (ticket["contact"], ticket["contact_kind"]) == ("+34 612 345 678", "phone")
    assert ticket["contact_url"] == "tel:+34612345678"
    ticket = (await (await client.get(f"/api/tickets/{tampered}")).json())["ticket"]
    assert ticket["contact"] is None and ticket["contact_url"] is None
    listing = await (await client.get("/api/tickets")).json()
    by_id = {t["id"]: t for t in listing["tickets"]}
    assert by_id[mail]["contact_url"] == "mailto:ana+tsa@example.org"

    page = await (await client.get(f"/console/inbox/{mail}")).text()
    assert '<p id="ticket-contact" class="ticket-contact" hidden>' in page
    assert "onerror" not in page and "ana+tsa" not in page  # the script fills it in


@pytest.mark.parametrize(
    ("kind", "value", "url"),
    [
        ("email", "a.b@example.org", "mailto:a.b@example.org"),
        ("email", "100%@example.org", "mailto:100%25@example.org"),
        ("phone", "(415) 555-2671", "tel:4155552671"),
        ("phone", "+1 202 555 0143", "tel:+12025550143"),
        ("email", "javascript:alert(1)//@x.org", None),
        ("phone", "a@b.org", None),  # the kind must match what the value is
        ("email", "+34 612 345 678", None),
        ("sms", "+34 612 345 678", None),
        ("email", "a@b.org <script>", None),
        ("email", None, None),
    ],
)
def test_contact_links_are_built_only_from_a_valid_value(
    kind: str, value: str | None, url: str | None
) -> None:
    from console.api_tickets import contact_url

    assert contact_url(kind, value) == url


def test_the_inbox_script_shows_the_contact_as_text_and_links_only_mailto_or_tel() -> None:
    """The ticket page renders citizen input through textContent only (tests/browser runs it);
    here: the contact's function never writes HTML and checks the link's scheme."""
    from askagency.config import PROJECT_ROOT

    script = (PROJECT_ROOT / "console" / "static" / "console" / "inbox.js").read_text()
    body = script[script.index("function renderContact") :]
    body = body[: body.index("function renderTicket")]
    assert "innerHTML" not in body and "insertAdjacentHTML" not in body
    assert "link.textContent = String(t.contact)" in body
    assert "/^(mailto|tel):/.test(url)" in body


NOTE = "Bookings are the airline's: give the citizen its website."


async def test_the_ticket_shows_the_note_of_the_out_of_scope_entry_that_took_the_question(
    client: TestClient,
) -> None:
    """A ticket opened for a question an out-of-scope entry took names the entry, and the
    detail carries the note the agency wrote for staff on it (the entry as it is now: none once
    it is deleted or turned into an answer); other tickets have neither."""
    await login(client)
    with session_scope() as session:
        store.create_faq(
            session,
            FaqInput(
                id="out-of-scope-bookings",
                language="en",
                category="Out of scope",
                question="cancel my flight",
                answer=NOTE,
                kind="out_of_scope",
                status="published",
            ),  # type: ignore[arg-type]
            "test",
        )
        taken = service.open_ticket(
            session,
            conversation_id="conv-oos",
            reason="low_confidence",
            trigger_text="cancel my flight please",
            out_of_scope_entry="out-of-scope-bookings",
        ).ticket.id
        gone = service.open_ticket(
            session,
            conversation_id="conv-gone",
            reason="low_confidence",
            out_of_scope_entry="out-of-scope-deleted",
        ).ticket.id
    plain = open_ticket("conv-plain")

    detail = await (await client.get(f"/api/tickets/{taken}")).json()
    assert detail["ticket"]["out_of_scope_entry"] == "out-of-scope-bookings"
    assert detail["out_of_scope_note"] == NOTE
    detail = await (await client.get(f"/api/tickets/{gone}")).json()
    assert detail["ticket"]["out_of_scope_entry"] == "out-of-scope-deleted"
    assert detail["out_of_scope_note"] is None
    detail = await (await client.get(f"/api/tickets/{plain}")).json()
    assert detail["ticket"]["out_of_scope_entry"] is None and detail["out_of_scope_note"] is None
    listing = await (await client.get("/api/tickets")).json()
    by_id = {t["id"]: t for t in listing["tickets"]}
    assert by_id[taken]["out_of_scope_entry"] == "out-of-scope-bookings"
    page = await (await client.get(f"/console/inbox/{taken}")).text()
    assert '<p id="ticket-out-of-scope" class="ticket-out-of-scope" hidden>' in page
