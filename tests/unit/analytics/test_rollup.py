"""Daily roll-ups (issue 22, item 6): what ingest maintains equals a rebuild from the rows, the
roll-up dashboard equals the exact one on the scenario (percentiles within a bucket), and a
time zone the roll-ups were not built in is never served."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import rollup, rollup_read
from analytics.dashboard import compute_dashboard, compute_summary
from analytics.ingest import ingest, rebuild_since
from analytics.metrics import Assumptions, Dashboard, FilterError, MetricFilter
from analytics.models import AnalyticsDaily, AnalyticsDailyCount, AnalyticsMonthlyCount
from analytics.rollup_dashboard import dashboard_from_rollups, summary_from_rollups
from tests.services import migrated_pg_session
from tests.unit.analytics.test_scenario import (
    DAY1,
    SCENARIO_FILTER,
    Conversation,
    answer,
    scenario_events,
    seed,
    seed_locations,
    seed_tickets,
)

BUCKET_RATIO = 10 ** (1 / rollup_read.BUCKETS_PER_DECADE)


def roll_up_rows(session: Session) -> tuple[list[tuple[Any, ...]], ...]:
    """Every roll-up row of every table (days, labelled counts by day, by month and by day over
    every dimension), in key order, for comparing two ways of building them."""
    session.flush()
    return tuple(
        sorted(
            tuple(getattr(r, c.name) for c in model.__table__.columns)
            for r in session.scalars(select(model))
        )
        for model in (AnalyticsDaily, *(table[0] for table in rollup.LABEL_TABLES))
    )


def rebuilt_rows(session: Session, zone: str) -> tuple[list[Any], ...]:
    """The rows a full rebuild writes (the incremental ones are thrown away)."""
    rollup.rebuild(session, zone)
    return roll_up_rows(session)


def extra_events(seed_value: int) -> list[dict[str, Any]]:
    """More senders around midnight in several zones, with handoffs, feedback and negative
    messages, so days, hours and every kind of label move when conversations are rebuilt."""
    rng = random.Random(seed_value)
    events: list[dict[str, Any]] = []
    for i in range(12):
        start = DAY1 + timedelta(hours=rng.choice([3, 5, 6, 23]), minutes=rng.randrange(60))
        c = Conversation(f"extra-{i}", start, location=rng.choice([None, "den", "mia"]))
        c.session_start()
        c.user(
            "the line was terrible and slow", "ask_question", channel=rng.choice(["rest", "web"])
        )
        c.bot(rng.uniform(5, 3000), answer(rng.choice(["liquids", "id", "pets"]), 0.7))
        if rng.random() < 0.5:
            c.user("/feedback_bad", "feedback_bad").bot(10, {"type": "feedback_thanks"})
        if rng.random() < 0.4:
            c.user("I want a person", "human").bot(
                40, {"type": "handoff", "reason": "requested", "ticket_id": str(100 + i)}
            )
        if rng.random() < 0.4:  # a second session the next day
            c.now += 86_400
            c.session_start().user("hello again", "greet").bot(15, {"type": "greeting"})
        events.extend(c.events)
    return events


def ingest_randomly(session: Session, events: list[dict[str, Any]], rng: random.Random) -> None:
    """Shuffled, in random batches, with about a third of the events delivered twice."""
    items = [*events, *rng.sample(events, len(events) // 3)]
    rng.shuffle(items)
    position = 0
    while position < len(items):
        size = rng.randint(1, 25)
        batch = items[position : position + size]
        ingest(session, [(None, json.dumps(e)) for e in batch], "test")
        session.commit()
        position += size


@pytest.mark.parametrize("seed_value", [1, 2, 3])
@pytest.mark.parametrize("zone", ["UTC", "America/Denver", "Asia/Kolkata"])
def test_incremental_equals_a_rebuild_after_random_ingests(
    db_session: Session, seed_value: int, zone: str
) -> None:
    seed_locations(db_session)
    rollup.rebuild(db_session, zone)  # built (empty) before any event: ingest maintains them
    db_session.commit()
    rng = random.Random(seed_value)
    ingest_randomly(db_session, [*scenario_events(), *extra_events(seed_value)], rng)
    incremental = roll_up_rows(db_session)
    assert incremental[0], "ingest wrote no roll-up"
    assert incremental == rebuilt_rows(db_session, zone)


def test_rebuilding_conversations_keeps_the_roll_ups_right(db_session: Session) -> None:
    """`askagency analytics rebuild --from DAY` rebuilds conversations (here after a location
    was added, which moves B's conversation); the roll-ups follow."""
    seed(db_session)
    rollup.rebuild(db_session, "UTC")
    db_session.commit()
    rebuild_since(db_session, DAY1)
    assert roll_up_rows(db_session) == rebuilt_rows(db_session, "UTC")


def test_a_partial_rebuild_from_a_day_equals_a_full_one(db_session: Session) -> None:
    seed_locations(db_session)
    ingest(db_session, [(None, e) for e in [*scenario_events(), *extra_events(7)]], "test")
    full = rebuilt_rows(db_session, "America/Denver")
    rollup.rebuild(db_session, "America/Denver", since=DAY1.date() + timedelta(days=1))
    assert roll_up_rows(db_session) == full


def rolled_up(session: Session, flt: MetricFilter = SCENARIO_FILTER) -> Dashboard:
    """The roll-up path forced on the scenario (it is small, so the dashboard would not)."""
    board = dashboard_from_rollups(session, flt, Assumptions(6.0, 37.5), exact_up_to=-1)
    assert board is not None
    return board


PERCENTILE_FIELDS = {"p50", "p90", "p99", "response_p50_ms", "response_p90_ms", "response_p99_ms"}


def split_percentiles(value: Any, found: list[tuple[float, float]], other: Any = None) -> Any:
    """``value`` without its bot response-time percentiles, which go to ``found`` paired with
    ``other``'s (the same structure from the other path)."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            twin = other.get(key) if isinstance(other, dict) else None
            if key in PERCENTILE_FIELDS and (item is None or isinstance(item, float)):
                found.append((item, twin))
            else:
                result[key] = split_percentiles(item, found, twin)
        return result
    if isinstance(value, list):
        twins = (
            other if isinstance(other, list) and len(other) == len(value) else [None] * len(value)
        )
        return [split_percentiles(v, found, t) for v, t in zip(value, twins, strict=True)]
    return value


def assert_same_dashboard(exact: Dashboard, fast: Dashboard) -> None:
    """Every figure equal, except bot response-time percentiles: within one bucket."""
    exact_data = exact.model_dump()
    # Human response times come from the ticket rows on both paths: exact, compared as is.
    pairs: list[tuple[float, float]] = []
    bot_exact = exact_data["summary"].pop("bot_response_ms")
    bot_fast = fast.model_dump()["summary"]["bot_response_ms"]
    fast_data = fast.model_dump()
    fast_data["summary"].pop("bot_response_ms")
    assert bot_exact["count"] == bot_fast["count"]
    pairs += [(bot_exact[q], bot_fast[q]) for q in ("p50", "p90", "p99")]
    exact_rest = split_percentiles(exact_data, pairs, fast_data)
    fast_rest = split_percentiles(fast_data, [], None)
    assert fast_rest == exact_rest
    assert pairs
    for truth, estimate in pairs:
        if truth is None:
            assert estimate is None
        else:
            assert estimate is not None
            assert truth / BUCKET_RATIO <= estimate <= truth * BUCKET_RATIO, (truth, estimate)


def filters() -> Iterator[MetricFilter]:
    yield SCENARIO_FILTER
    yield MetricFilter(DAY1.date(), DAY1.date())
    yield MetricFilter(SCENARIO_FILTER.start, SCENARIO_FILTER.end, channel="rest")
    yield MetricFilter(SCENARIO_FILTER.start, SCENARIO_FILTER.end, language="es")
    yield MetricFilter(SCENARIO_FILTER.start, SCENARIO_FILTER.end, location="DEN")
    yield MetricFilter(SCENARIO_FILTER.start, SCENARIO_FILTER.end, location="unknown")


def test_the_roll_up_dashboard_equals_the_exact_one_on_the_scenario(seeded: Session) -> None:
    from knowledge_base.unanswered import record_unanswered

    for text, entry in [("cancel my flight", "oos-bookings"), ("my passport", "oos-passports")]:
        record_unanswered(seeded, text, "out_of_scope", top_faq_id=entry, now=DAY1)
    record_unanswered(seeded, "can I bring a drone", "low_confidence", now=DAY1)
    rollup.rebuild(seeded, "UTC")
    for flt in filters():
        exact = compute_dashboard(seeded, flt, Assumptions(6.0, 37.5))  # small: the exact path
        assert_same_dashboard(exact, rolled_up(seeded, flt))
    # The queue's two figures reach the roll-up path too (read alongside it).
    fast = rolled_up(seeded)
    assert [(o.entry, o.count) for o in fast.out_of_scope] == [
        ("oos-bookings", 1),
        ("oos-passports", 1),
    ]
    assert [u.question for u in fast.top_unanswered] == ["can I bring a drone"]


def handoffs_with_odd_ticket_ids() -> list[dict[str, Any]]:
    """Handed-off conversations whose ticket id is no ticket row's id as text ("007" and "12abc"
    are not ticket 7 or 12; "x-1" is no number), each closed by its own events, and one whose
    ticket row says resolved while its close event said not (the row wins)."""
    events: list[dict[str, Any]] = []
    for i, (ticket, resolved) in enumerate(
        [("007", True), ("12abc", True), ("x-1", False), ("7", False)]
    ):
        c = Conversation(f"odd-{i}", DAY1 + timedelta(hours=12, minutes=i)).session_start()
        c.user("I want a person", "human").bot(
            40, {"type": "handoff", "reason": "requested", "ticket_id": ticket}
        )
        c.now += 300
        c._add(
            {"event": "bot", "data": {"custom": {"type": "handoff_closed", "resolved": resolved}}}
        )
        events.extend(c.events)
    return events


def seed_odd_tickets(session: Session) -> None:
    """The scenario, the conversations above, and ticket rows 7 and 12 (7 resolved)."""
    from handoff.models import Ticket

    seed_locations(session)
    events = [*scenario_events(), *handoffs_with_odd_ticket_ids()]
    ingest(session, [(str(i), e) for i, e in enumerate(events)], "test")
    seed_tickets(session)
    opened = DAY1 + timedelta(hours=12, minutes=5)
    for number, status in ((7, "closed_resolved"), (12, "closed_unresolved")):
        session.add(
            Ticket(
                id=number,
                conversation_id=f"other-{number}",
                channel="rest",
                reason="requested",
                status=status,
                created_at=opened,
                first_agent_reply_at=opened + timedelta(seconds=60),
                closed_at=opened + timedelta(seconds=120),
            )
        )
    session.commit()


def assert_odd_ticket_ids_count_as_the_exact_path(session: Session) -> None:
    rollup.rebuild(session, "UTC")
    for flt in filters():
        exact = compute_dashboard(session, flt, Assumptions(6.0, 37.5))
        assert_same_dashboard(exact, rolled_up(session, flt))
    d = rolled_up(session)
    # The scenario's one agent-resolved conversation, "007" and "12abc" by their own close
    # events, "7" by ticket row 7 although its close event said unresolved; "x-1" is not.
    assert d.summary.agent_resolved == 4
    assert d.summary.handoffs == 6


def test_ticket_ids_match_ticket_rows_exactly_as_text(seeded_odd: Session) -> None:
    """The roll-up dashboard joins conversations to tickets in SQL (SQLite: by primary key,
    then the text): it must agree with the exact path, which matches the id as text."""
    assert_odd_ticket_ids_count_as_the_exact_path(seeded_odd)


@pytest.fixture
def seeded_odd(db_session: Session) -> Session:
    seed_odd_tickets(db_session)
    return db_session


def test_the_headline_figures_alone_equal_the_dashboards(seeded: Session) -> None:
    """compute_summary (what the weekly trend asks for, per week and location) is exactly
    compute_dashboard(...).summary, on the rows and on the roll-ups."""
    rollup.rebuild(seeded, "UTC")
    for flt in filters():
        assert (
            compute_summary(seeded, flt, Assumptions(6.0, 37.5))
            == compute_dashboard(seeded, flt, Assumptions(6.0, 37.5)).summary
        )
        fast = summary_from_rollups(seeded, flt, Assumptions(6.0, 37.5), exact_up_to=-1)
        assert fast == rolled_up(seeded, flt).summary
    with pytest.raises(FilterError, match="hours per FTE"):
        compute_summary(seeded, SCENARIO_FILTER, Assumptions(6.0, 0))


def test_the_roll_up_dashboard_counts_on_the_agencys_clock(seeded: Session) -> None:
    rollup.rebuild(seeded, "America/New_York")
    flt = MetricFilter.parse("2026-03-01", "2026-03-03", zone="America/New_York")
    assert_same_dashboard(
        compute_dashboard(seeded, flt, Assumptions(6.0, 37.5)), rolled_up(seeded, flt)
    )


@pytest.fixture
def seeded(db_session: Session) -> Session:
    seed(db_session)
    return db_session


def test_a_time_zone_the_roll_ups_were_not_built_in_is_never_served(seeded: Session) -> None:
    flt = MetricFilter.parse("2026-03-02", "2026-03-03", zone="America/Denver")
    assert (
        dashboard_from_rollups(seeded, flt, Assumptions(6.0, 37.5), exact_up_to=-1) is None
    )  # never built
    rollup.rebuild(seeded, "UTC")
    assert (
        dashboard_from_rollups(seeded, flt, Assumptions(6.0, 37.5), exact_up_to=-1) is None
    )  # other zone
    assert rollup.ensure(seeded, "UTC") is None  # current: nothing to do
    result = rollup.ensure(seeded, "America/Denver")  # the setting changed: rebuilt
    assert result is not None and result.conversations == 6
    assert rollup_read.built_zone(seeded) == "America/Denver"
    assert_same_dashboard(
        compute_dashboard(seeded, flt, Assumptions(6.0, 37.5)), rolled_up(seeded, flt)
    )


def test_small_periods_keep_the_exact_path(seeded: Session) -> None:
    """Under EXACT_UP_TO conversations the dashboard reads the rows: percentiles stay exact."""
    rollup.rebuild(seeded, "UTC")
    assert dashboard_from_rollups(seeded, SCENARIO_FILTER, Assumptions(6.0, 37.5)) is None
    d = compute_dashboard(seeded, SCENARIO_FILTER, Assumptions(6.0, 37.5))
    assert d.summary.bot_response_ms.p50 == 32.5  # the scenario's exact median


def test_histogram_percentiles_stay_within_one_bucket() -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(6, 1.2) for _ in range(5000)] + [0.2, 2_000_000.0]
    hist: dict[int, int] = {}
    for v in values:
        hist[rollup_read.bucket_of(v)] = hist.get(rollup_read.bucket_of(v), 0) + 1
    ordered = sorted(values)
    for q in (50, 90, 99):
        position = (len(ordered) - 1) * q / 100
        truth = ordered[round(position)]
        estimate = rollup_read.hist_percentile(hist, q)
        assert estimate is not None
        assert truth / BUCKET_RATIO**2 <= estimate <= truth * BUCKET_RATIO**2
    assert rollup_read.bucket_of(-3.0) == 0 and rollup_read.bucket_of(float("nan")) == 0
    assert rollup_read.bucket_of(1e9) == rollup_read.MAX_BUCKET
    low, high = rollup_read.bucket_bounds(rollup_read.bucket_of(250.0))
    assert low <= 250.0 < high


@pytest.fixture
def pg_session() -> Iterator[Session]:
    """A fresh PostgreSQL schema migrated to head (skips, or fails under CI, without it)."""
    with migrated_pg_session("rollup") as session:
        yield session


def test_ticket_ids_match_ticket_rows_exactly_as_text_on_postgresql(pg_session: Session) -> None:
    """PostgreSQL joins on the id as text (a cast of "x-1" to a number would fail there)."""
    seed_odd_tickets(pg_session)
    assert_odd_ticket_ids_count_as_the_exact_path(pg_session)


def test_incremental_equals_a_rebuild_on_postgresql(pg_session: Session) -> None:
    """The upsert arithmetic and the table lock, on the database the scale profile runs."""
    seed_locations(pg_session)
    rollup.rebuild(pg_session, "America/Denver")
    pg_session.commit()
    ingest_randomly(pg_session, [*scenario_events(), *extra_events(4)], random.Random(4))
    seed_tickets(pg_session)
    pg_session.commit()
    incremental = roll_up_rows(pg_session)
    assert incremental == rebuilt_rows(pg_session, "America/Denver")
    flt = MetricFilter.parse("2026-03-01", "2026-03-04", zone="America/Denver")
    assert_same_dashboard(
        compute_dashboard(pg_session, flt, Assumptions(6.0, 37.5)), rolled_up(pg_session, flt)
    )


def test_the_roll_ups_are_dated_in_the_agency_zone(db_session: Session) -> None:
    late = Conversation("late", datetime(2026, 3, 3, 2, 30, tzinfo=UTC)).session_start()
    late.user("can I bring liquids", "ask_question").bot(30, answer("liquids", 0.8))
    rollup.rebuild(db_session, "America/New_York")
    ingest(db_session, [(None, e) for e in late.events], "test")
    (row,) = db_session.scalars(select(AnalyticsDaily))
    assert (row.day.isoformat(), row.h21, row.conversations) == ("2026-03-02", 1, 1)


def months_of_events(seed_value: int) -> list[dict[str, Any]]:
    """Conversations on random days from mid-January to early April (four calendar months, on
    both sides of month ends in the agency zone), in two channels, languages and locations."""
    rng = random.Random(seed_value)
    events: list[dict[str, Any]] = []
    first = datetime(2026, 1, 20, tzinfo=UTC)
    for i in range(240):
        start = first + timedelta(days=rng.randrange(80), hours=rng.randrange(24))
        c = Conversation(f"m-{i}", start, location=rng.choice([None, "den", "mia"]))
        c.session_start()
        channel, language = rng.choice(["rest", "web"]), rng.choice(["en", "es"])
        c.user("the line was terrible and slow", "ask_question", channel, language)
        c.bot(rng.uniform(5, 3000), answer(rng.choice(["liquids", "id", "pets"]), 0.7))
        if rng.random() < 0.3:
            c.user("I want a person", "human", channel, language).bot(
                40, {"type": "handoff", "reason": "requested", "ticket_id": str(500 + i)}
            )
        events.extend(c.events)
    return events


def from_days_only(
    session: Session, flt: MetricFilter, kind: str, *by: str
) -> dict[tuple[Any, ...], dict[str, tuple[int, int, int]]]:
    """label_sums' answer from the daily rows alone, added up here (the definition)."""
    result: dict[tuple[Any, ...], dict[str, tuple[int, int, int]]] = {}
    for r in session.scalars(select(AnalyticsDailyCount).where(AnalyticsDailyCount.kind == kind)):
        if not flt.start <= r.day <= flt.end:
            continue
        if any(
            getattr(flt, d) and getattr(flt, d) != getattr(r, d) for d in rollup_read.DIMENSIONS
        ):
            continue
        labels = result.setdefault(tuple(getattr(r, name) for name in by), {})
        n, score, scored = labels.get(r.label, (0, 0, 0))
        labels[r.label] = (n + r.n, score + r.score_sum, scored + r.scored)
    return {
        key: {label: v for label, v in labels.items() if v[0]}
        for key, labels in result.items()
        if any(v[0] for v in labels.values())
    }


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-01-01", "2026-04-30"),  # whole months only
        ("2026-01-25", "2026-04-03"),  # days, two whole months, days
        ("2026-02-01", "2026-02-28"),  # one whole month
        ("2026-02-10", "2026-03-09"),  # across a month end, no whole month
        ("2026-03-01", "2026-03-31"),  # a month with a daylight-saving change
        ("2026-02-28", "2026-03-01"),
    ],
)
def test_months_and_days_add_up_to_the_days(db_session: Session, start: str, end: str) -> None:
    """A period's labelled counts read from whole months plus the days around them (and from the
    days' totals when nothing is filtered) equal the daily rows added up."""
    seed_locations(db_session)
    ingest(db_session, [(None, e) for e in months_of_events(5)], "test")
    rollup.rebuild(db_session, "America/Denver")
    assert db_session.scalar(select(func.count()).select_from(AnalyticsMonthlyCount)) > 0
    for flt in (
        MetricFilter.parse(start, end, zone="America/Denver"),
        MetricFilter.parse(start, end, zone="America/Denver", channel="web", language="es"),
        MetricFilter.parse(start, end, zone="America/Denver", location="DEN"),
    ):
        counted = 0
        for kind in ("response", "faq", "reason", "topic"):
            for by in [(), ("day",), ("channel",), ("language", "location")]:
                expected = from_days_only(db_session, flt, kind, *by)
                assert rollup_read.label_sums(db_session, flt, kind, *by) == expected, (flt, by)
                counted += len(expected)
        assert counted, f"nothing to compare under {flt}"


