"""JSON API of the agent inbox: tickets, replies, assignment, notes, closing, presence, canned
replies, the conversation transcript and a server-sent-events stream of new messages.

Every route is registered with ``api_route`` (so /api/openapi.json documents it) and allowed to
agents and admins. Errors use the uniform ``{"error", "details"}`` body: 404 for an unknown
ticket, 409 for a reply to a closed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from askagency.clock import now_utc
from askagency.config import Settings
from askagency.numbers import row_id
from askagency.privacy import CONTACT_EMAIL, CONTACT_PHONE, first_contact
from askagency.staff import Role, User
from attachments import store as attachment_store
from attachments.models import Attachment, AttachmentDirection
from console.attachment_views import (
    AttachmentOut,
    UploadRulesOut,
    attachment_out,
    read_agent_upload,
    upload_rules,
)
from console.auth import CurrentUser, current_user, require_role
from console.jsonapi import (
    RowId,
    in_transaction,
    json_error,
    json_model,
    parse_json,
    parse_query,
)
from console.keys import SETTINGS_KEY
from console.openapi import api_route
from console.widget_api import messages_from_tracker
from handoff import canned, delivery, service
from handoff.delivery import Backoff, DeliveryWorker, sweep_of
from handoff.hours import HoursConfigError, StaffedHours, hours_from_settings
from handoff.models import MESSAGE_MAX_CHARS, Ticket, TicketMessage, TicketNote
from handoff.rasa_api import RasaClient, RasaError
from knowledge_base.models import Faq

logger = logging.getLogger(__name__)

TAGS = ("inbox",)
RASA_KEY = web.AppKey("handoff_rasa", RasaClient)
WORKER_KEY = web.AppKey("handoff_worker", DeliveryWorker)
STREAMS_KEY = web.AppKey("handoff_streams", Counter)  # user id -> open SSE streams
SSE_POLL_S = 1.0
SSE_KEEPALIVE_S = 15.0
SSE_MAX_S = 600.0  # EventSource reconnects by itself; bounded streams free server resources
SSE_MAX_PER_USER = 6  # open event streams per user and console process (tabs of one agent)
PAGE_DEFAULT = 50  # tickets per page of the inbox list
PAGE_MAX = 500
SPAM_BATCH_MAX = 500  # tickets one "close as spam" may close

T = TypeVar("T")


# ----------------------------------------------------------------------------- models
class ReplyIn(BaseModel):
    text: str = Field(min_length=1, max_length=MESSAGE_MAX_CHARS)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=MESSAGE_MAX_CHARS)


class AssignIn(BaseModel):
    agent_id: RowId | None = Field(description="console user id; null returns it to the queue")


class CloseIn(BaseModel):
    resolved: bool


class SpamIn(BaseModel):
    ticket_ids: list[RowId] = Field(min_length=1, max_length=SPAM_BATCH_MAX)


class SpamOut(BaseModel):
    closed: list[int]


class AgentOut(BaseModel):
    id: int
    name: str
    languages: list[str]


class MessageOut(BaseModel):
    id: int
    direction: str
    kind: str
    author: str
    text: str
    created_at: datetime
    delivery_status: str | None
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    attachments: list[AttachmentOut] = Field(
        default_factory=list, description="photos and files sent with the message"
    )


class NoteOut(BaseModel):
    id: int
    author: str
    text: str
    created_at: datetime


class TicketOut(BaseModel):
    id: int
    conversation_id: str
    channel: str
    language: str
    reason: str
    priority: str
    status: str
    assigned_agent: AgentOut | None
    created_at: datetime
    wait_seconds: int
    first_agent_reply_at: datetime | None
    first_response_seconds: int | None
    closed_at: datetime | None
    after_hours: bool
    expected_reply_at: datetime | None
    trigger_text: str
    transcript_url: str
    pending_replies: int = 0
    contact: str | None = Field(
        None,
        description="an e-mail address or phone number the citizen left for a reply (personal "
        "data; never used automatically)",
    )
    contact_kind: Literal["email", "phone"] | None = None
    contact_url: str | None = Field(
        None, description="mailto: or tel: link built from the validated contact"
    )
    out_of_scope_entry: str | None = Field(
        None,
        description="the knowledge base's out-of-scope entry that took the citizen's question, "
        "when the bot handed off for that",
    )


class TicketListOut(BaseModel):
    tickets: list[TicketOut]
    total: int = Field(description="tickets matching the filter, across all pages")
    offset: int
    next_offset: int | None = Field(description="offset of the next page; null on the last")
    agents_online: int
    me: AgentOut


class TicketDetailOut(BaseModel):
    ticket: TicketOut
    out_of_scope_note: str | None = Field(
        None,
        description="the note for staff of the ticket's out-of-scope entry (its stored answer; "
        "null when the ticket has none or the entry is gone)",
    )
    messages: list[MessageOut]
    notes: list[NoteOut]
    agents: list[AgentOut]
    me: AgentOut
    uploads: UploadRulesOut


class TranscriptOut(BaseModel):
    conversation_id: str
    messages: list[dict[str, Any]]


class CannedOut(BaseModel):
    results: list[canned.CannedReply]


class PresenceOut(BaseModel):
    agents_online: int


# ----------------------------------------------------------------------------- helpers
def _agent_out(user: User | CurrentUser) -> AgentOut:
    name = user.display_name
    return AgentOut(id=user.id, name=name, languages=list(user.languages or []))


def _ticket_out(
    ticket: Ticket, session: Any, now: datetime, pending: int | None = None
) -> TicketOut:
    """``pending`` comes from one grouped query for a list page; a single ticket counts its
    own."""
    agent = session.get(User, ticket.assigned_agent_id) if ticket.assigned_agent_id else None
    end = ticket.closed_at or now
    first = ticket.first_agent_reply_at
    if pending is None:
        pending = service.pending_reply_counts(session, [ticket.id]).get(ticket.id, 0)
    return TicketOut(
        id=ticket.id,
        conversation_id=ticket.conversation_id,
        channel=ticket.channel,
        language=ticket.language,
        reason=ticket.reason,
        priority=ticket.priority,
        status=ticket.status,
        assigned_agent=_agent_out(agent) if agent else None,
        created_at=ticket.created_at,
        wait_seconds=int(((first or end) - ticket.created_at).total_seconds()),
        first_agent_reply_at=first,
        first_response_seconds=int((first - ticket.created_at).total_seconds()) if first else None,
        closed_at=ticket.closed_at,
        after_hours=ticket.after_hours,
        expected_reply_at=ticket.expected_reply_at,
        trigger_text=ticket.trigger_text,
        transcript_url=ticket.transcript_url,
        pending_replies=pending,
        out_of_scope_entry=ticket.out_of_scope_entry,
        **_contact_out(ticket),
    )


def contact_url(kind: str | None, value: str | None) -> str | None:
    """A ``mailto:`` or ``tel:`` link for the contact the citizen left, or None. Built only
    from a value that passes the detector again (askagency.privacy.first_contact), so a value
    that is not an e-mail address or phone number (or was tampered with) never becomes a link;
    the agent's own mail program or phone does the sending."""
    if not value or kind not in (CONTACT_EMAIL, CONTACT_PHONE):
        return None
    found = first_contact(value)
    if found is None or found.kind != kind or found.value != value.strip():
        return None
    if kind == CONTACT_EMAIL:
        return "mailto:" + quote(found.value, safe="@.+-_")
    digits = "".join(ch for ch in found.value if ch.isdigit())
    if found.value.startswith("+"):
        return "tel:+" + digits
    return "tel:" + digits


