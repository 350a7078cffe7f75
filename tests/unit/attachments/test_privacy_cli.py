"""``askagency privacy`` covers photos and files: the export describes each one with its SHA-256
(never the bytes), deletion removes every file of the conversation, and the retention purge
removes old files except those of a conversation a person is still handling."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from agencyctl.privacy_cli import delete_sender, export_sender, purge_older_than
from analytics.models import AnalyticsConversation, AnalyticsTurn
from askagency.clock import FakeClock
from askagency.db import session_scope
from attachments import store
from attachments.models import Attachment
from attachments.sanitize import sanitize
from handoff.models import Reason, Status, Ticket, TicketMessage
from tests.unit.analytics.rows import one_turn_conversation
from tests.unit.attachments.files import LIMITS, image_bytes, pdf

PHOTO = sanitize(image_bytes("JPEG"), LIMITS)
DOCUMENT = sanitize(pdf(), LIMITS)
OLD = timedelta(days=100)


@pytest.fixture
def rasa_urls(tmp_path: Path) -> tuple[str, str]:
    """Rasa never ran: no tracker or event-broker files (the commands handle that)."""
    return f"sqlite:///{tmp_path / 'no_tracker.db'}", f"sqlite:///{tmp_path / 'no_events.db'}"


def _file(
    session: Session, conversation: str, *, age: timedelta = timedelta(0), agent: bool = False
) -> str:
    row = store.save(
        session,
        DOCUMENT if agent else PHOTO,
        conversation_id=conversation,
        channel="socketio",
        direction="agent" if agent else "citizen",
        name="boarding.pdf" if agent else "bag.jpg",
    )
    row.created_at = row.created_at - age
    return row.id


def _ticket(session: Session, conversation: str, *, closed: bool, age: timedelta) -> int:
    ticket = Ticket(
        conversation_id=conversation,
        open_marker=None if closed else conversation,
        reason=Reason.ATTACHMENT.value,
        status=(Status.CLOSED_RESOLVED if closed else Status.WAITING).value,
        trigger_text="",
    )
    session.add(ticket)
    session.flush()
    ticket.created_at = ticket.created_at - age
    if closed:
        ticket.closed_at = ticket.created_at
    message = TicketMessage(ticket_id=ticket.id, direction="citizen", text="can I bring this?")
    session.add(message)
    session.flush()
    return message.id


@pytest.fixture
def files(db_url: str, clock: FakeClock) -> dict[str, list[str]]:
    """c1: an old closed ticket, a citizen photo and an agent PDF on it; c2: an old photo, its
    ticket still open; c3: no ticket, one old and one new photo."""
    with session_scope() as session:
        message_id = _ticket(session, "c1", closed=True, age=OLD)
        c1 = [_file(session, "c1", age=OLD)]
        clock.advance(seconds=1)  # the agent's answer comes after the citizen's photo
        c1.append(_file(session, "c1", age=OLD, agent=True))
        store.link_to_message(session, c1, message_id)
        _ticket(session, "c2", closed=False, age=OLD)
        c2 = [_file(session, "c2", age=OLD)]
        c3 = [_file(session, "c3", age=OLD), _file(session, "c3")]
    return {"c1": c1, "c2": c2, "c3": c3}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _remaining() -> set[str]:
    with session_scope() as session:
        return set(session.scalars(select(Attachment.id)).all())


def test_export_lists_each_file_with_its_hash_never_the_bytes(
    files: dict[str, list[str]], rasa_urls: tuple[str, str]
) -> None:
    exported = export_sender("c1", *rasa_urls)

    listed = exported["attachments"]
    assert [a["id"] for a in listed] == files["c1"]
    photo, document = listed
    assert photo["sha256"] == _sha(PHOTO.data)
    assert (photo["direction"], photo["kind"], photo["name"]) == ("citizen", "image", "bag.jpg")
    assert (document["direction"], document["mime"]) == ("agent", "application/pdf")
    assert document["sha256"] == _sha(DOCUMENT.data)
    assert photo["message_id"] is not None and photo["created_at"]
    assert "data" not in photo and "thumbnail" not in photo
    body = json.dumps(exported, default=str)
    assert base64.b64encode(PHOTO.data[:30]).decode()[:20] not in body
    assert PHOTO.data[:30].hex() not in body
    assert export_sender("nobody", *rasa_urls)["attachments"] == []


def test_delete_removes_every_file_of_the_conversation_only(
    files: dict[str, list[str]], rasa_urls: tuple[str, str]
) -> None:
    counts = delete_sender("c1", *rasa_urls)

    assert counts["attachments"] == 2 and counts["tickets"] == 1
    assert _remaining() == set(files["c2"] + files["c3"])
    assert export_sender("c1", *rasa_urls)["attachments"] == []
    assert delete_sender("c1", *rasa_urls)["attachments"] == 0  # again: harmless


def test_purge_removes_old_files_but_not_while_a_ticket_is_open(
    files: dict[str, list[str]], rasa_urls: tuple[str, str]
) -> None:
    counts = purge_older_than(90, *rasa_urls)

    assert counts["attachments"] == 3  # c1's two and c3's old one
    assert _remaining() == {files["c2"][0], files["c3"][1]}
    assert purge_older_than(90, *rasa_urls)["attachments"] == 0


def test_purge_with_no_open_ticket_at_all(
    db_url: str, clock: FakeClock, rasa_urls: tuple[str, str]
) -> None:
    with session_scope() as session:
        old = _file(session, "c9", age=OLD)
    counts = purge_older_than(90, *rasa_urls)
    assert counts["attachments"] == 1 and old not in _remaining()


def test_purge_clears_the_words_of_old_turns_with_their_wording(
    db_url: str, clock: FakeClock, rasa_urls: tuple[str, str]
) -> None:
    """An unanswered turn's stored wording is its text folded: the retention purge clears both
    (the counts stay), and recent turns keep theirs."""
    with session_scope() as session:
        for sender, when in (("old", clock.now - OLD), ("new", clock.now)):
            session.add(one_turn_conversation(sender, when, "Can I bring my Sword?"))
    purge_older_than(90, *rasa_urls)
    with session_scope() as session:
        rows = session.execute(
            select(AnalyticsConversation.sender_id, AnalyticsTurn.text, AnalyticsTurn.wording)
            .join(AnalyticsTurn)
            .order_by(AnalyticsConversation.sender_id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("new", "Can I bring my Sword?", "can i bring my sword"),
        ("old", None, None),
    ]
