"""Stored analytics rows for tests that need rows, not events: one conversation of one citizen
message and what the bot did with it, as analytics.ingest writes them."""

from __future__ import annotations

from datetime import datetime

from analytics.models import AnalyticsConversation, AnalyticsTurn
from askagency.location_codes import UNKNOWN_LOCATION


def one_turn_conversation(
    sender: str,
    when: datetime,
    text: str,
    *,
    outcome: str = "fallback",
    channel: str = "rest",
    language: str = "en",
    location: str = UNKNOWN_LOCATION,
) -> AnalyticsConversation:
    conversation = AnalyticsConversation(
        sender_id=sender,
        conversation_key=f"{sender}:1",
        start_ts=when.timestamp(),
        started_at=when,
        ended_at=when,
        channel=channel,
        language=language,
        location=location,
        user_messages=1,
        questions=1,
        answers=int(outcome == "answer"),
        fallbacks=int(outcome == "fallback"),
        clarifies=int(outcome == "clarify"),
        handed_off=False,
    )
    conversation.turns = [
        AnalyticsTurn(
            seq=0,
            user_ts=when.timestamp(),
            started_at=when,
            outcome=outcome,
            channel=channel,
            language=language,
            text=text,
        )
    ]
    return conversation
