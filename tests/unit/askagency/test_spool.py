"""The durable write spool (askagency/spool.py): order, partial failure, dead letters,
concurrent appends from several processes, unreadable lines, and the three write paths that
use it (unanswered queue, FAQ counts, handoff tickets and relayed messages) against a real
database that is made unavailable by moving its file away."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from askagency.bot_messages import MessageType
from askagency.config import Settings, get_settings
from askagency.db import get_engine, session_scope
from askagency.spool import (
    ReplayFunction,
    Spool,
    SpoolRecord,
    get_spool,
    is_database_unavailable,
    store,
)


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool", retry_seconds=60)


# The replay functions of the scratch kinds below (the product's are actions.spool_kinds).
KINDS: dict[str, ReplayFunction] = {}


@pytest.fixture
def table(db_url: str) -> Iterator[str]:
    """A scratch table in the migrated test database, and a replay kind writing to it."""
    with session_scope() as session:
        session.execute(text("CREATE TABLE spool_probe (n INTEGER PRIMARY KEY, label TEXT)"))

    def write(session: Session, payload: dict[str, Any]) -> None:
        if payload.get("boom") == "db":
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        session.execute(
            text("INSERT INTO spool_probe (n, label) VALUES (:n, :label)"),
            {"n": payload["n"], "label": payload.get("label", "")},
        )

    KINDS["probe"] = write
    yield db_url
    KINDS.clear()


def probe_rows() -> list[int]:
    with session_scope() as session:
        return [row[0] for row in session.execute(text("SELECT n FROM spool_probe ORDER BY n"))]


def dead_entries(spool: Spool) -> list[dict[str, Any]]:
    return [json.loads(line) for line in spool.dead_path.read_text().splitlines()]


def test_records_replay_in_order_and_leave_an_empty_spool(spool: Spool, table: str) -> None:
    order: list[int] = []
    KINDS["ordered"] = lambda _session, payload: order.append(payload["n"])
    for n in range(5):
        spool.append("ordered", {"n": n})
    assert spool.pending_count() == 5
    result = spool.replay(KINDS)
    assert (result.replayed, result.dead, result.remaining, result.error) == (5, 0, 0, None)
    assert order == [0, 1, 2, 3, 4]
    assert spool.pending_count() == 0 and spool.pending_path.read_text() == ""
    assert spool.replay(KINDS).replayed == 0  # nothing twice


def test_a_database_error_stops_the_replay_and_keeps_the_rest(spool: Spool, table: str) -> None:
    spool.append("probe", {"n": 1})
    spool.append("probe", {"n": 2, "boom": "db"})
    spool.append("probe", {"n": 3})
    result = spool.replay(KINDS)
    assert result.replayed == 1 and result.remaining == 2
    assert result.error and "OperationalError" in result.error
    assert probe_rows() == [1]
    assert [r.payload["n"] for r in spool.pending()] == [2, 3]
    assert spool.status()["database_down_since"] is not None


def test_records_that_can_never_be_written_go_to_dead_not_away(spool: Spool, table: str) -> None:
    spool.append("probe", {"n": 1})
    spool.append("probe", {"n": 1, "label": "duplicate key"})  # IntegrityError forever
    spool.append("probe", {"label": "no n"})  # bad payload: KeyError
    spool.append("no_such_kind", {"x": 1})
    spool.append("probe", {"n": 2})
    result = spool.replay(KINDS)
    assert (result.replayed, result.dead, result.remaining) == (2, 3, 0)
    assert probe_rows() == [1, 2]
    dead = dead_entries(spool)
    assert [d["error"].split(":")[0] for d in dead] == [
        "IntegrityError",
        "KeyError",
        "SpoolRejected",
    ]
    assert dead[0]["payload"] == {"n": 1, "label": "duplicate key"} and dead[0]["id"]
    assert spool.status()["dead"] == 3


def test_unreadable_and_torn_lines_are_dead_lettered(spool: Spool, table: str) -> None:
    spool.append("probe", {"n": 1})
    with open(spool.pending_path, "a") as handle:
        handle.write("this is not json\n")
        handle.write('["a list"]\n')
        handle.write('{"id": "x", "kind": "probe", "payload": {"n": 9')  # torn by a crash
    spool.append("probe", {"n": 2})  # must not be glued to the torn line
    result = spool.replay(KINDS)
    assert (result.replayed, result.dead, result.remaining) == (2, 3, 0)
    assert probe_rows() == [1, 2]
    raws = [d["raw"] for d in dead_entries(spool)]
    assert raws[0] == "this is not json" and raws[2].endswith('"n": 9')


def _append_many(directory: str, worker: int, count: int) -> None:
    spool = Spool(Path(directory))
    for n in range(count):
        spool.append("probe", {"n": worker * 10_000 + n, "label": "x" * 3000})


def test_concurrent_appends_from_several_processes(spool: Spool, table: str) -> None:
    """Lines longer than a pipe buffer, written by three processes at once: each is whole."""
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_append_many, args=(str(spool.directory), w, 150)) for w in range(3)
    ]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(60)
        assert proc.exitcode == 0
    records = spool.pending()
    assert len(records) == 450 and spool.pending_count() == 450
    for worker in range(3):  # each process's records in the order it wrote them
        mine = [r.payload["n"] for r in records if r.payload["n"] // 10_000 == worker]
        assert mine == sorted(mine) and len(mine) == 150
    assert spool.replay(KINDS).replayed == 450
    assert len(probe_rows()) == 450


def test_crash_after_commit_replays_at_most_that_record(spool: Spool, table: str) -> None:
    """Ids of replayed records are fsynced one by one: a replay that died before compacting
    skips them next time."""
    first = spool.append("probe", {"n": 1})
    spool.append("probe", {"n": 2})
    with session_scope() as session:  # record 1 committed ...
        session.execute(text("INSERT INTO spool_probe (n) VALUES (1)"))
    spool.replayed_path.write_text(first.id + "\n")  # ... and marked, then the crash
    assert spool.pending_count() == 1
    result = spool.replay(KINDS)
    assert (result.replayed, result.dead) == (1, 0)
    assert probe_rows() == [1, 2]


def test_store_writes_now_or_spools_on_an_outage(spool: Spool, table: str) -> None:
    assert store("probe", {"n": 1}, KINDS, spool=spool) == "stored"
    assert store("probe", {"n": 2, "boom": "db"}, KINDS, spool=spool) == "spooled"
    # Within retry_seconds of the failure: straight to the spool, no database attempt.
    assert store("probe", {"n": 3}, KINDS, spool=spool) == "spooled"
    assert store("probe", {"n": 1}, KINDS, spool=Spool(spool.directory)) == "dead"  # duplicate key
    assert [r.payload["n"] for r in spool.pending()] == [2, 3]
    assert probe_rows() == [1]


def test_a_conversations_later_writes_wait_behind_its_pending_ones(
    spool: Spool, table: str
) -> None:
    spool.append("probe", {"n": 5}, key="conv-a")
    fresh = Spool(spool.directory)  # another process: no outage seen
    assert store("probe", {"n": 6}, KINDS, key="conv-a", spool=fresh) == "spooled"
    assert store("probe", {"n": 7}, KINDS, key="conv-b", spool=fresh) == "stored"
    assert [r.payload["n"] for r in fresh.pending()] == [5, 6]


def test_error_classification() -> None:
    down = OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert is_database_unavailable(down)
    assert is_database_unavailable(ConnectionRefusedError())
    assert not is_database_unavailable(IntegrityError("INSERT", {}, Exception("duplicate")))
    assert not is_database_unavailable(ValueError("bad payload"))


def test_record_line_round_trip() -> None:
    record = SpoolRecord("probe", {"text": "¿dónde? 😀"}, key="k")
    assert SpoolRecord.from_line(record.to_line()) == record
    with pytest.raises(ValueError):
        SpoolRecord.from_line('{"id": "1", "kind": "probe", "payload": []}')


# --- the write paths, with the database really gone ------------------------------------------


@pytest.fixture
def outage(db_url: str, tmp_settings: Settings) -> Iterator[dict[str, Any]]:
    """``cut()`` moves the SQLite file away (connections fail: no such table / unable to
    open); ``restore()`` brings it back. The spool is the settings' one."""
    db_file = Path(db_url.removeprefix("sqlite:///"))
    moved = db_file.with_suffix(".away")

    def cut() -> None:
        get_engine(db_url).dispose()
        shutil.move(db_file, moved)
        # SQLite would create an empty file on connect; a folder in its place cannot be opened.
        os.mkdir(db_file)

    def restore() -> None:
        get_engine(db_url).dispose()
        os.rmdir(db_file)
        shutil.move(moved, db_file)

    yield {"cut": cut, "restore": restore, "spool": get_spool(tmp_settings)}
    if db_file.is_dir():
        restore()


