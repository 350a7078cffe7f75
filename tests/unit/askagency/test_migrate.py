"""The Alembic history on SQLite and PostgreSQL: it applies, matches the
models exactly, is idempotent, downgrades, and the store works on top of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agencyctl.models import metadata
from askagency import migrate
from askagency.db import make_engine
from knowledge_base import store
from knowledge_base.store import FaqInput
from tests.services import fresh_schema

KB_TABLES = {"kb_faq", "kb_question_variant", "audit_log"}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'migrations.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards."""
    with fresh_schema() as url:
        yield url


def _schema_diffs(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata()))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _check_history(url: str) -> None:
    assert migrate.current_revision(url) is None

    migrate.upgrade(url)
    assert migrate.current_revisions(url) == migrate.head_revisions()
    assert _tables(url) >= KB_TABLES
    assert _schema_diffs(url) == [], "models and migrations disagree: add a revision"

    migrate.upgrade(url)  # already at head: no-op
    assert migrate.current_revisions(url) == migrate.head_revisions()

    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    assert _tables(url) & KB_TABLES == set()

    migrate.upgrade(url)
    assert _tables(url) >= KB_TABLES


def _check_store(url: str) -> None:
    """The parts that differ by backend: JSON, tz-aware timestamps, dates,
    the status check constraint and the optimistic version check."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            session = Session(bind=connection)
            data = FaqInput(
                id="liquids",
                language="en",
                category="security",
                question="Can I bring liquids?",
                answer="Up to 100 ml — ünïcødé.",
                variants=("Water bottle?", "Gels?"),
                review_by="2030-01-31",  # type: ignore[arg-type]
                status="published",  # type: ignore[arg-type]
            )
            store.create_faq(session, data, "alice")
            store.update_faq(
                session, "liquids", data.model_copy(update={"variants": ("Gels?",)}), "bob", 1
            )
            session.expire_all()
            faq = store.get_faq(session, "liquids")
            assert faq.version == 2 and faq.created_at.utcoffset() is not None
            assert [r.variants for r in store.published_records(session)] == [("Gels?",)]
            history = store.faq_history(session, "liquids")
            assert history[0].before["variants"] == ["Water bottle?", "Gels?"]
            assert history[0].after["answer"] == "Up to 100 ml — ünïcødé."
            with pytest.raises(store.VersionConflict):
                store.update_faq(session, "liquids", data, "carol", expected_version=1)
            with pytest.raises(IntegrityError, match="(?i)check"), session.begin_nested():
                connection.execute(text("UPDATE kb_faq SET status = 'live'"))
            session.close()
    finally:
        engine.dispose()


def test_sqlite_history(sqlite_url: str) -> None:
    _check_history(sqlite_url)


def test_sqlite_store_on_migrated_schema(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    _check_store(sqlite_url)


def test_postgres_history(postgres_url: str) -> None:
    _check_history(postgres_url)


def test_postgres_store_on_migrated_schema(postgres_url: str) -> None:
    migrate.upgrade(postgres_url)
    _check_store(postgres_url)


def test_upgrade_uses_configured_database(tmp_settings: object) -> None:
    from askagency.config import get_settings

    migrate.upgrade()
    url = get_settings().database_url
    assert Path(url.removeprefix("sqlite:///")).is_file()
    assert migrate.current_revisions() == migrate.head_revisions()


def test_alembic_command_line_config_points_at_project() -> None:
    config = migrate.alembic_config("sqlite://")
    assert Path(config.get_main_option("script_location")) == migrate.MIGRATIONS_DIR
    assert all(head >= "0001" for head in migrate.head_revisions())


def _check_repeated_answers_backfill(url: str) -> None:
    """0008 counts, for conversations stored before it, the answers that repeat an FAQ."""
    migrate.upgrade(url, "0007_console_security")
    engine = make_engine(url)
    now = "2026-03-02 10:00:00+00:00"
    conversation = (
        "INSERT INTO analytics_conversation (id, conversation_key, sender_id, start_ts,"
        " started_at, ended_at, channel, language, user_messages, questions, answers, fallbacks,"
        " clarifies, handed_off) VALUES (:id, :key, 's', 0, :now, :now, 'rest', 'en', 3, 3, 3,"
        " 0, 0, :false)"
    )
    turn = (
        "INSERT INTO analytics_turn (conversation_id, seq, user_ts, started_at, outcome, faq_id,"
        " channel, language) VALUES (:cid, :seq, 0, :now, :outcome, :faq, 'rest', 'en')"
    )
    try:
        with engine.begin() as connection:
            for cid, faqs in ((1, ["liquids", "liquids", "laptops"]), (2, ["liquids", None])):
                connection.execute(
                    text(conversation), {"id": cid, "key": f"s@{cid}", "now": now, "false": False}
                )
                for seq, faq in enumerate(faqs, 1):
                    outcome = "answer" if faq else "fallback"
                    connection.execute(
                        text(turn),
                        {"cid": cid, "seq": seq, "now": now, "outcome": outcome, "faq": faq},
                    )
        migrate.upgrade(url)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, repeated_answers FROM analytics_conversation ORDER BY id")
            ).all()
        assert [tuple(r) for r in rows] == [(1, 1), (2, 0)]
    finally:
        engine.dispose()


def test_sqlite_repeated_answers_backfill(sqlite_url: str) -> None:
    _check_repeated_answers_backfill(sqlite_url)


def test_postgres_repeated_answers_backfill(postgres_url: str) -> None:
    _check_repeated_answers_backfill(postgres_url)


def _wording_migration(name: str = "0014_unanswered_wording"):  # type: ignore[no-untyped-def]
    """A revision as a module (migration files are not importable by package path)."""
    import importlib.util

    path = migrate.MIGRATIONS_DIR / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_wording_backfill(url: str) -> None:
    """0014 gives the questions stored before it their wording key, a batch at a time."""
    migrate.upgrade(url, "0013_daily_rollup")
    engine = make_engine(url)
    texts = ["Can I bring a DRONE?", "can i  bring a drone", "Straße?!", "???", "Gels OK. "] * 3
    expected = ["can i bring a drone", "can i bring a drone", "strasse", "", "gels ok"] * 3
    insert = (
        "INSERT INTO kb_unanswered (created_at, language, text, reason, status)"
        " VALUES ('2026-03-02 10:00:00+00:00', 'en', :text, 'low_confidence', 'open')"
    )
    select_wording = text("SELECT wording FROM kb_unanswered ORDER BY id")
    try:
        with engine.begin() as connection:
            for question in texts:
                connection.execute(text(insert), {"text": question})
        migrate.upgrade(url)
        with engine.connect() as connection:
            assert list(connection.scalars(select_wording)) == expected
        module = _wording_migration()
        module.BATCH = 4  # several rounds, the last one short
        with engine.begin() as connection:
            connection.execute(text("UPDATE kb_unanswered SET wording = 'x'"))
            module._backfill(connection)
            assert list(connection.scalars(select_wording)) == expected
    finally:
        engine.dispose()


def test_sqlite_wording_backfill(sqlite_url: str) -> None:
    _check_wording_backfill(sqlite_url)


def test_postgres_wording_backfill(postgres_url: str) -> None:
    _check_wording_backfill(postgres_url)


def test_wording_backfill_uses_the_knowledge_base_rule() -> None:
    """The migration's frozen copy of wording_key agrees with the application's."""
    from knowledge_base.unanswered import wording_key

    samples = [
        "Can I bring a drone?",
        "  CAN\tI bring\n a drone ?!. ",
        "Straße",
        "ΣΊΣΥΦΟΣ?",
        "???",
        "",
        "wait... what?",
        "x" * 499 + "ß",
        "100 ml. ",
    ]
    for revision in ("0014_unanswered_wording", "0023_turn_wording"):
        frozen = _wording_migration(revision)._wording_key
        assert [frozen(s) for s in samples] == [wording_key(s) for s in samples]


def _ticket_with_a_message(connection: Any, **columns: object) -> None:
    """Ticket 1 with one citizen message: what a downgrade that copies ``handoff_ticket`` on
    SQLite must keep. ``columns``: values of the ticket's columns beyond the first revision's."""
    values = {
        "id": 1,
        "conversation_id": "c1",
        "channel": "socketio",
        "language": "en",
        "reason": "requested",
        "priority": "normal",
        "status": "waiting",
        "created_at": datetime(2026, 12, 6, tzinfo=UTC),
        "after_hours": False,
        "trigger_text": "",
        "transcript_url": "",
        **columns,
    }
    names, marks = ", ".join(values), ", ".join(f":{name}" for name in values)
    connection.execute(text(f"INSERT INTO handoff_ticket ({names}) VALUES ({marks})"), values)
    connection.execute(
        text(
            "INSERT INTO handoff_message (ticket_id, direction, kind, author, text, created_at,"
            " attempts) VALUES (1, 'citizen', 'text', 'citizen', 'hello', :at, 0)"
        ),
        {"at": values["created_at"]},
    )


def _check_ticket_contact(url: str) -> None:
    """0020 adds the ticket's contact; going back drops it and keeps every ticket's messages
    (on SQLite the downgrade copies ``handoff_ticket``, with foreign keys enforced that drop
    would have cascaded to them)."""
    migrate.upgrade(url, "0020_ticket_contact")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _ticket_with_a_message(connection, contact="a@b.org", contact_kind="email")
        migrate.downgrade(url, "0019_faq_related")
        columns = {c["name"] for c in inspect(engine).get_columns("handoff_ticket")}
        assert not {"contact", "contact_kind"} & columns
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM handoff_message")) == 1
        migrate.upgrade(url)
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT contact FROM handoff_ticket")) is None
    finally:
        engine.dispose()


def test_sqlite_ticket_contact(sqlite_url: str) -> None:
    _check_ticket_contact(sqlite_url)


def test_postgres_ticket_contact(postgres_url: str) -> None:
    _check_ticket_contact(postgres_url)


def _check_monthly_rollup(url: str) -> None:
    """0021 adds the ticket's stored staffed response (empty for existing tickets); 0022 fills
    the monthly and day-total counts from the daily rows that exist, and going back drops them."""
    migrate.upgrade(url, "0021_ticket_staffed_response")
    engine = make_engine(url)
    rows = [  # day, channel, language, location, kind, label, n, score_sum, scored
        ("2026-01-31", "web", "en", "DEN", "faq", "liquids", 2, 1_500_000, 2),
        ("2026-01-05", "web", "en", "DEN", "faq", "liquids", 1, 700_000, 1),
        ("2026-01-05", "sms", "en", "DEN", "faq", "liquids", 4, 0, 0),
        ("2026-02-01", "web", "en", "DEN", "faq", "liquids", 3, 2_000_000, 3),
        ("2026-01-31", "web", "es", "unknown", "response", "41", 5, 0, 0),
    ]
    try:
        with engine.begin() as connection:
            for row in rows:
                connection.execute(
                    text(
                        "INSERT INTO analytics_daily_count (day, channel, language, location,"
                        " kind, label, n, score_sum, scored) VALUES (:d, :c, :l, :loc, :k, :lab,"
                        " :n, :s, :sc)"
                    ),
                    dict(zip(("d", "c", "l", "loc", "k", "lab", "n", "s", "sc"), row, strict=True)),
                )
        migrate.upgrade(url)
        with engine.connect() as connection:
            monthly = connection.execute(
                text(
                    "SELECT month, channel, language, location, kind, label, n, score_sum, scored"
                    " FROM analytics_monthly_count ORDER BY 1, 2, 3, 4, 5, 6"
                )
            ).all()
            totals = connection.execute(
                text(
                    "SELECT day, kind, label, n, score_sum, scored"
                    " FROM analytics_daily_total_count ORDER BY 1, 2, 3"
                )
            ).all()
        as_text = [tuple(str(v) for v in r) for r in monthly]
        assert as_text == [
            ("2026-01-01", "sms", "en", "DEN", "faq", "liquids", "4", "0", "0"),
            ("2026-01-01", "web", "en", "DEN", "faq", "liquids", "3", "2200000", "3"),
            ("2026-01-01", "web", "es", "unknown", "response", "41", "5", "0", "0"),
            ("2026-02-01", "web", "en", "DEN", "faq", "liquids", "3", "2000000", "3"),
        ]
        assert [tuple(str(v) for v in r) for r in totals] == [
            ("2026-01-05", "faq", "liquids", "5", "700000", "1"),
            ("2026-01-31", "faq", "liquids", "2", "1500000", "2"),
            ("2026-01-31", "response", "41", "5", "0", "0"),
            ("2026-02-01", "faq", "liquids", "3", "2000000", "3"),
        ]
        migrate.downgrade(url, "0020_ticket_contact")
        inspector = inspect(engine)
        assert not {"analytics_monthly_count", "analytics_daily_total_count"} & set(
            inspector.get_table_names()
        )
        columns = {c["name"] for c in inspector.get_columns("handoff_ticket")}
        assert "first_response_staffed_s" not in columns
        migrate.upgrade(url)
    finally:
        engine.dispose()


def test_sqlite_monthly_rollup(sqlite_url: str) -> None:
    _check_monthly_rollup(sqlite_url)


def test_postgres_monthly_rollup(postgres_url: str) -> None:
    _check_monthly_rollup(postgres_url)


def _check_turn_wording(url: str) -> None:
    """0023 keys the stored fallback and clarify turns with text (in batches), no other turn."""
    migrate.upgrade(url, "0022_monthly_rollup")
    engine = make_engine(url)
    turns = [  # outcome, text -> wording
        ("fallback", "Can I  bring a DRONE?", "can i bring a drone"),
        ("clarify", "Pets in cabin?!", "pets in cabin"),
        ("answer", "liquids", None),
        ("fallback", None, None),
        ("clarify", "???", ""),
        ("handoff", "a person please", None),
    ]
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO analytics_conversation (id, conversation_key, sender_id, start_ts,"
                    " started_at, ended_at, channel, language, location, user_messages,"
                    " questions, answers, fallbacks, clarifies, handed_off) VALUES (1, 'k', 's',"
                    " 0, '2026-03-02 09:00:00', '2026-03-02 09:00:00', 'rest', 'en', 'DEN', 6,"
                    " 6, 1, 2, 2, false)"
                )
            )
            for seq, (outcome, typed, _) in enumerate(turns):
                connection.execute(
                    text(
                        "INSERT INTO analytics_turn (conversation_id, seq, user_ts, started_at,"
                        " outcome, channel, language, text) VALUES (1, :seq, 0,"
                        " '2026-03-02 09:00:00', :outcome, 'rest', 'en', :text)"
                    ),
                    {"seq": seq, "outcome": outcome, "text": typed},
                )
        module = _wording_migration("0023_turn_wording")
        module.BATCH = 1  # a round per turn
        migrate.upgrade(url)
        select_wording = text("SELECT wording FROM analytics_turn ORDER BY seq")
        with engine.connect() as connection:
            assert list(connection.scalars(select_wording)) == [w for _, _, w in turns]
        with engine.begin() as connection:
            connection.execute(text("UPDATE analytics_turn SET wording = NULL"))
            module._backfill(connection)
            assert list(connection.scalars(select_wording)) == [w for _, _, w in turns]
        migrate.downgrade(url, "0022_monthly_rollup")
        columns = {c["name"] for c in inspect(engine).get_columns("analytics_turn")}
        assert "wording" not in columns
        migrate.upgrade(url)
    finally:
        engine.dispose()


def test_sqlite_turn_wording(sqlite_url: str) -> None:
    _check_turn_wording(sqlite_url)


def test_postgres_turn_wording(postgres_url: str) -> None:
    _check_turn_wording(postgres_url)


def _check_faq_kind(url: str) -> None:
    """0024: FAQs stored before it become answers; the database refuses any other kind than
    the ones the migration froze, which are the model's (knowledge_base.types.FaqKind)."""
    import importlib.util

    from knowledge_base.types import FaqKind

    path = migrate.MIGRATIONS_DIR / "versions" / "0024_faq_kind.py"
    spec = importlib.util.spec_from_file_location("faq_kind_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert tuple(kind.value for kind in FaqKind) == module.KINDS

    migrate.upgrade(url, "0023_turn_wording")
    engine = make_engine(url)
    insert = (
        "INSERT INTO kb_faq (id, language, translation_group, category, question, answer,"
        " status, version, created_at, updated_at, created_by, updated_by) VALUES"
        " ('liquids', 'en', 'liquids', 'c', 'Liquids?', 'A.', 'published', 1, :now, :now,"
        " 'a', 'a')"
    )
    try:
        with engine.begin() as connection:
            connection.execute(text(insert), {"now": "2026-03-02 10:00:00+00:00"})
        migrate.upgrade(url)
        with engine.connect() as connection:
            kinds = connection.execute(text("SELECT kind FROM kb_faq")).scalars().all()
        assert kinds == ["answer"]
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text("UPDATE kb_faq SET kind = 'maybe'"))
        with engine.begin() as connection:
            connection.execute(text("UPDATE kb_faq SET kind = 'out_of_scope'"))
    finally:
        engine.dispose()


