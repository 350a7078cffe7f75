"""Ticket operations shared by the action server (open, relay) and the console (reply, assign,
transfer, note, close). Functions take a SQLAlchemy session and leave the commit to the caller's
``session_scope``, so each request is one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from askagency.clock import now_utc
from askagency.privacy import Contact, first_contact
from askagency.staff import Role, User
from handoff.hours import StaffedHours
from handoff.models import (
    MESSAGE_MAX_CHARS,
    OPEN_STATUSES,
    AgentPresence,
    Delivery,
    Direction,
    MessageKind,
    Reason,
    Status,
    Ticket,
    TicketMessage,
    TicketNote,
)
from handoff.triggers import priority_for
from knowledge_base.models import ID_MAX_LEN

AGENT_ROLES = (Role.AGENT.value, Role.ADMIN.value)


class HandoffError(Exception):
    """A ticket operation that cannot be done; ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TicketNotFound(HandoffError):
    status = 404


class TicketClosed(HandoffError):
    status = 409


class TicketLimitReached(HandoffError):
    """No ticket opened: the client already holds its share of open tickets (``scope``
    "client") or the agency took its hourly budget of new tickets ("global")."""

    status = 429

    def __init__(self, message: str, scope: str) -> None:
        super().__init__(message)
        self.scope = scope


@dataclass(frozen=True)
class TicketLimits:
    """Ticket-flooding caps (settings ``handoff_max_open_per_client`` and
    ``handoff_max_opened_per_hour``)."""

    max_open_per_client: int
    max_opened_per_hour: int


def client_key_hash(client_key: str) -> str:
    """What is stored on the ticket: a fixed-size digest, never the address or phone number."""
    return hashlib.sha256(client_key.encode()).hexdigest()


def check_limits(session: Session, key_hash: str, limits: TicketLimits, now: datetime) -> None:
    """Raises TicketLimitReached when a new ticket would exceed a cap (two COUNT queries)."""
    open_for_client = session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.client_key == key_hash, Ticket.status.in_(OPEN_STATUSES))
    )
    if (open_for_client or 0) >= limits.max_open_per_client:
        raise TicketLimitReached("this client already has its open tickets", "client")
    opened_last_hour = session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.created_at > now - timedelta(hours=1))
    )
    if (opened_last_hour or 0) >= limits.max_opened_per_hour:
        raise TicketLimitReached("the hourly budget of new tickets is used up", "global")


@dataclass(frozen=True)
class Availability:
    """What the citizen is told when a ticket opens."""

    staffed: bool
    agents_online: int
    expected_reply_at: datetime | None

    @property
    def after_hours(self) -> bool:
        """True when nobody will answer soon: outside hours or no agent online."""
        return not self.staffed or self.agents_online == 0


def online_agents(session: Session, window_s: int, now: datetime | None = None) -> int:
    now = now or now_utc()
    since = now - timedelta(seconds=window_s)
    return int(
        session.scalar(
            select(func.count())
            .select_from(AgentPresence)
            .join(User, User.id == AgentPresence.user_id)
            .where(
                AgentPresence.last_seen_at >= since,
                User.active.is_(True),
                User.role.in_(AGENT_ROLES),
            )
        )
        or 0
    )


def availability(
    session: Session, hours: StaffedHours, window_s: int, now: datetime | None = None
) -> Availability:
    now = now or now_utc()
    staffed = hours.is_staffed(now)
    online = online_agents(session, window_s, now)
    expected = None if staffed else hours.next_staffed_start(now)
    return Availability(staffed=staffed, agents_online=online, expected_reply_at=expected)


def heartbeat(session: Session, user_id: int, now: datetime | None = None) -> None:
    now = now or now_utc()
    row = session.get(AgentPresence, user_id)
    if row is None:
        session.add(AgentPresence(user_id=user_id, last_seen_at=now))
    else:
        row.last_seen_at = now


def transcript_url(base_url: str, ticket_id: int) -> str:
    return f"{base_url.rstrip('/')}/console/inbox/{ticket_id}"


def open_ticket_for(session: Session, conversation_id: str) -> Ticket | None:
    return session.scalar(select(Ticket).where(Ticket.open_marker == conversation_id))


@dataclass(frozen=True)
class OpenResult:
    ticket: Ticket
    created: bool