async def test_handoff_and_learning_survive_an_outage(outage: dict[str, Any]) -> None:
    from actions import learning
    from actions.spool_kinds import SPOOL_KINDS
    from handoff import conversation as conv
    from handoff.models import Ticket, TicketMessage
    from knowledge_base.unanswered import UnansweredQuestion, usage_counts

    spool: Spool = outage["spool"]
    settings = get_settings()
    outage["cut"]()
    # Another conversation's: the handoff below must find the outage, not a pending write.
    asking = Tracker(
        "c-learn", {}, {}, [{"event": "user", "input_channel": "rest"}], False, None, {}, ""
    )
    learning._queue(asking, "where do I register my boat", "low_confidence", "en")
    learning._answered(asking, "gels")
    await learning.drain()
    spool.note_recovery(0)  # forget the failure: the handoff must find the outage itself
    reply = await conv.start_handoff(
        conversation_id="c-out",
        reason=conv.Reason.REQUESTED,
        channel="rest",
        language="es",
        trigger_text="una persona",
        settings=settings,
        out_of_scope_entry="out-of-scope-bookings",
    )
    assert reply.slots["handoff_active"] is True
    assert reply.custom["type"] == MessageType.HANDOFF and reply.custom["queued"] is True
    assert reply.internal == {}  # no ticket yet
    assert reply.custom["queued"] is True
    assert "He pasado su conversación a nuestro equipo" in reply.text
    assert await conv.relay_to_agent("c-out", "my flight is at 6", "en") == conv.Reply()
    assert await conv.relay_to_agent("c-out", "gate B12", "en") == conv.Reply()
    kinds = [r.kind for r in spool.pending()]
    # The two learning writes run in parallel worker threads: either may come first.
    assert sorted(kinds[:2]) == ["faq_answered", "unanswered"]
    assert kinds[2:] == ["handoff_open", "handoff_message", "handoff_message"]
    records = spool.pending()
    assert spool.replay(SPOOL_KINDS).remaining == 5  # still down: nothing lost, nothing written

    outage["restore"]()
    result = spool.replay(SPOOL_KINDS)
    assert (result.replayed, result.dead, result.remaining) == (5, 0, 0)
    with session_scope() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.conversation_id == "c-out"))
        assert ticket is not None and ticket.is_open and ticket.language == "es"
        assert ticket.out_of_scope_entry == "out-of-scope-bookings"
        texts = session.scalars(
            select(TicketMessage.text)
            .where(TicketMessage.ticket_id == ticket.id)
            .order_by(TicketMessage.id)
        ).all()
        assert texts == ["my flight is at 6", "gate B12"]
        questions = session.scalars(select(UnansweredQuestion.text)).all()
        assert questions == ["where do I register my boat"]
        assert usage_counts(session) == {"gels": 1}
    assert spool.pending_count() == 0

    # A replay repeated after a crash changes nothing: every kind but the FAQ count is idempotent.
    for record in records:
        if record.kind != "faq_answered":
            with session_scope() as session:
                SPOOL_KINDS[record.kind](session, record.payload)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
        assert session.scalar(select(func.count()).select_from(TicketMessage)) == 2
        assert session.scalar(select(func.count()).select_from(UnansweredQuestion)) == 1


