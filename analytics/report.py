"""A one-page leadership summary for a date range: Markdown plus PNG charts.

Built from the same :class:`~analytics.metrics.Dashboard` and tables as the console dashboard, so
the report and the dashboard show the same numbers. Charts are drawn with matplotlib's
non-interactive Agg backend (no display needed on a server).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analytics.metrics import WEEKDAYS, Dashboard
from analytics.pdf import render_pdf
from analytics.plotting import PALETTE, pyplot
from analytics.tables import Table, all_tables, fmt, pct
from analytics.weekly import WeeklyTrend, weekly_tables

RESOLUTION_COLOURS = {"bot": "#009E73", "agent": "#0072B2", "unresolved": "#D55E00"}


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    charts: dict[str, Path]
    csvs: dict[str, Path]
    pdf: Path


def _save(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def chart_volume(d: Dashboard, path: Path) -> Path:
    plt = pyplot()
    days = [p.day[5:] for p in d.daily]
    channels = sorted({c for p in d.daily for c in p.by_channel})
    fig, ax = plt.subplots(figsize=(7, 3))
    bottom = [0] * len(days)
    for i, channel in enumerate(channels):
        values = [p.by_channel.get(channel, 0) for p in d.daily]
        ax.bar(days, values, bottom=bottom, label=channel, color=PALETTE[i % len(PALETTE)])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_title("Conversations per day by channel")
    ax.set_ylabel("conversations")
    if channels:
        ax.legend(loc="upper left", fontsize=8)
    _thin_ticks(ax, days)
    return _save(fig, path)


def chart_response(d: Dashboard, path: Path) -> Path:
    plt = pyplot()
    days = [p.day[5:] for p in d.daily]
    fig, ax = plt.subplots(figsize=(7, 3))
    for label, attr, colour in (
        ("p50", "response_p50_ms", PALETTE[0]),
        ("p90", "response_p90_ms", PALETTE[1]),
        ("p99", "response_p99_ms", PALETTE[5]),
    ):
        values = [getattr(p, attr) for p in d.daily]
        ax.plot(
            days,
            [float("nan") if v is None else v for v in values],
            "o-",
            label=label,
            color=colour,
        )
    ax.set_title("Bot response time per day")
    ax.set_ylabel("milliseconds")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    _thin_ticks(ax, days)
    return _save(fig, path)


def chart_resolution(d: Dashboard, path: Path) -> Path:
    plt = pyplot()
    days = [p.day[5:] for p in d.daily]
    fig, ax = plt.subplots(figsize=(7, 3))
    bottom = [0] * len(days)
    labels = {"bot": "resolved by bot", "agent": "resolved by staff", "unresolved": "unresolved"}
    for key, label in labels.items():
        values = [p.resolution[key] for p in d.daily]
        ax.bar(days, values, bottom=bottom, label=label, color=RESOLUTION_COLOURS[key])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_title("Resolution mix per day")
    ax.set_ylabel("conversations")
    ax.legend(loc="upper left", fontsize=8)
    _thin_ticks(ax, days)
    return _save(fig, path)


def chart_handoffs(d: Dashboard, path: Path) -> Path:
    plt = pyplot()
    reasons = list(d.handoff_reasons)
    fig, ax = plt.subplots(figsize=(7, 2.5))
    if reasons:
        ax.barh([r.replace("_", " ") for r in reasons], list(d.handoff_reasons.values()))
        ax.invert_yaxis()
    else:
        ax.text(0.5, 0.5, "No handoffs in this period", ha="center", va="center")
        ax.set_yticks([])
    ax.set_title("Handoffs by reason")
    ax.set_xlabel("handoffs")
    return _save(fig, path)


def chart_heatmap(d: Dashboard, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 2.6))
    image = ax.imshow(d.heatmap, aspect="auto", cmap="Blues")
    ax.set_yticks(range(7), WEEKDAYS)
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_title(f"Conversations by weekday and hour ({d.time_zone})")
    fig.colorbar(image, ax=ax)
    return _save(fig, path)


def _thin_ticks(ax, labels: list[str]) -> None:  # type: ignore[no-untyped-def]
    """At most ~12 date labels, so long ranges stay readable."""
    step = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, fontsize=8)


def _markdown_table(table: Table, limit: int | None = None) -> str:
    def cell(column: str, value: object) -> str:
        if column.endswith("_rate") and isinstance(value, float | int):
            return pct(float(value))
        text = fmt(value)  # type: ignore[arg-type]
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    rows = table.rows[:limit] if limit else table.rows
    lines += [
        "| " + " | ".join(cell(c, v) for c, v in zip(table.columns, row, strict=True)) + " |"
        for row in rows
    ]
    if not rows:
        lines.append("| " + " | ".join(["–"] * len(table.columns)) + " |")
    return "\n".join(lines)


def render_weekly(t: WeeklyTrend) -> str:
    """The week-over-week and trend section (change_rate cells print as percentages)."""
    tables = weekly_tables(t)
    newest = t.weeks[-1].week
    return "\n".join(
        [
            f"## Week over week (week of {newest} against the week before, {t.time_zone})",
            "",
            *[f"* {sentence}" for sentence in t.highlights],
            *([""] if t.highlights else []),
            _markdown_table(tables["week_over_week"]),
            "",
            *_section("### Conversations by channel", tables["week_over_week_by_channel"]),
            *_section("### Conversations by language", tables["week_over_week_by_language"]),
            *_section("### Conversations by location", tables["week_over_week_by_location"]),
            *_location_sections(tables["week_over_week_per_location"]),
            *_section(
                f"## {len(t.weeks)}-week trend (weeks start on Monday)", tables["weekly_trend"]
            ),
        ]
    )


def _section(heading: str, table: Table) -> list[str]:
    """A Markdown heading with its table under it."""
    return [heading, "", _markdown_table(table), ""]


def _location_sections(table: Table) -> list[str]:
    """One small week-over-week table per location (none under a location filter)."""
    lines: list[str] = []
    for location in dict.fromkeys(row[0] for row in table.rows):
        rows = tuple(row[1:] for row in table.rows if row[0] == location)
        lines += _section(f"### {location}", Table(table.name, location, table.columns[1:], rows))
    return lines


def render_markdown(
    d: Dashboard, charts: dict[str, Path], weekly: WeeklyTrend | None = None
) -> str:
    s = d.summary
    m = s.mission
    scope = f"{d.start} to {d.end} ({d.days} days, {d.time_zone})"
    if d.channel:
        scope += f", channel {d.channel}"
    if d.language:
        scope += f", language {d.language}"
    if d.location:
        scope += f", location {d.location}"
    tables = all_tables(d)
    ms = s.bot_response_ms
    parts = [
        "# AskAgency assistant: leadership summary",
        "",
        f"Period: {scope}.",
        "",
        "## Headline",
        "",
        "| metric | value |",
        "|---|---|",
        f"| Conversations | {fmt(s.conversations)} ({fmt(s.user_messages)} citizen messages) |",
        f"| Containment (no handoff) | {pct(s.containment_rate)} |",
        f"| Bot-resolution rate | {pct(s.bot_resolution_rate)} "
        f"({s.bot_resolved_confirmed} confirmed by a thumbs-up) |",
        f"| Handoff rate | {pct(s.handoff_rate)} ({s.handoffs} handoffs) |",
        f"| Resolved by staff | {s.agent_resolved} (of {s.handoffs} handoffs) |",
        f"| Unresolved | {s.unresolved} |",
        f"| Bot response time p50 / p90 / p99 | {fmt(ms.p50, 'ms')} / {fmt(ms.p90, 'ms')} / "
        f"{fmt(ms.p99, 'ms')} |",
        f"| Human first response p50 / p90 | {fmt(s.human_first_response_s.p50, 's')} / "
        f"{fmt(s.human_first_response_s.p90, 's')} |",
        f"| Time to close p50 | {fmt(s.time_to_close_s.p50, 's')} |",
        f"| CSAT | {pct(s.csat)} ({s.feedback_good} positive, {s.feedback_bad} negative) |",
        f"| Negative sentiment | {pct(s.sentiment.negative_rate)} of "
        f"{s.sentiment.scored_conversations} scored conversations"
        + (
            f", mostly about {', '.join(s.sentiment.negative_topics)}"
            if s.sentiment.negative_topics
            else ""
        )
        + f"; mean at the start {fmt(s.sentiment.start_mean)}, at the end "
        f"{fmt(s.sentiment.end_mean)} |",
        "",
        "## Mission value",
        "",
        f"**{m.staff_hours_saved:,.1f} staff hours saved, {m.fte_equivalent:,.2f} FTE "
        f"equivalent{', ' + m.money() + ' of staff time' if m.money() else ''}.** "
        f"{m.method} {m.assumption}",
        "",
        "## Charts",
        "",
    ]
    titles = {
        "volume": "Conversations per day by channel",
        "response": "Bot response time per day",
        "resolution": "Resolution mix per day",
        "handoffs": "Handoffs by reason",
        "heatmap": "Conversations by weekday and hour",
    }
    for key, path in charts.items():
        parts += [f"![{titles[key]}]({path.name})", ""]
    if weekly is not None:
        parts += [render_weekly(weekly)]
    parts += [
        *_section("## Top FAQs", tables["top_faqs"]),
        *_section("## Top unanswered questions (personal data redacted)", tables["top_unanswered"]),
        *_section("## Not answered by design (out-of-scope entries)", tables["out_of_scope"]),
        *_section("## By channel", tables["by_channel"]),
        *_section("## By location", tables["by_location"]),
        "Definitions: docs/metrics.md. Data tables for every chart are in the CSV files next to "
        "this report.",
        "",
    ]
    return "\n".join(parts)


def write_report(d: Dashboard, out_dir: Path, weekly: WeeklyTrend | None = None) -> ReportFiles:
    """Writes report.md, the one-page report.pdf, one PNG per chart and one CSV per metric
    table into ``out_dir`` (with ``weekly``, also the week-over-week section and its CSVs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = {
        "volume": chart_volume(d, out_dir / "volume_by_channel.png"),
        "response": chart_response(d, out_dir / "response_times.png"),
        "resolution": chart_resolution(d, out_dir / "resolution_mix.png"),
        "handoffs": chart_handoffs(d, out_dir / "handoffs_by_reason.png"),
        "heatmap": chart_heatmap(d, out_dir / "hour_of_day.png"),
    }
    csvs = {}
    tables = {**all_tables(d), **(weekly_tables(weekly) if weekly is not None else {})}
    for name, table in tables.items():
        path = out_dir / f"{name}.csv"
        path.write_text(table.to_csv(), encoding="utf-8")
        csvs[name] = path
    markdown = out_dir / "report.md"
    markdown.write_text(render_markdown(d, charts, weekly), encoding="utf-8")
    pdf = render_pdf(d, weekly, out_dir / "report.pdf")
    return ReportFiles(markdown=markdown, charts=charts, csvs=csvs, pdf=pdf)