def _contact_out(ticket: Ticket) -> dict[str, Any]:
    url = contact_url(ticket.contact_kind, ticket.contact)
    if url is None:
        return {}
    return {"contact": ticket.contact, "contact_kind": ticket.contact_kind, "contact_url": url}


def _message_out(message: TicketMessage, files: list[Attachment] | None = None) -> MessageOut:
    return MessageOut(
        id=message.id,
        direction=message.direction,
        kind=message.kind,
        author=message.author,
        text=message.text,
        created_at=message.created_at,
        delivery_status=message.delivery_status,
        attempts=message.attempts,
        last_error=message.last_error,
        delivered_at=message.delivered_at,
        attachments=[attachment_out(a) for a in files or ()],
    )


def _messages_out(session: Any, messages: list[TicketMessage]) -> list[MessageOut]:
    """The messages with their files, looked up in one query (no bytes loaded)."""
    files = attachment_store.for_messages(session, [m.id for m in messages])
    return [_message_out(m, files.get(m.id)) for m in messages]


def _note_out(note: TicketNote) -> NoteOut:
    return NoteOut(id=note.id, author=note.author, text=note.text, created_at=note.created_at)


def _user(request: web.Request) -> CurrentUser:
    user = current_user(request)
    assert user is not None  # require_role ran first
    return user