def open_ticket(
    session: Session,
    *,
    conversation_id: str,
    reason: Reason | str,
    channel: str = "",
    language: str = "en",
    trigger_text: str = "",
    available: Availability | None = None,
    console_base_url: str = "",
    now: datetime | None = None,
    client_key: str = "",
    limits: TicketLimits | None = None,
    out_of_scope_entry: str | None = None,
) -> OpenResult:
    """The conversation's open ticket, created if there is none.

    ``out_of_scope_entry``: the knowledge base's out-of-scope entry that took the question the
    ticket is opened for (the inbox shows its note for staff); kept on a re-used ticket that
    has none yet.

    ``client_key`` names who asked (the channel's keyed hash of a web client's address, else
    the conversation id); with ``limits``, a new ticket beyond the client's open-ticket cap or
    the agency's hourly budget raises TicketLimitReached instead (re-using the conversation's
    open ticket is always allowed).

    A duplicate trigger (the citizen clicks "talk to a person" twice, or two triggers race in
    two action-server workers) reuses the open ticket: the UNIQUE ``open_marker`` turns the
    losing INSERT into an IntegrityError, after which the winner's row is returned. A
    frustration trigger on an open ticket raises its priority.
    """
    if not conversation_id:
        raise HandoffError("conversation_id is required")
    reason = Reason(reason)
    entry = (out_of_scope_entry or "")[:ID_MAX_LEN] or None
    existing = open_ticket_for(session, conversation_id)
    if existing is not None:
        _raise_priority(existing, reason)
        existing.out_of_scope_entry = existing.out_of_scope_entry or entry
        return OpenResult(existing, created=False)
    now = now or now_utc()
    key_hash = client_key_hash(client_key or conversation_id)
    if limits is not None:
        check_limits(session, key_hash, limits, now)
    ticket = Ticket(
        conversation_id=conversation_id,
        client_key=key_hash,
        open_marker=conversation_id,
        channel=(channel or "")[:64],
        language=(language or "en")[:16],
        reason=reason.value,
        priority=priority_for(reason).value,
        status=Status.WAITING.value,
        created_at=now,
        after_hours=bool(available and available.after_hours),
        expected_reply_at=available.expected_reply_at if available else None,
        trigger_text=(trigger_text or "")[:MESSAGE_MAX_CHARS],
        transcript_url="",
        out_of_scope_entry=entry,
    )
    try:
        with session.begin_nested():
            session.add(ticket)
            session.flush()
    except IntegrityError:
        winner = open_ticket_for(session, conversation_id)
        if winner is None:
            raise
        _raise_priority(winner, reason)
        winner.out_of_scope_entry = winner.out_of_scope_entry or entry
        return OpenResult(winner, created=False)
    if console_base_url:
        ticket.transcript_url = transcript_url(console_base_url, ticket.id)
    return OpenResult(ticket, created=True)


def _raise_priority(ticket: Ticket, reason: Reason) -> None:
    if priority_for(reason).value == "high":
        ticket.priority = "high"


def get_ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(f"ticket {ticket_id} does not exist")
    return ticket


def _require_open(ticket: Ticket) -> None:
    if not ticket.is_open:
        raise TicketClosed(f"ticket {ticket.id} is closed ({ticket.status})")


def _clean_text(text: str, *, may_be_empty: bool = False) -> str:
    text = (text or "").strip()
    if not text and not may_be_empty:
        raise HandoffError("the message is empty")
    if len(text) > MESSAGE_MAX_CHARS:
        raise HandoffError(f"the message is longer than {MESSAGE_MAX_CHARS} characters")
    return text


@dataclass(frozen=True)
class Relayed:
    """A citizen message stored on its ticket, and the contact for a reply it left when it is
    the ticket's first (the bot confirms that one; later ones replace it silently)."""

    message: TicketMessage
    first_contact: Contact | None = None


def relay_citizen_message(
    session: Session, conversation_id: str, text: str, now: datetime | None = None
) -> Relayed | None:
    """Stores a citizen message on the conversation's open ticket (None when there is none).

    An e-mail address or phone number in it becomes the ticket's contact for a reply
    (:func:`askagency.privacy.first_contact`; the latest one left wins), which the inbox shows
    to the agent. Nothing is ever sent to it automatically: anyone can type any address."""
    ticket = open_ticket_for(session, conversation_id)
    if ticket is None:
        return None
    body = (text or "")[:MESSAGE_MAX_CHARS]
    message = TicketMessage(
        ticket_id=ticket.id,
        direction=Direction.CITIZEN.value,
        kind=MessageKind.TEXT.value,
        author="citizen",
        text=body,
        created_at=now or now_utc(),
        attempts=0,
    )
    session.add(message)
    contact = first_contact(body)
    first = None
    if contact is not None:
        first = contact if ticket.contact is None else None
        ticket.contact, ticket.contact_kind = contact.value, contact.kind
    session.flush()
    return Relayed(message, first)


