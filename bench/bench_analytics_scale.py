"""The dashboard and the weekly report at a year of AskTSA-scale traffic (issue 22, item 6).

Generates ``--conversations`` (default 1,000,000) conversations over 365 days with about five
citizen messages each, straight into a throwaway PostgreSQL database (bench/local_services.py:
created and dropped here) with COPY: four channels, English and Spanish, six locations plus
unknown, answers, clarifications, fallbacks, feedback, negative messages, ~6% handoffs with
their tickets (5% of those without a ticket row; replied ones assigned to one of 40 agents in 5
teams, with the first response in staffed hours stored as the console stores it) and the
unanswered queue's questions. Then:

* builds the daily roll-ups from the rows (``analytics.rollup.rebuild``, timed);
* times ``compute_dashboard`` (the roll-up path) for the full year, the last 30 and 7 days, one
  location over the year, one channel + language over the year; ``compute_weekly`` (8 weeks,
  with every location's week over week) and writing the report (Markdown, charts, PDF), under
  the agency's staffed hours (``STAFFED``);
* where the year's dashboard spends its time, and the parts it runs on connections of their own
  (analytics.alongside) timed alone;
* the baseline, in the same run: the exact path (rows loaded into Python, as before the
  roll-ups) on the last 7 days, and how far the roll-up percentiles are from its exact ones
  (every other figure is compared for equality).

Median and p95 over ``--runs`` runs. Writes bench/results/analytics_scale.json.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.models import turn_wording  # noqa: E402
from bench.common import write_result  # noqa: E402
from bench.local_services import PG_URL, pg_admin  # noqa: E402
from handoff.hours import build_hours  # noqa: E402
from knowledge_base.unanswered import wording_key  # noqa: E402

ZONE = "America/New_York"
LAST_DAY = date(2026, 11, 29)  # a Sunday: the report's newest full week ends here
DAYS = 365
CHANNELS = (("web", 0.6), ("sms", 0.2), ("facebook", 0.12), ("whatsapp", 0.08))
LANGUAGES = (("en", 0.85), ("es", 0.15))
LOCATIONS = (
    ("ATL", 0.12),
    ("DEN", 0.12),
    ("JFK", 0.12),
    ("LAX", 0.12),
    ("MIA", 0.12),
    ("ORD", 0.12),
    ("unknown", 0.28),
)
HOURS = [1, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 9, 9, 9, 9, 8, 8, 7, 6, 5, 4, 3, 2, 1]
FAQS = [f"faq-{i:03d}" for i in range(400)]
FAQ_WEIGHTS = [1 / (i + 1) for i in range(len(FAQS))]  # Zipf-like popularity
TOPICS = (
    "line",
    "wait",
    "security",
    "liquids",
    "bags",
    "delayed",
    "screening",
    "shoes",
    "laptop",
    "checkpoint",
    "officer",
    "precheck",
    "baggage",
    "missed",
    "flight",
)
QUESTIONS = (
    "can i bring {} through security",
    "how long is the {} at {}",
    "what about {} in carry on",
    "is {} open at {}",
    "do i need to remove {}",
)
HANDOFF_RATE = 0.06
# The agency's staffed hours: each ticket's first response in them is stored with the reply, as
# the console does (handoff.service.add_agent_reply), and the dashboard is computed with them.
STAFFED = ("mon-fri 08:00-20:00; sat 09:00-13:00", "2025-12-25, 2026-01-01, 2026-07-04")
AGENTS = 40  # in TEAMS teams; a replied ticket is assigned to one of them
TEAMS = ("day", "evening", "spanish", "airports", "supervisors")


def assumptions() -> Any:
    from analytics.metrics import Assumptions

    return Assumptions(6.0, 37.5, staffed=build_hours(ZONE, *STAFFED))


ASSUMPTIONS = assumptions()


def pick(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([o for o, _ in options], [w for _, w in options])[0]


class Generator:
    """Rows for COPY: conversations, turns, tickets and queued unanswered questions."""

    def __init__(self, conversations: int, seed: int = 22) -> None:
        from zoneinfo import ZoneInfo

        self.rng = random.Random(seed)
        self.total = conversations
        self.tz = ZoneInfo(ZONE)
        self.first_day = LAST_DAY - timedelta(days=DAYS - 1)
        self.turns: list[tuple[Any, ...]] = []
        self.tickets: list[tuple[Any, ...]] = []
        self.unanswered: list[tuple[Any, ...]] = []
        self.turn_id = 0
        self.staffed = build_hours(ZONE, *STAFFED)

    def start_times(self) -> Iterator[datetime]:
        """Conversation starts, busier on weekdays and in the day, in the agency's zone."""
        rng = self.rng
        weights = [
            (1.15 if (self.first_day + timedelta(days=d)).weekday() < 5 else 0.65)
            for d in range(DAYS)
        ]
        days = rng.choices(range(DAYS), weights, k=self.total)
        days.sort()
        for d in days:
            hour = rng.choices(range(24), HOURS)[0]
            local = datetime.combine(self.first_day + timedelta(days=d), datetime.min.time())
            local = local.replace(
                hour=hour, minute=rng.randrange(60), second=rng.randrange(60), tzinfo=self.tz
            )
            yield local.astimezone(UTC) + timedelta(microseconds=rng.randrange(1_000_000))

    def conversations(self) -> Iterator[tuple[Any, ...]]:
        for cid, started in enumerate(self.start_times(), start=1):
            yield self.conversation(cid, started)

    def conversation(self, cid: int, started: datetime) -> tuple[Any, ...]:
        rng = self.rng
        channel, language = pick(rng, CHANNELS), pick(rng, LANGUAGES)
        location = pick(rng, LOCATIONS)
        n_turns = max(1, min(12, round(rng.gauss(5, 2.2))))
        handed = rng.random() < HANDOFF_RATE
        handoff_at_turn = rng.randrange(1, n_turns + 1) if handed else None
        now, outcomes, faqs, scores = started, [], [], []
        first_question = None
        for seq in range(1, n_turns + 1):
            outcome, faq, score, text = self.turn_kind(seq, handoff_at_turn, location)
            if handoff_at_turn is not None and seq > handoff_at_turn:
                outcome, faq, score = "relay", None, None
            response = None if outcome == "relay" else round(rng.lognormvariate(5.9, 0.55), 3)
            sentiment = self.sentiment(language, text)
            if sentiment is not None and sentiment <= -0.05:
                text = f"the {rng.choice(TOPICS)} {rng.choice(TOPICS)} was awful at {location}"
            if outcome in ("answer", "clarify", "fallback") and first_question is None:
                first_question = text
            self.turn_id += 1
            self.turns.append(
                (
                    self.turn_id,
                    cid,
                    seq,
                    now.timestamp(),
                    now,
                    response,
                    outcome,
                    None,
                    faq,
                    score,
                    channel,
                    language,
                    text,
                    sentiment,
                    turn_wording(outcome, text),
                )
            )
            if outcome in ("fallback", "clarify") and text:
                question = text[:500]
                self.unanswered.append(
                    (
                        now,
                        language,
                        question,
                        wording_key(question),
                        "low_confidence",
                        channel[:32],
                        "open",
                    )
                )
            outcomes.append(outcome)
            faqs.append(faq)
            scores.append(sentiment)
            now += timedelta(seconds=rng.uniform(8, 90))
        return self.conversation_row(
            cid,
            started,
            now,
            channel,
            language,
            location,
            outcomes,
            faqs,
            scores,
            handed,
            first_question,
        )

    def turn_kind(self, seq: int, handoff_at: int | None, location: str) -> tuple[Any, ...]:
        rng = self.rng
        if seq == handoff_at:
            return "handoff", None, None, "i want to talk to a person"
        roll = rng.random()
        if seq == 1 and roll < 0.3:
            return "control", None, None, "hello"
        if roll < 0.72:
            faq = rng.choices(FAQS, FAQ_WEIGHTS)[0]
            text = rng.choice(QUESTIONS).format(rng.choice(TOPICS), location)
            return "answer", faq, round(rng.uniform(0.45, 0.98), 4), text
        if roll < 0.82:
            return (
                "clarify",
                None,
                round(rng.uniform(0.3, 0.5), 4),
                rng.choice(QUESTIONS).format(rng.choice(TOPICS), f"gate {rng.randrange(90)}"),
            )
        if roll < 0.92:
            return (
                "fallback",
                None,
                None,
                f"question about {rng.choice(TOPICS)} {rng.randrange(5000)}",
            )
        return "feedback", None, None, rng.choice(["/feedback_good", "/feedback_bad"])

    def sentiment(self, language: str, text: str | None) -> float | None:
        if not text or text.startswith("/"):
            return None
        roll = self.rng.random()
        if roll < 0.12:
            return round(self.rng.uniform(-0.9, -0.06), 4)
        return round(self.rng.uniform(0.06, 0.8), 4) if roll < 0.25 else 0.0

    def conversation_row(
        self,
        cid: int,
        started: datetime,
        ended: datetime,
        channel: str,
        language: str,
        location: str,
        outcomes: list[str],
        faqs: list[str | None],
        scores: list[float | None],
        handed: bool,
        first_question: str | None,
    ) -> tuple[Any, ...]:
        rng = self.rng
        answered = [f for f, o in zip(faqs, outcomes, strict=True) if o == "answer" and f]
        scored = [s for s in scores if s is not None]
        feedback = rng.choice(["good", "bad"]) if "feedback" in outcomes else None
        sender = f"s{cid:08d}"
        handoff = self.handoff(cid, sender, started, channel, language) if handed else (None,) * 7
        return (
            cid,
            f"{sender}@{started.timestamp():.6f}",
            sender,
            started.timestamp(),
            started,
            ended,
            channel,
            language,
            location,
            len(outcomes),
            sum(o in ("answer", "clarify", "fallback") for o in outcomes),
            outcomes.count("answer"),
            outcomes.count("fallback"),
            outcomes.count("clarify"),
            len(answered) - len(set(answered)),
            handed,
            *handoff,
            feedback,
            scored[0] if scored else None,
            scored[-1] if scored else None,
            len(scored),
            sum(1 for s in scored if s <= -0.05),
            first_question,
        )

    def handoff(
        self, cid: int, sender: str, started: datetime, channel: str, language: str
    ) -> tuple[Any, ...]:
        """(reason, after_hours, ticket_id, handoff_at, first reply, closed, closed_resolved)."""
        rng = self.rng
        reason = rng.choice(["requested", "repeated_fallback", "frustration", "low_confidence"])
        at = started + timedelta(seconds=rng.uniform(20, 300))
        reply = at + timedelta(seconds=rng.lognormvariate(6, 1.2)) if rng.random() < 0.9 else None
        closed = (
            (reply or at) + timedelta(seconds=rng.uniform(300, 7200))
            if rng.random() < 0.8
            else None
        )
        resolved = (rng.random() < 0.7) if closed else None
        status = (
            "waiting" if closed is None else "closed_resolved" if resolved else "closed_unresolved"
        )
        ticket_id = None
        if rng.random() < 0.95:
            ticket_id = len(self.tickets) + 1
            agent = rng.randrange(1, AGENTS + 1) if reply is not None else None
            in_hours = None if reply is None else self.staffed.staffed_seconds(at, reply)
            self.tickets.append(
                (
                    ticket_id,
                    sender,
                    channel,
                    language,
                    reason,
                    "normal",
                    status,
                    at,
                    reply,
                    in_hours,
                    agent,
                    closed,
                    False,
                    "",
                    "",
                )
            )
        return (
            reason,
            False,
            None if ticket_id is None else str(ticket_id),
            at,
            reply,
            closed,
            resolved,
        )


