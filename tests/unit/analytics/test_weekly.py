"""Week over week and the weekly trend, on the seeded scenario (6 conversations in the week of
Monday 2026-03-02: 5 on rest, 1 on socketio; 2 resolved by the bot, 2 handoffs)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from agencyctl.cli import app
from analytics.ingest import ingest
from analytics.metrics import Assumptions, MetricFilter
from analytics.weekly import compute_weekly, last_full_week_end, weekly_tables
from tests.unit.analytics.test_scenario import DAY1, Conversation, answer, seed


@pytest.fixture
def seeded(db_session: Session) -> Session:
    seed(db_session)
    return db_session


def upto(day: str, zone: str = "UTC") -> MetricFilter:
    return MetricFilter.parse(None, day, zone=zone)


@pytest.mark.parametrize(
    ("day", "sunday"),
    [("2026-03-11", "2026-03-08"), ("2026-03-08", "2026-03-08"), ("2026-03-09", "2026-03-08")],
)
def test_the_newest_week_is_the_last_full_one(day: str, sunday: str) -> None:
    assert last_full_week_end(date.fromisoformat(day)) == date.fromisoformat(sunday)


def test_week_over_week_from_an_empty_week(seeded: Session) -> None:
    t = compute_weekly(seeded, upto("2026-03-10"), Assumptions(6.0, 37.5), weeks=2)
    assert [w.week for w in t.weeks] == ["2026-02-23", "2026-03-02"]
    newest = t.weeks[-1]
    assert (newest.conversations, newest.bot_resolved, newest.handoffs) == (6, 2, 2)
    assert (newest.csat, newest.staff_hours_saved) == (0.5, 0.2)
    assert newest.human_first_response_staffed_p50_s == 210.0
    conversations = next(c for c in t.changes if c.metric == "conversations")
    assert (conversations.this_week, conversations.previous_week, conversations.change) == (
        6,
        0,
        None,  # no change rate from nothing
    )
    assert t.highlights[0] == (
        "Negative sentiment was 33.3% of conversations (no scored conversation the week "
        "before), mostly about esperando, flagged, hora."
    )
    assert t.highlights[1:] == [  # the unhappiest location first; DEN and ORD: nobody was
        "Negative sentiment at MIA was 100.0% of conversations (no scored conversation the "
        "week before), mostly about esperando, hora.",
        "Negative sentiment with no known location was 50.0% of conversations (no scored "
        "conversation the week before), mostly about flagged, line.",
    ]
    assert [(c.metric, c.this_week, c.previous_week) for c in t.by_channel] == [
        ("rest", 5, 0),
        ("socketio", 1, 0),
    ]


def test_week_over_week_drop_and_the_trend_table(seeded: Session) -> None:
    t = compute_weekly(seeded, upto("2026-03-15"), Assumptions(6.0, 37.5), weeks=3)
    assert [w.conversations for w in t.weeks] == [0, 6, 0]
    change = {c.metric: c.change for c in t.changes}
    assert change["conversations"] == -1.0 and change["handoffs"] == -1.0
    assert [(c.metric, c.change) for c in t.by_language] == [("en", -1.0), ("es", -1.0)]
    trend = weekly_tables(t)["weekly_trend"]
    assert trend.columns[:3] == ("week", "conversations", "bot_resolved")
    assert [row[:2] for row in trend.rows] == [
        ("2026-02-23", 0),
        ("2026-03-02", 6),
        ("2026-03-09", 0),
    ]


def test_week_over_week_per_location(seeded: Session) -> None:
    """The seeded week has DEN 2 (A's two sessions), MIA 1 (C, handed off and resolved by an
    agent), ORD 1 and 2 unknown; the week after is empty."""
    t = compute_weekly(seeded, upto("2026-03-15"), Assumptions(6.0, 37.5), weeks=2)
    assert [(c.metric, c.this_week, c.previous_week) for c in t.by_location] == [
        ("DEN", 0, 2),
        ("MIA", 0, 1),
        ("ORD", 0, 1),
        ("unknown", 0, 2),
    ]
    miami = {c.metric: (c.this_week, c.previous_week) for c in t.location_changes["MIA"]}
    assert miami["conversations"] == (0, 1) and miami["handoffs"] == (0, 1)
    assert miami["negative_rate"] == (None, 1.0)
    assert t.highlights == []  # the newest week has no scored conversation anywhere
    assert miami["human_first_response_staffed_p50_s"] == (None, 120.0)
    denver = {c.metric: c.previous_week for c in t.location_changes["DEN"]}
    assert (denver["bot_resolved"], denver["staff_hours_saved"]) == (1, 0.1)
    rows = weekly_tables(t)["week_over_week_per_location"].rows
    assert ("ORD", "conversations", 0, 1, -1.0) in rows
    # Under a location filter the trend is that location's, with no per-location split.
    only = compute_weekly(
        seeded, replace(upto("2026-03-08"), location="MIA"), Assumptions(6.0, 37.5), weeks=2
    )
    assert [w.conversations for w in only.weeks] == [0, 1] and only.location_changes == {}


def test_weeks_are_the_agencys_weeks(seeded: Session) -> None:
    """Day 2's last conversation starts at 22:11 UTC on Tuesday; in Auckland (UTC+13) that is
    already Wednesday, but still the same week; citizen A's first session (Monday 10:00 UTC)
    is Monday 23:00 there. Nothing moves across the Sunday boundary, so the totals agree."""
    t = compute_weekly(
        seeded, upto("2026-03-08", "Pacific/Auckland"), Assumptions(6.0, 37.5), weeks=2
    )
    assert t.time_zone == "Pacific/Auckland" and t.weeks[-1].conversations == 6


def test_report_command_writes_the_weekly_section(seeded: Session, tmp_path: Path) -> None:
    out = tmp_path / "weekly"
    args = ["report", "--from", "2026-03-02", "--to", "2026-03-08", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--weeks", "2"])
    assert result.exit_code == 0, result.output
    markdown = (out / "report.md").read_text()
    assert "## Week over week (week of 2026-03-02 against the week before, UTC)" in markdown
    assert "| conversations | 6 | 0 | – |" in markdown
    assert "## 2-week trend (weeks start on Monday)" in markdown
    assert (out / "week_over_week_by_channel.csv").read_text().splitlines()[:2] == [
        "metric,this_week,previous_week,change_rate",
        "rest,5,0,",
    ]
    assert "### MIA" in markdown and "| handoffs | 1 | 0 | – |" in markdown
    assert (out / "by_location.csv").read_text().splitlines()[1].startswith("DEN,2,")
    bad = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "bad"), "--weeks", "1"])
    assert bad.exit_code != 0 and "at least 2 weeks" in bad.output


def test_a_rise_in_negative_sentiment_is_a_highlight(seeded: Session) -> None:
    """The week after the scenario, one conversation on the Denver page, and it is negative."""
    later = Conversation("citizen-f", DAY1 + timedelta(days=7, hours=9), location="DEN")
    later.session_start().user("the line is so slow, I will miss my flight", "ask_question")
    later.bot(30, answer("wait-times", 0.8))
    ingest(seeded, [(str(i), e) for i, e in enumerate(later.events)], "test")
    seeded.commit()
    t = compute_weekly(seeded, upto("2026-03-15"), Assumptions(6.0, 37.5), weeks=2)
    assert t.highlights[0] == (
        "Negative sentiment rose 200% to 100.0% of conversations (from 33.3%), mostly about "
        "flight, line."  # "slow" and "miss" carry the feeling; they are not the topic
    )
    assert t.highlights[1] == (  # no relative change from 0%
        "Negative sentiment at DEN rose to 100.0% of conversations (from 0.0%), mostly about "
        "flight, line."
    )
