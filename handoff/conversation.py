"""What the bot does in a conversation that is (being) handed to a person.

Used by the thin rasa-sdk actions in ``actions/handoff.py``. Each function reads the rasa-sdk
``Tracker``, talks to the shared database through ``handoff.service`` and returns the events
(slots) plus at most ONE bot message, whose ``custom`` payload is the machine-readable contract:

* :func:`askagency.bot_messages.handoff` when a ticket is
  opened (or re-used); while the database is down the request waits in the write spool
  (``askagency.spool``) and the payload has ``"queued": true``: the ticket is created, with the
  citizen's later messages in order, when the database is back;
* :func:`~askagency.bot_messages.agent_message` for an agent's reply;
* :func:`~askagency.bot_messages.handoff_closed` when the bot is back.

Citizens see ``custom``, so it carries nothing about the agency's operation: not the
sequential ticket number (it reveals the volume of requests), not how many agents are online
or the ticket's priority. The ticket number travels in the bot event's metadata
(:attr:`Reply.internal`), which channels never send to a client and analytics reads.

While the ``handoff_active`` slot is true the relay stores every citizen message on the ticket
and sends nothing, so the citizen hears only from the person; the one exception is a single
"thanks, the team can use ..." the first time a message leaves an e-mail address or phone
number for a reply (offered when the citizen must wait: :func:`with_contact_offer`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from askagency import bot_messages as msg
from askagency import metrics
from askagency.bot_messages import FallbackReason
from askagency.channels import log_ref, trusted_channel
from askagency.clock import now_utc
from askagency.config import Settings, get_settings
from askagency.db import session_scope
from askagency.privacy import Contact
from askagency.spool import (
    Spool,
    SpoolRecord,
    SpoolRejected,
    get_spool,
    is_database_unavailable,
    payload_time,
)
from handoff import service
from handoff.hours import StaffedHours, build_hours
from handoff.models import MESSAGE_MAX_CHARS, Direction, Reason, TicketMessage
from handoff.triggers import (
    Trigger,
    TriggerSettings,
    evaluate_question,
    past_questions,
)
from knowledge_base.text import fold

logger = logging.getLogger(__name__)

HANDOFF_SLOT = msg.SLOT_HANDOFF_ACTIVE
# Handoffs refused by the flooding caps in this process, by cap ("client", "global"); each is
# also logged, and the bot's reply carries custom reason "handoff_limited" for analytics.
HANDOFF_REFUSED: Counter[str] = Counter()


@dataclass
class Reply:
    """Events to return and the one message to utter (None: stay silent)."""

    slots: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    custom: dict[str, Any] | None = None
    buttons: list[dict[str, str]] = field(default_factory=list)
    # A person's file for the citizen (handoff/photos.py): a signed link to an image, or
    # ``{"type": "file", "url", "name", "mime"}`` for a PDF; channels pass both on.
    image: str | None = None
    attachment: dict[str, str] | None = None
    # Kept in the bot event's metadata (tracker, event broker, analytics), never sent to the
    # citizen: every channel passes only text, buttons, ``custom`` and the file on.
    internal: dict[str, Any] = field(default_factory=dict)


TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "online": (
            "I'm connecting you with a person. Please stay in this chat; someone will reply "
            "here shortly."
        ),
        "already": "You're already waiting for a person; they will reply here.",
        "nobody_online": (
            "I've passed your conversation to our team. Nobody is available right now; a "
            "person will reply here as soon as possible."
        ),
        "after_hours": (
            "I've passed your conversation to our team. We're closed right now; a person will "
            "reply here from {when}."
        ),
        "frustration": "I'm sorry this has been frustrating. ",
        "queued": (
            "I've passed your conversation to our team. A person will reply here as soon as "
            "possible; anything else you write here will reach them too."
        ),
        "unavailable": (
            "Sorry, I can't reach our team right now. Please try again in a few minutes."
        ),
        "busy": (
            "Sorry, our team cannot take more conversations from you right now. Please try "
            "again later, or use our other contact options."
        ),
        "closed_resolved": (
            "The person has closed this conversation. I'm the automated assistant again: ask me "
            "anything, or ask for a person if you need one."
        ),
        "closed_unresolved": (
            "The person has closed this conversation. I'm the automated assistant again; if "
            "you still need help, ask for a person at any time."
        ),
        "gone": (
            "This conversation with a person has ended. I'm the automated assistant again: "
            "please ask your question again."
        ),
        "left": (
            "OK, I've withdrawn your request to the team. I'm the automated assistant again: ask "
            "me anything, or ask for a person at any time."
        ),
        "with_bot": (
            "You're talking with the automated assistant: ask me anything, or ask for a person "
            "at any time."
        ),
        "leave_failed": (
            "Sorry, I couldn't do that right now; your request is still with our team. Please "
            "try again in a moment."
        ),
        "closed_timeout": (
            "Sorry, nobody from our team could take your conversation in time. I'm the "
            "automated assistant again: ask me anything, or ask for a person again later."
        ),
        "back_button": "Back to the assistant",
        # Appended to a handoff message when the citizen must wait (not on SMS): the reply may
        # not reach them here (Messenger after 7 days, WhatsApp after 24 hours, a closed tab).
        "contact_offer": (
            " If you can't wait here, write an e-mail address or phone number and the team can "
            "answer you there."
        ),
        "contact_noted": "Thanks: if we can't reach you here, the team can use {contact}.",
        # A photo or file (handoff/photos.py): the first is put before the handoff message.
        "file_received": (
            "Thank you for the photo. I can't look at pictures myself, but a person can. "
        ),
        "document_received": (
            "Thank you for the file. I can't read files myself, but a person can. "
        ),
        "file_too_large": (
            "Sorry, that file is too big. Photos and PDF files up to {limit_mb} MB work; or "
            "describe the item in words and I'll answer straight away."
        ),
        "file_unsupported": (
            "Sorry, I can't take that kind of file. Please send a photo (JPEG, PNG, WebP or "
            "HEIC) or a PDF, or describe the item in words."
        ),
        "file_damaged": (
            "Sorry, I couldn't open that file; it may be damaged. Please send it again, or "
            "describe the item in words."
        ),
        "file_unavailable": (
            "Sorry, I couldn't receive your file just now. Please try again in a few minutes, "
            "or describe the item in words."
        ),
    },
    "es": {
        "online": (
            "Le estoy comunicando con una persona. Permanezca en este chat; alguien le "
            "responderá aquí en breve."
        ),
        "already": "Ya está esperando a una persona; le responderá aquí.",
        "nobody_online": (
            "He pasado su conversación a nuestro equipo. Ahora no hay nadie disponible; una "
            "persona le responderá aquí lo antes posible."
        ),
        "after_hours": (
            "He pasado su conversación a nuestro equipo. Ahora estamos cerrados; una persona le "
            "responderá aquí a partir del {when}."
        ),
        "frustration": "Lamento que esto haya sido frustrante. ",
        "queued": (
            "He pasado su conversación a nuestro equipo. Una persona le responderá aquí lo antes "
            "posible; todo lo que escriba aquí también les llegará."
        ),
        "unavailable": (
            "Lo siento, ahora no puedo comunicarme con nuestro equipo. Inténtelo de nuevo en "
            "unos minutos."
        ),
        "busy": (
            "Lo siento, ahora nuestro equipo no puede atender más conversaciones suyas. "
            "Inténtelo de nuevo más tarde o use nuestras otras vías de contacto."
        ),
        "closed_resolved": (
            "La persona ha cerrado esta conversación. Vuelvo a ser el asistente automático: "
            "pregúnteme lo que necesite, o pida hablar con una persona si lo necesita."
        ),
        "closed_unresolved": (
            "La persona ha cerrado esta conversación. Vuelvo a ser el asistente automático; si "
            "todavía necesita ayuda, pida hablar con una persona en cualquier momento."
        ),
        "gone": (
            "Esta conversación con una persona ha terminado. Vuelvo a ser el asistente "
            "automático: vuelva a hacer su pregunta."
        ),
        "left": (
            "De acuerdo, he retirado su solicitud al equipo. Vuelvo a ser el asistente "
            "automático: pregúnteme lo que necesite, o pida hablar con una persona cuando quiera."
        ),
        "with_bot": (
            "Está hablando con el asistente automático: pregúnteme lo que necesite, o pida "
            "hablar con una persona cuando quiera."
        ),
        "leave_failed": (
            "Lo siento, ahora no he podido hacerlo; su solicitud sigue con nuestro equipo. "
            "Inténtelo de nuevo en un momento."
        ),
        "closed_timeout": (
            "Lo siento, nadie de nuestro equipo ha podido atender su conversación a tiempo. "
            "Vuelvo a ser el asistente automático: pregúnteme lo que necesite, o vuelva a pedir "
            "una persona más tarde."
        ),
        "back_button": "Volver al asistente",
        "contact_offer": (
            " Si no puede esperar aquí, escriba una dirección de correo electrónico o un número "
            "de teléfono y el equipo podrá responderle allí."
        ),
        "contact_noted": (
            "Gracias: si no podemos responderle aquí, el equipo podrá usar {contact}."
        ),
        "file_received": "Gracias por la foto. Yo no puedo ver imágenes, pero una persona sí. ",
        "document_received": (
            "Gracias por el archivo. Yo no puedo leer archivos, pero una persona sí. "
        ),
        "file_too_large": (
            "Lo siento, ese archivo es demasiado grande. Se aceptan fotos y archivos PDF de "
            "hasta {limit_mb} MB; o describa el objeto con palabras y le respondo enseguida."
        ),
        "file_unsupported": (
            "Lo siento, no puedo recibir ese tipo de archivo. Envíe una foto (JPEG, PNG, WebP o "
            "HEIC) o un PDF, o describa el objeto con palabras."
        ),
        "file_damaged": (
            "Lo siento, no he podido abrir ese archivo; puede estar dañado. Envíelo de nuevo, o "
            "describa el objeto con palabras."
        ),
        "file_unavailable": (
            "Lo siento, ahora no he podido recibir su archivo. Inténtelo de nuevo en unos "
            "minutos, o describa el objeto con palabras."
        ),
    },
}

# Day and month names for the after-hours time, so it does not depend on the server's locale.
_DAYS = {
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
_MONTHS = {
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
}


def text(key: str, language: str, **values: Any) -> str:
    table = TEXTS.get(language) or TEXTS["en"]
    template = table.get(key) or TEXTS["en"][key]
    return template.format(**values) if values else template


def back_button(language: str) -> dict[str, str]:
    """The "Back to the assistant" button every handoff message carries (intent
    ``cancel_handoff``; on SMS it becomes a numbered option)."""
    return {"title": text("back_button", language), "payload": "/" + msg.INTENT_CANCEL_HANDOFF}


# Channels where the conversation is itself a phone number: no offer to leave one.
NO_CONTACT_OFFER_CHANNELS = frozenset({"sms"})


def with_contact_offer(message: str, channel: str, language: str) -> str:
    """``message`` (the citizen will have to wait) with the offer to leave an e-mail address or
    phone number, since the person's reply may not reach them in their channel. Whatever they
    leave is shown to the agent (:func:`handoff.service.relay_citizen_message`)."""
    if channel in NO_CONTACT_OFFER_CHANNELS:
        return message
    return message + text("contact_offer", language)


# Typed words that leave a waiting handoff, in any supported language, compared with the whole
# message (case, accents and punctuation ignored), so "I need to cancel my booking" still reaches
# the person. SMS carriers keep CANCEL and STOP for opting out of the number (the message never
# arrives), so the button and "back to the assistant" are what the SMS citizen sees.
LEAVE_PHRASES = frozenset(
    {
        "cancel",
        "cancel handoff",
        "stop waiting",
        "back to the assistant",
        "back to assistant",
        "back to the bot",
        "go back to the assistant",
        "never mind",
        "nevermind",
        "cancelar",
        "volver al asistente",
        "volver al bot",
        "dejar de esperar",
        "olvidalo",
    }
)


_LETTERS_OR_DIGITS = re.compile(r"[^\W_]+")


def _phrase(message_text: str) -> str:
    """The message's words, lower case without accents, one space apart."""
    return " ".join(_LETTERS_OR_DIGITS.findall(fold(message_text)))


