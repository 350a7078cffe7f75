"""``action_answer_faq``: turn the knowledge base's Decision into exactly one bot message.

Each message carries text, buttons and ``custom`` metadata together (one
``dispatcher.utter_message`` call), so every channel can deliver them as one object and clients,
tests and evaluation can read the outcome from ``custom.type``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import kb, learning
from actions.handoff import hand_off
from actions.messages import no_answer_in_language, not_translated_note, person_button, text
from actions.tracker_info import (
    language_slot_update,
    latest_entity,
    latest_intent,
    latest_text,
    message_language,
    previous_exchange,
)
from askagency import bot_messages as msg
from askagency import metrics
from askagency.bot_messages import FallbackReason
from askagency.config import Settings, get_settings
from handoff import conversation
from handoff.triggers import Trigger
from knowledge_base import followup
from knowledge_base.multilingual import LanguageDecision
from knowledge_base.types import Decision, FaqHit, FaqRecord, Outcome

logger = logging.getLogger(__name__)

CHOOSE_FAQ_INTENT = msg.INTENT_CHOOSE_FAQ
# The clarify's "None of these" / "No" choice: not a valid FAQ id (ids never start with "-"),
# so it can never collide with one.
NONE_OF_THESE = "-none"
# Channels whose answers carry no related-FAQ buttons. SMS shows buttons as a numbered list
# under the answer: three more questions cost one to three more paid segments per answer (an
# answer is often already split in parts), and a menu after every answer reads as a question
# the citizen must reply to. WhatsApp and the other channels keep them.
NO_RELATED_CHANNELS = frozenset({"sms"})


def choose_payload(faq_id: str) -> str:
    """Button payload that answers ``faq_id`` directly (compact: some platforms cap payloads)."""
    return "/" + CHOOSE_FAQ_INTENT + json.dumps({"faq_id": faq_id}, separators=(",", ":"))


def answer_text(answer: str, source_url: str | None, language: str) -> str:
    # A single newline: several stock channels split texts on blank lines into separate messages.
    if source_url:
        return f"{answer}\n{text('source', language, url=source_url)}"
    return answer


def related_for(
    hit: FaqHit, language: str, settings: Settings, channel: str | None = None
) -> list[FaqRecord]:
    """The related FAQs to offer after ``hit``'s answer (knowledge_base/related.py): none when
    the feature is off (``related_faqs_max`` 0), on SMS, for an answer not in the citizen's
    language, or when the index cannot say. Never raises: related questions are a bonus."""
    limit = settings.related_faqs_max
    if limit <= 0 or channel in NO_RELATED_CHANNELS or (hit.language or language) != language:
        return []
    try:
        from knowledge_base.related import related_faqs  # numpy/scipy: not at import time

        bundle = getattr(kb.get_handle(settings).get(), "bundle", None)
        if bundle is None:
            return []
        return related_faqs(bundle, hit.faq_id, limit)
    except Exception as exc:
        logger.warning("related FAQs of %s not available: %s", hit.faq_id, exc)
        return []


def _remembered(hit: FaqHit | FaqRecord, score: float, **extra: Any) -> dict[str, Any]:
    """An offered FAQ as the clarify-options slot keeps it: a button press is answered from
    this, without another search."""
    is_hit = isinstance(hit, FaqHit)
    return {
        "faq_id": hit.faq_id if is_hit else hit.id,
        "question": hit.question,
        "answer": hit.answer,
        "source_url": hit.source_url,
        "language": hit.language,
        "category": hit.category,
        "score": float(score),
        **extra,
    }


def _faq_buttons(hits: Sequence[FaqHit]) -> list[dict[str, str]]:
    """One button per offered FAQ: its question, pressing it chooses it."""
    return [{"title": hit.question, "payload": choose_payload(hit.faq_id)} for hit in hits]


def _offered(hits: Sequence[FaqHit]) -> list[dict[str, Any]]:
    """The offered FAQs as the bot message contract lists them (``custom``)."""
    return [
        msg.clarify_option(faq_id=hit.faq_id, title=hit.question, score=hit.score) for hit in hits
    ]


def _fallback_count(tracker: Tracker) -> int:
    value = tracker.get_slot(msg.SLOT_CONSECUTIVE_FALLBACKS)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


async def handoff_trigger(
    tracker: Tracker, question: str, decision: Decision, settings: Settings, language: str
) -> Trigger | None:
    """Whether this question turn goes to a person (frustration, asked again, repeated
    fallbacks, or low confidence in direct mode). Never breaks the turn: on any error the
    citizen simply gets the bot's answer."""
    top = decision.hits[0].faq_id if decision.hits else None
    try:
        return await asyncio.to_thread(
            conversation.question_trigger,
            question,
            tracker.events,
            outcome=decision.outcome.value,
            top_faq_id=top,
            fallbacks_before=_fallback_count(tracker),
            settings=settings,
            encode=conversation.embedding_encoder(settings, loaded_only=True),
            language=language,
        )
    except Exception as exc:
        logger.error("handoff trigger check failed for %s: %s", tracker.sender_id, exc)
        return None


