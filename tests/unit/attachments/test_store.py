"""attachments.store on the migrated test database: what is saved, who may use an id, links to
ticket messages, and that lists never load the bytes."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from attachments import store
from attachments.models import Attachment
from attachments.sanitize import Kind, sanitize
from handoff.models import Reason, Ticket, TicketMessage
from tests.unit.attachments.files import LIMITS, image_bytes, pdf

PHOTO = sanitize(image_bytes("JPEG"), LIMITS)
DOCUMENT = sanitize(pdf(), LIMITS)


def save(session: Session, conversation: str = "c1", direction: str = "citizen", **kw: object):
    return store.save(
        session,
        kw.pop("clean", PHOTO),  # type: ignore[arg-type]
        conversation_id=conversation,
        channel="socketio",
        direction=direction,
        **kw,  # type: ignore[arg-type]
    )


def message(session: Session, conversation: str = "c1") -> TicketMessage:
    ticket = Ticket(conversation_id=conversation, reason=Reason.ATTACHMENT.value, trigger_text="")
    session.add(ticket)
    session.flush()
    row = TicketMessage(ticket_id=ticket.id, direction="citizen", text="can I bring this?")
    session.add(row)
    session.flush()
    return row


def test_save_stores_the_clean_bytes_with_their_hash(db_session: Session, clock) -> None:
    saved = save(db_session, name="IMG_0001.HEIC")
    db_session.commit()
    db_session.expire_all()

    row = store.get(db_session, saved.id)
    assert row is not None
    assert store.ID_PATTERN.fullmatch(row.id)
    assert row.data == PHOTO.data and row.thumbnail == PHOTO.thumbnail
    assert row.sha256 == hashlib.sha256(PHOTO.data).hexdigest()
    assert row.size_bytes == len(PHOTO.data)
    assert (row.kind, row.mime, row.width, row.height) == ("image", "image/jpeg", 64, 48)
    assert row.name == "IMG_0001.jpg"  # the real type's extension
    assert row.created_at == clock() and row.direction == "citizen" and row.uploaded_by is None


def test_ids_are_random_and_never_repeat(db_session: Session) -> None:
    ids = {save(db_session).id for _ in range(20)}
    assert len(ids) == 20 and all(store.is_valid_id(i) for i in ids)


@pytest.mark.parametrize(
    "bad", ["", "x", "A" * 32, "0" * 31, "0" * 33, "../" + "0" * 29, "0" * 32 + "\n", None, 5]
)
def test_get_treats_a_malformed_id_as_unknown(db_session: Session, bad: object) -> None:
    save(db_session)
    assert store.get(db_session, bad) is None  # type: ignore[arg-type]


def test_get_unknown(db_session: Session) -> None:
    assert store.get(db_session, "0" * 32) is None


def test_owned_by_keeps_only_this_conversations_citizen_files(db_session: Session) -> None:
    first, second = save(db_session), save(db_session, clean=DOCUMENT)
    foreign = save(db_session, conversation="someone-else")
    agents = save(db_session, direction="agent")
    asked = [second.id, "not-an-id", foreign.id, first.id, agents.id, second.id, "f" * 32]

    owned = store.owned_by(db_session, "c1", asked)

    assert [a.id for a in owned] == [second.id, first.id]  # order given, duplicates once
    assert store.owned_by(db_session, "someone-else", [first.id]) == []
    assert store.owned_by(db_session, "c1", []) == []


def test_link_to_message_and_list_by_message_without_bytes(db_session: Session, clock) -> None:
    first_message, other_message = message(db_session), message(db_session, "c2")
    a = save(db_session)
    clock.advance(seconds=1)
    b = save(db_session, clean=DOCUMENT)
    c = save(db_session, conversation="c2")
    store.link_to_message(db_session, [a.id, b.id], first_message.id)
    store.link_to_message(db_session, [c.id], other_message.id)
    store.link_to_message(db_session, ["bogus"], first_message.id)  # ignored
    db_session.commit()
    db_session.expunge_all()

    listed = store.for_messages(db_session, [first_message.id, other_message.id, 999])

    assert {k: [x.id for x in v] for k, v in listed.items()} == {
        first_message.id: [a.id, b.id],
        other_message.id: [c.id],
    }
    for row in listed[first_message.id]:
        unloaded = inspect(row).unloaded
        assert {"data", "thumbnail"} <= unloaded
    assert store.for_messages(db_session, []) == {}


def test_deleting_the_message_keeps_the_file_for_the_purge(db_session: Session) -> None:
    row = message(db_session)
    saved = save(db_session)
    store.link_to_message(db_session, [saved.id], row.id)
    db_session.commit()
    db_session.delete(row)
    db_session.commit()
    db_session.expire_all()
    kept = store.get(db_session, saved.id)
    assert kept is not None and kept.message_id is None


def test_describe_is_json_safe_and_says_nothing_about_the_conversation(
    db_session: Session,
) -> None:
    saved = save(db_session, clean=DOCUMENT, name="boarding pass.pdf")
    described = store.describe(saved)
    assert json.loads(json.dumps(described)) == {
        "id": saved.id,
        "kind": "document",
        "mime": "application/pdf",
        "name": "boarding pass.pdf",
        "width": None,
        "height": None,
        "size_bytes": len(DOCUMENT.data),
    }


@pytest.mark.parametrize(
    ("given", "kind", "extension", "expected"),
    [
        ("../../etc/passwd", Kind.IMAGE, "png", "passwd.png"),
        ("C:\\Users\\ana\\Pictures\\IMG 1.HEIC", Kind.IMAGE, "jpg", "IMG 1.jpg"),
        ("invoice.pdf.exe", Kind.DOCUMENT, "pdf", "invoice.pdf.pdf"),
        ("photo\u202egpj.exe", Kind.IMAGE, "jpg", "photogpj.jpg"),  # right-to-left override
        ("a\x00b\r\nc\t.png", Kind.IMAGE, "png", "abc.png"),
        ('x"; filename="evil.html', Kind.IMAGE, "jpg", "x; filename=evil.jpg"),
        ("", Kind.IMAGE, "jpg", "photo.jpg"),
        ("...", Kind.DOCUMENT, "pdf", "document.pdf"),
        (".htaccess", Kind.IMAGE, "png", "photo.png"),
        ("  spaced   out  .webp", Kind.IMAGE, "webp", "spaced out.webp"),
    ],
)
def test_clean_name(given: str, kind: Kind, extension: str, expected: str) -> None:
    assert store.clean_name(given, kind, extension) == expected


def test_clean_name_bounds_a_long_name() -> None:
    cleaned = store.clean_name("é" * 5000 + ".jpg", Kind.IMAGE, "jpg")
    assert cleaned == "é" * store.NAME_STEM_MAX_CHARS + ".jpg"


def test_the_database_refuses_a_bad_direction_or_kind(db_session: Session) -> None:
    saved = save(db_session)
    db_session.commit()
    for column, value in (("direction", "system"), ("kind", "script")):
        with pytest.raises(IntegrityError, match="(?i)check"):
            db_session.execute(
                text(f"UPDATE attachment SET {column} = :v WHERE id = :id"),
                {"v": value, "id": saved.id},
            )
        db_session.rollback()


def test_a_ticket_may_be_opened_for_an_attachment(db_session: Session) -> None:
    message(db_session)  # reason "attachment" passes the widened CHECK constraint
    db_session.commit()
    with pytest.raises(IntegrityError, match="(?i)check"):
        db_session.add(Ticket(conversation_id="c9", reason="bogus", trigger_text=""))
        db_session.flush()


def test_save_refuses_a_missing_conversation(db_session: Session) -> None:
    with pytest.raises(ValueError):
        save(db_session, conversation="")
    assert db_session.query(Attachment).count() == 0


def test_purge_before_keeps_new_files_and_the_conversations_asked_for(
    db_session: Session, clock
) -> None:
    old_kept, old_gone, new = save(db_session, "keep"), save(db_session, "other"), save(db_session)
    for row in (old_kept, old_gone):
        row.created_at = clock() - timedelta(days=10)
    db_session.flush()
    cutoff = clock() - timedelta(days=1)

    assert store.purge_before(db_session, cutoff, keep_conversations=["keep"]) == 1
    assert store.get(db_session, old_gone.id) is None
    assert store.purge_before(db_session, cutoff) == 1  # nothing kept: the other old one goes
    assert [a.id for a in db_session.scalars(select(Attachment))] == [new.id]


def test_export_and_delete_for_a_conversation(db_session: Session, clock) -> None:
    mine = [save(db_session)]
    clock.advance(seconds=1)
    mine.append(save(db_session, direction="agent", clean=DOCUMENT))
    theirs = save(db_session, "c2")
    exported = store.export_for_conversation(db_session, "c1")
    assert [e["id"] for e in exported] == [a.id for a in mine]
    assert all(set(e) >= {"sha256", "created_at", "direction"} for e in exported)
    assert not any(isinstance(v, bytes) for e in exported for v in e.values())
    assert store.delete_for_conversation(db_session, "c1") == 2
    db_session.expire_all()
    assert [a.id for a in db_session.scalars(select(Attachment))] == [theirs.id]