def is_leave_request(message_text: str) -> bool:
    """True when the whole message asks to stop waiting for a person ("Cancel!", "volver al
    asistente")."""
    return _phrase(message_text) in LEAVE_PHRASES


@lru_cache(maxsize=4)
def _hours(timezone: str, hours: str, holidays: str) -> StaffedHours:
    return build_hours(timezone, hours, holidays)


def staffed_hours(settings: Settings) -> StaffedHours:
    return _hours(settings.staffed_timezone, settings.staffed_hours, settings.staffed_holidays)


def console_base_url(settings: Settings) -> str:
    return settings.handoff_console_base_url or (
        f"http://{settings.console_host}:{settings.console_port}"
    )


def last_bot_custom(events: list[dict[str, Any]]) -> dict[str, Any]:
    """``custom`` of the bot message the citizen is answering (before their latest message)."""
    seen_user = False
    for event in reversed(events):
        kind = event.get("event")
        if kind == "user":
            if seen_user:
                return {}
            seen_user = True
        elif kind == "bot" and seen_user:
            data = event.get("data") or {}
            custom = data.get("custom") if isinstance(data, dict) else None
            return custom if isinstance(custom, dict) else {}
    return {}


def offered_reason(custom: dict[str, Any]) -> Reason | None:
    """The reason a bot message offered a person for: its low-confidence fallback or its
    answer to "this didn't help" (both carry a "Talk to a person" button)."""
    kind = msg.type_of(custom)
    if kind == msg.MessageType.FALLBACK and custom.get("reason") == FallbackReason.LOW_CONFIDENCE:
        return Reason.LOW_CONFIDENCE
    if kind == msg.MessageType.FEEDBACK_ACK and custom.get("feedback") == "bad":
        return Reason.NEGATIVE_FEEDBACK
    return None