def test_sqlite_faq_kind(sqlite_url: str) -> None:
    _check_faq_kind(sqlite_url)


def test_postgres_faq_kind(postgres_url: str) -> None:
    _check_faq_kind(postgres_url)


def _check_unanswered_out_of_scope(url: str) -> None:
    """0025: the queue accepts ``out_of_scope`` (the reasons it froze are the model's) and keeps
    refusing unknown reasons; the downgrade files such questions as low-confidence ones, as
    they were queued before, instead of losing them."""
    import importlib.util

    from knowledge_base.unanswered import UnansweredReason

    path = migrate.MIGRATIONS_DIR / "versions" / "0025_unanswered_out_of_scope.py"
    spec = importlib.util.spec_from_file_location("unanswered_oos_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    frozen = {r.strip().strip("'") for r in module.REASONS_AFTER[11:-1].split(",")}
    assert frozen == {reason.value for reason in UnansweredReason}

    insert = text(
        "INSERT INTO kb_unanswered (created_at, language, text, wording, reason, top_faq_id,"
        " status) VALUES ('2026-03-02 10:00:00+00:00', 'en', 'cancel my flight',"
        " 'cancel my flight', :reason, 'out-of-scope-bookings', 'open')"
    )
    migrate.upgrade(url, "0024_faq_kind")
    engine = make_engine(url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert, {"reason": "out_of_scope"})
        migrate.upgrade(url)
        with engine.begin() as connection:
            connection.execute(insert, {"reason": "out_of_scope"})
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert, {"reason": "maybe"})
        migrate.downgrade(url, "0024_faq_kind")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT reason, top_faq_id FROM kb_unanswered")).all()
        assert [tuple(row) for row in rows] == [("low_confidence", "out-of-scope-bookings")]
        migrate.upgrade(url)
    finally:
        engine.dispose()