def _entry_id(decision: Decision) -> str | None:
    """The out-of-scope entry that took the question, if one did (Decision.out_of_scope)."""
    return decision.out_of_scope.faq_id if decision.out_of_scope is not None else None


def count_outcome(sent: list[dict[str, Any]]) -> None:
    """Counts the turn in ``askagency_turns_total`` by the ``custom.type`` of the reply it got:
    read from what was really sent, so every path (errors, handoffs, choices) is counted the
    way the citizen saw it. Empty-message prompts are not question turns and are not counted."""
    for message in reversed(sent):
        custom = message.get("custom") or {}
        outcome = msg.TURN_OUTCOMES.get(str(msg.type_of(custom)))
        if outcome is not None:
            metrics.TURNS.labels(outcome=outcome).inc()
            return


class ActionAnswerFaq(Action):
    """Answers a question (or a clarify button choice) from the FAQ index."""

    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[EventType]:
        sent_before = len(dispatcher.messages)
        events = await self._turn(dispatcher, tracker)
        count_outcome(dispatcher.messages[sent_before:])
        return events

    async def _turn(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        settings = get_settings()
        language = message_language(tracker, settings)
        events = language_slot_update(tracker, language)

        if latest_intent(tracker) == CHOOSE_FAQ_INTENT:
            return events + self._answer_choice(dispatcher, tracker, language, settings)

        question = latest_text(tracker).strip()
        if not question:
            dispatcher.utter_message(
                text=text("empty", language), json_message=msg.prompt(FallbackReason.EMPTY)
            )
            return events
        if len(question) > settings.max_message_chars:
            dispatcher.utter_message(
                text=text(
                    "too_long", language, length=len(question), limit=settings.max_message_chars
                ),
                buttons=[person_button(language)],
                json_message=msg.fallback(FallbackReason.TOO_LONG),
            )
            return events

        try:
            result, _carried = await asyncio.to_thread(
                self._lookup, question, previous_exchange(tracker.events), language, settings
            )
        except Exception as exc:
            # KnowledgeBaseUnavailable, or a bug in decide(): the citizen still gets a reply.
            logger.error("FAQ lookup failed for sender %s: %s", tracker.sender_id, exc)
            dispatcher.utter_message(
                text=text("unavailable", language),
                buttons=[person_button(language)],
                json_message=msg.fallback(FallbackReason.UNAVAILABLE),
            )
            return events

        decision = result.decision
        trigger = await handoff_trigger(tracker, question, decision, settings, language)
        learning.note_decision(tracker, question, decision, language, trigger is not None)
        if trigger is not None:
            entry = _entry_id(decision)
            return events + await hand_off(dispatcher, tracker, trigger.reason, question, entry)
        return events + self._respond(dispatcher, tracker, result, language, settings)

    @staticmethod
    def _lookup(
        question: str, previous: tuple[str, str] | None, language: str, settings: Settings
    ) -> tuple[Any, bool]:
        """The knowledge base's decision, reading a short follow-up with the question just
        answered when that answers it better (knowledge_base/followup.py)."""

        def decide_text(text: str, exclude: str | None) -> Any:
            return kb.lookup_in_language(text, language, settings, exclude=exclude)

        return followup.resolve(
            question,
            previous,
            decide_text,
            lambda result: followup.rank_of(result.decision),
            settings.followup_max_words,
        )

    def _respond(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        result: LanguageDecision,
        language: str,
        settings: Settings,
    ) -> list[EventType]:
        decision = result.decision
        if decision.outcome == Outcome.ANSWER and decision.hits:
            top = decision.hits[0]
            related = related_for(top, language, settings, tracker.get_latest_input_channel())
            return self._answer(dispatcher, top, language, related=related)
        if not result.kb_has_language:
            return self._no_answer_in_language(dispatcher, tracker, decision, language)
        options = list(decision.hits[: settings.clarify_max_options])
        if decision.outcome == Outcome.CLARIFY and options:
            return self._clarify(dispatcher, options, language)
        return self._low_confidence(dispatcher, tracker, decision, language)

    @staticmethod
    def _answer(
        dispatcher: CollectingDispatcher,
        hit: FaqHit,
        language: str,
        *,
        related: Sequence[FaqRecord] = (),
        from_faq: str | None = None,
    ) -> list[EventType]:
        """The FAQ's answer; in another language than the citizen's (no translation in the
        knowledge base) it starts with a note in the citizen's language and offers a person.

        ``related`` (:func:`related_for`) become buttons under the answer, remembered like
        clarify options so a press is answered without another search; ``from_faq`` is set
        when this answer is such a press (``custom.via`` says so, for analytics)."""
        answer_language = hit.language or language
        body = answer_text(hit.answer, hit.source_url, answer_language)
        offered = list(related) if answer_language == language else []
        custom = msg.faq_answer(
            faq_id=hit.faq_id,
            score=hit.score,
            source_url=hit.source_url,
            language=answer_language,
            related=[record.id for record in offered],
            via=msg.VIA_RELATED if from_faq else None,
            from_faq=from_faq,
        )
        if answer_language == language:
            buttons = [
                {"title": record.question, "payload": choose_payload(record.id)}
                for record in offered
            ]
            dispatcher.utter_message(text=body, buttons=buttons, json_message=custom)
        else:
            dispatcher.utter_message(
                text=f"{not_translated_note(language)}\n{body}",
                buttons=[person_button(language)],
                json_message=msg.untranslated(custom, language),
            )
        # The related buttons replace any earlier clarify options: an old button pressed now
        # is not answered from a list the citizen has moved past.
        remembered = [
            _remembered(record, hit.score, via=msg.VIA_RELATED, from_faq=hit.faq_id)
            for record in offered
        ]
        return [
            SlotSet(msg.SLOT_LAST_FAQ_ID, hit.faq_id),
            SlotSet(msg.SLOT_CONSECUTIVE_FALLBACKS, 0),
            SlotSet(msg.SLOT_CLARIFY_OPTIONS, remembered or None),
        ]

    @staticmethod
    def _clarify(
        dispatcher: CollectingDispatcher, options: list[FaqHit], language: str
    ) -> list[EventType]:
        """The clarify question. One option is asked as a yes/no "Did you mean ...?"; several
        are listed; either way the last button says none fits (rephrase or a person)."""
        if len(options) == 1:
            prompt = text("did_you_mean", language, question=options[0].question)
            buttons = [
                {"title": text("yes", language), "payload": choose_payload(options[0].faq_id)},
                {"title": text("no", language), "payload": choose_payload(NONE_OF_THESE)},
            ]
        else:
            prompt = text("clarify", language)
            buttons = _faq_buttons(options)
            buttons.append(
                {"title": text("none_of_these", language), "payload": choose_payload(NONE_OF_THESE)}
            )
        dispatcher.utter_message(
            text=prompt,
            buttons=buttons,
            json_message=msg.clarify(_offered(options)),
        )
        # Remember the options so the button press is answered without another search.
        remembered = [_remembered(hit, hit.score) for hit in options]
        return [
            SlotSet(msg.SLOT_CLARIFY_OPTIONS, remembered),
            SlotSet(msg.SLOT_CONSECUTIVE_FALLBACKS, 0),
        ]

    @staticmethod
    def _low_confidence(
        dispatcher: CollectingDispatcher, tracker: Tracker, decision: Decision, language: str
    ) -> list[EventType]:
        """No sure answer: say so and offer a person. The decision's suggestions (near misses
        above suggest_threshold) come first as buttons, remembered like clarify options so a
        press answers without another search; the turn still counts as a fallback (a second
        one in a row hands over to a person) until the citizen presses one."""
        suggestions = list(decision.suggestions)
        fields: dict[str, Any] = {"score": decision.top_score}
        if suggestions:
            fields["suggestions"] = _offered(suggestions)
        dispatcher.utter_message(
            text=text("low_confidence_suggest" if suggestions else "low_confidence", language),
            buttons=[*_faq_buttons(suggestions), person_button(language)],
            json_message=msg.fallback(
                FallbackReason.LOW_CONFIDENCE, out_of_scope=_entry_id(decision), **fields
            ),
        )
        events: list[EventType] = [
            SlotSet(msg.SLOT_CONSECUTIVE_FALLBACKS, _fallback_count(tracker) + 1)
        ]
        if suggestions:
            remembered = [_remembered(hit, hit.score) for hit in suggestions]
            events.append(SlotSet(msg.SLOT_CLARIFY_OPTIONS, remembered))
        return events

    @staticmethod
    def _no_answer_in_language(
        dispatcher: CollectingDispatcher, tracker: Tracker, decision: Decision, language: str
    ) -> list[EventType]:
        """Nothing confident, in a language the knowledge base lacks: say so in that language
        and offer a person (who may speak it: tickets carry the language)."""
        dispatcher.utter_message(
            text=no_answer_in_language(language),
            buttons=[person_button(language)],
            json_message=msg.fallback(
                FallbackReason.LANGUAGE_UNAVAILABLE,
                out_of_scope=_entry_id(decision),
                language=language,
                translated=False,
                score=decision.top_score,
            ),
        )
        return [SlotSet(msg.SLOT_CONSECUTIVE_FALLBACKS, _fallback_count(tracker) + 1)]

    @staticmethod
    def _rejected(
        dispatcher: CollectingDispatcher, tracker: Tracker, language: str
    ) -> list[EventType]:
        """No clarify option fits: invite a rephrasing and offer a person. The question is
        already in the unanswered queue (queued as "clarified" when the options were shown)."""
        dispatcher.utter_message(
            text=text("rejected", language),
            buttons=[person_button(language)],
            json_message=msg.fallback(FallbackReason.NONE_OF_THESE),
        )
        return [
            SlotSet(msg.SLOT_CLARIFY_OPTIONS, None),
            SlotSet(msg.SLOT_CONSECUTIVE_FALLBACKS, _fallback_count(tracker) + 1),
        ]

    def _answer_choice(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        language: str,
        settings: Settings | None = None,
    ) -> list[EventType]:
        faq_id = latest_entity(tracker, msg.ENTITY_FAQ_ID) or tracker.get_slot(msg.SLOT_FAQ_ID)
        if faq_id == NONE_OF_THESE:
            return self._rejected(dispatcher, tracker, language)
        for option in tracker.get_slot(msg.SLOT_CLARIFY_OPTIONS) or []:
            if isinstance(option, dict) and option.get("faq_id") == faq_id:
                hit = FaqHit(
                    faq_id=str(option["faq_id"]),
                    score=float(option.get("score") or 0.0),
                    question=str(option.get("question") or ""),
                    answer=str(option.get("answer") or ""),
                    language=str(option.get("language") or language),
                    category=str(option.get("category") or ""),
                    source_url=option.get("source_url"),
                )
                from_faq = option.get("from_faq")
                related_click = option.get("via") == msg.VIA_RELATED and isinstance(from_faq, str)
                learning.note_choice(tracker, hit.faq_id, language, for_question=not related_click)
                from_faq_id = from_faq if related_click else None
                channel = tracker.get_latest_input_channel()
                related = related_for(hit, language, settings or get_settings(), channel)
                return self._answer(
                    dispatcher, hit, language, related=related, from_faq=from_faq_id
                )
        logger.info("choose_faq for %r which is not among the last clarify options", faq_id)
        dispatcher.utter_message(
            text=text("unknown_option", language),
            json_message=msg.fallback(FallbackReason.UNKNOWN_OPTION),
        )
        return []