def offered_out_of_scope(events: list[dict[str, Any]]) -> str | None:
    """The out-of-scope entry the bot's previous message named (a low-confidence fallback for a
    question such an entry took), for the ticket the citizen asks for after it."""
    custom = last_bot_custom(events)
    if offered_reason(custom) != Reason.LOW_CONFIDENCE:
        return None
    entry = custom.get(msg.FIELD_OUT_OF_SCOPE)
    return entry if isinstance(entry, str) and entry else None


def requested_reason(events: list[dict[str, Any]]) -> Reason:
    """Why the citizen asked for a person: what the bot's previous message offered one for,
    else a plain request. Read from the bot's own message, not from the button payload, so a
    citizen cannot choose a high-priority reason."""
    return offered_reason(last_bot_custom(events)) or Reason.REQUESTED


def _format_when(moment: datetime, hours: StaffedHours, language: str = "en") -> str:
    local = moment.astimezone(hours.timezone)
    zone = local.tzname() or ""
    if language in _DAYS:
        day = _DAYS[language][local.weekday()]
        month = _MONTHS[language][local.month - 1]
        return f"{day} {local.day:02d} de {month}, {local:%H:%M} {zone}"
    return local.strftime("%A %d %B, %H:%M ") + zone


async def start_handoff(
    *,
    conversation_id: str,
    reason: Reason,
    channel: str,
    language: str,
    trigger_text: str,
    settings: Settings | None = None,
    message_id: str | None = None,
    client_key: str = "",
    out_of_scope_entry: str | None = None,
) -> Reply:
    """Opens (or re-uses) the conversation's ticket and tells the citizen what happens next.

    ``channel`` and ``message_id`` are those of the message that asked; the ticket records the
    channel the conversation can really belong to (:func:`askagency.channels.trusted_channel`),
    because replies are sent through it. ``client_key`` identifies the client for the flooding
    caps (``service.TicketLimits``); over a cap the citizen is told so, and no ticket is opened
    and no agent notified. ``out_of_scope_entry``: the knowledge base's out-of-scope entry that
    took the question (read from the bot's own messages, never from the client)."""
    settings = settings or get_settings()
    channel = trusted_channel(conversation_id, channel, message_id)
    hours = staffed_hours(settings)
    limits = service.TicketLimits(
        max_open_per_client=settings.handoff_max_open_per_client,
        max_opened_per_hour=settings.handoff_max_opened_per_hour,
    )

    def work() -> tuple[int, bool, str, service.Availability]:
        with session_scope() as session:
            available = service.availability(session, hours, settings.handoff_presence_window_s)
            result = service.open_ticket(
                session,
                conversation_id=conversation_id,
                reason=reason,
                channel=channel,
                language=language,
                trigger_text=trigger_text,
                available=available,
                console_base_url=console_base_url(settings),
                client_key=client_key,
                limits=limits,
                out_of_scope_entry=out_of_scope_entry,
            )
            return result.ticket.id, result.created, result.ticket.priority, available

    spool = get_spool(settings)
    record = {
        "conversation_id": conversation_id,
        "reason": reason.value,
        "channel": channel,
        "language": language,
        "trigger_text": trigger_text,
        "client_key": client_key,
        "out_of_scope_entry": out_of_scope_entry,
        "requested_at": now_utc().isoformat(),
    }
    try:
        if spool.recently_failed() or await asyncio.to_thread(spool.has_pending, conversation_id):
            return await _queue_handoff(spool, record, reason, language, hours)
        ticket_id, created, priority, available = await asyncio.to_thread(work)
    except service.TicketLimitReached as exc:
        HANDOFF_REFUSED[exc.scope] += 1
        logger.warning(
            "handoff refused (%s cap, %d so far): %s", exc.scope, HANDOFF_REFUSED[exc.scope], exc
        )
        return Reply(
            text=text("busy", language),
            custom=msg.fallback(FallbackReason.HANDOFF_LIMITED),
        )
    except Exception as exc:
        if is_database_unavailable(exc):
            spool.note_failure(exc)
            return await _queue_handoff(spool, record, reason, language, hours)
        logger.error("could not open a ticket for %s: %s", log_ref(conversation_id), exc)
        return Reply(
            text=text("unavailable", language),
            custom=msg.fallback(FallbackReason.HANDOFF_UNAVAILABLE),
        )
    if created:
        metrics.HANDOFFS_OPENED.labels(reason=reason.value).inc()
    if not created:
        message = text("already", language)
    elif not available.staffed and available.expected_reply_at is not None:
        message = text(
            "after_hours", language, when=_format_when(available.expected_reply_at, hours, language)
        )
        message = with_contact_offer(message, channel, language)
    elif available.agents_online == 0:
        message = with_contact_offer(text("nobody_online", language), channel, language)
    else:
        message = text("online", language)
    if created and reason == Reason.FRUSTRATION:
        message = text("frustration", language) + message
    expected = available.expected_reply_at
    logger.info(
        "handoff %s: ticket %d (%s, %s) for %s",
        "opened" if created else "re-used",
        ticket_id,
        reason.value,
        priority,
        log_ref(conversation_id),
    )
    return Reply(
        slots={HANDOFF_SLOT: True, msg.SLOT_CONSECUTIVE_FALLBACKS: 0},
        text=message,
        custom=msg.handoff(
            reason=reason.value,
            after_hours=available.after_hours,
            expected_reply_at=expected.isoformat() if expected else None,
        ),
        buttons=[back_button(language)],
        internal={"ticket_id": ticket_id},
    )


