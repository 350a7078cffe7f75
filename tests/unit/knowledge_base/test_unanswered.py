"""The unanswered-question queue: recording (redacted), clustering, suggestions, resolving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from rasa_sdk import Tracker
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import learning
from actions.spool_kinds import SPOOL_KINDS
from askagency.bot_messages import MessageType
from knowledge_base import store
from knowledge_base.models import AuditLog
from knowledge_base.store import FaqInput
from knowledge_base.types import Decision, FaqHit, Outcome
from knowledge_base.unanswered import (
    CHOICE_WINDOW,
    FaqUsage,
    QueryEmbeddingMemo,
    QuestionsNotOpen,
    UnansweredError,
    UnansweredQuestion,
    UnansweredStatus,
    accept_as_variant,
    add_suggestions,
    build_clusters,
    choice_payload,
    cluster_vectors,
    dismiss,
    mark_created,
    open_out_of_scope_count,
    open_questions,
    purge_before,
    record_answered,
    record_choice,
    record_unanswered,
    replay_choice,
    status_counts,
    usage_counts,
)
from tests.services import fresh_schema

MINUTE = timedelta(minutes=1)


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def make_faq(session: Session, faq_id: str = "liquids", **extra: object) -> None:
    data = {
        "id": faq_id,
        "language": "en",
        "category": "security",
        "question": "Can I bring liquids?",
        "answer": "Up to 3.4 oz per container.",
        "status": "published",
        **extra,
    }
    store.create_faq(session, FaqInput.model_validate(data), "alice")


def test_record_redacts_and_normalises(db_session: Session) -> None:
    row = record_unanswered(
        db_session,
        "  my KTN   TT1234567 is missing,\n call 202-555-0143 ",
        "low_confidence",
        language="EN",
        channel="rest",
        top_faq_id="tt-precheck-missing",
        top_score=0.41,
    )
    assert row is not None
    assert row.text == "my KTN [KTN] is missing, call [PHONE]"
    assert (row.language, row.reason, row.status) == ("en", "low_confidence", "open")
    assert row.top_score == pytest.approx(0.41)
    stored = db_session.scalars(select(UnansweredQuestion.text)).all()
    assert stored == ["my KTN [KTN] is missing, call [PHONE]"]


def test_record_skips_payloads_and_empty_text_and_truncates(db_session: Session) -> None:
    assert record_unanswered(db_session, '/choose_faq{"faq_id":"x"}', "clarified") is None
    assert record_unanswered(db_session, "  ", "handoff") is None
    assert record_unanswered(db_session, "ok", "handoff") is None
    long = record_unanswered(db_session, "why " * 300, "thumbs_down")
    assert long is not None and len(long.text) == 500 and long.text.endswith("…")
    with pytest.raises(ValueError):
        record_unanswered(db_session, "a real question", "bored")


def test_answer_counts(db_session: Session) -> None:
    record_answered(db_session, "liquids")
    record_answered(db_session, "liquids")
    record_answered(db_session, "laptops")
    assert usage_counts(db_session) == {"liquids": 2, "laptops": 1}
    usage = db_session.get(FaqUsage, "liquids")
    assert usage is not None and usage.last_answered_at >= usage.first_answered_at


def test_accept_as_variant_adds_variant_and_closes_questions(db_session: Session) -> None:
    make_faq(db_session)
    first = record_unanswered(db_session, "shampoo in hand luggage?", "low_confidence")
    second = record_unanswered(db_session, "Shampoo in hand luggage", "thumbs_down")
    assert first and second
    faq = accept_as_variant(
        db_session,
        [first.id, second.id],
        "liquids",
        "shampoo in hand luggage?",
        "bob",
        expected_version=1,
    )
    assert [v.text for v in faq.variants] == ["shampoo in hand luggage?"]
    assert faq.version == 2
    assert {q.status for q in (first, second)} == {"accepted"}
    assert first.resolved_faq_id == "liquids" and first.resolved_by == "bob"
    entry = db_session.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
    assert (
        entry is not None
        and entry.actor == "bob"
        and entry.after["variants"] == ["shampoo in hand luggage?"]
    )
    assert status_counts(db_session)["accepted"] == 2
    # Accepting the same questions again is refused with a clear message.
    with pytest.raises(QuestionsNotOpen, match="already handled"):
        accept_as_variant(db_session, [first.id], "liquids", "other", "carol")


def test_accept_existing_wording_does_not_duplicate(db_session: Session) -> None:
    make_faq(db_session, variants=["gels ok?"])
    row = record_unanswered(db_session, "Gels OK?", "clarified")
    assert row
    faq = accept_as_variant(db_session, [row.id], "liquids", "Gels OK?", "bob")
    assert [v.text for v in faq.variants] == ["gels ok?"] and faq.version == 1
    assert row.status == "accepted"


def test_accept_validates_through_the_store(db_session: Session) -> None:
    make_faq(db_session)
    row = record_unanswered(db_session, "liquids | gels", "clarified")
    assert row
    with pytest.raises(ValueError, match="must not contain"):
        accept_as_variant(db_session, [row.id], "liquids", "liquids | gels", "bob")
    with pytest.raises(store.FaqNotFound):
        accept_as_variant(db_session, [row.id], "nope", "liquids and gels", "bob")
    with pytest.raises(store.VersionConflict):
        accept_as_variant(db_session, [row.id], "liquids", "liquids and gels", "bob", 7)


def test_dismiss_create_and_unknown_ids(db_session: Session) -> None:
    make_faq(db_session)
    a = record_unanswered(db_session, "what time is it", "low_confidence")
    b = record_unanswered(db_session, "can I bring a kayak", "low_confidence")
    assert a and b
    assert dismiss(db_session, [a.id], "bob") == 1
    assert a.status == "dismissed" and a.resolved_faq_id is None
    assert mark_created(db_session, [b.id], "liquids", "bob") == 1
    assert b.status == UnansweredStatus.CREATED.value
    with pytest.raises(QuestionsNotOpen, match="unknown question ids: 999"):
        dismiss(db_session, [999], "bob")
    with pytest.raises(UnansweredError, match="no questions"):
        dismiss(db_session, [], "bob")
    assert open_questions(db_session) == []


def test_purge_keeps_open_questions_by_default(db_session: Session) -> None:
    old = datetime.now(UTC) - timedelta(days=100)
    a = record_unanswered(db_session, "old open question", "handoff", now=old)
    b = record_unanswered(db_session, "old handled question", "handoff", now=old)
    record_unanswered(db_session, "new question here", "handoff")
    assert a and b
    dismiss(db_session, [b.id], "bob")
    cutoff = datetime.now(UTC) - timedelta(days=30)
    assert purge_before(db_session, cutoff) == 1
    assert purge_before(db_session, cutoff, include_open=True) == 1
    assert [q.text for q in open_questions(db_session)] == ["new question here"]


# --- clustering ---------------------------------------------------------------------------------


def test_cluster_vectors_groups_by_threshold() -> None:
    vectors = np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0.95, 0.05, 0), unit(0, 0.9, 0.1)])
    assert cluster_vectors(vectors, 0.8) == [[0, 2], [1, 3]]
    assert cluster_vectors(vectors, 0.9999) == [[0], [1], [2], [3]]
    assert cluster_vectors(np.zeros((0, 3), dtype=np.float32), 0.8) == []
    assert cluster_vectors(vectors[:1], 0.8) == [[0]]


TOPIC = {
    "can i bring shampoo": unit(1, 0, 0),
    "shampoo in carry on?": unit(0.95, 0.3, 0),
    "lotion in hand luggage": unit(0.9, 0.2, 0),
    "where do i park": unit(0, 1, 0),
    "puedo llevar champú": unit(1, 0, 0),
    "cancel my flight": unit(0, 0, 1),
    "gel or liquid": unit(1, 1, 1),
}


def fake_embed(texts: list[str]) -> np.ndarray:
    return np.stack(
        [TOPIC[t.lower() if t.lower() in TOPIC else t.lower().rstrip("?")] for t in texts]
    )


def test_build_clusters_counts_examples_and_languages(db_session: Session) -> None:
    now = datetime.now(UTC)
    for minutes, text, language, reason in [
        (5, "can i bring shampoo", "en", "low_confidence"),
        (4, "can i bring shampoo", "en", "thumbs_down"),
        (3, "can i bring shampoo?", "en", "low_confidence"),
        (2, "shampoo in carry on?", "en", "clarified"),
        (1, "lotion in hand luggage", "en", "handoff"),
        (1, "where do i park", "en", "low_confidence"),
        (0, "puedo llevar champú", "es", "low_confidence"),
    ]:
        record_unanswered(
            db_session, text, reason, language=language, now=now - timedelta(minutes=minutes)
        )
    clusters = build_clusters(open_questions(db_session), fake_embed, threshold=0.8)
    # Largest first, then most recently asked.
    assert [(c.language, c.count) for c in clusters] == [("en", 5), ("es", 1), ("en", 1)]
    top = clusters[0]
    assert top.representative == "can i bring shampoo"
    assert top.examples[0] == ("can i bring shampoo", 3)
    assert {text for text, _ in top.examples} == {
        "can i bring shampoo",
        "shampoo in carry on?",
        "lotion in hand luggage",
    }
    assert top.reasons == {"low_confidence": 2, "thumbs_down": 1, "clarified": 1, "handoff": 1}
    assert len(top.question_ids) == 5 and top.first_seen < top.last_seen
    assert len({c.key for c in clusters}) == 3


def test_suggestions_take_the_best_score_per_faq() -> None:
    def hit(faq_id: str, score: float) -> FaqHit:
        return FaqHit(faq_id=faq_id, score=score, question=f"Q {faq_id}", answer="", language="en")

    results = {
        "can i bring shampoo": [hit("liquids", 0.55), hit("toiletries", 0.5)],
        "shampoo in carry on?": [hit("toiletries", 0.62), hit("aerosols", 0.3)],
    }
    calls: list[tuple[str, str]] = []

    def search(text: str, language: str) -> list[FaqHit]:
        calls.append((text, language))
        return results.get(text, [])

    rows = [
        UnansweredQuestion(
            id=i, text=t, language="en", reason="low_confidence", created_at=datetime.now(UTC)
        )
        for i, t in enumerate(["can i bring shampoo", "shampoo in carry on?"], start=1)
    ]
    clusters = build_clusters(rows, fake_embed, threshold=0.8)
    add_suggestions(clusters, search, per_cluster=2)
    assert [(s.faq_id, round(s.score, 2)) for s in clusters[0].suggestions] == [
        ("toiletries", 0.62),
        ("liquids", 0.55),
    ]
    assert {language for _, language in calls} == {"en"}


def test_embedding_memo_embeds_each_text_once() -> None:
    seen: list[str] = []

    def encode(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return fake_embed(texts)

    memo = QueryEmbeddingMemo(encode, max_items=2)
    first = memo(["can i bring shampoo", "where do i park", "can i bring shampoo"])
    assert first.shape == (3, 3)
    memo(["where do i park"])
    assert seen == ["can i bring shampoo", "where do i park"]
    memo(["lotion in hand luggage"])  # evicts the least recently used text
    memo(["can i bring shampoo"])
    assert seen[-1] == "can i bring shampoo" and memo.computed == 4


@pytest.mark.slow
def test_real_model_clusters_paraphrases_apart_from_other_topics() -> None:
    from askagency.config import bundled_model_path
    from knowledge_base.embedder import Embedder

    embedder = Embedder(bundled_model_path())
    texts = [
        "can I take my breast milk through security",
        "is breast milk allowed in carry on",
        "bringing breastmilk on the plane",
        "can I bring my pet rabbit on the plane",
        "flying with my bunny in the cabin",
        "what is the wifi password at the airport",
    ]
    now = datetime.now(UTC)
    rows = [
        UnansweredQuestion(id=i, text=t, language="en", reason="low_confidence", created_at=now)
        for i, t in enumerate(texts, start=1)
    ]
    clusters = build_clusters(rows, lambda t: embedder.encode(list(t), use_cache=False))
    groups = sorted(sorted(c.question_ids) for c in clusters)
    assert groups == [[1, 2, 3], [4, 5], [6]]


# --- the action server's side (actions/learning.py) ------------------------------------------


def _tracker(text: str, intent: str, events: list[dict]) -> Tracker:
    return Tracker(
        sender_id="citizen-7",
        slots={},
        latest_message={"text": text, "intent": {"name": intent}, "entities": [], "metadata": {}},
        events=events,
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


ANSWERED = [
    {"event": "user", "text": "my email is a@b.co, can I bring gel?", "input_channel": "rest"},
    {
        "event": "bot",
        "text": "Yes.",
        "data": {"custom": {"type": MessageType.FAQ_ANSWER, "faq_id": "gels"}},
    },
    {"event": "user", "text": "that didn't help", "input_channel": "rest"},
]


PICK = '/choose_faq{"faq_id":"liquids"}'
CLARIFIED = [
    {"event": "user", "text": "gel or liquid?", "input_channel": "rest"},
    {"event": "bot", "text": "Did you mean", "data": {"custom": {"type": MessageType.CLARIFY}}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": PICK, "input_channel": "rest"},
]
ANSWERED_THEN_RELATED = [*ANSWERED[:2], {"event": "user", "text": PICK}]


def test_question_before_options_reads_the_question_the_options_were_for() -> None:
    assert learning.question_before_options(CLARIFIED) == "gel or liquid?"
    # A press right after another press, or with no bot message between: no question.
    assert learning.question_before_options([CLARIFIED[0], CLARIFIED[3]]) is None
    pressed_twice = [CLARIFIED[3], CLARIFIED[1], CLARIFIED[3]]
    assert learning.question_before_options(pressed_twice) is None
    assert learning.question_before_options([]) is None


def test_a_pick_is_recorded_on_the_newest_question_of_that_wording(db_session: Session) -> None:
    asked = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    old = record_unanswered(db_session, "Gel or liquid?", "clarified", "en", now=asked)
    new = record_unanswered(db_session, "gel or liquid", "clarified", "en", now=asked + MINUTE)
    spanish = record_unanswered(db_session, "gel or liquid", "clarified", "es", now=asked)
    taken = record_unanswered(
        db_session, "gel or liquid", "out_of_scope", "en", "oos-x", now=asked + 2 * MINUTE
    )
    assert old and new and spanish and taken
    picked = record_choice(db_session, "GEL or liquid ?", " EN", "liquids", now=asked + 3 * MINUTE)
    assert picked is new and new.chosen_faq_id == "liquids"
    # The next pick of those words goes to the older question; then none is left in English.
    assert record_choice(db_session, "gel or liquid", "en", "gels", now=asked + 4 * MINUTE) is old
    assert record_choice(db_session, "gel or liquid", "en", "x", now=asked + 5 * MINUTE) is None
    assert taken.chosen_faq_id is None and spanish.chosen_faq_id is None
    # Asked after the pick, or longer ago than the window: not the question picked for.
    assert record_choice(db_session, "gel or liquid", "es", "gels", now=asked - MINUTE) is None
    later = asked + CHOICE_WINDOW + MINUTE
    assert record_choice(db_session, "gel or liquid", "es", "gels", now=later) is None
    assert record_choice(db_session, '/choose_faq{"faq_id":"gels"}', "es", "gels") is None
    clusters = build_clusters(open_questions(db_session, language="en"), fake_embed)
    assert [c.chosen for c in clusters] == [{"liquids": 1, "gels": 1}]


def test_a_pick_spooled_during_an_outage_finds_its_question(db_session: Session) -> None:
    asked = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    question = record_unanswered(db_session, "gel or liquid", "clarified", "en", now=asked)
    payload = {**choice_payload("gel or liquid", "en", "liquids")}
    payload["chosen_at"] = (asked + MINUTE).isoformat()
    SPOOL_KINDS["faq_chosen"](db_session, payload)
    assert question is not None and question.chosen_faq_id == "liquids"
    with pytest.raises(ValueError):
        replay_choice(db_session, {"text": "gel or liquid", "language": "en"})


def test_last_answered_question_reads_the_conversation() -> None:
    assert learning.last_answered_question(ANSWERED) == (
        "my email is a@b.co, can I bring gel?",
        "gels",
    )
    fallback = [ANSWERED[0], {"event": "bot", "data": {"custom": {"type": MessageType.FALLBACK}}}]
    assert learning.last_answered_question(fallback) is None
    button = [{"event": "user", "text": '/choose_faq{"faq_id":"gels"}'}, *ANSWERED[1:]]
    assert learning.last_answered_question(button) is None
    assert learning.last_answered_question([]) is None


async def test_actions_record_redacted_questions_and_answers(db_url: str) -> None:
    def hit(faq_id: str, score: float) -> FaqHit:
        return FaqHit(faq_id=faq_id, score=score, question="q", answer="a", language="en")

    low = Decision(Outcome.HANDOFF, (hit("gels", 0.2),), 0.2)
    clarify = Decision(Outcome.CLARIFY, (hit("gels", 0.5), hit("liquids", 0.48)), 0.5)
    answer = Decision(Outcome.ANSWER, (hit("gels", 0.9),), 0.9)
    current = _tracker("x", "ask_question", [])
    learning.note_decision(current, "call me on 202-555-0143 re knives", low, "en", False)
    learning.note_decision(current, "gel or liquid?", clarify, "en", False)
    learning.note_decision(current, "can I bring gel", answer, "en", False)
    learning.note_decision(current, "I'm fed up", low, "en", True)
    await learning.drain()  # queued before the citizen picks, as a click comes seconds later
    learning.note_choice(_tracker(PICK, "choose_faq", CLARIFIED), "liquids", "en")
    # A related FAQ's button under an answer says nothing about the question before it.
    learning.note_choice(_tracker(PICK, "choose_faq", ANSWERED_THEN_RELATED), "gels", "en", False)
    thumbs = _tracker("that didn't help", "feedback_bad", ANSWERED)
    learning.note_unhelpful_answer(thumbs, "thumbs_down", "en")
    await learning.drain()

    from askagency.db import session_scope

    with session_scope() as session:
        rows = {(q.text, q.reason, q.top_faq_id) for q in open_questions(session)}
        assert rows == {
            ("call me on [PHONE] re knives", "low_confidence", "gels"),
            ("gel or liquid?", "clarified", "gels"),
            ("I'm fed up", "handoff", "gels"),
            ("my email is [EMAIL], can I bring gel?", "thumbs_down", "gels"),
        }
        assert usage_counts(session) == {"gels": 2, "liquids": 1}
        chosen = {q.text: q.chosen_faq_id for q in open_questions(session)}
        assert chosen["gel or liquid?"] == "liquids"
        assert set(chosen.values()) == {"liquids", None}
        channels = {q.channel for q in open_questions(session) if q.reason == "thumbs_down"}
        assert channels == {"rest"}


async def test_recording_never_breaks_a_turn(tmp_settings: object) -> None:
    """No migrated database at all: the recording logs and the action carries on."""
    low = Decision(Outcome.HANDOFF, (), 0.0)
    learning.note_decision(_tracker("x", "ask_question", []), "hello there", low, "en", False)
    await learning.drain()


def test_queue_on_postgresql() -> None:
    """The scale profile: the same recording, counting and resolving on PostgreSQL
    (a throw-away schema on the local server, tests/services.py)."""
    from askagency import migrate
    from askagency.db import make_engine

    with fresh_schema() as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                make_faq(session)
                row = record_unanswered(session, "gels at 202-555-0143?", "low_confidence")
                record_answered(session, "liquids")
                record_answered(session, "liquids")
                assert row is not None and row.text == "gels at [PHONE]?"
                accept_as_variant(session, [row.id], "liquids", "gels ok?", "bob", 1)
                session.commit()
                assert usage_counts(session) == {"liquids": 2}
                assert status_counts(session)["accepted"] == 1
                stored = session.get(UnansweredQuestion, row.id)
                assert stored is not None and stored.resolved_at is not None
                assert stored.resolved_at.utcoffset() is not None
        finally:
            engine.dispose()


def test_questions_an_out_of_scope_entry_took_are_listed_apart(db_session: Session) -> None:
    """The queue's questions that need an answer leave out those an out-of-scope entry took;
    staff list those on their own, each cluster naming the entries that took it."""
    now = datetime.now(UTC)
    for minutes, text, reason, top in [
        (4, "cancel my flight", "out_of_scope", "out-of-scope-bookings"),
        (3, "cancel my flight?", "out_of_scope", "out-of-scope-bookings"),
        (2, "can i bring shampoo", "low_confidence", "liquids"),
        (1, "cancel my flight", "handoff", None),  # a person asked for, no entry took it
    ]:
        record_unanswered(
            db_session, text, reason, top_faq_id=top, now=now - timedelta(minutes=minutes)
        )
    needing = open_questions(db_session)
    assert [(q.text, q.reason) for q in needing] == [
        ("cancel my flight", "handoff"),
        ("can i bring shampoo", "low_confidence"),
    ]
    taken = open_questions(db_session, out_of_scope=True)
    assert {q.reason for q in taken} == {"out_of_scope"} and len(taken) == 2
    assert open_out_of_scope_count(db_session) == 2
    assert status_counts(db_session)["open"] == 4  # all open ones, as before
    (cluster,) = build_clusters(taken, fake_embed, threshold=0.8)
    assert cluster.count == 2
    assert cluster.out_of_scope_entries == {"out-of-scope-bookings": 2}
    assert all(not c.out_of_scope_entries for c in build_clusters(needing, fake_embed, 0.8))