CONVERSATION_COLUMNS = (
    "id, conversation_key, sender_id, start_ts, started_at, ended_at, channel, language, "
    "location, user_messages, questions, answers, fallbacks, clarifies, repeated_answers, "
    "handed_off, handoff_reason, handoff_after_hours, ticket_id, handoff_at, "
    "first_agent_reply_at, closed_at, closed_resolved, feedback, sentiment_start, sentiment_end, "
    "sentiment_messages, negative_messages, first_question"
)
TURN_COLUMNS = (
    "id, conversation_id, seq, user_ts, started_at, response_ms, outcome, intent, faq_id, score, "
    "channel, language, text, sentiment, wording"
)
TICKET_COLUMNS = (
    "id, conversation_id, channel, language, reason, priority, status, created_at, "
    "first_agent_reply_at, first_response_staffed_s, assigned_agent_id, closed_at, after_hours, "
    "trigger_text, transcript_url"
)
USER_COLUMNS = (
    "id, username, display_name, password_hash, role, languages, team, active, failed_logins, "
    "created_at"
)
UNANSWERED_COLUMNS = "created_at, language, text, wording, reason, channel, status"


def agents() -> list[tuple[Any, ...]]:
    """The agents tickets are assigned to (no password: nobody logs in here)."""
    return [
        (
            i,
            f"agent{i:02d}",
            f"Agent {i}",
            "!",
            "agent",
            '["en"]',
            TEAMS[i % len(TEAMS)],
            True,
            0,
            datetime(2025, 1, 1, tzinfo=UTC),
        )
        for i in range(1, AGENTS + 1)
    ]