async def _queue_handoff(
    spool: Spool,
    record: dict[str, Any],
    reason: Reason,
    language: str,
    hours: StaffedHours,
) -> Reply:
    """The database cannot take the ticket: keep the request in the spool and tell the citizen
    their conversation is with the team (it is: the ticket appears when the database is back).
    The slot is set, so their next messages are relayed (spooled) behind the request."""
    conversation_id = str(record["conversation_id"])
    await asyncio.to_thread(spool.append, "handoff_open", record, conversation_id)
    now = now_utc()
    staffed = hours.is_staffed(now)
    expected = None if staffed else hours.next_staffed_start(now)
    if expected is not None:
        message = text("after_hours", language, when=_format_when(expected, hours, language))
    else:
        message = text("queued", language)
    message = with_contact_offer(message, str(record.get("channel") or ""), language)
    if reason == Reason.FRUSTRATION:
        message = text("frustration", language) + message
    logger.warning(
        "handoff queued in the spool for %s (%s)", log_ref(conversation_id), reason.value
    )
    return Reply(
        slots={HANDOFF_SLOT: True, msg.SLOT_CONSECUTIVE_FALLBACKS: 0},
        text=message,
        custom=msg.handoff(
            reason=reason.value,
            after_hours=not staffed,
            expected_reply_at=expected.isoformat() if expected else None,
            queued=True,
        ),
        buttons=[back_button(language)],
    )