@pytest.mark.parametrize(
    ("start", "end", "months", "days"),
    [
        ("2026-01-01", "2026-12-31", ("2026-01-01", "2026-12-01"), []),
        (
            "2025-11-30",
            "2026-11-29",
            ("2025-12-01", "2026-10-01"),
            [("2025-11-30", "2025-11-30"), ("2026-11-01", "2026-11-29")],
        ),
        ("2026-01-05", "2026-01-20", None, [("2026-01-05", "2026-01-20")]),
        ("2026-01-01", "2026-01-30", None, [("2026-01-01", "2026-01-30")]),
        ("2026-02-01", "2026-02-28", ("2026-02-01", "2026-02-01"), []),
        ("2024-02-02", "2024-03-31", ("2024-03-01", "2024-03-01"), [("2024-02-02", "2024-02-29")]),
    ],
)
def test_a_period_splits_into_whole_months_and_days(
    start: str, end: str, months: tuple[str, str] | None, days: list[tuple[str, str]]
) -> None:
    got_months, got_days = rollup_read.split_months(MetricFilter.parse(start, end))
    iso = lambda pair: (pair[0].isoformat(), pair[1].isoformat())  # noqa: E731
    assert (None if got_months is None else iso(got_months)) == months
    assert [iso(d) for d in got_days] == days