def _ticket_id(request: web.Request) -> int:
    raw = request.match_info["ticket_id"]
    ticket_id = row_id(raw)
    if ticket_id is None:
        raise json_error(404, f"ticket {raw!r} does not exist")
    return ticket_id


def _handoff_error(exc: Exception) -> web.HTTPException:
    assert isinstance(exc, service.HandoffError)
    return json_error(exc.status, exc.message)


async def _db(fn: Callable[[Any], T]) -> T:
    """Runs ``fn(session)`` in one transaction off the event loop; ticket errors -> JSON."""
    return await in_transaction(fn, None, (service.HandoffError,), _handoff_error)


def _wake_worker(request: web.Request) -> None:
    """A reply was queued or a ticket closed: deliver now instead of at the next poll."""
    worker = request.app.get(WORKER_KEY)
    if worker is not None:
        worker.wake()


def _out_of_scope_note(session: Any, entry_id: str | None) -> str | None:
    """What the agency wrote for staff on the out-of-scope entry that took the question (the
    entry as it is now; none when it was deleted or is no longer out of scope)."""
    if not entry_id:
        return None
    entry = session.get(Faq, entry_id)
    return entry.answer if entry is not None and entry.out_of_scope else None


def _detail(session: Any, ticket_id: int, me: CurrentUser, settings: Settings) -> TicketDetailOut:
    ticket = service.get_ticket(session, ticket_id)
    now = now_utc()
    return TicketDetailOut(
        ticket=_ticket_out(ticket, session, now),
        out_of_scope_note=_out_of_scope_note(session, ticket.out_of_scope_entry),
        messages=_messages_out(session, service.messages_after(session, ticket_id)),
        notes=[_note_out(n) for n in service.notes_of(session, ticket_id)],
        agents=[_agent_out(a) for a in service.agents(session)],
        me=_agent_out(me),
        uploads=upload_rules(settings),
    )


# ----------------------------------------------------------------------------- handlers
def _language_code(value: str) -> str:
    value = value.strip().lower()
    if value and not (2 <= len(value) <= 16 and value.replace("-", "").isalpha()):
        raise ValueError("language must be a language code such as 'es'")
    return value


class TicketListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["open", "closed"] = Field("open", description="open or closed tickets")
    language: Annotated[str, AfterValidator(_language_code)] = Field(
        "", description="only tickets in this language, e.g. es"
    )
    limit: int = Field(PAGE_DEFAULT, ge=0, le=PAGE_MAX, description="tickets per page")
    offset: int = Field(
        0, ge=0, le=10**9, description="tickets to skip (the previous page's next_offset)"
    )


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    after: int = Field(0, ge=0, lt=10**12, description="last message id already shown")


class CannedQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: str = Field("", description="search text (the first 200 characters)")
    language: str | None = Field(None, max_length=16, description="e.g. en")


@require_role(Role.AGENT)
async def list_tickets(request: web.Request) -> web.Response:
    """A page of open tickets (``?status=closed``: most recently closed first); open ones in
    the agent's languages come first, ``?language=es`` keeps only that language's. ``limit``
    (default 50) and ``offset`` page through; ``total`` counts them all."""
    me = _user(request)
    settings = request.app[SETTINGS_KEY]
    params = parse_query(request, TicketListQuery)
    which, language = params.status, params.language.lower()
    limit, offset = max(1, params.limit), params.offset

    def load(session: Any) -> TicketListOut:
        now = now_utc()
        page = service.list_page(
            session,
            which,
            limit=limit,
            offset=offset,
            language=language,
            agent_languages=list(me.languages or []),
        )
        pending = service.pending_reply_counts(session, [t.id for t in page.tickets])
        end = offset + len(page.tickets)
        return TicketListOut(
            tickets=[_ticket_out(t, session, now, pending.get(t.id, 0)) for t in page.tickets],
            total=page.total,
            offset=offset,
            next_offset=end if end < page.total else None,
            agents_online=service.online_agents(session, settings.handoff_presence_window_s),
            me=_agent_out(me),
        )

    return json_model(await _db(load))


@require_role(Role.AGENT)
async def post_close_spam(request: web.Request) -> web.Response:
    """Closes many tickets at once as spam: nothing is sent to anyone (no hand-back message),
    so clearing a flood costs no SMS and tells the flooder nothing."""
    me = _user(request)
    body = await parse_json(request, SpamIn)
    closed = await _db(lambda s: service.close_as_spam(s, body.ticket_ids, me.id))
    logger.warning("%s closed %d ticket(s) as spam", me.username, len(closed))
    return json_model(SpamOut(closed=closed))