def replay_open(session: Session, payload: dict[str, Any]) -> None:
    """Spool kind ``handoff_open``: the ticket as it would have been opened at the time of the
    request. Idempotent: an open ticket of the conversation is re-used."""
    settings = get_settings()
    requested_at = payload_time(payload, "requested_at")
    available = service.availability(
        session, staffed_hours(settings), settings.handoff_presence_window_s, now=requested_at
    )
    result = service.open_ticket(
        session,
        conversation_id=str(payload.get("conversation_id") or ""),
        reason=str(payload.get("reason")),
        channel=str(payload.get("channel") or ""),
        language=str(payload.get("language") or "en"),
        trigger_text=str(payload.get("trigger_text") or ""),
        available=available,
        console_base_url=console_base_url(settings),
        now=requested_at,
        client_key=str(payload.get("client_key") or ""),
        out_of_scope_entry=str(payload.get("out_of_scope_entry") or "") or None,
    )
    if result.created:
        metrics.HANDOFFS_OPENED.labels(reason=str(result.ticket.reason)).inc()
    logger.info(
        "handoff replayed from the spool: ticket %d for %s",
        result.ticket.id,
        log_ref(str(payload.get("conversation_id") or "")),
    )


def replay_message(session: Session, payload: dict[str, Any]) -> None:
    """Spool kind ``handoff_message``: a citizen message relayed while the database was down,
    stored on the conversation's open ticket with its original time. Idempotent: the same
    text at the same time is stored once."""
    conversation_id = str(payload.get("conversation_id") or "")
    body = payload.get("text")
    if not isinstance(body, str):
        raise ValueError("payload has no text")
    sent_at = payload_time(payload, "sent_at")
    ticket = service.open_ticket_for(session, conversation_id)
    if ticket is None:
        raise SpoolRejected(f"no open ticket for conversation {conversation_id!r}")
    duplicate = session.scalar(
        select(TicketMessage.id).where(
            TicketMessage.ticket_id == ticket.id,
            TicketMessage.direction == Direction.CITIZEN.value,
            TicketMessage.created_at == sent_at,
            TicketMessage.text == body[:MESSAGE_MAX_CHARS],
        )
    )
    if duplicate is None:
        service.add_citizen_message(session, conversation_id, body, now=sent_at)


