"""M3 ticket flooding: the open-ticket cap per client and the agency's hourly budget, through the
real handoff action (rasa-sdk's own Tracker and dispatcher) on a migrated database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from actions.handoff import ActionHandoff
from askagency.bot_messages import MessageType
from askagency.clock import FakeClock
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from handoff import conversation, service
from handoff.models import Ticket


@pytest.fixture
def settings(db_url: str, monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[Settings]:
    monkeypatch.setenv("ASKAGENCY_HANDOFF_MAX_OPEN_PER_CLIENT", "3")
    monkeypatch.setenv("ASKAGENCY_HANDOFF_MAX_OPENED_PER_HOUR", "10")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def ask_human(sender: str, client_key: str | None) -> Tracker:
    """The tracker the action server gets for "/ask_human"; ``client_key`` is the metadata the
    web channel sets server-side (None: a channel that sets none)."""
    metadata = {"client_key": client_key} if client_key is not None else {}
    latest = {
        "text": "/ask_human",
        "intent": {"name": "ask_human"},
        "entities": [],
        "metadata": metadata,
    }
    user = {"event": "user", "text": "/ask_human", "parse_data": latest, "input_channel": "rest"}
    return Tracker(
        sender_id=sender,
        slots={},
        latest_message=latest,
        events=[user],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def run(tracker: Tracker) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await ActionHandoff().run(dispatcher, tracker, {})
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def open_tickets() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Ticket)) or 0)


async def test_one_client_cannot_flood_the_inbox_with_new_conversation_ids(
    settings: Settings,
) -> None:
    """The attack: one client opens ticket after ticket, each time under a fresh sender id.
    Past the cap it gets a clear answer, no ticket is opened and the handoff slot stays off."""
    refused_before = conversation.HANDOFF_REFUSED["client"]
    for i in range(3):
        messages, slots = await run(ask_human(f"flood-{i}", "client-A"))
        assert (
            messages[0]["custom"]["type"] == MessageType.HANDOFF and slots["handoff_active"] is True
        )
    messages, slots = await run(ask_human("flood-3", "client-A"))
    assert messages[0]["text"] == conversation.text("busy", "en")
    assert messages[0]["custom"] == {"type": MessageType.FALLBACK, "reason": "handoff_limited"}
    assert "handoff_active" not in slots
    assert open_tickets() == 3
    assert conversation.HANDOFF_REFUSED["client"] == refused_before + 1
    # Another client is not affected, and the flooder's existing ticket is still re-used.
    assert (await run(ask_human("citizen-1", "client-B")))[1]["handoff_active"] is True
    messages, _ = await run(ask_human("flood-0", "client-A"))
    assert messages[0]["text"] == conversation.text("already", "en")
    # Closing one frees a slot for that client.
    with session_scope() as session:
        ticket = service.open_ticket_for(session, "flood-1")
        assert ticket is not None
        service.close_as_spam(session, [ticket.id], by_user_id=0)
    assert (await run(ask_human("flood-4", "client-A")))[1]["handoff_active"] is True


async def test_without_a_client_key_the_conversation_is_the_key(settings: Settings) -> None:
    """Platform channels (one phone number per conversation) set no client_key."""
    for i in range(4):
        _, slots = await run(ask_human(f"sms-+1555000000{i}", None))
        assert slots["handoff_active"] is True
    with session_scope() as session:
        keys = set(session.scalars(select(Ticket.client_key)))
    assert keys == {service.client_key_hash(f"sms-+1555000000{i}") for i in range(4)}
    assert all(len(key) == 64 for key in keys)  # a digest, never the number itself


async def test_hourly_budget_caps_tickets_from_many_clients(
    settings: Settings, clock: FakeClock
) -> None:
    """Many addresses (M2, botnets) each under the per-client cap still cannot open more than
    the agency's hourly budget; the budget frees up as the hour slides."""
    for i in range(10):
        assert (await run(ask_human(f"c-{i}", f"client-{i}")))[1]["handoff_active"] is True
    messages, slots = await run(ask_human("c-10", "client-10"))
    assert messages[0]["custom"]["reason"] == "handoff_limited" and not slots
    assert open_tickets() == 10
    clock.advance(hours=1, seconds=1)
    assert (await run(ask_human("c-10", "client-10")))[1]["handoff_active"] is True
