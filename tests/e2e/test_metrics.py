"""Metrics end to end: conversations through the real Rasa REST channel (answers, fallbacks,
feedback, a handoff when the bot offers one) reach the analytics tables through the stack's own
consumer within seconds, and every metric is exact.

The stack is shared with other end-to-end tests, so exact numbers are computed over this test's
conversations only: their rows in Rasa's SQL broker file are copied into a fresh data directory
and ingested there by the real consumer process (the replay test runs it twice). The expected
response times are computed directly from Rasa's broker rows, independently of the ingestion.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.dashboard import compute_dashboard
from analytics.metrics import Assumptions, MetricFilter, percentile
from analytics.models import AnalyticsConversation, AnalyticsEvent, AnalyticsTurn
from askagency.bot_messages import MessageType
from askagency.config import PROJECT_ROOT, embedded_database_url
from askagency.db import make_engine
from askagency.launcher import OFFLINE_ENV, Stack
from askagency.migrate import upgrade
from tests.stack import RestClient, cli

pytestmark = pytest.mark.e2e

AGENT_DELAY_S = 90.0
CLOSE_DELAY_S = 400.0
AGENT_TYPES = {"agent_message", "handoff_closed"}


@dataclass
class Seeded:
    senders: list[str]
    # sender -> custom types the bot sent back, per citizen message
    replies: dict[str, list[list[str]]] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)
    feedback: dict[str, str] = field(default_factory=dict)
    tickets: dict[str, int] = field(default_factory=dict)  # sender -> ticket id
    sent_at: float = 0.0


SCRIPT: list[tuple[str, list[tuple[str, str]]]] = [
    # (language, [(text, expectation note)]) per conversation
    ("en", [("hello", "greeting"), ("What is the liquids rule for carry-on bags?", "answer"),
            ("/feedback_good", "feedback")]),
    ("en", [("can i bring my own water bottle if its empty", "answer"),
            ("/feedback_bad", "feedback")]),
    ("en", [("what is the population of the capital of mongolia", "fallback")]),
    ("en", [("/ask_human", "handoff if offered")]),
    ("es", [("¿Cuál es la regla de líquidos para el equipaje de mano?", "answer")]),
]  # fmt: skip


@pytest.fixture(scope="module")
def seeded(rest: RestClient, stack: Stack) -> Seeded:
    prefix = f"metrics-{uuid.uuid4().hex[:8]}"
    result = Seeded(senders=[f"{prefix}-{i}" for i in range(len(SCRIPT))], sent_at=time.time())

    def send(sender: str, text: str, language: str) -> list[dict[str, Any]]:
        replies = rest.send(sender, text, language=language)
        result.replies[sender].append([str((m.get("custom") or {}).get("type")) for m in replies])
        for message in replies:
            custom = message.get("custom") or {}
            if custom.get("type") == MessageType.HANDOFF and not custom.get("queued"):
                # Citizens are not told the ticket number (handoff/conversation.py).
                with sqlite3.connect(stack.cfg.data_dir / "askagency.db") as db:
                    (ticket_id,) = db.execute(
                        "SELECT id FROM handoff_ticket WHERE conversation_id = ?", (sender,)
                    ).fetchone()
                result.tickets[sender] = int(ticket_id)
        return replies

    for sender, (language, messages) in zip(result.senders, SCRIPT, strict=True):
        result.languages[sender] = language
        result.replies[sender] = []
        for text, expectation in messages:
            replies = send(sender, text, language)
            if text.startswith("/feedback_"):
                result.feedback[sender] = text.removeprefix("/feedback_")
            clarify = [
                m for m in replies if (m.get("custom") or {}).get("type") == MessageType.CLARIFY
            ]
            if expectation == "answer" and clarify and clarify[0].get("buttons"):
                # The citizen picks the first option, as in the widget.
                send(sender, clarify[0]["buttons"][0]["payload"], language)
    return result


def broker_rows(data_dir: Path, senders: list[str]) -> list[tuple[str, str]]:
    marks = ",".join("?" * len(senders))
    with sqlite3.connect(data_dir / "rasa_events.db") as connection:
        return connection.execute(
            f"SELECT sender_id, data FROM events WHERE sender_id IN ({marks}) ORDER BY id",
            senders,
        ).fetchall()


def expected_response_ms(rows: list[tuple[str, str]]) -> list[float]:
    """User event -> first bot event of the turn, straight from Rasa's broker rows."""
    values: list[float] = []
    pending: dict[str, float] = {}
    for sender, data in rows:
        event = json.loads(data)
        if event["event"] == "user" and not str(event.get("text", "")).startswith("EXTERNAL: "):
            pending[sender] = event["timestamp"]
        elif event["event"] == "bot" and sender in pending:
            custom = (event.get("data") or {}).get("custom") or {}
            if custom.get("type") not in AGENT_TYPES:
                values.append(round((event["timestamp"] - pending.pop(sender)) * 1000, 3))
    return values


def today_filter() -> MetricFilter:
    today = datetime.now(UTC).date()
    return MetricFilter(today - timedelta(days=1), today + timedelta(days=1))