async def relay_to_agent(conversation_id: str, message_text: str, language: str) -> Reply:
    """Stores the citizen's message on the open ticket; silent. If the ticket was closed
    meanwhile (the hand-back is still on its way), the bot takes over at once. Words that ask
    to stop waiting (:func:`is_leave_request`) leave the handoff while nobody has replied yet."""
    if is_leave_request(message_text):
        left = await leave_handoff(conversation_id, language, button=False)
        if left is not None:
            return left
    return await store_for_agent(conversation_id, message_text, language)


async def store_for_agent(conversation_id: str, message_text: str, language: str) -> Reply:
    """:func:`relay_to_agent` without looking for words that leave: for a message already known
    to be for the person."""

    def work() -> tuple[bool, Contact | None]:
        with session_scope() as session:
            relayed = service.relay_citizen_message(session, conversation_id, message_text)
            if relayed is None:
                return False, None
            return True, relayed.first_contact

    spool = get_spool()
    record = {
        "conversation_id": conversation_id,
        "text": message_text,
        "sent_at": now_utc().isoformat(),
    }
    try:
        if spool.recently_failed() or await asyncio.to_thread(spool.has_pending, conversation_id):
            # Behind the conversation's spooled ticket (or earlier messages): keeps the order.
            await asyncio.to_thread(spool.append, "handoff_message", record, conversation_id)
            return Reply()
        stored, contact = await asyncio.to_thread(work)
    except Exception as exc:
        if is_database_unavailable(exc):
            spool.note_failure(exc)
            await asyncio.to_thread(spool.append, "handoff_message", record, conversation_id)
            return Reply()
        # Not a database outage: kept in the spool's dead letters for an operator, not lost.
        spool.dead_letter(
            SpoolRecord("handoff_message", record, key=conversation_id),
            f"{type(exc).__name__}: {exc}",
        )
        return Reply()
    if contact is not None:
        # Once per ticket, so the citizen can spot a typo; the relay is silent otherwise.
        return Reply(
            text=text("contact_noted", language, contact=contact.value),
            custom={"type": msg.MessageType.CONTACT_NOTED.value, "kind": contact.kind},
        )
    if stored:
        return Reply()
    return ticket_gone(language)