def test_sqlite_unanswered_out_of_scope(sqlite_url: str) -> None:
    _check_unanswered_out_of_scope(sqlite_url)


def test_postgres_unanswered_out_of_scope(postgres_url: str) -> None:
    _check_unanswered_out_of_scope(postgres_url)


def _check_ticket_out_of_scope(url: str) -> None:
    """0026 adds the ticket's out-of-scope entry (NULL for the tickets before it); going back
    drops it and keeps every ticket's messages (the SQLite table copy, as in 0020)."""
    migrate.upgrade(url, "0025_unanswered_out_of_scope")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _ticket_with_a_message(connection, reason="low_confidence")
        migrate.upgrade(url)
        with engine.begin() as connection:
            assert connection.scalar(text("SELECT out_of_scope_entry FROM handoff_ticket")) is None
            connection.execute(text("UPDATE handoff_ticket SET out_of_scope_entry = 'oos-a'"))
        migrate.downgrade(url, "0025_unanswered_out_of_scope")
        columns = {c["name"] for c in inspect(engine).get_columns("handoff_ticket")}
        assert "out_of_scope_entry" not in columns
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM handoff_message")) == 1
        migrate.upgrade(url)
    finally:
        engine.dispose()


def test_sqlite_ticket_out_of_scope(sqlite_url: str) -> None:
    _check_ticket_out_of_scope(sqlite_url)


