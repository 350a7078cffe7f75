"""Delivers agent replies (and the hand-back to the bot) from the outbox to Rasa, in order.

An agent's reply is committed as a pending ``TicketMessage`` before anything is sent, so a
reply is never lost: when Rasa is down it stays pending (the inbox shows it) and this worker
retries with bounded exponential backoff until Rasa is back. Per ticket only the oldest pending
message is tried, so replies arrive in the order they were written, also when two agents reply
at once. A message counts as delivered only when the tracker Rasa returns contains a bot event
carrying its ``message_id``; the delivering action skips ids already in the tracker, so a retry
after a lost response does not show the citizen the message twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select, type_coerce
from sqlalchemy.orm import Session, aliased

from askagency import bot_messages as msg
from askagency.channels import ChannelMismatch, delivery_channel
from askagency.clock import now_utc
from askagency.config import Settings
from askagency.db import UtcDateTime, session_scope
from attachments.store import for_messages
from handoff.hours import StaffedHours, hours_from_settings
from handoff.models import Delivery, Direction, MessageKind, Ticket, TicketMessage
from handoff.notify import notify_new_tickets
from handoff.rasa_api import (
    AGENT_MESSAGE_INTENT,
    HANDOFF_CLOSED_INTENT,
    RasaClient,
    RasaError,
    bot_event_with,
)
from handoff.service import RESOLVED_NOTE, TIMED_OUT_NOTE, claim, time_out_waiting
from handoff.windows import refusal

logger = logging.getLogger(__name__)

LEASE_S = 60.0


@dataclass(frozen=True)
class Backoff:
    minimum_s: float = 1.0
    maximum_s: float = 30.0

    def delay(self, attempts: int) -> timedelta:
        """1, 2, 4, ... seconds after the 1st, 2nd, 3rd failure, capped at ``maximum_s``."""
        exponent = max(0, attempts - 1)
        seconds = min(self.maximum_s, self.minimum_s * (2 ** min(exponent, 30)))
        return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Job:
    message_id: int
    ticket_id: int
    conversation_id: str
    channel: str  # recorded on the ticket when it opened
    kind: str
    text: str
    author: str
    attempts: int
    last_citizen_at: datetime | None = None  # the citizen's last message (or the handoff)
    attachment_id: str | None = None  # the file the agent sent with it (attachments.store)
    contact_kind: str | None = None  # a contact the citizen left for a reply (email | phone)

    def request(self) -> tuple[str, dict[str, object]]:
        """The external intent and entities that deliver this message."""
        if self.kind == MessageKind.CLOSE.value:
            return HANDOFF_CLOSED_INTENT, {
                msg.ENTITY_HANDOFF_TICKET: self.ticket_id,
                msg.ENTITY_HANDOFF_MESSAGE: self.message_id,
                msg.ENTITY_HANDOFF_RESOLVED: self.text == RESOLVED_NOTE,
                msg.ENTITY_HANDOFF_TIMED_OUT: self.text == TIMED_OUT_NOTE,
            }
        entities: dict[str, object] = {
            msg.ENTITY_HANDOFF_TEXT: self.text,
            msg.ENTITY_HANDOFF_AGENT: self.author,
            msg.ENTITY_HANDOFF_TICKET: self.ticket_id,
            msg.ENTITY_HANDOFF_MESSAGE: self.message_id,
        }
        if self.attachment_id:
            # Only the id: the action server turns it into a signed link for the citizen.
            entities[msg.ENTITY_HANDOFF_ATTACHMENT] = self.attachment_id
        return AGENT_MESSAGE_INTENT, entities


def due_jobs(session: Session, now: datetime, lease_s: float = LEASE_S) -> list[Job]:
    """The next message of every ticket with pending ones, if its retry time has come and
    this caller won its lease."""
    citizen = aliased(TicketMessage)
    last_citizen = (
        select(func.max(citizen.created_at))
        .where(citizen.ticket_id == Ticket.id, citizen.direction == Direction.CITIZEN.value)
        .correlate(Ticket)
        .scalar_subquery()
    )
    pending = session.execute(
        select(
            TicketMessage,
            Ticket.conversation_id,
            Ticket.channel,
            Ticket.contact_kind,
            # Typed, so every database returns an aware UTC datetime (SQLite: from its text).
            type_coerce(func.coalesce(last_citizen, Ticket.created_at), UtcDateTime()),
        )
        .join(Ticket, Ticket.id == TicketMessage.ticket_id)
        .where(TicketMessage.delivery_status == Delivery.PENDING.value)
        .order_by(TicketMessage.ticket_id, TicketMessage.id)
    ).all()
    jobs: list[Job] = []
    seen: set[int] = set()
    for message, conversation_id, channel, contact_kind, last_citizen_at in pending:
        if message.ticket_id in seen:
            continue  # an older message of this ticket goes first
        seen.add(message.ticket_id)
        if message.next_attempt_at is not None and message.next_attempt_at > now:
            continue
        if message.lease_until is not None and message.lease_until > now:
            continue
        if not claim(session, message.id, lease_s, now):
            continue
        jobs.append(
            Job(
                message_id=message.id,
                ticket_id=message.ticket_id,
                conversation_id=conversation_id,
                channel=channel or "",
                kind=message.kind,
                text=message.text,
                author=message.author,
                attempts=message.attempts,
                last_citizen_at=last_citizen_at,
                contact_kind=contact_kind,
            )
        )
    return _with_attachments(session, jobs)


def _with_attachments(session: Session, jobs: list[Job]) -> list[Job]:
    """The jobs with the file each agent reply carries (one query for the whole round). The
    console sends one file per message; should a message ever have several, the first goes."""
    replies = [job.message_id for job in jobs if job.kind != MessageKind.CLOSE.value]
    files = for_messages(session, replies) if replies else {}
    return [
        replace(job, attachment_id=files[job.message_id][0].id)
        if files.get(job.message_id)
        else job
        for job in jobs
    ]


def record_success(session: Session, message_id: int, now: datetime) -> None:
    message = session.get(TicketMessage, message_id)
    if message is None:
        return
    message.delivery_status = Delivery.DELIVERED.value
    message.attempts += 1
    message.delivered_at = now
    message.last_error = None
    message.lease_until = None
    message.next_attempt_at = None


def record_failure(
    session: Session,
    message_id: int,
    error: str,
    permanent: bool,
    backoff: Backoff,
    now: datetime,
) -> None:
    message = session.get(TicketMessage, message_id)
    if message is None:
        return
    message.attempts += 1
    message.last_error = error[:1000]
    message.lease_until = None
    if permanent:
        message.delivery_status = Delivery.FAILED.value
        message.next_attempt_at = None
    else:
        message.next_attempt_at = now + backoff.delay(message.attempts)


def retry(session: Session, message_id: int, now: datetime | None = None) -> TicketMessage:
    """Puts a failed (or pending) message back in line for an immediate attempt."""
    message = session.get(TicketMessage, message_id)
    if message is None:
        raise LookupError(f"message {message_id} does not exist")
    if message.delivery_status == Delivery.DELIVERED.value:
        return message
    message.delivery_status = Delivery.PENDING.value
    message.next_attempt_at = now or now_utc()
    message.lease_until = None
    return message


@dataclass(frozen=True)
class WaitTimeout:
    """Waiting tickets close after ``after_s`` seconds of staffed time (``hours``; setting
    ``handoff_wait_timeout_min``)."""

    hours: StaffedHours
    after_s: float


def wait_timeout(settings: Settings) -> WaitTimeout | None:
    """The configured wait timeout; None when it is off (``handoff_wait_timeout_min`` 0)."""
    if settings.handoff_wait_timeout_min <= 0:
        return None
    return WaitTimeout(hours_from_settings(settings), settings.handoff_wait_timeout_min * 60)


@dataclass(frozen=True)
class Sweep:
    """What the worker does besides delivering, every ``every_s`` seconds (``handoff_sweep_s``):
    time out untaken tickets, and e-mail the on-duty list about new ones (``notify``: settings
    with ``handoff_notify_emails``, or None)."""

    every_s: float
    timeout: WaitTimeout | None = None
    notify: Settings | None = None


def sweep_of(settings: Settings) -> Sweep:
    notify = settings if settings.handoff_notify_emails else None
    return Sweep(settings.handoff_sweep_s, wait_timeout(settings), notify)


class DeliveryWorker:
    """Polls the outbox and sends due messages; one instance per console process."""

    def __init__(
        self,
        client: RasaClient,
        backoff: Backoff,
        poll_s: float = 0.5,
        clock: Callable[[], datetime] = now_utc,
        db_url: str | None = None,
        sweep: Sweep | None = None,
        whatsapp_template: bool = False,
    ) -> None:
        self.client = client
        self.backoff = backoff
        self.poll_s = poll_s
        self.clock = clock
        self.db_url = db_url
        self.sweeping = sweep
        # A WhatsApp reply template is configured (replies after 24 hours can still go out).
        self.whatsapp_template = whatsapp_template
        self._next_sweep: datetime | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after an agent replies: deliver now instead of at the next poll."""
        self._wake.set()

    async def sweep(self) -> list[int]:
        """At most every ``Sweep.every_s``: closes the tickets that waited too long (their
        hand-backs are then in the outbox for this round to deliver) and e-mails the on-duty
        list about new tickets. Returns the tickets closed."""
        sweeping, now = self.sweeping, self.clock()
        if sweeping is None or (self._next_sweep is not None and now < self._next_sweep):
            return []
        self._next_sweep = now + timedelta(seconds=sweeping.every_s)
        closed: list[int] = []
        if sweeping.timeout is not None:
            timeout = sweeping.timeout

            def close() -> list[int]:
                with session_scope(self.db_url) as session:
                    return time_out_waiting(session, timeout.hours, timeout.after_s, now)

            closed = await asyncio.to_thread(close)
            if closed:
                logger.info("closed %d ticket(s) nobody took in time: %s", len(closed), closed)
        if sweeping.notify is not None:
            await asyncio.to_thread(notify_new_tickets, sweeping.notify, now, self.db_url)
        return closed

    async def run_once(self) -> int:
        """Tries every due message once; returns how many were delivered."""
        await self.sweep()

        def fetch() -> list[Job]:
            with session_scope(self.db_url) as session:
                return due_jobs(session, self.clock())

        jobs = await asyncio.to_thread(fetch)
        results = await asyncio.gather(*(self._deliver(job) for job in jobs))
        return sum(results)

    async def _deliver(self, job: Job) -> bool:
        refused = refusal(
            job.channel,
            job.last_citizen_at,
            self.clock(),
            self.whatsapp_template,
            contact_kind=job.contact_kind,
        )
        if refused is not None:  # the platform would drop it: say so in the inbox, at once
            error, permanent = refused, True
        else:
            error, permanent = await self._trigger(job)

        def save() -> None:
            with session_scope(self.db_url) as session:
                if error is None:
                    record_success(session, job.message_id, self.clock())
                else:
                    record_failure(
                        session, job.message_id, error, permanent, self.backoff, self.clock()
                    )

        await asyncio.to_thread(save)
        if error is None:
            logger.info("delivered message %d of ticket %d", job.message_id, job.ticket_id)
            return True
        logger.warning(
            "delivery of message %d (ticket %d, attempt %d) failed: %s",
            job.message_id,
            job.ticket_id,
            job.attempts + 1,
            error,
        )
        return False

    async def _trigger(self, job: Job) -> tuple[str | None, bool]:
        """Asks Rasa to deliver ``job``; (error or None, whether retrying cannot help)."""
        intent, entities = job.request()
        try:
            output = delivery_channel(job.conversation_id, job.channel)
            body = await self.client.trigger_intent(job.conversation_id, intent, entities, output)
        except RasaError as exc:
            return str(exc), exc.permanent
        except ChannelMismatch as exc:  # never sent, also not on retry
            return str(exc), True
        if bot_event_with(body.get("tracker") or {}, job.message_id) is None:
            return (
                "Rasa ran the intent but no message was sent (is the action server up and "
                "the model trained with the handoff rules?)"
            ), False
        return None, False

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a DB hiccup must not end delivery for the process's lifetime
                logger.exception("outbox delivery round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