def ticket_gone(language: str) -> Reply:
    """The ticket was closed meanwhile (its hand-back is still on the way): the bot is back."""
    return Reply(
        slots={HANDOFF_SLOT: False},
        text=text("gone", language),
        custom=msg.handoff_closed(resolved=None, ended_by=msg.HandoffEnd.GONE),
    )


async def leave_handoff(conversation_id: str, language: str, *, button: bool) -> Reply | None:
    """The citizen goes back to the assistant (the button, or typed words while nobody has
    replied): the ticket closes unresolved and the bot answers again. None when typed words
    should reach the person instead (someone already replied, or the database is down and the
    message waits in the spool with the others)."""

    def work() -> service.LeaveOutcome:
        with session_scope() as session:
            return service.leave(session, conversation_id, unless_answered=not button)

    spool = get_spool()
    try:
        if spool.recently_failed() or await asyncio.to_thread(spool.has_pending, conversation_id):
            raise service.HandoffError("the ticket is waiting in the spool")
        outcome = await asyncio.to_thread(work)
    except Exception as exc:
        logger.warning("could not end the handoff of %s: %s", log_ref(conversation_id), exc)
        if not button:
            return None
        return Reply(text=text("leave_failed", language), buttons=[back_button(language)])
    if outcome == service.LeaveOutcome.ANSWERED:
        return None
    if outcome == service.LeaveOutcome.NO_TICKET:
        return ticket_gone(language)
    logger.info("handoff of %s withdrawn by the citizen", log_ref(conversation_id))
    return Reply(
        slots={HANDOFF_SLOT: False, msg.SLOT_CONSECUTIVE_FALLBACKS: 0},
        text=text("left", language),
        custom=msg.handoff_closed(resolved=False, ended_by=msg.HandoffEnd.CITIZEN),
    )


def not_in_handoff(language: str) -> Reply:
    """The "Back to the assistant" button of an earlier handoff, pressed after it ended."""
    return Reply(text=text("with_bot", language), custom=msg.prompt(FallbackReason.NOT_IN_HANDOFF))


def entity(latest_message: dict[str, Any], name: str) -> Any:
    """The value of an entity of the latest message (the console's external intents)."""
    for item in latest_message.get("entities") or []:
        if isinstance(item, dict) and item.get("entity") == name:
            return item.get("value")
    return None


def _entity_flag(latest_message: dict[str, Any], name: str) -> bool:
    """A yes/no entity: true as JSON or as text (Rasa may pass either)."""
    value = entity(latest_message, name)
    return value is True or str(value).lower() == "true"


def _already_sent(events: list[dict[str, Any]], message_id: Any) -> bool:
    """True when a bot message with this ``message_id`` is in the tracker (a redelivery)."""
    if message_id is None:
        return False
    for event in events:
        if event.get("event") != "bot":
            continue
        data = event.get("data") or {}
        custom = data.get("custom") if isinstance(data, dict) else None
        if isinstance(custom, dict) and str(custom.get("message_id")) == str(message_id):
            return True
    return False