def load(url: str, conversations: int, chunk: int = 20_000) -> dict[str, Any]:
    """Generates and COPYs everything, a chunk of conversations (then their turns) at a time;
    returns counts and seconds."""
    import psycopg

    gen = Generator(conversations)
    start = time.perf_counter()
    counts = {"conversations": 0, "turns": 0}
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cur:
            rows: list[tuple[Any, ...]] = []
            for row in gen.conversations():
                rows.append(row)
                if len(rows) >= chunk:
                    _copy_chunk(cur, gen, rows, counts)
                    rows = []
            _copy_chunk(cur, gen, rows, counts)
            _copy(cur, f"console_user ({USER_COLUMNS})", agents())
            _copy(cur, f"handoff_ticket ({TICKET_COLUMNS})", gen.tickets)
            _copy(cur, f"kb_unanswered ({UNANSWERED_COLUMNS})", gen.unanswered)
            for table in (
                "analytics_conversation",
                "analytics_turn",
                "handoff_ticket",
                "console_user",
            ):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        conn.commit()
    vacuum(url)
    counts.update(tickets=len(gen.tickets), unanswered_queue=len(gen.unanswered))
    return {**counts, "load_s": round(time.perf_counter() - start, 1)}


def vacuum(url: str) -> None:
    """VACUUM ANALYZE, as autovacuum would do to a production database after a bulk load; left
    to autovacuum, it runs during the timings and skews them."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def _copy_chunk(
    cur: Any, gen: Generator, rows: list[tuple[Any, ...]], counts: dict[str, int]
) -> None:
    _copy(cur, f"analytics_conversation ({CONVERSATION_COLUMNS})", rows)
    _copy(cur, f"analytics_turn ({TURN_COLUMNS})", gen.turns)
    counts["conversations"] += len(rows)
    counts["turns"] += len(gen.turns)
    gen.turns = []
    if counts["conversations"] % 200_000 < len(rows):
        print(f"  {counts['conversations']:,} conversations", flush=True)


def _copy(cur: Any, target: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def timed(fn: Callable[[], Any], runs: int) -> dict[str, Any]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "runs": runs,
        "median_s": round(statistics.median(seconds), 4),
        "p95_s": round(p95, 4),
        "max_s": round(max(seconds), 4),
    }


def measure(url: str, runs: int) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from analytics import rollup
    from analytics.dashboard import compute_dashboard
    from analytics.metrics import MetricFilter
    from analytics.report import write_report
    from analytics.weekly import compute_weekly
    from askagency.db import make_engine

    engine = make_engine(url)
    results: dict[str, Any] = {}
    with Session(engine) as session:
        start = time.perf_counter()
        built = rollup.rebuild(session, ZONE)
        session.commit()
        results["rollup_build"] = {
            "seconds": round(time.perf_counter() - start, 1),
            "daily_rows": built.daily_rows,
            "count_rows": built.count_rows,
        }
        print("roll-ups built", results["rollup_build"], flush=True)
    vacuum(url)

    def board(flt: MetricFilter) -> Callable[[], Any]:
        def run() -> Any:
            with Session(engine) as session:
                return compute_dashboard(session, flt, ASSUMPTIONS)

        return run

    last = LAST_DAY.isoformat()
    filters = {
        "year": MetricFilter.parse(
            (LAST_DAY - timedelta(days=DAYS - 1)).isoformat(), last, zone=ZONE
        ),
        "last_30_days": MetricFilter.parse(
            (LAST_DAY - timedelta(days=29)).isoformat(), last, zone=ZONE
        ),
        "last_7_days": MetricFilter.parse(
            (LAST_DAY - timedelta(days=6)).isoformat(), last, zone=ZONE
        ),
    }
    filters["year_location_DEN"] = MetricFilter.parse(
        filters["year"].start.isoformat(), last, zone=ZONE, location="DEN"
    )
    filters["year_sms_es"] = MetricFilter.parse(
        filters["year"].start.isoformat(), last, zone=ZONE, channel="sms", language="es"
    )
    dashboards = {}
    for name, flt in filters.items():
        dashboards[name] = timed(board(flt), runs)
        print(name, dashboards[name], flush=True)
    results["dashboard"] = dashboards
    results["year_dashboard_parts_s"] = parts(board(filters["year"]))
    print("year parts", results["year_dashboard_parts_s"], flush=True)
    results["alongside_parts_s"] = alongside_parts(engine, filters)
    print("alongside", results["alongside_parts_s"], flush=True)

    def weekly() -> Any:
        with Session(engine) as session:
            return compute_weekly(session, filters["last_7_days"], ASSUMPTIONS, weeks=8)

    results["weekly_report"] = {"compute_weekly_8_weeks": timed(weekly, runs)}
    print("weekly", results["weekly_report"], flush=True)

    def report() -> Any:
        with Session(engine) as session:
            d = compute_dashboard(session, filters["last_7_days"], ASSUMPTIONS)
            t = compute_weekly(session, filters["last_7_days"], ASSUMPTIONS, weeks=8)
        with tempfile.TemporaryDirectory() as out:
            write_report(d, Path(out), t)

    results["weekly_report"]["report_with_files"] = timed(report, max(1, min(runs, 3)))
    print("report", results["weekly_report"], flush=True)
    results["baseline"] = baseline(engine, filters["last_7_days"], board, runs)
    engine.dispose()
    return results


PARTS = {
    "daily_sums (roll-up rows, SQL)": ("rollup_read.py", "daily_sums"),
    "label_sums (histograms, reasons, FAQs, topics: months, days, day totals; SQL)": (
        "rollup_read.py",
        "label_sums",
    ),
    "load_tickets (ticket rows: seconds from the database, staffed seconds stored)": (
        "metrics.py",
        "load_tickets",
    ),
    "summarise (ticket percentiles)": ("metrics.py", "summarise"),
    "by_agent": ("metrics.py", "by_agent"),
    "by_team": ("metrics.py", "by_team"),
}


def alongside_parts(engine: Any, filters: dict[str, Any]) -> dict[str, Any]:
    """The parts the dashboard runs on connections of their own (analytics.alongside), timed
    alone here (one core, as there): the dashboard waits for them only when they take longer
    than everything else."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from analytics import rollup_read
    from analytics.metrics import top_unanswered

    def alone(work: Callable[[Session], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with Session(engine) as session:
                session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
                return work(session)

        return run

    found = {}
    for name in ("year", "year_location_DEN"):
        flt = filters[name]
        found[f"top_unanswered, {name}"] = timed(alone(lambda s, f=flt: top_unanswered(s, f)), 3)
        found[f"handoffs, {name}"] = timed(alone(lambda s, f=flt: rollup_read.handoffs(s, f)), 3)
    return found


def parts(run: Callable[[], Any]) -> dict[str, float]:
    """Where one dashboard's time goes in this thread (cumulative seconds under cProfile, which
    slows Python-heavy parts more than SQL; for proportions only)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.runcall(run)
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    found = {}
    for label, (file, function) in PARTS.items():
        found[label] = round(
            sum(v[3] for k, v in stats.items() if k[0].endswith(file) and k[2] == function), 3
        )
    return found


def baseline(
    engine: Any, flt: Any, board: Callable[[Any], Callable[[], Any]], runs: int
) -> dict[str, Any]:
    """The exact path (rows into Python) on the last 7 days, and its numbers against the
    roll-up path's: equal except the bot response-time percentiles, whose gap is reported."""
    from analytics import dashboard

    fast = board(flt)()
    with mock.patch.object(dashboard, "dashboard_from_rollups", lambda *a, **k: None):
        exact_timing = timed(board(flt), max(1, min(runs, 3)))
        exact = board(flt)()
    pairs = [(exact.summary.bot_response_ms, fast.summary.bot_response_ms)]
    errors = [
        abs(getattr(f, q) / getattr(e, q) - 1) for e, f in pairs for q in ("p50", "p90", "p99")
    ]
    daily = [
        abs(f.response_p50_ms / e.response_p50_ms - 1)
        for e, f in zip(exact.daily, fast.daily, strict=True)
        if e.response_p50_ms
    ]
    strip = {
        "summary": {"bot_response_ms"},
        "daily": True,
        "by_channel": True,
        "by_language": True,
        "by_location": True,
    }
    same = exact.model_dump(exclude=strip) == fast.model_dump(exclude=strip)
    counts_same = [d.conversations for d in exact.daily] == [d.conversations for d in fast.daily]
    return {
        "what": "exact path (conversations and turns loaded into Python) on the last 7 days",
        "exact_last_7_days": exact_timing,
        "other_figures_equal": same and counts_same,
        "bot_response_percentile_relative_error_max": round(max(errors), 4),
        "daily_p50_relative_error_max": round(max(daily), 4) if daily else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--out", default="analytics_scale.json")
    args = parser.parse_args(argv)
    from askagency.migrate import upgrade

    name = f"bench_analytics_{uuid.uuid4().hex[:8]}"
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    pg_admin(f'CREATE DATABASE "{name}"')
    try:
        upgrade(url)
        loaded = load(url, args.conversations)
        print("loaded", loaded, flush=True)
        results = measure(url, args.runs)
    finally:
        if not args.keep:
            pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    path = write_result(
        args.out,
        {
            "benchmark": "analytics at volume: daily roll-ups (issue 22, item 6)",
            "database": "PostgreSQL (local, fresh database)",
            "time_zone": ZONE,
            "data": {
                **loaded,
                "days": DAYS,
                "last_day": LAST_DAY.isoformat(),
                "handoff_rate": HANDOFF_RATE,
            },
            "target_s": 1.0,
            **results,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