@require_role(Role.AGENT)
async def get_ticket(request: web.Request) -> web.Response:
    ticket_id, me = _ticket_id(request), _user(request)
    settings = request.app[SETTINGS_KEY]
    return json_model(await _db(lambda s: _detail(s, ticket_id, me, settings)))


def _staffed_hours(settings: Settings) -> StaffedHours | None:
    """The staffed hours a first reply's staffed response time is stored in; None (analytics
    then computes it when it reads the ticket) when the setting is wrong, which must never stop
    an agent's reply."""
    try:
        return hours_from_settings(settings)
    except HoursConfigError:
        return None


@require_role(Role.AGENT)
async def post_reply(request: web.Request) -> web.Response:
    """Queues the reply (201, ``delivery_status: pending``); the delivery worker sends it."""
    ticket_id, me = _ticket_id(request), _user(request)
    body = await parse_json(request, ReplyIn)
    staffed = _staffed_hours(request.app[SETTINGS_KEY])
    message = await _db(
        lambda s: _message_out(
            service.add_agent_reply(s, ticket_id, me.id, body.text, staffed=staffed)
        )
    )
    _wake_worker(request)
    return json_model(message, status=201)


@require_role(Role.AGENT)
async def post_attachment(request: web.Request) -> web.Response:
    """Sends the citizen an image or a PDF (multipart form: ``file``, optional ``text``
    caption), queued like a text reply. The file is sanitized before anything is stored (413/422
    with the reason in ``details.code`` otherwise); every channel can take it, at worst as a
    link."""
    ticket_id, me = _ticket_id(request), _user(request)
    upload = await read_agent_upload(request)
    staffed = _staffed_hours(request.app[SETTINGS_KEY])

    def work(session: Any) -> MessageOut:
        message = service.add_agent_reply(
            session, ticket_id, me.id, upload.caption, with_file=True, staffed=staffed
        )
        ticket = message.ticket
        attachment = attachment_store.save(
            session,
            upload.clean,
            conversation_id=ticket.conversation_id,
            channel=ticket.channel,
            direction=AttachmentDirection.AGENT,
            name=upload.name,
            uploaded_by=me.id,
        )
        attachment_store.link_to_message(session, [attachment.id], message.id)
        return _message_out(message, [attachment])

    message = await _db(work)
    _wake_worker(request)
    return json_model(message, status=201)


@require_role(Role.AGENT)
async def post_assign(request: web.Request) -> web.Response:
    ticket_id, me = _ticket_id(request), _user(request)
    body = await parse_json(request, AssignIn)

    def work(session: Any) -> TicketDetailOut:
        service.assign(session, ticket_id, body.agent_id, by_user_id=me.id)
        return _detail(session, ticket_id, me, request.app[SETTINGS_KEY])

    return json_model(await _db(work))


@require_role(Role.AGENT)
async def post_note(request: web.Request) -> web.Response:
    ticket_id, me = _ticket_id(request), _user(request)
    body = await parse_json(request, NoteIn)
    note = await _db(lambda s: _note_out(service.add_note(s, ticket_id, me.id, body.text)))
    return json_model(note, status=201)


@require_role(Role.AGENT)
async def post_close(request: web.Request) -> web.Response:
    """Closes the ticket; the bot takes the conversation back once pending replies are out."""
    ticket_id, me = _ticket_id(request), _user(request)
    body = await parse_json(request, CloseIn)

    def work(session: Any) -> TicketDetailOut:
        service.close_ticket(session, ticket_id, body.resolved, by_user_id=me.id)
        return _detail(session, ticket_id, me, request.app[SETTINGS_KEY])

    detail = await _db(work)
    _wake_worker(request)
    return json_model(detail)


@require_role(Role.AGENT)
async def post_retry(request: web.Request) -> web.Response:
    """Puts a failed reply back in the outbox."""
    ticket_id = _ticket_id(request)
    raw = request.match_info["message_id"]
    message_id = row_id(raw)
    if message_id is None:
        raise json_error(404, f"message {raw!r} does not exist")

    def work(session: Any) -> MessageOut:
        message = session.get(TicketMessage, message_id)
        if message is None or message.ticket_id != ticket_id or message.direction == "citizen":
            raise service.TicketNotFound(f"message {raw} of ticket {ticket_id} does not exist")
        return _messages_out(session, [delivery.retry(session, message.id)])[0]

    message = await _db(work)
    _wake_worker(request)
    return json_model(message)


