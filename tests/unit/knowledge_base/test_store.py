"""FAQ store: validation, CRUD, audit trail, restore and optimistic concurrency."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from askagency.db import get_sessionmaker
from knowledge_base import store
from knowledge_base.models import AuditLog, Faq, QuestionVariant
from knowledge_base.store import FaqInput
from knowledge_base.types import FaqRecord


def make_input(faq_id: str = "liquids", **changes: object) -> FaqInput:
    values: dict[str, object] = {
        "id": faq_id,
        "language": "en",
        "category": "security",
        "question": "Can I bring liquids in my carry-on?",
        "answer": "Yes, containers up to 100 ml in one clear bag.",
        "variants": ["Are liquids allowed?", "Can I take a water bottle?"],
        "source_url": "https://www.example.gov/liquids",
        "review_by": "2030-01-31",
    }
    values.update(changes)
    return FaqInput.model_validate(values)


def field_errors(**changes: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        make_input(**changes)  # type: ignore[arg-type]
    return {str(e["loc"][0]): e["msg"].removeprefix("Value error, ") for e in info.value.errors()}


# --- FaqInput ------------------------------------------------------------------


def test_input_normalises_and_defaults() -> None:
    data = make_input(
        language="PT_BR", question="  Can I?\r\nReally  ", status="", source_url="", review_by=""
    )
    assert data.language == "pt-br"
    assert data.question == "Can I?\nReally"
    assert data.status == "draft"
    assert data.source_url is None
    assert data.review_by is None
    assert data.group == "liquids"
    assert data.variants == ("Are liquids allowed?", "Can I take a water bottle?")


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"faq_id": "Bad Id"}, "id", "lowercase letters"),
        ({"faq_id": "-x"}, "id", "not starting or ending with a hyphen"),
        ({"faq_id": "a" * 65}, "id", "1-64 characters"),
        ({"language": "english"}, "language", "language code"),
        ({"category": "  "}, "category", "must not be empty"),
        ({"question": "ab"}, "question", "3 to 500 characters (got 2)"),
        ({"question": "q" * 501}, "question", "3 to 500"),
        ({"answer": " "}, "answer", "1 to 2000 characters (got 0)"),
        ({"answer": "a" * 2001}, "answer", "1 to 2000"),
        ({"source_url": "ftp://x.gov/a"}, "source_url", "must start with http:// or https://"),
        ({"source_url": "javascript:alert(1)"}, "source_url", "http:// or https://"),
        ({"source_url": "https://"}, "source_url", "full web address"),
        ({"status": "live"}, "status", "must be one of draft, published, archived"),
        ({"review_by": "31/01/2030"}, "review_by", "YYYY-MM-DD"),
        ({"review_by": 5}, "review_by", "YYYY-MM-DD"),
        ({"variants": ["ok", " "]}, "variants", "variant 2 is empty"),
        ({"variants": ["Same", "same"]}, "variants", "variant 2 repeats variant 1"),
        ({"variants": ["a | b"]}, "variants", "must not contain '|'"),
        ({"variants": ["v" * 501]}, "variants", "longer than 500"),
        ({"variants": [f"v{i}" for i in range(51)]}, "variants", "at most 50"),
        ({"variants": "one, two"}, "variants", "must be a list"),
        (
            {"variants": ["Can I bring liquids in my carry-on?"]},
            "variants",
            "variant 1 repeats the question",
        ),
        ({"translation_group": "Not A Slug"}, "translation_group", "lowercase letters"),
    ],
)
def test_input_rejects_bad_values(changes: dict[str, object], field: str, reason: str) -> None:
    errors = field_errors(**changes)
    assert field in errors, errors
    assert reason in errors[field]


def test_input_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        FaqInput.model_validate({**make_input().model_dump(), "colour": "red"})


# --- create / read ---------------------------------------------------------------


def test_create_and_read_back(db_session: Session) -> None:
    faq = store.create_faq(db_session, make_input(), actor="alice")
    db_session.commit()

    loaded = store.get_faq(db_session, "liquids")
    assert loaded.version == 1
    assert loaded.created_by == loaded.updated_by == "alice"
    assert (
        loaded.created_at.tzinfo is not None and loaded.created_at.utcoffset().total_seconds() == 0
    )
    assert loaded.review_by == date(2030, 1, 31)
    assert loaded.translation_group == "liquids"
    assert [v.text for v in loaded.variants] == [
        "Are liquids allowed?",
        "Can I take a water bottle?",
    ]
    (entry,) = store.faq_history(db_session, "liquids")
    assert (entry.action, entry.actor, entry.before) == ("create", "alice", None)
    assert entry.after == store.snapshot(faq)
    assert entry.after["variants"] == ["Are liquids allowed?", "Can I take a water bottle?"]


def test_create_duplicate_id_is_refused(db_session: Session) -> None:
    store.create_faq(db_session, make_input(), actor="alice")
    with pytest.raises(store.FaqExists, match="'liquids' already exists"):
        store.create_faq(db_session, make_input(), actor="bob")


def test_unknown_id_raises_clear_error(db_session: Session) -> None:
    for call in (
        lambda: store.get_faq(db_session, "nope"),
        lambda: store.update_faq(db_session, "nope", make_input("nope"), "a"),
        lambda: store.set_status(db_session, "nope", "published", "a"),
        lambda: store.delete_faq(db_session, "nope", "a"),
        lambda: store.faq_history(db_session, "nope"),
    ):
        with pytest.raises(store.FaqNotFound, match="no FAQ with id 'nope'") as info:
            call()
        assert info.value.faq_id == "nope"


def test_published_records_filters_and_orders(db_session: Session) -> None:
    store.create_faq(db_session, make_input("zeta", status="published"), "a")
    store.create_faq(db_session, make_input("alpha", status="published"), "a")
    store.create_faq(db_session, make_input("draft-one"), "a")
    store.create_faq(
        db_session,
        make_input("alpha-es", language="es", status="published", translation_group="alpha"),
        "a",
    )
    db_session.commit()

    records = store.published_records(db_session)
    assert [r.id for r in records] == ["alpha", "alpha-es", "zeta"]
    assert all(isinstance(r, FaqRecord) for r in records)
    assert records[0].variants == ("Are liquids allowed?", "Can I take a water bottle?")
    assert records[0].question_texts()[0] == "Can I bring liquids in my carry-on?"
    assert records[1].translation_group == "alpha"
    assert [r.id for r in store.published_records(db_session, language="es")] == ["alpha-es"]


# --- update / status / delete ------------------------------------------------------


def test_update_bumps_version_and_audits(db_session: Session) -> None:
    store.create_faq(db_session, make_input(), "alice")
    changed = make_input(
        answer="Yes, up to 100 ml each.",
        variants=["Can I take a water bottle?", "Is shampoo allowed?"],
    )
    faq = store.update_faq(db_session, "liquids", changed, "bob", expected_version=1)
    db_session.commit()

    assert faq.version == 2 and faq.updated_by == "bob" and faq.created_by == "alice"
    assert [v.text for v in faq.variants] == ["Can I take a water bottle?", "Is shampoo allowed?"]
    assert db_session.scalar(select(func.count()).select_from(QuestionVariant)) == 2
    latest = store.faq_history(db_session, "liquids")[0]
    assert latest.action == "update"
    assert latest.before["answer"] == "Yes, containers up to 100 ml in one clear bag."
    assert latest.before["version"] == 1
    assert latest.after["answer"] == "Yes, up to 100 ml each."
    assert latest.after["version"] == 2


def test_update_with_identical_content_changes_nothing(db_session: Session) -> None:
    store.create_faq(db_session, make_input(), "alice")
    faq = store.update_faq(db_session, "liquids", make_input(), "bob")
    assert faq.version == 1
    assert len(store.faq_history(db_session, "liquids")) == 1


def test_update_cannot_rename(db_session: Session) -> None:
    store.create_faq(db_session, make_input(), "alice")
    with pytest.raises(ValueError, match="cannot be changed"):
        store.update_faq(db_session, "liquids", make_input("other"), "bob")


def test_version_conflict_when_expected_version_is_stale(db_session: Session) -> None:
    store.create_faq(db_session, make_input(), "alice")
    store.update_faq(db_session, "liquids", make_input(answer="Second."), "alice")
    db_session.commit()
    with pytest.raises(store.VersionConflict, match="edited version 1 but it is now at version 2"):
        store.update_faq(db_session, "liquids", make_input(answer="Third."), "bob", 1)
    with pytest.raises(store.VersionConflict):
        store.set_status(db_session, "liquids", "published", "bob", expected_version=1)
    with pytest.raises(store.VersionConflict):
        store.delete_faq(db_session, "liquids", "bob", expected_version=1)
    assert store.get_faq(db_session, "liquids").answer == "Second."


def test_concurrent_sessions_cannot_overwrite_each_other(db_url: str, db_session: Session) -> None:
    """Both editors loaded version 1; the second save must fail, not win."""
    store.create_faq(db_session, make_input(), "alice")
    db_session.commit()
    other = get_sessionmaker(db_url)()
    try:
        mine = store.get_faq(db_session, "liquids")
        theirs = store.get_faq(other, "liquids")
        assert mine.version == theirs.version == 1
        store.update_faq(other, "liquids", make_input(answer="Theirs."), "bob", 1)
        other.commit()
        # db_session still holds version 1 in its identity map: the UPDATE's
        # WHERE version = 1 matches no row.
        mine.answer = "Mine."
        mine.version = 2
        with pytest.raises(store.VersionConflict, match="changed by someone else"):
            store._flush(db_session, "liquids")
    finally:
        other.close()
    db_session.rollback()
    assert store.get_faq(db_session, "liquids").answer == "Theirs."


def test_set_status_records_specific_actions(db_session: Session) -> None:
    store.create_faq(db_session, make_input(), "alice")
    store.set_status(db_session, "liquids", "published", "bob")
    store.set_status(db_session, "liquids", "published", "bob")  # no-op
    store.set_status(db_session, "liquids", "archived", "carol")
    store.set_status(db_session, "liquids", "draft", "carol")
    actions = [e.action for e in store.faq_history(db_session, "liquids")]
    assert actions == ["unpublish", "archive", "publish", "create"]
    assert store.get_faq(db_session, "liquids").version == 4
    with pytest.raises(ValueError, match="status must be one of"):
        store.set_status(db_session, "liquids", "live", "carol")


def test_delete_keeps_history_and_removes_variants(db_session: Session) -> None:
    store.create_faq(db_session, make_input(), "alice")
    store.delete_faq(db_session, "liquids", "bob")
    db_session.commit()
    assert db_session.get(Faq, "liquids") is None
    assert db_session.scalar(select(func.count()).select_from(QuestionVariant)) == 0
    history = store.faq_history(db_session, "liquids")
    assert [e.action for e in history] == ["delete", "create"]
    assert history[0].after is None
    assert history[0].before["question"] == "Can I bring liquids in my carry-on?"


def test_actor_is_required(db_session: Session) -> None:
    with pytest.raises(ValueError, match="actor"):
        store.create_faq(db_session, make_input(), actor="  ")


# --- restore -----------------------------------------------------------------------


def test_restore_earlier_version(db_session: Session) -> None:
    store.create_faq(db_session, make_input(), "alice")
    store.update_faq(
        db_session, "liquids", make_input(answer="Wrong answer.", variants=["Only one"]), "bob"
    )
    db_session.commit()
    create_entry = store.faq_history(db_session, "liquids")[-1]

    faq = store.restore_version(db_session, "liquids", create_entry.id, "carol")
    db_session.commit()

    assert faq.answer == "Yes, containers up to 100 ml in one clear bag."
    assert [v.text for v in faq.variants] == [
        "Are liquids allowed?",
        "Can I take a water bottle?",
    ]
    assert faq.version == 3
    latest = store.faq_history(db_session, "liquids")[0]
    assert (latest.action, latest.actor) == ("restore", "carol")
    assert latest.before["answer"] == "Wrong answer."


def test_restore_deleted_faq(db_session: Session) -> None:
    store.create_faq(db_session, make_input(status="published"), "alice")
    store.update_faq(db_session, "liquids", make_input(status="published", answer="v2"), "a")
    store.delete_faq(db_session, "liquids", "bob")
    db_session.commit()
    delete_entry = store.faq_history(db_session, "liquids")[0]

    faq = store.restore_version(db_session, "liquids", delete_entry.id, "carol")
    db_session.commit()
    assert faq.answer == "v2" and faq.status == "published"
    assert faq.version == 3  # continues after the deleted incarnation's version 2
    assert [r.id for r in store.published_records(db_session)] == ["liquids"]


def test_restore_unknown_or_foreign_entry(db_session: Session) -> None:
    store.create_faq(db_session, make_input(), "alice")
    store.create_faq(db_session, make_input("other"), "alice")
    other_entry = store.faq_history(db_session, "other")[0]
    with pytest.raises(store.AuditEntryNotFound, match="no history entry 999"):
        store.restore_version(db_session, "liquids", 999, "carol")
    with pytest.raises(store.AuditEntryNotFound):
        store.restore_version(db_session, "liquids", other_entry.id, "carol")


# --- stats -------------------------------------------------------------------------


def test_stats(db_session: Session) -> None:
    store.create_faq(db_session, make_input("a", status="published", review_by="2020-01-01"), "x")
    store.create_faq(db_session, make_input("b", language="es", category="fees"), "x")
    store.create_faq(db_session, make_input("c", status="archived", review_by="2020-01-01"), "x")
    numbers = store.stats(db_session, today=date(2025, 6, 1))
    assert numbers == {
        "total": 3,
        "by_status": {"archived": 1, "draft": 1, "published": 1},
        "by_language": {"en": 2, "es": 1},
        "by_category": {"fees": 1, "security": 2},
        "variants": 6,
        "review_overdue": 1,
    }


def test_audit_timestamps_are_utc(db_session: Session) -> None:
    before = datetime.now(UTC)
    store.create_faq(db_session, make_input(), "alice")
    db_session.commit()
    db_session.expire_all()
    entry = db_session.scalars(select(AuditLog)).one()
    assert entry.at.tzinfo is not None
    assert before <= entry.at <= datetime.now(UTC)


def test_the_variant_cap_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A KB that grows by accepted unanswered questions (or an imported intent data set) raises
    the cap with ASKAGENCY_MAX_VARIANTS instead of being refused at 50."""
    from askagency.config import get_settings

    many = [f"variant {i}" for i in range(120)]
    assert "at most 50" in field_errors(variants=many)["variants"]
    monkeypatch.setenv("ASKAGENCY_MAX_VARIANTS", "150")
    get_settings.cache_clear()
    try:
        assert FaqInput.model_validate({**make_input().model_dump(), "variants": many}).variants
        assert "at most 150" in field_errors(variants=[*many, *many])["variants"]
    finally:
        monkeypatch.delenv("ASKAGENCY_MAX_VARIANTS")
        get_settings.cache_clear()