def test_postgres_ticket_out_of_scope(postgres_url: str) -> None:
    _check_ticket_out_of_scope(postgres_url)


def _check_unanswered_chosen_faq(url: str) -> None:
    """0028 adds the FAQ a citizen picked for a queued question (NULL for the questions before
    it); going back drops it and keeps the queue's rows, its reason CHECK and its partial
    index of the questions out-of-scope entries took (SQLite copies the table to drop a
    column)."""
    insert = text(
        "INSERT INTO kb_unanswered (created_at, language, text, wording, reason, status)"
        " VALUES ('2026-03-02 10:00:00+00:00', 'en', 'zorbulator', 'zorbulator', :reason, 'open')"
    )
    migrate.upgrade(url, "0027_unanswered_oos_index")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(insert, {"reason": "clarified"})
        migrate.upgrade(url)
        with engine.begin() as connection:
            assert connection.scalar(text("SELECT chosen_faq_id FROM kb_unanswered")) is None
            connection.execute(text("UPDATE kb_unanswered SET chosen_faq_id = 'faq-a'"))
        migrate.downgrade(url, "0027_unanswered_oos_index")
        inspector = inspect(engine)
        assert "chosen_faq_id" not in {c["name"] for c in inspector.get_columns("kb_unanswered")}
        assert "ix_kb_unanswered_out_of_scope" in {
            i["name"] for i in inspector.get_indexes("kb_unanswered")
        }
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM kb_unanswered")) == 1
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert, {"reason": "maybe"})
        migrate.upgrade(url)
        assert not _schema_diffs(url)
    finally:
        engine.dispose()


def test_sqlite_unanswered_chosen_faq(sqlite_url: str) -> None:
    _check_unanswered_chosen_faq(sqlite_url)


def test_postgres_unanswered_chosen_faq(postgres_url: str) -> None:
    _check_unanswered_chosen_faq(postgres_url)
