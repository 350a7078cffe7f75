"""``action_receive_attachment``: a citizen's photo or file (intent ``share_attachment``).

Thin: what happens to the file is in ``handoff.photos``. The caption is still a question: a
confident FAQ answer to it ("can I bring this knife?") comes first, then the photo goes to a
person, who can say what the picture shows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import ActionAnswerFaq
from actions.handoff import apply, handoff_reply
from actions.tracker_info import message_language
from askagency.config import Settings, get_settings
from handoff import conversation, photos
from handoff.models import Reason
from knowledge_base.types import Outcome

logger = logging.getLogger(__name__)


class ActionReceiveAttachment(Action):
    """The file goes on the ticket: a new one outside a handoff, the open one during it."""

    def name(self) -> str:
        return "action_receive_attachment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        settings = get_settings()
        language = message_language(tracker, settings)
        files = photos.SharedFiles.from_metadata(tracker.latest_message.get("metadata"))
        in_handoff = bool(tracker.get_slot(conversation.HANDOFF_SLOT))
        received = await photos.receive(tracker.sender_id, files, language, settings)

        if isinstance(received, conversation.Reply):  # nothing usable: say why
            events = apply(dispatcher, received)
            if in_handoff:
                reply = await photos.caption_for_agent(tracker.sender_id, files.caption, language)
                return events + apply(dispatcher, reply)
            return events + await _answer_caption(dispatcher, files.caption, language, settings)

        if in_handoff:
            reply = await photos.attach_to_ticket(
                tracker.sender_id, files.caption, received, language
            )
            return apply(dispatcher, reply)

        events = await _answer_caption(dispatcher, files.caption, language, settings)
        reply = await handoff_reply(
            tracker, Reason.ATTACHMENT, photos.ticket_text(files.caption, received)
        )
        if photos.opened(reply):
            stored = await photos.attach_to_ticket(
                tracker.sender_id, files.caption, received, language
            )
            if stored.text is not None:  # the files did not reach the ticket: say so instead
                return events + apply(dispatcher, stored)
            reply = photos.with_thanks(reply, received, language)
        return events + apply(dispatcher, reply)


async def _answer_caption(
    dispatcher: CollectingDispatcher, caption: str, language: str, settings: Settings
) -> list[EventType]:
    """The FAQ answer to the caption when the knowledge base is confident; nothing otherwise
    (no "did you mean" list: the person looking at the photo will know better)."""
    if not caption or len(caption) > settings.max_message_chars:
        return []
    try:
        result, _carried = await asyncio.to_thread(
            ActionAnswerFaq._lookup, caption, None, language, settings
        )
    except Exception as exc:
        logger.error("FAQ lookup of a caption failed: %s", exc)
        return []
    decision = result.decision
    if decision.outcome != Outcome.ANSWER or not decision.hits:
        return []
    return ActionAnswerFaq._answer(dispatcher, decision.hits[0], language)
