"""An e-mail to the on-duty list for each new ticket (issue 21, item 3), for agencies whose
agents are not watching the inbox all day.

The console's outbox worker calls :func:`notify_new_tickets` every ``handoff_sweep_s`` seconds.
Each ticket is claimed (``notified_at`` set in its own transaction, by a conditional UPDATE) before
the e-mail is sent, so several console processes send it once; a failed send clears the claim and
the next round tries again. Tickets that closed before their turn (spam, the citizen went back to
the assistant) and tickets older than :data:`RECENT` (the e-mail was just turned on) are marked
without an e-mail. The message says what the inbox row says and links to the ticket; it carries
the citizen's words, so the list should be staff only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update

from askagency.config import Settings
from askagency.db import session_scope
from askagency.smtp import MailError, new_message, send
from handoff.hours import hours_from_settings
from handoff.models import Priority, Ticket

logger = logging.getLogger(__name__)

RECENT = timedelta(hours=1)  # older tickets are not announced (the e-mail was just turned on)
BATCH = 20  # e-mails per round at most


def subject(ticket: Ticket) -> str:
    high = " (high priority)" if ticket.priority == Priority.HIGH.value else ""
    return f"New ticket #{ticket.id}{high}: {ticket.reason.replace('_', ' ')}"


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def compose(
    ticket: Ticket, sender: str, recipients: Sequence[str], now: datetime, zone: ZoneInfo
) -> EmailMessage:
    """The e-mail about ``ticket``: reason, priority, language, channel, when it opened on the
    agency's clock (and the reply time the citizen was told after hours), the citizen's words
    and the ticket's link."""
    message = new_message(subject(ticket), sender, recipients, now)
    lines = [
        "A citizen is waiting for a person.",
        "",
        f"Reason:   {ticket.reason.replace('_', ' ')}",
        f"Priority: {ticket.priority}",
        f"Language: {ticket.language}",
        f"Channel:  {ticket.channel or 'unknown'}",
        f"Opened:   {_local(ticket.created_at, zone)}",
    ]
    if ticket.after_hours and ticket.expected_reply_at is not None:
        told = _local(ticket.expected_reply_at, zone)
        lines.append(f"Out of staffed hours: the citizen was told to expect a reply from {told}.")
    if ticket.trigger_text:
        quoted = [f"> {line}" for line in ticket.trigger_text.splitlines()]
        lines += ["", "The citizen wrote:", *quoted]
    if ticket.transcript_url:
        lines += ["", f"Open it in the inbox: {ticket.transcript_url}"]
    lines += [
        "",
        "-- ",
        "Sent by AskAgency to the on-duty list (ASKAGENCY_HANDOFF_NOTIFY_EMAILS).",
        "",
    ]
    message.set_content("\n".join(lines))
    return message


def _claim(settings: Settings, now: datetime, db_url: str | None) -> list[tuple[int, EmailMessage]]:
    """Marks what needs no e-mail, then claims up to BATCH new open tickets; their e-mails."""
    recipients = settings.handoff_notify_emails
    zone = hours_from_settings(settings).timezone
    with session_scope(db_url) as session:
        session.execute(
            update(Ticket)
            .where(
                Ticket.notified_at.is_(None),
                or_(Ticket.open_marker.is_(None), Ticket.created_at < now - RECENT),
            )
            .values(notified_at=now)
            .execution_options(synchronize_session=False)
        )
        candidates = session.scalars(
            select(Ticket).where(Ticket.notified_at.is_(None)).order_by(Ticket.id).limit(BATCH)
        ).all()
        claimed = []
        for ticket in candidates:
            won = session.execute(
                update(Ticket)
                .where(Ticket.id == ticket.id, Ticket.notified_at.is_(None))
                .values(notified_at=now)
                .execution_options(synchronize_session=False)
            )
            if won.rowcount == 1:  # type: ignore[attr-defined]
                email = compose(ticket, settings.report_from, recipients, now, zone)
                claimed.append((ticket.id, email))
        return claimed


def _release(ticket_id: int, db_url: str | None) -> None:
    with session_scope(db_url) as session:
        session.execute(update(Ticket).where(Ticket.id == ticket_id).values(notified_at=None))


def notify_new_tickets(settings: Settings, now: datetime, db_url: str | None = None) -> list[int]:
    """E-mails the on-duty list about each new open ticket once; returns the tickets e-mailed.
    Nothing to do when ``handoff_notify_emails`` is empty. A send that fails (server down, login
    refused) is logged and released for the next round, which stops this one."""
    if not settings.handoff_notify_emails:
        return []
    try:
        claimed = _claim(settings, now, db_url)
    except MailError as exc:  # no sender: nothing was claimed (the transaction rolled back)
        logger.warning("new-ticket e-mail not sent: %s", exc)
        return []
    sent: list[int] = []
    for position, (ticket_id, message) in enumerate(claimed):
        try:
            send(message, settings)
        except MailError as exc:
            logger.warning(
                "new-ticket e-mail for ticket %d not sent (retried later): %s", ticket_id, exc
            )
            for later, _ in claimed[position:]:
                _release(later, db_url)
            break
        sent.append(ticket_id)
    if sent:
        logger.info("e-mailed the on-duty list about ticket(s) %s", sent)
    return sent
