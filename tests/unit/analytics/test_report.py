"""``askagency report``: Markdown + PNG charts + CSVs for the seeded scenario."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from agencyctl.cli import app
from tests.unit.analytics.test_scenario import seed

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_writes_markdown_charts_and_csvs(db_session: Session, tmp_path: Path) -> None:
    seed(db_session)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["report", "--from", "2026-03-02", "--to", "2026-03-03", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "6 conversations from 2026-03-02 to 2026-03-03; 0.2 staff hours saved." in result.output
    markdown = (out / "report.md").read_text()
    assert "Period: 2026-03-02 to 2026-03-03 (2 days, UTC)." in markdown
    assert "| Containment (no handoff) | 66.7% |" in markdown
    assert "| Bot-resolution rate | 33.3% (1 confirmed by a thumbs-up) |" in markdown
    assert "| Bot response time p50 / p90 / p99 | 32.5 ms / 78.0 ms / 97.8 ms |" in markdown
    assert "| Human first response p50 / p90 | 210.0 s / 282.0 s |" in markdown
    assert "| CSAT | 50.0% (1 positive, 1 negative) |" in markdown
    assert (
        "| Negative sentiment | 33.3% of 6 scored conversations, mostly about esperando, "
        "flagged, hora, line; mean at the start 0.11, at the end -0.05 |"
    ) in markdown
    assert "| MIA | 1 | 0.0% | 0.0% | 100.0% | 42.5 | 56.5 | 100.0% |" in markdown  # by location
    assert (
        "**0.2 staff hours saved, 0.02 FTE equivalent.** Counts only conversations the bot "
        "resolved" in markdown
    )
    assert "Assumes each resolved conversation saves 6 minutes" in markdown
    assert "| liquids | – | 2 | 0.86 |" in markdown
    for png in ("volume_by_channel", "response_times", "resolution_mix", "handoffs_by_reason"):
        assert f"]({png}.png)" in markdown
        data = (out / f"{png}.png").read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert (out / "hour_of_day.png").read_bytes().startswith(PNG_MAGIC)
    assert (out / "handoffs_by_reason.csv").read_text().splitlines() == [
        "reason,handoffs",
        "repeated_fallback,1",
        "requested,1",
    ]


def test_report_filters_and_empty_periods(db_session: Session, tmp_path: Path) -> None:
    seed(db_session)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["report", "--from", "2025-01-01", "--to", "2025-01-31", "--out", str(tmp_path / "e")],
    )
    assert result.exit_code == 0, result.output
    assert "0 conversations" in result.output
    assert "| Containment (no handoff) | – |" in (tmp_path / "e" / "report.md").read_text()
    result = runner.invoke(
        app,
        [
            "report",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-03",
            "--channel",
            "socketio",
            "--minutes-per-contact",
            "10",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "s" / "report.md").read_text()
    assert (
        "channel socketio" in markdown and "| Conversations | 1 (3 citizen messages) |" in markdown
    )


def test_report_rejects_bad_dates_clearly(db_session: Session, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["report", "--from", "2026-03-09", "--to", "2026-03-01", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "is after" in result.output
    assert not (tmp_path / "report.md").exists()


def test_pdf_highlights_keep_whole_sentences_within_their_space() -> None:
    """Four long highlights overflowed onto the headline table; now whole sentences only,
    never more lines than the page keeps for them."""
    from analytics.pdf import MAX_HIGHLIGHT_LINES, highlight_lines

    sentence = "Negative sentiment at DEN rose 30% to 12.0% of conversations (from 9.2%), " * 2
    lines = highlight_lines([sentence.strip()] * 6)
    assert 0 < len(lines) <= MAX_HIGHLIGHT_LINES
    assert sum(line.startswith("• ") for line in lines) == len(lines) // 2  # 2 lines each
    assert highlight_lines(["Short."]) == ["• Short."]
