"""Which channel a ticket records and which channel a reply may go out on (H1/H2): a web
client can never make the agency send a text, WhatsApp, Telegram or X message."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from askagency.channels import (
    PLATFORM_CHANNELS,
    UNKNOWN_CHANNEL,
    ChannelMismatch,
    delivery_channel,
    log_ref,
    platform_of,
    trusted_channel,
)
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from handoff import conversation as conv
from handoff.models import Reason, Ticket


@pytest.mark.parametrize(
    ("conversation_id", "input_channel", "message_id", "recorded"),
    [
        ("sms-15551234567", "sms", "sms-SM0123", "sms"),  # the SMS webhook's own message
        ("telegram-42", "telegram", "telegram-update-7", "telegram"),
        # A web client that names the SMS channel or squats an SMS id: never "sms".
        ("447700900123", "sms", "0f3c9a", "socketio"),
        ("sms-15551234567", "sms", "0f3c9a", UNKNOWN_CHANNEL),
        ("sms-15551234567", "rest", None, UNKNOWN_CHANNEL),
        ("whatsapp-15551234567", "sms", "sms-SM1", UNKNOWN_CHANNEL),
        ("9f2c4e", "rest", None, "rest"),
        ("9f2c4e", "socketio", None, "socketio"),
        ("9f2c4e", "", None, "socketio"),
    ],
)
def test_the_ticket_records_the_channel_the_conversation_belongs_to(
    conversation_id: str, input_channel: str, message_id: str | None, recorded: str
) -> None:
    assert trusted_channel(conversation_id, input_channel, message_id) == recorded


@pytest.mark.parametrize(
    ("conversation_id", "recorded", "output"),
    [
        ("sms-15551234567", "sms", "sms"),
        ("x-99", "x", "x"),
        ("9f2c4e", "socketio", "socketio"),
        ("9f2c4e", "rest", "socketio"),  # pushed to the room if any, kept in the tracker
        ("9f2c4e", "", "socketio"),
        ("447700900123", "sms", None),  # the review's H2 attack: refused
        ("sms-15551234567", "rest", None),
        ("sms-15551234567", UNKNOWN_CHANNEL, None),
        ("sms-15551234567", "whatsapp", None),
    ],
)
def test_replies_go_out_only_where_the_id_and_the_ticket_agree(
    conversation_id: str, recorded: str, output: str | None
) -> None:
    if output is None:
        with pytest.raises(ChannelMismatch, match="not sent"):
            delivery_channel(conversation_id, recorded)
    else:
        assert delivery_channel(conversation_id, recorded) == output


def test_platform_prefixes_are_the_platform_channels_names() -> None:
    assert [platform_of(f"{name}-1") for name in PLATFORM_CHANNELS] == list(PLATFORM_CHANNELS)
    assert platform_of("smsx-1") is None and platform_of("sms") is None


def test_log_refs_hide_the_number_but_follow_the_conversation() -> None:
    ref = log_ref("sms-15551234567")
    assert ref.startswith("sms:") and "5551234567" not in ref
    assert ref == log_ref("sms-15551234567") != log_ref("sms-15551234568")


@pytest.fixture
def settings(db_url: str) -> Settings:
    get_settings.cache_clear()
    return get_settings()


async def test_a_rest_client_claiming_sms_opens_a_web_ticket(settings: Settings) -> None:
    """The review's H2 request, as the action server sees it: ``input_channel`` "sms" from a
    REST client (Rasa drew the message id) is not recorded as an SMS conversation."""
    for conversation_id, message_id in (
        ("447700900123", "9d1b7c0e"),
        ("sms-15550001111", "9d1b7c0f"),
        ("sms-15550002222", "sms-SMabc"),
    ):
        await conv.start_handoff(
            conversation_id=conversation_id,
            reason=Reason.REQUESTED,
            channel="sms",
            language="en",
            trigger_text="/ask_human",
            settings=settings,
            message_id=message_id,
        )
    with session_scope() as session:
        rows = session.execute(select(Ticket.conversation_id, Ticket.channel)).all()
    assert sorted(rows) == [
        ("447700900123", "socketio"),
        ("sms-15550001111", UNKNOWN_CHANNEL),
        ("sms-15550002222", "sms"),
    ]