def test_console_reports_spooled_and_dead_writes(tmp_settings: Settings, db_url: str) -> None:
    from console.health import spool_health

    assert spool_health(tmp_settings) == {
        "ok": True,
        "database": {"ok": True},
        "pending": 0,
        "dead": 0,
        "message": None,
    }
    spool = get_spool(tmp_settings)
    spool.append("unanswered", {"text": "x"})
    spool.dead_letter(SpoolRecord("faq_answered", {}), "ValueError: payload has no faq_id")
    health = spool_health(tmp_settings)
    assert (health["ok"], health["pending"], health["dead"]) == (False, 1, 1)
    assert (
        "1 writes (tickets, citizen messages, unanswered questions) are spooled"
        in (health["message"])
    )
    assert "askagency spool status" in health["message"]


def test_cli_status_and_replay(tmp_settings: Settings, db_url: str) -> None:
    from typer.testing import CliRunner

    from agencyctl.cli import app
    from knowledge_base.unanswered import unanswered_payload

    spool = get_spool(tmp_settings)
    spool.append("unanswered", unanswered_payload("lost my boarding pass", "handoff", "en", None))
    spool.append("faq_answered", {"faq_id": ""})  # can never be written
    runner = CliRunner()
    status = runner.invoke(app, ["spool", "status", "--json"])
    assert status.exit_code == 0, status.output
    body = json.loads(status.output)
    assert body["pending"] == 2 and body["pending_by_kind"] == {"unanswered": 1, "faq_answered": 1}
    replayed = runner.invoke(app, ["spool", "replay"])
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1, dead-lettered 1, still pending 0" in replayed.output
    assert "dead letters: 1" in runner.invoke(app, ["spool", "status"]).output


def test_a_citizens_deletion_request_removes_their_spooled_writes(spool: Spool, table: str) -> None:
    """Privacy: a conversation deleted on request must not come back when the spool replays,
    and its dead-lettered writes go too; others' writes stay."""
    spool.append("probe", {"n": 1}, key="citizen-a")
    spool.append("probe", {"n": 2}, key="citizen-b")
    spool.append("probe", {"n": 3, "label": "kept"}, key="citizen-a")
    spool.dead_letter(SpoolRecord("probe", {"n": 9}, key="citizen-a"), "IntegrityError: x")
    spool.dead_letter(SpoolRecord("probe", {"n": 8}, key="citizen-b"), "IntegrityError: y")

    exported = spool.records_for("citizen-a")
    assert [r["payload"]["n"] for r in exported["pending"]] == [1, 3]
    assert [d["payload"]["n"] for d in exported["dead"]] == [9]

    assert spool.forget("citizen-a") == 3
    assert spool.records_for("citizen-a") == {"pending": [], "dead": []}
    assert spool.forget("citizen-a") == 0
    assert spool.replay(KINDS).replayed == 1
    assert probe_rows() == [2]  # citizen-a's writes never reached the database
    assert [d["key"] for d in dead_entries(spool)] == ["citizen-b"]
