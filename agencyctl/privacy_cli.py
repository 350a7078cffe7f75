"""``askagency privacy``: retention purge, and a citizen's export / deletion by sender id.

Where a conversation lives (embedded profile; the scale profile's PostgreSQL tracker database is
reached with ``--tracker-db``):

* Rasa's tracker store: table ``events`` of ``rasa_tracker.db`` (every turn, full text);
* Rasa's SQL event broker: table ``events`` of ``rasa_events.db`` (the analytics feed);
* handoff tickets (``handoff_ticket.conversation_id`` = sender id) with their messages and notes;
* photos and files sent either way (``attachment.conversation_id`` = sender id): the export lists
  each file's description and SHA-256 (the bytes stay out of a JSON export; the hash shows which
  file it was), deletion and the retention purge remove the rows, bytes included;
* analytics: ``analytics_event`` / ``analytics_conversation`` (+ turns) by ``sender_id``.

The unanswered-question queue holds redacted text with no sender id, so it cannot be tied to a
citizen: it is covered by the retention purge only. Deletion is one transaction per store;
running it again is harmless (it reports zero rows).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import Connection, create_engine, delete, inspect, or_, select, text, update
from sqlalchemy.orm import Session

from analytics.models import AnalyticsConversation, AnalyticsEvent, AnalyticsTurn
from askagency.clock import now_utc
from askagency.config import get_settings
from askagency.db import session_scope
from askagency.migrate import upgrade
from askagency.spool import get_spool
from attachments import store as attachment_store
from handoff.models import OPEN_STATUSES, Ticket, TicketMessage, TicketNote
from knowledge_base.unanswered import UnansweredQuestion

app = typer.Typer(help="Retention purge; export or delete one citizen's conversation.")


@app.callback()
def _schema() -> None:
    """Bring the schema to head first, so a fresh install purges nothing instead of failing."""
    upgrade()


def tracker_db_url() -> str:
    """Rasa's tracker store, as the launcher configures it (ASKAGENCY_TRACKER_DB)."""
    configured = os.environ.get("ASKAGENCY_TRACKER_DB", "").strip()
    path = Path(configured) if configured else get_settings().data_dir / "rasa_tracker.db"
    return f"sqlite:///{path}"


def events_db_url() -> str:
    return f"sqlite:///{get_settings().events_db}"


