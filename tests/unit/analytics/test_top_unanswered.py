"""Top unanswered questions grouped by the stored wording in SQL give what grouping the rows in
Python gave (``python_grouping``, the definition before the wording columns), on SQLite and
PostgreSQL: case, spacing and punctuation variants, ties, filters and the limit; for the queue
and, under a location filter, for the location's fallback and clarify turns."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from analytics import metrics
from analytics.metrics import MetricFilter, top_unanswered
from analytics.models import AnalyticsConversation, AnalyticsTurn, turn_wording
from knowledge_base.unanswered import UnansweredQuestion, UnansweredReason, wording_key
from tests.services import migrated_pg_session
from tests.unit.analytics.rows import one_turn_conversation

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
PERIOD = MetricFilter(date(2026, 3, 1), date(2026, 3, 31))

# (text, minutes after T0, channel, language), inserted in this order (ids ascending).
ROWS: list[tuple[str, int, str, str]] = [
    # "drone": 3 rows, two texts tie 1-1-1 -> the first one typed is shown
    ("can i bring a drone", 10, "rest", "en"),
    ("Can I  bring a DRONE?", 20, "socketio", "en"),
    ("can I bring a drone?!", 30, "rest", "en"),
    # "pets" and "kayak": 3 rows each, same last_seen as "drone" -> ranked by wording
    # (the Python grouping ranked by the first text typed: the same order here)
    ("pets in cabin", 5, "rest", "en"),
    ("Pets in cabin?", 30, "rest", "es"),
    ("Pets in cabin?", 1, "rest", "en"),
    ("kayak as luggage.", 30, "rest", "en"),
    ("kayak as luggage", 2, "socketio", "en"),
    ("KAYAK AS LUGGAGE", 3, "rest", "en"),
    # "gels": 4 rows, the most common text wins over the first one typed
    ("gels ok", 40, "rest", "en"),
    ("Gels OK?", 41, "rest", "en"),
    ("Gels OK?", 42, "socketio", "en"),
    ("gels   ok ...", 43, "rest", "en"),
    # single rows: same count, ranked by last seen, then wording
    ("Lighter on board?", 50, "rest", "en"),
    ("umbrella\n allowed\t", 50, "rest", "en"),
    ("Straße oder Strasse?", 60, "rest", "de"),
    ("strasse oder strasse", 61, "rest", "de"),
    ("???", 70, "rest", "en"),  # no wording: never counted
    ("outside the period", -60 * 24 * 5, "rest", "en"),
]


def _insert(session: Session, rows: list[tuple[str, int, str, str]]) -> None:
    for text, minutes, channel, language in rows:
        session.add(
            UnansweredQuestion(
                created_at=T0 + timedelta(minutes=minutes),
                language=language,
                text=text,
                reason="low_confidence",
                channel=channel,
                status="open",
            )
        )
    session.flush()


def python_grouping(
    items: Iterable[tuple[str, datetime]], source: str, limit: int
) -> list[metrics.Unanswered]:
    """Texts grouped by wording in Python: the most asked first, then the most recently asked,
    then the wording in code-point order; each shown as its most typed text (a tie: the first
    typed)."""
    groups: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for text, when in items:
        key = wording_key(text)
        if key:
            groups[key].append((text, when))
    ranked = sorted(
        groups.values(),
        key=lambda g: (-len(g), -max(w for _, w in g).timestamp(), wording_key(g[0][0])),
    )
    return [
        metrics.Unanswered(
            question=Counter(text for text, _ in g).most_common(1)[0][0],
            count=len(g),
            last_seen=max(w for _, w in g).isoformat(),
            source=source,
        )
        for g in ranked[:limit]
    ]


def _python_grouping(session: Session, flt: MetricFilter, limit: int) -> list[metrics.Unanswered]:
    """What top_unanswered did before the wording column: every row an out-of-scope entry did
    not take, in id order, grouped in Python."""
    query = metrics._filtered(
        select(UnansweredQuestion.text, UnansweredQuestion.created_at)
        .where(
            UnansweredQuestion.created_at >= flt.start_dt,
            UnansweredQuestion.created_at < flt.end_dt,
            UnansweredQuestion.reason != UnansweredReason.OUT_OF_SCOPE.value,
        )
        .order_by(UnansweredQuestion.id),
        UnansweredQuestion,
        flt,
    )
    return python_grouping(session.execute(query).tuples(), "queue", limit)


FILTERS = [
    PERIOD,
    MetricFilter(date(2026, 3, 1), date(2026, 3, 31), channel="rest"),
    MetricFilter(date(2026, 3, 1), date(2026, 3, 31), language="en"),
    MetricFilter(date(2026, 3, 2), date(2026, 3, 2), zone="America/Denver"),
    MetricFilter(date(2026, 1, 1), date(2026, 1, 31)),  # nothing
]


def _check_crafted(session: Session) -> None:
    _insert(session, ROWS)
    # Asked most, but taken by an out-of-scope entry: handed off by design, not a gap.
    for minutes in range(6):
        session.add(
            UnansweredQuestion(
                created_at=T0 + timedelta(minutes=minutes),
                language="en",
                text="cancel my flight",
                reason=UnansweredReason.OUT_OF_SCOPE.value,
                top_faq_id="out-of-scope-bookings",
                channel="rest",
                status="open",
            )
        )
    session.flush()
    got = top_unanswered(session, PERIOD, limit=20)
    assert [(u.question, u.count) for u in got] == [
        ("Gels OK?", 4),
        ("can i bring a drone", 3),
        ("kayak as luggage.", 3),
        ("Pets in cabin?", 3),
        ("Straße oder Strasse?", 2),
        ("Lighter on board?", 1),
        ("umbrella\n allowed\t", 1),
    ]
    assert got[0].last_seen == (T0 + timedelta(minutes=43)).isoformat()
    assert {u.source for u in got} == {"queue"}
    for flt in FILTERS:
        for limit in (1, 2, 3, 10):  # 2 and 3 cut inside the three-way tie
            assert top_unanswered(session, flt, limit) == _python_grouping(session, flt, limit)


def _check_random(session: Session) -> None:
    """Many variants of a few questions, with distinct times (the Python grouping's tie-break
    on the first text typed is then never needed across groups)."""
    rng = random.Random(22)
    bases = [f"question number {i} about liquids" for i in range(40)]
    rows = []
    for n in range(1500):
        base = rng.choice(bases[: rng.randint(1, 40)])  # skewed: low numbers asked more
        text = rng.choice([base, base.upper(), base.title(), base + "?", base.replace(" ", "  ")])
        rows.append((text, n * 7, rng.choice(["rest", "socketio"]), rng.choice(["en", "es"])))
    _insert(session, rows)
    for flt in (PERIOD, FILTERS[1], FILTERS[2]):
        assert top_unanswered(session, flt, 10) == _python_grouping(session, flt, 10)


def test_sql_grouping_equals_python_grouping_on_sqlite(db_session: Session) -> None:
    _check_crafted(db_session)


def test_sql_grouping_equals_python_grouping_on_random_rows_on_sqlite(
    db_session: Session,
) -> None:
    _check_random(db_session)


@pytest.fixture
def pg_session() -> Iterator[Session]:
    """A fresh PostgreSQL schema migrated to head (skips, or fails under CI, without it)."""
    with migrated_pg_session("unanswered") as session:
        yield session


def test_sql_grouping_equals_python_grouping_on_postgresql(pg_session: Session) -> None:
    _check_crafted(pg_session)
    pg_session.rollback()
    _check_random(pg_session)


def test_ties_rank_by_wording_not_by_the_first_text_typed(db_session: Session) -> None:
    """Equal count and last seen rank by wording in code-point order, in the queue and in a
    location's turns. The first Python grouping compared the first text typed, so case decided
    ("Zebra" before "apple"), and on PostgreSQL, without an ORDER BY, so did the scan order."""
    tied = [("Zebra crossing?", 0, "rest", "en"), ("apple juice", 0, "rest", "en")]
    _insert(db_session, tied)
    assert [u.question for u in top_unanswered(db_session, PERIOD)] == [
        "apple juice",
        "Zebra crossing?",
    ]
    _seed_turns(db_session, [tied[0], ("other", 0, "rest", "en"), tied[1]])  # both at DEN
    at_den = MetricFilter(date(2026, 3, 1), date(2026, 3, 31), location="DEN")
    assert [u.question for u in top_unanswered(db_session, at_den)] == [
        "apple juice",
        "Zebra crossing?",
    ]


def test_every_write_stores_the_wording(db_session: Session) -> None:
    """ORM rows, edits of the text and Core (bulk) inserts all keep wording = wording_key(text)."""
    _insert(db_session, [("Can I bring  a Drone?", 0, "rest", "en")])
    row = db_session.scalars(select(UnansweredQuestion)).one()
    assert row.wording == "can i bring a drone"
    row.text = "Pets OK?!"
    db_session.flush()
    db_session.execute(
        insert(UnansweredQuestion),
        [
            {"created_at": T0, "language": "en", "text": "Kayak  OK ?", "reason": "handoff"},
            {"created_at": T0, "language": "en", "text": "Straße", "reason": "handoff"},
        ],
    )
    db_session.expire_all()
    stored = db_session.execute(
        select(UnansweredQuestion.text, UnansweredQuestion.wording).order_by(UnansweredQuestion.id)
    ).all()
    assert [tuple(r) for r in stored] == [
        ("Pets OK?!", "pets ok"),
        ("Kayak  OK ?", "kayak ok"),
        ("Straße", "strasse"),
    ]
    assert wording_key("x" * 499 + "ß") == "x" * 499 + "s"  # cut to the column size


# --- under a location filter: the location's fallback and clarify turns --------------------


def _seed_turns(session: Session, rows: list[tuple[str, int, str, str]]) -> None:
    """One conversation per row (alternately at DEN and MIA, and every third one in another
    channel), its citizen message the row's text, answered by a fallback, a clarify list or
    (every fifth) an answer, which never counts."""
    outcomes = ["fallback", "clarify", "fallback", "clarify", "answer"]
    for i, (text, minutes, channel, language) in enumerate(rows):
        session.add(
            one_turn_conversation(
                f"s{i}",
                T0 + timedelta(minutes=minutes),
                text,
                outcome=outcomes[i % 5],
                channel=channel if i % 3 else "socketio",
                language=language,
                location="DEN" if i % 2 == 0 else "MIA",
            )
        )
    session.flush()


def _python_turn_grouping(
    session: Session, flt: MetricFilter, limit: int
) -> list[metrics.Unanswered]:
    """The location branch before the wording column: the location's fallback and clarify
    turns with text, in time order, grouped in Python."""
    c, t = AnalyticsConversation, AnalyticsTurn
    query = metrics._filtered(
        select(t.text, t.started_at)
        .join(c)
        .where(
            c.started_at >= flt.start_dt,
            c.started_at < flt.end_dt,
            t.outcome.in_(("fallback", "clarify")),
            t.text.is_not(None),
        )
        .order_by(t.started_at, t.id),
        c,
        flt,
    )
    return python_grouping(session.execute(query).tuples(), "turns", limit)


def _check_turns(session: Session) -> None:
    rng = random.Random(7)
    bases = [f"is the {w} allowed" for w in ("drone", "kayak", "sword", "cat", "gel", "wok")]
    rows = list(ROWS)
    for n in range(400):
        base = rng.choice(bases[: rng.randint(1, len(bases))])
        text = rng.choice([base, base.upper(), base + "?", base.replace(" ", "  ")])
        rows.append((text, 100 + n * 3, rng.choice(["rest", "web"]), rng.choice(["en", "es"])))
    _seed_turns(session, rows)
    den = MetricFilter(date(2026, 3, 1), date(2026, 3, 31), location="DEN")
    flts = [
        den,
        MetricFilter(date(2026, 3, 1), date(2026, 3, 31), location="MIA", channel="rest"),
        MetricFilter(date(2026, 3, 1), date(2026, 3, 31), location="DEN", language="es"),
        MetricFilter(date(2026, 3, 2), date(2026, 3, 2), zone="America/Denver", location="MIA"),
        MetricFilter(date(2026, 3, 1), date(2026, 3, 31), location="ORD"),  # nothing
    ]
    for flt in flts:
        for limit in (1, 3, 10):
            assert top_unanswered(session, flt, limit) == _python_turn_grouping(
                session, flt, limit
            ), (flt, limit)
    shown = top_unanswered(session, den, 10)
    assert shown and {u.source for u in shown} == {"turns"}
    assert sum(u.count for u in shown) > 50


def test_a_locations_turns_grouped_in_sql_equal_python_grouping_on_sqlite(
    db_session: Session,
) -> None:
    _check_turns(db_session)


def test_a_locations_turns_grouped_in_sql_equal_python_grouping_on_postgresql(
    pg_session: Session,
) -> None:
    _check_turns(pg_session)


def test_unanswered_turns_store_their_wording(db_session: Session) -> None:
    """Fallback and clarify turns with text get wording_key(text), written by ingest or not;
    every other turn none."""
    _seed_turns(
        db_session,
        [("Can I  bring a DRONE?", 0, "rest", "en"), ("hi", 1, "rest", "en")] * 3,
    )
    stored = db_session.execute(
        select(AnalyticsTurn.outcome, AnalyticsTurn.wording).order_by(AnalyticsTurn.id)
    ).all()
    assert [tuple(r) for r in stored] == [
        ("fallback", "can i bring a drone"),
        ("clarify", "hi"),
        ("fallback", "can i bring a drone"),
        ("clarify", "hi"),
        ("answer", None),
        ("fallback", "hi"),
    ]
    assert turn_wording("clarify", None) is None and turn_wording("fallback", "???") == ""