@require_role(Role.AGENT)
async def get_transcript(request: web.Request) -> web.Response:
    """The whole conversation as the citizen saw it, from Rasa's tracker."""
    ticket_id = _ticket_id(request)
    conversation_id = await _db(lambda s: service.get_ticket(s, ticket_id).conversation_id)
    try:
        tracker = await request.app[RASA_KEY].tracker(conversation_id)
    except RasaError as exc:
        raise json_error(503, f"transcript unavailable: {exc}") from exc
    # Triggered intents (agent replies, hand-back) are user events there; this drops them.
    messages = messages_from_tracker(tracker)
    return json_model(TranscriptOut(conversation_id=conversation_id, messages=messages))


@require_role(Role.AGENT)
async def post_heartbeat(request: web.Request) -> web.Response:
    """The open inbox posts this every 30 s; agents count as online for the presence window."""
    me = _user(request)
    settings = request.app[SETTINGS_KEY]

    def work(session: Any) -> PresenceOut:
        service.heartbeat(session, me.id)
        session.flush()
        return PresenceOut(
            agents_online=service.online_agents(session, settings.handoff_presence_window_s)
        )

    return json_model(await _db(work))


@require_role(Role.AGENT)
async def get_canned(request: web.Request) -> web.Response:
    """Published FAQ answers matching ``q`` (lexical; the last word matches as a prefix)."""
    params = parse_query(request, CannedQuery)
    query, language = params.q[:200], params.language
    results = await _db(lambda s: canned.search(s, query, language))
    return json_model(CannedOut(results=results))


@require_role(Role.AGENT)
async def ticket_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``message`` (new or changed message: citizen text, delivery status),
    ``ticket`` (status or assignment changed). Polls the database once a second.

    Each stream costs a query a second for up to ``SSE_MAX_S``: one user may hold at most
    ``SSE_MAX_PER_USER`` at once (429 beyond), so a stolen or scripted session cannot
    multiply the load."""
    ticket_id, me = _ticket_id(request), _user(request)
    await _db(lambda s: service.get_ticket(s, ticket_id))  # 404 before the stream starts
    streams = request.app[STREAMS_KEY]
    if streams[me.id] >= SSE_MAX_PER_USER:
        raise json_error(
            429, f"too many open event streams (at most {SSE_MAX_PER_USER}); close some tabs"
        )
    streams[me.id] += 1
    try:
        return await _stream_events(request, ticket_id)
    finally:
        streams[me.id] -= 1
        if streams[me.id] <= 0:
            del streams[me.id]


async def _stream_events(request: web.Request, ticket_id: int) -> web.StreamResponse:
    after = parse_query(request, EventsQuery).after

    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    sent: dict[int, tuple[Any, ...]] = {}
    last_ticket: tuple[Any, ...] | None = None
    started = last_write = time.monotonic()

    def snapshot(session: Any) -> tuple[list[MessageOut], tuple[Any, ...]]:
        ticket = service.get_ticket(session, ticket_id)
        messages = _messages_out(session, service.messages_after(session, ticket_id))
        state = (ticket.status, ticket.assigned_agent_id, ticket.priority, ticket.contact)
        return messages, state

    try:
        while time.monotonic() - started < SSE_MAX_S and not _gone(request):
            messages, state = await _db(snapshot)
            for message in messages:
                key = (message.delivery_status, message.attempts, message.last_error)
                if message.id <= after and message.id not in sent:
                    sent[message.id] = key
                    continue
                if sent.get(message.id) != key:
                    sent[message.id] = key
                    await _sse(response, "message", message.model_dump(mode="json"))
                    last_write = time.monotonic()
            if state != last_ticket:
                if last_ticket is not None:
                    await _sse(response, "ticket", {"status": state[0], "assigned": state[1]})
                    last_write = time.monotonic()
                last_ticket = state
            if time.monotonic() - last_write > SSE_KEEPALIVE_S:
                await response.write(b": keep-alive\n\n")
                last_write = time.monotonic()
            await asyncio.sleep(SSE_POLL_S)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


def _gone(request: web.Request) -> bool:
    """The client closed the stream: stop polling now (frees its slot within a second)."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def _sse(response: web.StreamResponse, event: str, data: Any) -> None:
    payload = json.dumps(data, separators=(",", ":"))
    await response.write(f"event: {event}\ndata: {payload}\n\n".encode())