@contextmanager
def rasa_db(url: str) -> Iterator[Connection | None]:
    """A transaction on one of Rasa's databases; ``None`` when it has no ``events`` table yet
    (Rasa never ran), so commands work on a fresh install."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        yield None
        return
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            yield conn if inspect(conn).has_table("events") else None
    finally:
        engine.dispose()


def _event_rows(conn: Connection | None, sender: str) -> list[dict[str, Any]]:
    if conn is None:
        return []
    rows = conn.execute(
        text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender}
    )
    return [json.loads(row[0]) for row in rows if row[0]]


def _tables(session: Session) -> dict[str, Any]:
    """The ORM models of every store that holds conversation data."""
    return {
        "ticket": Ticket,
        "ticket_message": TicketMessage,
        "ticket_note": TicketNote,
        "analytics_event": AnalyticsEvent,
        "analytics_conversation": AnalyticsConversation,
        "analytics_turn": AnalyticsTurn,
        "unanswered": UnansweredQuestion,
    }


def _row(obj: Any) -> dict[str, Any]:
    out = {}
    for column in obj.__table__.columns:
        value = getattr(obj, column.key)
        out[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return out


def export_sender(sender: str, tracker_url: str, events_url: str) -> dict[str, Any]:
    """Everything stored about one conversation, as one JSON-ready dict."""
    with rasa_db(tracker_url) as conn:
        tracker = _event_rows(conn, sender)
    with rasa_db(events_url) as conn:
        broker = _event_rows(conn, sender)
    with session_scope() as session:
        t = _tables(session)
        tickets = session.scalars(
            select(t["ticket"]).where(t["ticket"].conversation_id == sender)
        ).all()
        ticket_ids = [ticket.id for ticket in tickets]
        messages = session.scalars(
            select(t["ticket_message"]).where(t["ticket_message"].ticket_id.in_(ticket_ids))
        ).all()
        notes = session.scalars(
            select(t["ticket_note"]).where(t["ticket_note"].ticket_id.in_(ticket_ids))
        ).all()
        conversations = session.scalars(
            select(t["analytics_conversation"]).where(
                t["analytics_conversation"].sender_id == sender
            )
        ).all()
        turns = session.scalars(
            select(t["analytics_turn"]).where(
                t["analytics_turn"].conversation_id.in_([c.id for c in conversations])
            )
        ).all()
        events = session.scalars(
            select(t["analytics_event"]).where(t["analytics_event"].sender_id == sender)
        ).all()
        return {
            "sender_id": sender,
            "exported_at": now_utc().isoformat(),
            "tracker_events": tracker,
            "event_broker_events": broker,
            "tickets": [_row(x) for x in tickets],
            "ticket_messages": [_row(x) for x in messages],
            "ticket_notes": [_row(x) for x in notes],
            "analytics_conversations": [_row(x) for x in conversations],
            "analytics_turns": [_row(x) for x in turns],
            "analytics_events": [_row(x) for x in events],
            "attachments": attachment_store.export_for_conversation(session, sender),
            # Writes made while the database was down, not replayed yet (askagency/spool.py).
            "spooled_writes": get_spool().records_for(sender),
        }


def delete_sender(sender: str, tracker_url: str, events_url: str) -> dict[str, int]:
    """Remove one conversation from every store; returns rows deleted per store."""
    # The spool first: once its records are gone no replay can write them back afterwards.
    counts: dict[str, int] = {"spooled_writes": get_spool().forget(sender)}
    for name, url in (("tracker_events", tracker_url), ("event_broker_events", events_url)):
        with rasa_db(url) as conn:
            counts[name] = (
                0
                if conn is None
                else conn.execute(
                    text("DELETE FROM events WHERE sender_id = :s"), {"s": sender}
                ).rowcount
            )
    with session_scope() as session:
        counts["attachments"] = attachment_store.delete_for_conversation(session, sender)
        t = _tables(session)
        ticket_ids = list(
            session.scalars(
                select(t["ticket"].id).where(t["ticket"].conversation_id == sender)
            ).all()
        )
        conv_ids = list(
            session.scalars(
                select(t["analytics_conversation"].id).where(
                    t["analytics_conversation"].sender_id == sender
                )
            ).all()
        )
        # Children first: SQLite does not cascade unless foreign keys are on in every process.
        for key, model, column, ids in (
            ("ticket_messages", t["ticket_message"], "ticket_id", ticket_ids),
            ("ticket_notes", t["ticket_note"], "ticket_id", ticket_ids),
            ("tickets", t["ticket"], "id", ticket_ids),
            ("analytics_turns", t["analytics_turn"], "conversation_id", conv_ids),
            ("analytics_conversations", t["analytics_conversation"], "id", conv_ids),
        ):
            counts[key] = session.execute(
                delete(model).where(getattr(model, column).in_(ids))
            ).rowcount
        counts["analytics_events"] = session.execute(
            delete(t["analytics_event"]).where(t["analytics_event"].sender_id == sender)
        ).rowcount
    return counts


def purge_older_than(days: float, tracker_url: str, events_url: str) -> dict[str, int]:
    """Retention: delete transcripts older than ``days``; keep anonymous metrics.

    Rasa events and closed tickets (with their messages) go; open tickets stay whatever their
    age, and so do the photos and files of their conversations (older ones go); unanswered
    questions go; analytics keeps its counts but loses the (already redacted) citizen text.
    """
    if days < 0:
        raise ValueError("--older-than must be zero or more days")
    cutoff = now_utc() - timedelta(days=days)
    cutoff_ts = cutoff.timestamp()
    counts: dict[str, int] = {}
    with rasa_db(tracker_url) as conn:
        counts["tracker_events"] = (
            0
            if conn is None
            else conn.execute(
                text("DELETE FROM events WHERE timestamp < :c"), {"c": cutoff_ts}
            ).rowcount
        )
    with rasa_db(events_url) as conn:
        deleted = 0
        if conn is not None:
            old = [
                row_id
                for row_id, data in conn.execute(text("SELECT id, data FROM events"))
                if float((json.loads(data or "{}") or {}).get("timestamp") or time.time())
                < cutoff_ts
            ]
            for start in range(0, len(old), 500):
                chunk = old[start : start + 500]
                deleted += conn.execute(
                    text("DELETE FROM events WHERE id IN ({})".format(",".join(map(str, chunk))))
                ).rowcount
        counts["event_broker_events"] = deleted
    with session_scope() as session:
        t = _tables(session)
        ticket, message, note = t["ticket"], t["ticket_message"], t["ticket_note"]
        counts["attachments"] = attachment_store.purge_before(
            session,
            cutoff,
            keep_conversations=select(ticket.conversation_id).where(
                ticket.status.in_(OPEN_STATUSES)
            ),
        )
        old_tickets = list(
            session.scalars(
                select(ticket.id).where(ticket.closed_at.is_not(None), ticket.created_at < cutoff)
            ).all()
        )
        counts["ticket_messages"] = session.execute(
            delete(message).where(message.ticket_id.in_(old_tickets))
        ).rowcount
        session.execute(delete(note).where(note.ticket_id.in_(old_tickets)))
        counts["tickets"] = session.execute(
            delete(ticket).where(ticket.id.in_(old_tickets))
        ).rowcount
        unanswered = t["unanswered"]
        counts["unanswered"] = session.execute(
            delete(unanswered).where(unanswered.created_at < cutoff)
        ).rowcount
        event, conv, turn = t["analytics_event"], t["analytics_conversation"], t["analytics_turn"]
        counts["analytics_text_cleared"] = (
            session.execute(
                update(event).where(event.ts < cutoff_ts, event.text.is_not(None)).values(text=None)
            ).rowcount
            + session.execute(  # the wording is the text, folded (analytics.models)
                update(turn)
                .where(
                    turn.started_at < cutoff, or_(turn.text.is_not(None), turn.wording.is_not(None))
                )
                .values(text=None, wording=None)
            ).rowcount
            + session.execute(
                update(conv)
                .where(conv.started_at < cutoff, conv.first_question.is_not(None))
                .values(first_question=None)
            ).rowcount
        )
    return counts


TrackerOpt = typer.Option(None, "--tracker-db", help="SQLAlchemy URL of Rasa's tracker store.")
EventsOpt = typer.Option(None, "--events-db", help="SQLAlchemy URL of Rasa's SQL event broker.")


@app.command("export")
def export_cmd(
    sender_id: str,
    out: Path | None = typer.Option(None, "--out", help="Write here instead of stdout."),
    tracker_db: str | None = TrackerOpt,
    events_db: str | None = EventsOpt,
) -> None:
    """Export everything stored about one conversation (sender id) as JSON."""
    data = export_sender(sender_id, tracker_db or tracker_db_url(), events_db or events_db_url())
    body = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if out:
        out.write_text(body + "\n", encoding="utf-8")
        typer.echo(f"exported {sender_id} to {out}", err=True)
    else:
        sys.stdout.write(body + "\n")


@app.command("delete")
def delete_cmd(
    sender_id: str,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    tracker_db: str | None = TrackerOpt,
    events_db: str | None = EventsOpt,
) -> None:
    """Delete one conversation (sender id) from every store."""
    if not yes:
        typer.confirm(f"Delete every record of conversation {sender_id!r}?", abort=True)
    counts = delete_sender(sender_id, tracker_db or tracker_db_url(), events_db or events_db_url())
    typer.echo(json.dumps({"sender_id": sender_id, "deleted": counts}))


@app.command("purge")
def purge_cmd(
    older_than: float = typer.Option(..., "--older-than", help="Retention period in days."),
    tracker_db: str | None = TrackerOpt,
    events_db: str | None = EventsOpt,
) -> None:
    """Delete transcripts older than the retention period (run it daily, e.g. from cron)."""
    try:
        counts = purge_older_than(
            older_than, tracker_db or tracker_db_url(), events_db or events_db_url()
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps({"older_than_days": older_than, "deleted": counts}))