def add_citizen_message(
    session: Session, conversation_id: str, text: str, now: datetime | None = None
) -> TicketMessage | None:
    """:func:`relay_citizen_message` for callers that only need the stored message."""
    relayed = relay_citizen_message(session, conversation_id, text, now)
    return relayed.message if relayed is not None else None


def _agent(session: Session, agent_id: int) -> User:
    user = session.get(User, agent_id)
    if user is None or not user.active:
        raise HandoffError(f"agent {agent_id} does not exist or is inactive")
    if user.role not in AGENT_ROLES:
        raise HandoffError(f"{user.username} has the role {user.role}, not agent")
    return user


def add_agent_reply(
    session: Session,
    ticket_id: int,
    agent_id: int,
    text: str,
    now: datetime | None = None,
    *,
    with_file: bool = False,
    staffed: StaffedHours | None = None,
) -> TicketMessage:
    """Queues an agent reply in the outbox (delivered in order by ``handoff.delivery``).

    Replying to a waiting ticket assigns it to the agent; the first reply records the
    human first-response time, and under ``staffed`` (the agency's staffed hours) the part of it
    inside staffed hours, which analytics reports (left for analytics to compute when None).
    ``with_file``: the reply carries a file (the console links it with
    ``attachments.store.link_to_message`` in the same transaction), so the text is its caption
    and may be empty.
    """
    ticket = get_ticket(session, ticket_id)
    _require_open(ticket)
    agent = _agent(session, agent_id)
    now = now or now_utc()
    message = TicketMessage(
        ticket_id=ticket.id,
        direction=Direction.AGENT.value,
        kind=MessageKind.TEXT.value,
        author=agent.display_name,
        author_id=agent.id,
        text=_clean_text(text, may_be_empty=with_file),
        created_at=now,
        delivery_status=Delivery.PENDING.value,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(message)
    if ticket.first_agent_reply_at is None:
        ticket.first_agent_reply_at = now
        if staffed is not None:
            ticket.first_response_staffed_s = staffed.staffed_seconds(ticket.created_at, now)
    if ticket.assigned_agent_id is None:
        ticket.assigned_agent_id = agent.id
        ticket.status = Status.ASSIGNED.value
    session.flush()
    return message


def assign(
    session: Session, ticket_id: int, agent_id: int | None, by_user_id: int | None = None
) -> Ticket:
    """Assigns (or transfers) a ticket; ``None`` returns it to the waiting queue."""
    ticket = get_ticket(session, ticket_id)
    _require_open(ticket)
    if agent_id is None:
        ticket.assigned_agent_id = None
        ticket.status = Status.WAITING.value
        return ticket
    agent = _agent(session, agent_id)
    previous = ticket.assigned_agent_id
    ticket.assigned_agent_id = agent.id
    ticket.status = Status.ASSIGNED.value
    if previous is not None and previous != agent.id:
        by = session.get(User, by_user_id) if by_user_id else None
        session.add(
            TicketMessage(
                ticket_id=ticket.id,
                direction=Direction.SYSTEM.value,
                kind=MessageKind.TEXT.value,
                author=by.display_name if by else "system",
                text=f"Transferred to {agent.display_name}",
                attempts=0,
            )
        )
    session.flush()
    return ticket


def add_note(session: Session, ticket_id: int, author_id: int, text: str) -> TicketNote:
    ticket = get_ticket(session, ticket_id)
    author = session.get(User, author_id)
    note = TicketNote(
        ticket_id=ticket.id,
        author_id=author_id,
        author=author.display_name if author else "unknown",
        text=_clean_text(text),
    )
    session.add(note)
    session.flush()
    return note


def close_ticket(
    session: Session,
    ticket_id: int,
    resolved: bool,
    by_user_id: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Closes the ticket and queues the hand-back to the bot behind any pending replies."""
    ticket = get_ticket(session, ticket_id)
    _require_open(ticket)
    now = now or now_utc()
    by = session.get(User, by_user_id) if by_user_id else None
    message = _mark_closed(
        session, ticket, resolved, by, now, RESOLVED_NOTE if resolved else UNRESOLVED_NOTE
    )
    _queue_close(session, message, now)
    session.flush()
    return ticket


# The system message a close leaves on the ticket (the inbox shows it); a queued hand-back's text
# also tells the bot what to say (handoff.delivery.Job.request).
RESOLVED_NOTE = "resolved"
UNRESOLVED_NOTE = "not resolved"
LEFT_NOTE = "the citizen went back to the assistant"
TIMED_OUT_NOTE = "timed out: nobody took the conversation in time"


class LeaveOutcome(StrEnum):
    LEFT = "left"  # the ticket is closed; the bot answers again
    NO_TICKET = "no_ticket"  # nothing open (closed meanwhile): the bot answers again
    ANSWERED = "answered"  # a person already replied: the words are for them, the ticket stays


def leave(
    session: Session, conversation_id: str, *, unless_answered: bool, now: datetime | None = None
) -> LeaveOutcome:
    """The citizen goes back to the assistant: their open ticket is closed unresolved, with a
    system message the agent sees in the inbox. Nothing is queued for Rasa, the bot tells the
    citizen itself. ``unless_answered``: typed words ("cancel") leave only while no person has
    replied; once someone has, the same words are a message for them (the button always leaves)."""
    ticket = open_ticket_for(session, conversation_id)
    if ticket is None:
        return LeaveOutcome.NO_TICKET
    if unless_answered and ticket.first_agent_reply_at is not None:
        return LeaveOutcome.ANSWERED
    _mark_closed(session, ticket, False, None, now or now_utc(), LEFT_NOTE)
    session.flush()
    return LeaveOutcome.LEFT


def time_out_waiting(
    session: Session,
    hours: StaffedHours,
    timeout_s: float,
    now: datetime | None = None,
    limit: int = 100,
) -> list[int]:
    """Closes the tickets nobody took: still waiting (no agent assigned, no reply) after
    ``timeout_s`` seconds of staffed time, so a ticket opened on Friday night waits from Monday's
    opening, as the citizen was told. The hand-back goes through the outbox, as an agent's close
    does, and tells the citizen the wait timed out. Returns the closed tickets' ids.

    Each ticket is claimed with a conditional UPDATE (still waiting, still unanswered), so two
    console processes sweeping at once, or an agent taking the ticket at that moment, never
    close it twice or close a taken one."""
    now = now or now_utc()
    candidates = session.scalars(
        select(Ticket)
        .where(
            Ticket.status == Status.WAITING.value,
            Ticket.first_agent_reply_at.is_(None),
            Ticket.created_at <= now - timedelta(seconds=timeout_s),
        )
        .order_by(Ticket.created_at, Ticket.id)
        .limit(limit)
    ).all()
    closed = []
    for ticket in candidates:
        if hours.staffed_seconds(ticket.created_at, now) < timeout_s:
            continue
        claimed = session.execute(
            update(Ticket)
            .where(
                Ticket.id == ticket.id,
                Ticket.status == Status.WAITING.value,
                Ticket.first_agent_reply_at.is_(None),
            )
            .values(status=Status.CLOSED_UNRESOLVED.value, closed_at=now, open_marker=None)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        session.refresh(ticket)
        _queue_close(session, _close_message(ticket, None, now, TIMED_OUT_NOTE), now)
        closed.append(ticket.id)
    session.flush()
    return closed


def _queue_close(session: Session, message: TicketMessage, now: datetime) -> None:
    """The hand-back goes through the outbox, behind any pending replies."""
    message.kind = MessageKind.CLOSE.value
    message.delivery_status = Delivery.PENDING.value
    message.next_attempt_at = now
    session.add(message)


def _mark_closed(
    session: Session, ticket: Ticket, resolved: bool, by: User | None, now: datetime, note: str
) -> TicketMessage:
    """Closes ``ticket`` and records who closed it as a system message (nothing queued)."""
    ticket.status = (Status.CLOSED_RESOLVED if resolved else Status.CLOSED_UNRESOLVED).value
    ticket.closed_at = now
    ticket.open_marker = None
    message = _close_message(ticket, by, now, note)
    session.add(message)
    return message


def _close_message(ticket: Ticket, by: User | None, now: datetime, note: str) -> TicketMessage:
    return TicketMessage(
        ticket_id=ticket.id,
        direction=Direction.SYSTEM.value,
        kind=MessageKind.TEXT.value,
        author=by.display_name if by else "system",
        author_id=by.id if by else None,
        text=note,
        created_at=now,
        attempts=0,
    )


@dataclass(frozen=True)
class TicketPage:
    tickets: list[Ticket]
    total: int  # all tickets matching the filter, not just this page


def list_page(
    session: Session,
    which: str,
    *,
    limit: int | None,
    offset: int = 0,
    language: str = "",
    agent_languages: list[str] | None = None,
) -> TicketPage:
    """One page of the inbox, ordered and counted in SQL (a flood of tickets costs the page
    size, not the whole queue). Open: tickets in the agent's languages first, then high
    priority, then the longest wait. Closed: the most recently closed first."""
    if which == "open":
        query = select(Ticket).where(Ticket.status.in_(OPEN_STATUSES))
    else:
        query = select(Ticket).where(Ticket.status.not_in(OPEN_STATUSES))
    if language:
        query = query.where(func.lower(Ticket.language) == language.lower())
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if which == "open":
        spoken = sorted({code.lower() for code in agent_languages or ()})
        order = []
        if spoken:
            order.append(case((func.lower(Ticket.language).in_(spoken), 0), else_=1))
        order += [case((Ticket.priority == "high", 0), else_=1), Ticket.created_at, Ticket.id]
        query = query.order_by(*order)
    else:
        query = query.order_by(Ticket.closed_at.desc(), Ticket.id.desc())
    query = query.offset(max(0, offset))
    if limit is not None:
        query = query.limit(limit)
    return TicketPage(tickets=list(session.scalars(query)), total=int(total))


def pending_reply_counts(session: Session, ticket_ids: list[int]) -> dict[int, int]:
    """Agent replies still in the outbox, per ticket, in one grouped query."""
    if not ticket_ids:
        return {}
    rows = session.execute(
        select(TicketMessage.ticket_id, func.count())
        .where(
            TicketMessage.ticket_id.in_(ticket_ids),
            TicketMessage.direction == Direction.AGENT.value,
            TicketMessage.delivery_status == Delivery.PENDING.value,
        )
        .group_by(TicketMessage.ticket_id)
    )
    return {int(ticket_id): int(count) for ticket_id, count in rows}


def close_as_spam(
    session: Session, ticket_ids: list[int], by_user_id: int, now: datetime | None = None
) -> list[int]:
    """Closes the open ones of ``ticket_ids`` without telling the citizen anything (no
    hand-back in the outbox): flooding tickets are cleared without messaging the flooder, or
    a victim whose number a flooder used. Returns the ids actually closed."""
    now = now or now_utc()
    by = session.get(User, by_user_id)
    tickets = session.scalars(
        select(Ticket).where(Ticket.id.in_(ticket_ids), Ticket.status.in_(OPEN_STATUSES))
    ).all()
    for ticket in tickets:
        _mark_closed(
            session, ticket, False, by, now, "closed as spam (nothing sent to the citizen)"
        )
    session.flush()
    return sorted(t.id for t in tickets)


def messages_after(session: Session, ticket_id: int, after_id: int = 0) -> list[TicketMessage]:
    return list(
        session.scalars(
            select(TicketMessage)
            .where(TicketMessage.ticket_id == ticket_id, TicketMessage.id > after_id)
            .order_by(TicketMessage.id)
        )
    )


def notes_of(session: Session, ticket_id: int) -> list[TicketNote]:
    return list(
        session.scalars(
            select(TicketNote).where(TicketNote.ticket_id == ticket_id).order_by(TicketNote.id)
        )
    )


def agents(session: Session) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(User.active.is_(True), User.role.in_(AGENT_ROLES))
            .order_by(User.display_name)
        )
    )


def claim(session: Session, message_id: int, lease_s: float, now: datetime | None = None) -> bool:
    """Atomically takes the delivery lease of a pending message (one deliverer at a time,
    also across console processes). True when this caller got it."""
    now = now or now_utc()
    result = session.execute(
        update(TicketMessage)
        .where(
            TicketMessage.id == message_id,
            TicketMessage.delivery_status == Delivery.PENDING.value,
            (TicketMessage.lease_until.is_(None)) | (TicketMessage.lease_until < now),
        )
        .values(lease_until=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