def wait_for_live_ingestion(stack: Stack, seeded: Seeded) -> float:
    """Seconds until the stack's own analytics consumer has every seeded conversation."""
    engine = make_engine(embedded_database_url(stack.cfg.data_dir))
    expected = sum(len(turns) for turns in seeded.replies.values())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Session(engine) as session:
                rows = session.scalars(
                    select(AnalyticsConversation).where(
                        AnalyticsConversation.sender_id.in_(seeded.senders)
                    )
                ).all()
                if len(rows) == len(seeded.senders) and sum(r.user_messages for r in rows) == (
                    expected
                ):
                    return time.time() - seeded.sent_at
            time.sleep(0.25)
    finally:
        engine.dispose()
    raise AssertionError(f"analytics consumer did not catch up:\n{stack.tail('analytics')}")


def set_known_agent_timings(stack: Stack, seeded: Seeded) -> None:
    """The agent replied AGENT_DELAY_S after the handoff and closed it as resolved."""
    if not seeded.tickets:
        return
    from handoff.models import Ticket

    engine = make_engine(embedded_database_url(stack.cfg.data_dir))
    try:
        with Session(engine) as session:
            for ticket_id in seeded.tickets.values():
                ticket = session.get(Ticket, ticket_id)
                assert ticket is not None, f"ticket {ticket_id} announced by the bot is missing"
                ticket.first_agent_reply_at = ticket.created_at + timedelta(seconds=AGENT_DELAY_S)
                ticket.closed_at = ticket.created_at + timedelta(seconds=CLOSE_DELAY_S)
                ticket.status = "closed_resolved"
                ticket.open_marker = None
            session.commit()
    finally:
        engine.dispose()


def copy_tickets(stack: Stack, seeded: Seeded, url: str) -> None:
    """Ticket rows of this test's handoffs; without a real handoff, one row with known timings."""
    from handoff.models import Ticket

    source = make_engine(embedded_database_url(stack.cfg.data_dir))
    target = make_engine(url)
    columns = [c.key for c in Ticket.__table__.columns if c.key != "assigned_agent_id"]
    try:
        with Session(source) as src, Session(target) as dst:
            if seeded.tickets:
                for ticket_id in seeded.tickets.values():
                    row = src.get(Ticket, ticket_id)
                    dst.add(Ticket(**{c: getattr(row, c) for c in columns}))
            else:
                created = datetime.now(UTC) - timedelta(minutes=30)
                dst.add(
                    Ticket(
                        conversation_id=seeded.senders[3],
                        channel="rest",
                        language="en",
                        reason="requested",
                        status="closed_resolved",
                        created_at=created,
                        first_agent_reply_at=created + timedelta(seconds=AGENT_DELAY_S),
                        closed_at=created + timedelta(seconds=CLOSE_DELAY_S),
                    )
                )
            dst.commit()
    finally:
        source.dispose()
        target.dispose()


def write_broker(path: Path, rows: list[tuple[str, str]]) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS events "
            "(id INTEGER PRIMARY KEY, sender_id VARCHAR(255), data TEXT)"
        )
        connection.executemany("INSERT INTO events (sender_id, data) VALUES (?, ?)", rows)


