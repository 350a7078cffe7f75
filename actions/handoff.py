"""Handoff actions: open a ticket, relay the citizen's messages to the agent, deliver the agent's
replies, give the conversation back to the bot. Thin: the logic is in ``handoff.conversation``."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import learning
from actions.tracker_info import language_slot_update, latest_text, message_language
from askagency import bot_messages as msg
from askagency.config import get_settings
from askagency.rasa_events import CLIENT_KEY_METADATA
from handoff import conversation, photos
from handoff.models import Reason


def apply(dispatcher: CollectingDispatcher, reply: conversation.Reply) -> list[EventType]:
    """Utter the reply's one message (if any) and return its slot events. ``reply.internal``
    becomes the bot event's metadata (Rasa keeps extra keys there), not part of the message."""
    if reply.text is not None or reply.custom is not None:
        dispatcher.utter_message(
            text=reply.text,
            json_message=reply.custom,
            buttons=reply.buttons or None,
            image=reply.image,
            attachment=reply.attachment,
            **reply.internal,
        )
    return [SlotSet(name, value) for name, value in reply.slots.items()]


def client_key(tracker: Tracker) -> str:
    """Who is asking, for the open-ticket caps: the keyed hash of the client's address that
    the REST/socket.io channel puts in the message metadata, else the conversation id (a
    platform conversation is one phone number or account)."""
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    key = metadata.get(CLIENT_KEY_METADATA) if isinstance(metadata, dict) else None
    return key if isinstance(key, str) and key else tracker.sender_id


async def hand_off(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    reason: Reason,
    trigger_text: str,
    out_of_scope_entry: str | None = None,
) -> list[EventType]:
    """Opens (or re-uses) the ticket and tells the citizen; shared by every trigger.
    ``out_of_scope_entry``: the knowledge base's entry that took the question, if one did."""
    reply = await handoff_reply(tracker, reason, trigger_text, out_of_scope_entry)
    return apply(dispatcher, reply)


async def handoff_reply(
    tracker: Tracker, reason: Reason, trigger_text: str, out_of_scope_entry: str | None = None
) -> conversation.Reply:
    """:func:`hand_off` before anything is said (a photo adds to the message first)."""
    settings = get_settings()
    language = message_language(tracker, settings)
    return await conversation.start_handoff(
        conversation_id=tracker.sender_id,
        reason=reason,
        channel=tracker.get_latest_input_channel() or "",
        language=language,
        trigger_text=trigger_text,
        settings=settings,
        # Made by the channel, not the client: tells a platform webhook's message apart.
        message_id=tracker.latest_message.get("message_id"),
        client_key=client_key(tracker),
        out_of_scope_entry=out_of_scope_entry,
    )


class ActionHandoff(Action):
    """The citizen asked for a person (typed, or clicked an offer)."""

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reason = conversation.requested_reason(tracker.events)
        # Asked for a person right after an answer: that answer did not do the job.
        language = message_language(tracker, get_settings())
        learning.note_unhelpful_answer(tracker, "handoff", language)
        entry = conversation.offered_out_of_scope(tracker.events)
        return await hand_off(dispatcher, tracker, reason, latest_text(tracker), entry)


class ActionRelayToAgent(Action):
    """While a person has the conversation: store the citizen's message, say nothing."""

    def name(self) -> str:
        return "action_relay_to_agent"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        language = message_language(tracker, get_settings())
        reply = await conversation.relay_to_agent(tracker.sender_id, latest_text(tracker), language)
        return language_slot_update(tracker, language) + apply(dispatcher, reply)


class ActionLeaveHandoff(Action):
    """The "Back to the assistant" button (intent ``cancel_handoff``): the citizen stops
    waiting for a person; pressed after the handoff ended, it says the bot is listening."""

    def name(self) -> str:
        return "action_leave_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        language = message_language(tracker, get_settings())
        if not tracker.get_slot(conversation.HANDOFF_SLOT):
            return apply(dispatcher, conversation.not_in_handoff(language))
        # The button sends the payload; anything else was typed (and is for the person once
        # someone has replied).
        typed = latest_text(tracker)
        button = typed.strip().startswith("/")
        reply = await conversation.leave_handoff(tracker.sender_id, language, button=button)
        if reply is None:
            reply = await conversation.store_for_agent(tracker.sender_id, typed, language)
        return apply(dispatcher, reply)


class ActionDeliverAgentMessage(Action):
    """External intent ``agent_message`` from the console: utter the agent's reply."""

    def name(self) -> str:
        return "action_deliver_agent_message"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        reply = conversation.agent_message(tracker.latest_message, tracker.events)
        attachment_id = conversation.entity(tracker.latest_message, msg.ENTITY_HANDOFF_ATTACHMENT)
        if attachment_id and reply.custom is not None:
            reply = await photos.with_agent_file(reply, str(attachment_id), get_settings())
        return apply(dispatcher, reply)


class ActionHandoffClosed(Action):
    """External intent ``handoff_closed``: the bot answers again."""

    def name(self) -> str:
        return "action_handoff_closed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        language = message_language(tracker, get_settings())
        reply = conversation.handoff_closed(tracker.latest_message, tracker.events, language)
        return apply(dispatcher, reply)