def agent_message(latest_message: dict[str, Any], events: list[dict[str, Any]]) -> Reply:
    """The agent's reply, triggered by the console as the external intent ``agent_message``."""
    body = entity(latest_message, msg.ENTITY_HANDOFF_TEXT)
    message_id = entity(latest_message, msg.ENTITY_HANDOFF_MESSAGE)
    has_file = bool(entity(latest_message, msg.ENTITY_HANDOFF_ATTACHMENT))
    if not isinstance(body, str) or not (body.strip() or has_file):
        logger.warning("agent_message without text ignored: %r", latest_message.get("entities"))
        return Reply(slots={HANDOFF_SLOT: True})
    if _already_sent(events, message_id):
        return Reply(slots={HANDOFF_SLOT: True})
    return Reply(
        slots={HANDOFF_SLOT: True},
        text=body if body.strip() else None,
        custom=msg.agent_message(
            agent=str(entity(latest_message, msg.ENTITY_HANDOFF_AGENT) or ""),
            message_id=message_id,
        ),
        internal={"ticket_id": entity(latest_message, msg.ENTITY_HANDOFF_TICKET)},
    )


def handoff_closed(
    latest_message: dict[str, Any], events: list[dict[str, Any]], language: str
) -> Reply:
    """The console closed the ticket: the bot answers again from the next message on."""
    message_id = entity(latest_message, msg.ENTITY_HANDOFF_MESSAGE)
    resolved = _entity_flag(latest_message, msg.ENTITY_HANDOFF_RESOLVED)
    timed_out = _entity_flag(latest_message, msg.ENTITY_HANDOFF_TIMED_OUT)
    slots = {HANDOFF_SLOT: False, msg.SLOT_CONSECUTIVE_FALLBACKS: 0}
    if _already_sent(events, message_id):
        return Reply(slots=slots)
    if timed_out:
        key, ended_by = "closed_timeout", msg.HandoffEnd.TIMEOUT
    else:
        key = "closed_resolved" if resolved else "closed_unresolved"
        ended_by = msg.HandoffEnd.AGENT
    return Reply(
        slots=slots,
        text=text(key, language),
        custom=msg.handoff_closed(resolved=resolved, message_id=message_id, ended_by=ended_by),
        internal={"ticket_id": entity(latest_message, msg.ENTITY_HANDOFF_TICKET)},
    )


def embedding_encoder(settings: Settings, loaded_only: bool = False) -> Any:
    """Encoder for the rephrase check: the action server's model (the same instance the FAQ
    index uses). ``loaded_only``: None unless the model is already in memory, so a check never
    pays for loading it (the lexical measure is used instead). Citizen texts are never written
    to the embedding cache."""
    from knowledge_base.factory import embedder_for

    embedder = embedder_for(settings)
    if loaded_only and not embedder.loaded:
        return None
    return lambda texts: embedder.encode(texts, use_cache=False)


def question_trigger(
    question: str,
    events: list[dict[str, Any]],
    *,
    outcome: str,
    top_faq_id: str | None,
    fallbacks_before: int,
    settings: Settings,
    encode: Any = None,
    language: str = "en",
) -> Trigger | None:
    """The handoff trigger of a question turn after retrieval decided ``outcome``
    (answer | clarify | handoff), or None to answer as usual. ``language``: the turn's, for
    the frustration check (English and Spanish)."""
    low_confidence = outcome == "handoff"
    trigger = evaluate_question(
        question,
        answerable=outcome == "answer",
        would_answer_faq_id=top_faq_id if outcome == "answer" else None,
        past=past_questions(events),
        fallbacks_in_a_row=fallbacks_before + 1 if low_confidence else 0,
        cfg=TriggerSettings.from_settings(settings),
        encode=encode,
        language=language,
    )
    if trigger is not None:
        return trigger
    if low_confidence and settings.handoff_low_confidence_mode == "direct":
        return Trigger(Reason.LOW_CONFIDENCE, "no FAQ above the clarify threshold")
    return None
