"""The weekly leadership report as one A4 page of PDF: highlights, headline figures, the trend,
locations, the knowledge base's gaps and the mission value with its method.

Why matplotlib: it already draws the report's charts, writes PDF without a browser or system
libraries, and embeds its DejaVu fonts (accents and "ñ" print in every viewer). The page is
laid out in inches on one figure; every number comes from the same Dashboard and WeeklyTrend
as the Markdown report and the console.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from analytics.metrics import Dashboard
from analytics.plotting import PALETTE, pyplot
from analytics.tables import fmt, pct
from analytics.weekly import WeeklyTrend
from knowledge_base.text import one_line

A4 = (8.27, 11.69)  # inches
MAX_LOCATIONS = 6
# Gaps named in the e-mail and on the page: the questions asked most without a direct answer,
# and the out-of-scope entries that took most; the CSVs hold them all.
MAX_GAPS = 5
PAGE_GAPS = 3
GAP_QUESTION_CHARS = 60
GAP_LINES = 3  # what fits between the locations table and the footer, below the title
HIGHLIGHTS_TOP = 0.925  # figure fraction
HIGHLIGHT_PT = 8.5
HIGHLIGHT_SPACING = 1.4
HIGHLIGHT_LINE = HIGHLIGHT_PT * HIGHLIGHT_SPACING / 72 / A4[1]  # one line, in figure fraction
MAX_HIGHLIGHT_LINES = 8  # what fits above the headline table and the charts
INK = "#1a1a1a"
MUTED = "#555555"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def whole_sentence_lines(
    sentences: list[str], width: int, max_lines: int, bullet: str = ""
) -> list[str]:
    """``sentences`` wrapped to ``width`` characters, as many as fit in ``max_lines`` lines
    whole, in order: a sentence cut in half on a printed page reads as a different claim."""
    lines: list[str] = []
    for sentence in sentences:
        wrapped = textwrap.wrap(bullet + sentence, width, subsequent_indent="  ")
        if len(lines) + len(wrapped) > max_lines:
            break
        lines += wrapped
    return lines


def highlight_lines(highlights: list[str]) -> list[str]:
    """The highlight sentences as bullet lines, at most :data:`MAX_HIGHLIGHT_LINES` (the rest
    are in the Markdown report and the CSVs)."""
    return whole_sentence_lines(highlights, 110, MAX_HIGHLIGHT_LINES, "• ")


def headline_rows(d: Dashboard) -> list[tuple[str, str]]:
    s = d.summary
    m = s.mission
    return [
        ("Conversations", f"{s.conversations:,} ({s.user_messages:,} messages)"),
        ("Resolved by the bot", f"{pct(s.bot_resolution_rate)} ({s.bot_resolved:,})"),
        ("Handed off to staff", f"{pct(s.handoff_rate)} ({s.handoffs:,})"),
        (
            "First human response, staffed hours (median)",
            _seconds(s.human_first_response_staffed_s.p50),
        ),
        ("CSAT", f"{pct(s.csat)} ({s.feedback_good} up, {s.feedback_bad} down)"),
        (
            "Negative sentiment",
            f"{pct(s.sentiment.negative_rate)} of {s.sentiment.scored_conversations:,} scored",
        ),
        ("Bot response time (median)", f"{fmt(s.bot_response_ms.p50, 'ms')}"),
        (
            "Staff hours saved",
            f"{m.staff_hours_saved:,.1f} h, {m.fte_equivalent:,.2f} FTE"
            + (f", {m.money()}" if m.money() else ""),
        ),
    ]


def gap_sentences(d: Dashboard, limit: int = MAX_GAPS) -> list[str]:
    """Where the service fell short in the period, for leadership: the questions citizens asked
    most that the bot could not answer directly (the console's Unanswered page, personal data
    redacted) and the out-of-scope entries that took most (demand the agency sends elsewhere by
    design). Staff close the first by adding FAQs or variants; the second says what citizens
    expect of the service that it does not offer. Empty when there is neither."""
    sentences = []
    if d.top_unanswered:
        asked = ", ".join(
            f"“{one_line(u.question, GAP_QUESTION_CHARS)}” ({u.count})"
            for u in d.top_unanswered[:limit]
        )
        sentences.append(f"Asked most without a direct answer: {asked}.")
    if d.out_of_scope:
        took = ", ".join(f"{o.entry} ({o.count})" for o in d.out_of_scope[:limit])
        sentences.append(f"Not answered by design (out-of-scope entries): {took}.")
    return sentences


def gap_lines(d: Dashboard) -> list[str]:
    """:func:`gap_sentences` wrapped for the page, at most :data:`GAP_LINES`."""
    return whole_sentence_lines(gap_sentences(d, PAGE_GAPS), 125, GAP_LINES)


def location_rows(weekly: WeeklyTrend) -> list[tuple[str, ...]]:
    """One row per location (busiest first): this week's figures and conversations a week
    earlier."""
    rows = []
    for location, changes in list(weekly.location_changes.items())[:MAX_LOCATIONS]:
        c = {change.metric: change for change in changes}
        conversations = c["conversations"]
        rows.append(
            (
                location,
                f"{fmt(conversations.this_week)} ({fmt(conversations.previous_week)})",
                pct(c["bot_resolution_rate"].this_week),  # type: ignore[arg-type]
                fmt(c["handoffs"].this_week),
                _seconds(c["human_first_response_staffed_p50_s"].this_week),  # type: ignore[arg-type]
                pct(c["csat"].this_week),  # type: ignore[arg-type]
                pct(c["negative_rate"].this_week),  # type: ignore[arg-type]
            )
        )
    return rows


def _table(
    ax: Any,
    rows: list[tuple[str, ...]],
    columns: tuple[str, ...] | None,
    widths: tuple[float, ...] | None = None,
) -> None:
    ax.axis("off")
    if not rows:
        ax.text(0, 0.5, "No data in this period.", color=MUTED, fontsize=9)
        return
    table = ax.table(
        cellText=rows,
        colLabels=columns,
        colWidths=list(widths) if widths else None,
        loc="upper left",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.25)
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("#cccccc")
        if row == 0 and columns:
            cell.set_facecolor("#e8eef5")
            cell.get_text().set_weight("bold")


def _trend(ax: Any, weekly: WeeklyTrend | None, d: Dashboard) -> None:
    if weekly is not None:
        labels = [w.week[5:] for w in weekly.weeks]
        series = {
            "conversations": [w.conversations for w in weekly.weeks],
            "resolved by the bot": [w.bot_resolved for w in weekly.weeks],
            "handed off": [w.handoffs for w in weekly.weeks],
        }
        ax.set_title(f"{len(labels)}-week trend (weeks starting)", fontsize=10, loc="left")
    else:
        labels = [p.day[5:] for p in d.daily]
        series = {"conversations": [p.conversations for p in d.daily]}
        ax.set_title("Conversations per day", fontsize=10, loc="left")
    for i, (name, values) in enumerate(series.items()):
        ax.plot(labels, values, "o-", label=name, color=PALETTE[i], markersize=3)
    ax.set_ylim(bottom=0)
    ax.tick_params(labelsize=7)
    step = max(1, len(labels) // 10)
    ax.set_xticks(range(0, len(labels), step), labels[::step])
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(axis="y", color="#eeeeee")


def _locations_chart(ax: Any, d: Dashboard) -> None:
    items = d.by_location[:MAX_LOCATIONS]
    ax.set_title("Conversations by location (share negative)", fontsize=10, loc="left")
    if not items:
        ax.axis("off")
        return
    keys = [b.key for b in items]
    ax.barh(keys, [b.conversations for b in items], color=PALETTE[0])
    ax.invert_yaxis()
    for y, b in enumerate(items):
        ax.text(b.conversations, y, f"  {pct(b.negative_rate)}", va="center", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.margins(x=0.25)


def scope_line(d: Dashboard) -> str:
    scope = f"{d.start} to {d.end} ({d.days} days, {d.time_zone})"
    for name, value in (("channel", d.channel), ("language", d.language), ("location", d.location)):
        if value:
            scope += f", {name} {value}"
    return scope


def render_pdf(d: Dashboard, weekly: WeeklyTrend | None, path: Path) -> Path:
    """Writes the one-page report to ``path``."""
    plt = pyplot()
    from matplotlib.backends.backend_pdf import PdfPages

    fig = plt.figure(figsize=A4)
    fig.text(
        0.06, 0.965, "AskAgency assistant: leadership report", fontsize=16, weight="bold", color=INK
    )
    fig.text(0.06, 0.945, scope_line(d), fontsize=9, color=MUTED)
    lines = highlight_lines(weekly.highlights if weekly else [])
    fig.text(
        0.06,
        HIGHLIGHTS_TOP,
        "\n".join(lines) or " ",
        fontsize=HIGHLIGHT_PT,
        va="top",
        color=INK,
        linespacing=HIGHLIGHT_SPACING,
    )
    # The headline table starts below the highlights, however many lines they took.
    table_top = HIGHLIGHTS_TOP - len(lines) * HIGHLIGHT_LINE - 0.015
    _table(
        fig.add_axes((0.06, table_top - 0.17, 0.88, 0.17)),
        [tuple(r) for r in headline_rows(d)],
        ("Headline", "Value"),
        (0.55, 0.45),
    )
    _trend(fig.add_axes((0.08, 0.40, 0.40, 0.17)), weekly, d)
    _locations_chart(fig.add_axes((0.60, 0.40, 0.34, 0.17)), d)
    if weekly is not None and weekly.location_changes:
        fig.text(
            0.06,
            0.355,
            f"Locations, week of {weekly.weeks[-1].week}",
            fontsize=10,
            weight="bold",
            color=INK,
        )
        columns = (
            "Location",
            "Conv. (week before)",
            "Bot-resolved",
            "Handoffs",
            "First response",
            "CSAT",
            "Negative",
        )
        widths = (0.11, 0.19, 0.14, 0.11, 0.15, 0.12, 0.14)
        _table(fig.add_axes((0.06, 0.175, 0.88, 0.165)), location_rows(weekly), columns, widths)
    gaps = gap_lines(d)
    if gaps:
        fig.text(0.06, 0.165, "Where the FAQs fell short", fontsize=10, weight="bold", color=INK)
        fig.text(
            0.06,
            0.155,
            "\n".join(gaps),
            fontsize=8,
            va="top",
            color=INK,
            linespacing=1.4,
            parse_math=False,  # citizens' words: a "$" is not the start of a formula
        )
    m = d.summary.mission
    footer = textwrap.wrap(f"Staff hours saved: {m.method} {m.assumption}", 130)
    footer.append("Definitions: docs/metrics.md. Tables for every figure are in the CSV files.")
    fig.text(0.06, 0.10, "\n".join(footer), fontsize=7, va="top", color=MUTED, linespacing=1.4)
    with PdfPages(
        path,
        metadata={
            "Title": "AskAgency leadership report",
            "Creator": "AskAgency",
            "CreationDate": None,
        },
    ) as pdf:
        pdf.savefig(fig)
    plt.close(fig)
    return path