def run_consumer_once(data_dir: Path) -> None:
    env = {**os.environ, **OFFLINE_ENV, "ASKAGENCY_DATA_DIR": str(data_dir)}
    env.pop("ASKAGENCY_DATABASE_URL", None)
    subprocess.run(
        [sys.executable, "-m", "analytics.consumer", "--once"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )


def snapshot(url: str) -> tuple[Any, ...]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            counts = tuple(
                session.scalar(select(func.count()).select_from(model))
                for model in (AnalyticsEvent, AnalyticsConversation, AnalyticsTurn)
            )
            return counts, compute_dashboard(
                session, today_filter(), Assumptions(6.0, 37.5)
            ).model_dump()
    finally:
        engine.dispose()


def expected_outcomes(seeded: Seeded) -> dict[str, dict[str, Any]]:
    """Per conversation, what the definitions say given what the bot actually replied."""
    result = {}
    for sender in seeded.senders:
        types = [t for turn in seeded.replies[sender] for t in turn]
        handed_off = "handoff" in types
        answered = "faq_answer" in types
        feedback = seeded.feedback.get(sender)
        if handed_off:
            resolution = "agent" if sender in seeded.tickets else "unresolved"
        else:
            # (no seeded conversation asks the same question twice: "repeated" never applies)
            resolution = "bot" if answered and feedback != "bad" else "unresolved"
        result[sender] = {"handed_off": handed_off, "resolution": resolution, "feedback": feedback}
    return result


def test_seeded_conversations_produce_exact_metrics(
    stack: Stack, seeded: Seeded, tmp_path: Path
) -> None:
    # The bot did what the script expects where the knowledge base decides it.
    def answered(sender: str) -> bool:
        return any("faq_answer" in turn for turn in seeded.replies[sender])

    assert all(answered(seeded.senders[i]) for i in (0, 1, 4)), seeded.replies
    assert seeded.replies[seeded.senders[2]][0][-1] in ("fallback", "clarify", "handoff")

    lag = wait_for_live_ingestion(stack, seeded)
    assert lag < 30, f"dashboard data arrived {lag:.1f} s after the chat"
    set_known_agent_timings(stack, seeded)

    data_dir = tmp_path / "isolated"
    data_dir.mkdir()
    url = embedded_database_url(data_dir)
    upgrade(url)
    rows = broker_rows(stack.cfg.data_dir, seeded.senders)
    write_broker(data_dir / "rasa_events.db", rows)
    copy_tickets(stack, seeded, url)
    run_consumer_once(data_dir)

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            d = compute_dashboard(session, today_filter(), Assumptions(6.0, 37.5))
            convs = {c.sender_id: c for c in session.scalars(select(AnalyticsConversation)).all()}
    finally:
        engine.dispose()

    expected = expected_outcomes(seeded)
    n = len(seeded.senders)
    handed = sum(e["handed_off"] for e in expected.values())
    s = d.summary
    assert s.conversations == n
    assert s.user_messages == sum(len(turns) for turns in seeded.replies.values())
    assert (s.contained, s.handoffs) == (n - handed, handed)
    assert s.containment_rate == pytest.approx((n - handed) / n)
    resolutions = [e["resolution"] for e in expected.values()]
    assert (s.bot_resolved, s.agent_resolved, s.unresolved) == (
        resolutions.count("bot"),
        resolutions.count("agent"),
        resolutions.count("unresolved"),
    )
    assert s.bot_resolved_confirmed == 1  # conversation 0: answered + thumbs-up
    assert (s.feedback_good, s.feedback_bad, s.csat) == (1, 1, 0.5)
    assert s.mission.staff_hours_saved == pytest.approx(resolutions.count("bot") * 6 / 60)

    responses = expected_response_ms(rows)
    assert s.bot_response_ms.count == len(responses)
    for q, value in ((50, s.bot_response_ms.p50), (90, s.bot_response_ms.p90)):
        assert value == pytest.approx(percentile(responses, q), abs=1e-3)
    assert all(0 < r < 10_000 for r in responses)

    assert s.tickets == max(1, len(seeded.tickets))
    assert s.human_first_response_s.p50 == pytest.approx(AGENT_DELAY_S)
    assert s.time_to_close_s.p50 == pytest.approx(CLOSE_DELAY_S)

    for sender, facts in expected.items():
        assert convs[sender].handed_off == facts["handed_off"], sender
        assert convs[sender].feedback == facts["feedback"], sender
        assert convs[sender].channel == "rest"
        assert convs[sender].language == seeded.languages[sender]
    answers = [t for turns in seeded.replies.values() for turn in turns for t in turn]
    assert sum(f.answers for f in d.top_faqs) == answers.count("faq_answer")
    assert any(f.faq_id.endswith("-es") for f in d.top_faqs)
    assert [b.key for b in d.by_language] == ["en", "es"]

    # Replaying the same broker rows (appended again, as after a broker-table restore) and
    # running the consumer again changes nothing.
    before = snapshot(url)
    write_broker(data_dir / "rasa_events.db", rows)
    run_consumer_once(data_dir)
    run_consumer_once(data_dir)
    assert snapshot(url) == before

    # The report command works on the same data.
    out = tmp_path / "report"
    today = datetime.now(UTC).date()
    proc = cli(
        data_dir,
        "report",
        "--from",
        (today - timedelta(days=1)).isoformat(),
        "--to",
        (today + timedelta(days=1)).isoformat(),
        "--out",
        str(out),
    )
    assert f"{n} conversations" in proc.stdout
    assert f"| Conversations | {n} (" in (out / "report.md").read_text()
    shutil.rmtree(out)


def test_live_dashboard_api_shows_the_chat(stack: Stack, seeded: Seeded) -> None:
    """`make run`, chat a little, and the console's metrics include it within seconds."""
    import urllib.parse
    import urllib.request
    from http.cookiejar import CookieJar

    wait_for_live_ingestion(stack, seeded)
    username = f"viewer{uuid.uuid4().hex[:6]}"
    password = "metrics-viewer-password"
    subprocess.run(
        [sys.executable, "-m", "agencyctl.cli", "users", "create", username, "--role",
         "viewer", "--password-stdin"],
        input=password,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, **OFFLINE_ENV, "ASKAGENCY_DATA_DIR": str(stack.cfg.data_dir)},
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    login = urllib.parse.urlencode({"username": username, "password": password}).encode()
    opener.open(f"{stack.cfg.console_url}/console/login", data=login, timeout=30)
    today = datetime.now(UTC).date().isoformat()
    with opener.open(
        f"{stack.cfg.console_url}/api/metrics?from={today}&to={today}", timeout=60
    ) as resp:
        body = json.loads(resp.read())
    assert body["summary"]["conversations"] >= len(seeded.senders)
    with opener.open(f"{stack.cfg.console_url}/console/dashboard", timeout=60) as resp:
        page = resp.read().decode()
    assert 'data-metric="conversations"' in page and "chart-volume_by_channel" in page
