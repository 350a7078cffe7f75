"""The metrics as plain tables: the data behind every chart.

One function turns a :class:`~analytics.metrics.Dashboard` into named tables, so the
dashboard's accessible tables, the CSV exports and the Markdown report cannot disagree.
Values stay raw (numbers, None); :func:`fmt` formats them for people.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from analytics.metrics import WEEKDAYS, Breakdown, ConversationFacts, Dashboard, HandoffFigures
from analytics.pseudonyms import pseudonym, pseudonym_key
from askagency.csv_safe import csv_safe
from askagency.privacy import redact

Cell = str | int | float | None


@dataclass(frozen=True)
class Table:
    name: str  # also the CSV file name
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def to_csv(self) -> str:
        return rows_to_csv(self.columns, self.rows)


def rows_to_csv(columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else csv_safe(v) for v in row])
    return buffer.getvalue()


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def fmt(value: Cell, unit: str = "") -> str:
    """A number as people read it; "–" for no data."""
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        return value
    return f"{text} {unit}".strip()


NEGATIVE_RATE = "Negative sentiment rate"


def headline(d: Dashboard) -> Table:
    s = d.summary
    rows: list[tuple[Cell, ...]] = [
        ("Conversations", s.conversations, ""),
        ("Containment", s.containment_rate, "share of conversations with no handoff"),
        (
            "Bot-resolution rate",
            s.bot_resolution_rate,
            "answered, no handoff, no thumbs-down, no question asked again",
        ),
        ("Bot-resolved, confirmed by thumbs-up", s.bot_resolved_confirmed, ""),
        ("Handoff rate", s.handoff_rate, ""),
        ("Agent-resolved", s.agent_resolved, "tickets closed as resolved"),
        ("Unresolved", s.unresolved, ""),
        ("Bot response time p50 (ms)", s.bot_response_ms.p50, ""),
        ("Bot response time p90 (ms)", s.bot_response_ms.p90, ""),
        ("Bot response time p99 (ms)", s.bot_response_ms.p99, ""),
        ("Human first response p50 (s)", s.human_first_response_s.p50, ""),
        ("Human first response p90 (s)", s.human_first_response_s.p90, ""),
        (
            "Human first response in staffed hours p50 (s)",
            s.human_first_response_staffed_s.p50,
            "only time inside staffed hours counts",
        ),
        (
            "Human first response in staffed hours p90 (s)",
            s.human_first_response_staffed_s.p90,
            "",
        ),
        ("Time to close p50 (s)", s.time_to_close_s.p50, ""),
        ("CSAT", s.csat, f"{s.feedback_good} positive / {s.feedback_bad} negative"),
        (
            NEGATIVE_RATE,
            s.sentiment.negative_rate,
            f"conversations with a negative message, of {s.sentiment.scored_conversations} "
            "scored (English and Spanish)",
        ),
        ("Sentiment at the start (mean)", s.sentiment.start_mean, "VADER compound, -1 to 1"),
        ("Sentiment at the end (mean)", s.sentiment.end_mean, ""),
        (
            "Negative messages are mostly about",
            ", ".join(s.sentiment.negative_topics) or None,
            "",
        ),
        (
            "Staff hours saved",
            s.mission.staff_hours_saved,
            f"{s.mission.method} {s.mission.assumption}",
        ),
        ("Staff cost saved", s.mission.cost_saved, s.mission.currency),
        ("FTE equivalent", s.mission.fte_equivalent, ""),
    ]
    return Table("headline", "Headline metrics", ("metric", "value", "note"), tuple(rows))


def volume_by_channel(d: Dashboard) -> Table:
    channels = sorted({c for p in d.daily for c in p.by_channel})
    rows = tuple(
        (p.day, *(p.by_channel.get(c, 0) for c in channels), p.conversations) for p in d.daily
    )
    return Table(
        "volume_by_channel", "Conversations per day by channel", ("day", *channels, "total"), rows
    )


def response_times(d: Dashboard) -> Table:
    rows = tuple((p.day, p.response_p50_ms, p.response_p90_ms, p.response_p99_ms) for p in d.daily)
    return Table(
        "response_times",
        "Bot response time per day (ms)",
        ("day", "p50_ms", "p90_ms", "p99_ms"),
        rows,
    )


def resolution_mix(d: Dashboard) -> Table:
    rows = tuple(
        (p.day, p.resolution["bot"], p.resolution["agent"], p.resolution["unresolved"])
        for p in d.daily
    )
    return Table(
        "resolution_mix",
        "Resolution per day (conversations)",
        ("day", "bot_resolved", "agent_resolved", "unresolved"),
        rows,
    )


def handoffs_by_reason(d: Dashboard) -> Table:
    rows = tuple((reason, n) for reason, n in d.handoff_reasons.items())
    return Table("handoffs_by_reason", "Handoffs by reason", ("reason", "handoffs"), rows)


HANDOFF_COLUMNS = (
    "tickets",
    "replied",
    "first_response_p50_s",
    "first_response_staffed_p50_s",
    "resolved",
    "resolution_rate",
)


def _handoff_table(
    name: str, title: str, key: str, groups: Sequence[tuple[str, HandoffFigures]]
) -> Table:
    """Per-agent or per-team handoff figures, one row per group."""
    rows = tuple((label, *(getattr(g, c) for c in HANDOFF_COLUMNS)) for label, g in groups)
    return Table(name, title, (key, *HANDOFF_COLUMNS), rows)


def agents(d: Dashboard) -> Table:
    groups = [(a.agent, a) for a in d.by_agent]
    return _handoff_table("by_agent", "Handoffs by agent", "agent", groups)


def teams(d: Dashboard) -> Table:
    groups = [(t.team, t) for t in d.by_team]
    return _handoff_table("by_team", "Handoffs by team", "team", groups)


def hour_of_day(d: Dashboard) -> Table:
    rows = tuple((day, *counts) for day, counts in zip(WEEKDAYS, d.heatmap, strict=True))
    return Table(
        "hour_of_day",
        f"Conversations started by weekday and hour ({d.time_zone})",
        ("weekday", *(f"{h:02d}" for h in range(24))),
        rows,
    )


def _breakdown(name: str, title: str, key: str, items: Sequence[Breakdown]) -> Table:
    rows = tuple(
        (
            b.key,
            b.conversations,
            b.containment_rate,
            b.bot_resolution_rate,
            b.handoff_rate,
            b.response_p50_ms,
            b.response_p90_ms,
            b.negative_rate,
        )
        for b in items
    )
    columns = (
        key,
        "conversations",
        "containment_rate",
        "bot_resolution_rate",
        "handoff_rate",
        "response_p50_ms",
        "response_p90_ms",
        "negative_rate",
    )
    return Table(name, title, columns, rows)


def top_faqs(d: Dashboard) -> Table:
    rows = tuple((f.faq_id, f.question, f.answers, f.mean_score) for f in d.top_faqs)
    return Table("top_faqs", "Top FAQs", ("faq_id", "question", "answers", "mean_score"), rows)


def related_summary(d: Dashboard) -> Table:
    r = d.related
    return Table(
        "related_summary",
        "Related questions: answers offering them, and buttons pressed",
        ("offers", "clicks", "click_rate"),
        ((r.offers, r.clicks, r.click_rate),),
    )


def related_pairs(d: Dashboard) -> Table:
    rows = tuple(
        (p.from_faq, p.from_question, p.to_faq, p.to_question, p.clicks)
        for p in d.related.top_pairs
    )
    return Table(
        "related_pairs",
        "Related questions pressed most (from the answer of X to Y)",
        ("from_faq", "from_question", "to_faq", "to_question", "clicks"),
        rows,
    )


def top_unanswered(d: Dashboard) -> Table:
    rows = tuple((u.question, u.count, u.last_seen) for u in d.top_unanswered)
    return Table(
        "top_unanswered",
        "Top unanswered questions (grouped by wording, PII redacted)",
        ("question", "count", "last_seen"),
        rows,
    )


def out_of_scope(d: Dashboard) -> Table:
    rows = tuple((o.entry, o.count) for o in d.out_of_scope)
    return Table(
        "out_of_scope",
        "Questions not answered by design, by the out-of-scope entry that took them",
        ("entry", "count"),
        rows,
    )


def all_tables(d: Dashboard) -> dict[str, Table]:
    """Every metric table by name (the CSV export names)."""
    tables = [
        headline(d),
        volume_by_channel(d),
        response_times(d),
        resolution_mix(d),
        handoffs_by_reason(d),
        agents(d),
        teams(d),
        hour_of_day(d),
        _breakdown("by_channel", "By channel", "channel", d.by_channel),
        _breakdown("by_language", "By language", "language", d.by_language),
        _breakdown("by_location", "By location", "location", d.by_location),
        top_faqs(d),
        related_summary(d),
        related_pairs(d),
        top_unanswered(d),
        out_of_scope(d),
    ]
    return {t.name: t for t in tables}


CONVERSATION_COLUMNS = (
    "conversation",
    "started_at",
    "ended_at",
    "channel",
    "language",
    "location",
    "user_messages",
    "questions",
    "answers",
    "handed_off",
    "handoff_reason",
    "resolution",
    "feedback",
    "human_first_response_s",
    "time_to_close_s",
    "first_question",
)


def conversations_table(records: Sequence[ConversationFacts], key: bytes | None = None) -> Table:
    """Per-conversation export: pseudonymous ids (keyed, :mod:`analytics.pseudonyms`; ``key``
    defaults to this installation's), citizen text redacted again on the way out."""
    key = pseudonym_key() if key is None else key
    rows = tuple(
        (
            pseudonym(c.sender_id, key) + c.key[len(c.sender_id) :],
            c.started_at.isoformat(),
            c.ended_at.isoformat(),
            c.channel,
            c.language,
            c.location,
            c.user_messages,
            c.questions,
            c.answers,
            int(c.handed_off),
            c.handoff_reason,
            c.resolution,
            c.feedback,
            c.first_response_s,
            c.time_to_close_s,
            redact(c.first_question) if c.first_question else None,
        )
        for c in records
    )
    return Table("conversations", "Conversations", CONVERSATION_COLUMNS, rows)
