"""Agent replies reach conversations whose id has URL-reserved characters (``+15551234567``).

Rasa 3.6's HTTP API (Sanic 21) takes ``/conversations/<id>/...`` literally, without
percent-decoding: the console used to send ``%2B15551234567`` and so delivered the agent's reply
into a new, empty conversation named "%2B15551234567" while the citizen's stayed silent. The
real Rasa server of the session stack is used (handoff/rasa_api.py ``conversation_path``).
"""

from __future__ import annotations

import uuid

import pytest

from askagency.bot_messages import MessageType
from askagency.launcher import Stack
from tests.e2e.test_handoff import (  # noqa: F401 (fixtures)
    OUT_OF_SCOPE,
    Console,
    agents,
    console,
    tracker_bot_messages,
)
from tests.stack import RestClient, custom_of

pytestmark = pytest.mark.e2e


async def test_agent_reply_reaches_a_conversation_id_starting_with_plus(
    stack: Stack,
    rest: RestClient,
    console: Console,  # noqa: F811
) -> None:
    sender = f"+1555{uuid.uuid4().int % 10**7:07d}"
    assert custom_of(rest.send(sender, OUT_OF_SCOPE))[0]["type"] == MessageType.FALLBACK
    handoff = custom_of(rest.send(sender, "/ask_human"))[0]
    assert handoff["type"] == MessageType.HANDOFF
    ticket = await console.ticket_for(sender)
    assert ticket["conversation_id"] == sender

    reply = f"An agent answers {sender}"
    status, _ = await console.post(f"/api/tickets/{ticket['id']}/replies", {"text": reply})
    assert status == 201
    messages = await console.wait_delivery(ticket["id"])
    assert [m["delivery_status"] for m in messages if m["direction"] == "agent"] == ["delivered"]

    # In the citizen's own tracker (the path sent as it is), not in a "%2B..." one.
    delivered = [m["text"] for m in await tracker_bot_messages(stack, sender)]
    assert reply in delivered
    assert await tracker_bot_messages(stack, "%2B" + sender[1:]) == []

    status, _ = await console.post(f"/api/tickets/{ticket['id']}/close", {"resolved": False})
    assert status == 200