# ----------------------------------------------------------------------------- wiring
async def _delivery_ctx(app: web.Application) -> AsyncIterator[None]:
    """The Rasa client and the outbox worker live as long as the console process."""
    settings: Settings = app[SETTINGS_KEY]
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        client = RasaClient(http, settings.rasa_url, settings.rasa_token)
        worker = DeliveryWorker(
            client,
            Backoff(
                settings.handoff_delivery_backoff_min_s, settings.handoff_delivery_backoff_max_s
            ),
            poll_s=settings.handoff_delivery_poll_s,
            sweep=sweep_of(settings),
            whatsapp_template=bool(settings.whatsapp_reply_template_sid.strip()),
        )
        app[RASA_KEY] = client
        app[WORKER_KEY] = worker
        task = asyncio.create_task(worker.run_forever(), name="handoff-delivery")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def setup(app: web.Application) -> None:
    app[STREAMS_KEY] = Counter()
    app.cleanup_ctx.append(_delivery_ctx)
    r = {"tags": TAGS}
    api_route(
        app,
        "GET",
        "/api/tickets",
        list_tickets,
        summary="List open (or closed) tickets",
        response_model=TicketListOut,
        query_model=TicketListQuery,
        **r,
    )
    api_route(
        app,
        "POST",
        "/api/tickets/close-spam",
        post_close_spam,
        summary="Close many tickets as spam; nothing is sent to the citizens",
        request_model=SpamIn,
        response_model=SpamOut,
        **r,
    )
    api_route(
        app,
        "GET",
        "/api/tickets/{ticket_id}",
        get_ticket,
        summary="A ticket with its messages, notes and the agents it can go to",
        response_model=TicketDetailOut,
        responses={404: "No such ticket"},
        **r,
    )
    api_route(
        app,
        "GET",
        "/api/tickets/{ticket_id}/transcript",
        get_transcript,
        summary="The conversation from Rasa's tracker",
        response_model=TranscriptOut,
        responses={404: "No such ticket", 503: "Rasa unreachable"},
        **r,
    )
    api_route(
        app,
        "GET",
        "/api/tickets/{ticket_id}/events",
        ticket_events,
        summary="Server-sent events (text/event-stream): new messages, status changes",
        query_model=EventsQuery,
        responses={404: "No such ticket"},
        **r,
    )
    api_route(
        app,
        "POST",
        "/api/tickets/{ticket_id}/replies",
        post_reply,
        summary="Reply to the citizen (queued, delivered in order)",
        request_model=ReplyIn,
        response_model=MessageOut,
        responses={201: "Queued", 404: "No such ticket", 409: "Ticket closed"},
        **r,
    )
    api_route(
        app,
        "POST",
        "/api/tickets/{ticket_id}/attachments",
        post_attachment,
        summary="Send the citizen an image or PDF (multipart/form-data: file, optional text)",
        response_model=MessageOut,
        responses={
            201: "Queued",
            404: "No such ticket",
            409: "Ticket closed",
            413: "File too large",
            422: "File refused (details.code says why)",
        },
        **r,
    )
    api_route(
        app,
        "POST",
        "/api/tickets/{ticket_id}/assign",
        post_assign,
        summary="Assign to an agent, transfer, or return to the queue (agent_id null)",
        request_model=AssignIn,
        response_model=TicketDetailOut,
        responses={404: "No such ticket", 409: "Ticket closed"},
        **r,
    )
    api_route(
        app,
        "POST",
        "/api/tickets/{ticket_id}/notes",
        post_note,
        summary="Add an internal note",
        request_model=NoteIn,
        response_model=NoteOut,
        responses={201: "Created", 404: "No such ticket"},
        **r,
    )
    api_route(
        app,
        "POST",
        "/api/tickets/{ticket_id}/close",
        post_close,
        summary="Close as resolved or not; the bot takes the conversation back",
        request_model=CloseIn,
        response_model=TicketDetailOut,
        responses={404: "No such ticket", 409: "Already closed"},
        **r,
    )
    api_route(
        app,
        "POST",
        "/api/tickets/{ticket_id}/messages/{message_id}/retry",
        post_retry,
        summary="Retry delivering a failed reply",
        response_model=MessageOut,
        responses={404: "No such message"},
        **r,
    )
    api_route(
        app,
        "POST",
        "/api/agents/heartbeat",
        post_heartbeat,
        summary="Mark the current agent online",
        response_model=PresenceOut,
        **r,
    )
    api_route(
        app,
        "GET",
        "/api/canned-replies",
        get_canned,
        summary="Search published FAQ answers to reuse as replies",
        response_model=CannedOut,
        query_model=CannedQuery,
        **r,
    )
