"""The dashboard from the daily roll-ups (analytics.rollup), for large periods.

Why: at a year of AskTSA-scale traffic the exact path (analytics.metrics.exact_dashboard) loads
a million conversations into Python. These functions add up the pre-aggregated rows of
analytics.rollup instead (read with analytics.rollup_read), a few thousand per filter and year.
Every count, rate, sum and top list is the exact path's (tests/unit/analytics/test_rollup.py);
only the bot response-time percentiles come from a histogram, within one bucket (12.2%) of the
exact ones. Everything that depends on a handoff ticket is read from the ticket rows, as in the
exact path: tickets change outside analytics. docs/metrics.md, "Speed at volume".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import rollup_read
from analytics.alongside import alongside
from analytics.metrics import (
    RELATED_PAIR_SEPARATOR,
    RESOLUTIONS,
    TOP_N,
    WEEKDAYS,
    Assumptions,
    Breakdown,
    ConversationFacts,
    Dashboard,
    DayPoint,
    MetricFilter,
    OutOfScope,
    Percentiles,
    RelatedFigures,
    Summary,
    TicketFacts,
    TopFaq,
    Unanswered,
    by_agent,
    by_team,
    load_tickets,
    mission_value,
    period_fields,
    queue_figures,
    rate,
    related_figures,
    summarise,
)
from analytics.models import HOURS
from analytics.sentiment import SentimentSummary, top_topics
from knowledge_base.models import Faq


def _round3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _hist_percentiles(hist: rollup_read.Histogram) -> Percentiles:
    return Percentiles(
        count=sum(hist.values()),
        p50=_round3(rollup_read.hist_percentile(hist, 50)),
        p90=_round3(rollup_read.hist_percentile(hist, 90)),
        p99=_round3(rollup_read.hist_percentile(hist, 99)),
    )


def _rate4(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean4(total_units: int, count: int) -> float | None:
    return round(total_units / rollup_read.SENTIMENT_UNIT / count, 4) if count else None


def _handoffs_without_ticket_row(rows: Sequence[Any]) -> list[ConversationFacts]:
    """Handed-off conversations whose ticket is not in the handoff tables, with the fields
    analytics.load_tickets reads to count them from their own handoff events."""

    def seconds(start: datetime | None, end: datetime | None) -> float | None:
        return None if start is None or end is None else (end - start).total_seconds()

    return [
        ConversationFacts(
            key=r.conversation_key,
            sender_id=r.sender_id,
            started_at=r.started_at,
            ended_at=r.ended_at,
            channel=r.channel,
            language=r.language,
            user_messages=0,
            questions=0,
            answers=0,
            handed_off=True,
            handoff_reason=r.handoff_reason,
            ticket_id=r.ticket_id,
            feedback=None,
            first_question=None,
            ticket_resolved=r.closed_resolved,
            first_response_s=seconds(r.handoff_at, r.first_agent_reply_at),
            time_to_close_s=seconds(r.handoff_at, r.closed_at),
            handoff_at=r.handoff_at,
            first_agent_reply_at=r.first_agent_reply_at,
            closed_at=r.closed_at,
            location=r.location,
        )
        for r in rows
    ]


def _rollup_sentiment(total: Counter[str], topics: dict[str, int]) -> SentimentSummary:
    return SentimentSummary(
        scored_messages=total["scored_messages"],
        negative_messages=total["negative_messages"],
        negative_message_rate=_rate4(total["negative_messages"], total["scored_messages"]),
        scored_conversations=total["scored_conversations"],
        negative_conversations=total["negative_conversations"],
        negative_rate=_rate4(total["negative_conversations"], total["scored_conversations"]),
        start_mean=_mean4(total["sentiment_start_sum"], total["sentiment_start_count"]),
        end_mean=_mean4(total["sentiment_end_sum"], total["sentiment_end_count"]),
        improved=total["improved"],
        worsened=total["worsened"],
        negative_topics=top_topics(topics),
    )


def _rollup_breakdown(
    sums: dict[Any, Counter[str]], hists: dict[Any, rollup_read.Histogram]
) -> list[Breakdown]:
    rows = []
    for key, s in sorted(sums.items(), key=lambda item: (-item[1]["conversations"], item[0])):
        n, handed = s["conversations"], s["handoffs"]
        if n == 0:
            continue
        hist = hists.get(key, {})
        rows.append(
            Breakdown(
                key=key,
                conversations=n,
                containment_rate=rate(n - handed, n),
                bot_resolution_rate=rate(s["bot_resolved"], n),
                handoff_rate=rate(handed, n),
                response_p50_ms=_round3(rollup_read.hist_percentile(hist, 50)),
                response_p90_ms=_round3(rollup_read.hist_percentile(hist, 90)),
                negative_rate=_rate4(s["negative_conversations"], s["scored_conversations"]),
            )
        )
    return rows


def _rollup_top_faqs(session: Session, flt: MetricFilter) -> list[TopFaq]:
    counts = rollup_read.label_sums(session, flt, "faq").get((), {})
    ranked = sorted(counts.items(), key=lambda item: (-item[1][0], item[0]))[:TOP_N]
    titles: dict[str, str] = {}
    if ranked:
        query = select(Faq.id, Faq.question).where(Faq.id.in_([faq for faq, _ in ranked]))
        titles = dict(session.execute(query).tuples().all())
    return [
        TopFaq(
            faq_id=faq_id,
            question=titles.get(faq_id),
            answers=n,
            mean_score=round(score / rollup_read.SCORE_UNIT / scored, 4) if scored else None,
        )
        for faq_id, (n, score, scored) in ranked
    ]


def _rollup_related(session: Session, flt: MetricFilter) -> RelatedFigures:
    """analytics.metrics.related_from_turns from the ``related_offer``/``related_click``
    labels (counted by the same rules in analytics.rollup.Delta.add)."""
    offers = rollup_read.label_sums(session, flt, "related_offer").get((), {})
    clicks = rollup_read.label_sums(session, flt, "related_click").get((), {})
    pairs: Counter[tuple[str, str]] = Counter()
    for label, (n, _score, _scored) in clicks.items():
        source, _, target = label.partition(RELATED_PAIR_SEPARATOR)
        if n:
            pairs[(source, target)] += n
    return related_figures(session, sum(v[0] for v in offers.values()), pairs)


def _rollup_daily(
    flt: MetricFilter,
    by_day_channel: dict[tuple[Any, ...], Counter[str]],
    day_hists: dict[Any, rollup_read.Histogram],
    reasons: dict[tuple[Any, ...], dict[str, tuple[int, int, int]]],
    agent_by_day: Counter[date],
) -> list[DayPoint]:
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    channels: dict[date, dict[str, int]] = defaultdict(dict)
    for (day, channel), s in by_day_channel.items():
        per_day[day].update(s)
        if s["conversations"]:
            channels[day][channel] = s["conversations"]
    points = []
    for day in flt.dates():
        s, hist = per_day.get(day, Counter()), day_hists.get(day, {})
        bot, agent = s["bot_resolved"], agent_by_day[day]
        resolution = {"bot": bot, "agent": agent, "unresolved": s["conversations"] - bot - agent}
        day_reasons = {label: v[0] for label, v in reasons.get((day,), {}).items()}
        points.append(
            DayPoint(
                day=day.isoformat(),
                conversations=s["conversations"],
                by_channel=dict(sorted(channels.get(day, {}).items())),
                response_p50_ms=_round3(rollup_read.hist_percentile(hist, 50)),
                response_p90_ms=_round3(rollup_read.hist_percentile(hist, 90)),
                response_p99_ms=_round3(rollup_read.hist_percentile(hist, 99)),
                resolution={r: resolution[r] for r in RESOLUTIONS},
                handoffs_by_reason=dict(sorted(day_reasons.items())),
            )
        )
    return points


def _rollup_heatmap(by_day_channel: dict[tuple[Any, ...], Counter[str]]) -> list[list[int]]:
    """Conversations per weekday and hour: the hour columns of each agency day."""
    grid = [[0] * 24 for _ in WEEKDAYS]
    for (day, _channel), s in by_day_channel.items():
        for hour, column in enumerate(HOURS):
            grid[day.weekday()][hour] += s[column]
    return grid


def _rollup_by_channel(
    by_day_channel: dict[tuple[Any, ...], Counter[str]],
) -> dict[Any, Counter[str]]:
    sums: dict[Any, Counter[str]] = defaultdict(Counter)
    for (_day, channel), s in by_day_channel.items():
        sums[channel].update(s)
    return sums


def _rollup_breakdown_of(
    session: Session, flt: MetricFilter, column: str, hists: dict[Any, rollup_read.Histogram]
) -> list[Breakdown]:
    sums = {key[0]: s for key, s in rollup_read.daily_sums(session, flt, column).items()}
    return _rollup_breakdown(sums, hists)


def _period_total(
    session: Session, flt: MetricFilter, exact_up_to: int, *by: str
) -> tuple[dict[tuple[Any, ...], Counter[str]], Counter[str]] | None:
    """The period's roll-up sums grouped by ``by``, and their total; None when the exact path
    must answer (the roll-ups are missing or in another time zone, or the period is small)."""
    if rollup_read.built_zone(session) != flt.zone:
        return None
    grouped = rollup_read.daily_sums(session, flt, *by)
    total: Counter[str] = Counter()
    for s in grouped.values():
        total.update(s)
    if total["conversations"] <= exact_up_to:
        return None
    return grouped, total


def dashboard_from_rollups(
    session: Session,
    flt: MetricFilter,
    assumptions: Assumptions,
    exact_up_to: int = rollup_read.EXACT_UP_TO,
) -> Dashboard | None:
    """The dashboard from the roll-ups; None when the exact path must answer."""
    found = _period_total(session, flt, exact_up_to, "day", "channel")
    if found is None:
        return None
    by_day_channel, total = found
    return _assemble_from_rollups(session, flt, by_day_channel, total, assumptions)


def summary_from_rollups(
    session: Session,
    flt: MetricFilter,
    assumptions: Assumptions,
    exact_up_to: int = rollup_read.EXACT_UP_TO,
) -> Summary | None:
    """Only the dashboard's headline figures (what a week of the trend needs), without the
    series, breakdowns and top lists; None when the exact path must answer."""
    found = _period_total(session, flt, exact_up_to)
    if found is None:
        return None
    _, total = found
    response = rollup_read.label_sums(session, flt, "response").get((), {})
    hist = {int(label): n for label, (n, _, _) in response.items()}
    return _rollup_summary(session, flt, total, hist, assumptions).summary


@dataclass(frozen=True)
class _SummaryParts:
    summary: Summary
    tickets: list[TicketFacts]
    agent_by_day: Counter[date]


def _rollup_summary(
    session: Session,
    flt: MetricFilter,
    total: Counter[str],
    response_hist: rollup_read.Histogram,
    assumptions: Assumptions,
    handoffs: rollup_read.Handoffs | None = None,
) -> _SummaryParts:
    """The headline figures from the period's roll-up total, plus what the rest of the
    dashboard reuses (the tickets, agent-resolved conversations per day). ``handoffs``: the
    period's, when the caller has read them already."""
    handoffs = rollup_read.handoffs(session, flt) if handoffs is None else handoffs
    agent_by_day = handoffs.agent_resolved_by_day
    agent = sum(agent_by_day.values())
    ticketless = _handoffs_without_ticket_row(handoffs.without_ticket_row)
    tickets = load_tickets(session, flt, ticketless, assumptions.staffed)
    topics = {
        word: v[0] for word, v in rollup_read.label_sums(session, flt, "topic").get((), {}).items()
    }
    n, bot = total["conversations"], total["bot_resolved"]
    base = summarise([], [], tickets, flt.days, assumptions)
    summary = base.model_copy(
        update={
            "conversations": n,
            "user_messages": total["user_messages"],
            "contained": n - total["handoffs"],
            "containment_rate": rate(n - total["handoffs"], n),
            "handoffs": total["handoffs"],
            "handoff_rate": rate(total["handoffs"], n),
            "bot_resolved": bot,
            "bot_resolved_confirmed": total["bot_resolved_confirmed"],
            "bot_resolution_rate": rate(bot, n),
            "agent_resolved": agent,
            "agent_resolution_rate": rate(agent, total["handoffs"]),
            "unresolved": n - bot - agent,
            "bot_response_ms": _hist_percentiles(response_hist),
            "feedback_good": total["feedback_good"],
            "feedback_bad": total["feedback_bad"],
            "csat": rate(total["feedback_good"], total["feedback_good"] + total["feedback_bad"]),
            "sentiment": _rollup_sentiment(total, topics),
            "mission": mission_value(bot, flt.days, assumptions),
        }
    )
    return _SummaryParts(summary, tickets, agent_by_day)


def _assemble_from_rollups(
    session: Session,
    flt: MetricFilter,
    by_day_channel: dict[tuple[Any, ...], Counter[str]],
    total: Counter[str],
    assumptions: Assumptions,
) -> Dashboard:
    # The two aggregates that read the most rows and that nothing before them needs run on
    # connections of their own while this one reads the roll-ups (analytics.alongside).
    with (
        alongside(session, lambda own: queue_figures(own, flt)) as queue,
        alongside(session, lambda own: rollup_read.handoffs(own, flt)) as handoffs,
    ):
        return _assembled(session, flt, by_day_channel, total, assumptions, queue, handoffs)


def _assembled(
    session: Session,
    flt: MetricFilter,
    by_day_channel: dict[tuple[Any, ...], Counter[str]],
    total: Counter[str],
    assumptions: Assumptions,
    queue: Callable[[], tuple[list[Unanswered], list[OutOfScope]]],
    handoffs: Callable[[], rollup_read.Handoffs],
) -> Dashboard:
    day_hists = rollup_read.histograms(session, flt, "day")
    dimension_hists = rollup_read.dimension_histograms(session, flt)
    reasons = rollup_read.label_sums(session, flt, "reason", "day")
    reason_totals: Counter[str] = Counter()
    for labels in reasons.values():
        reason_totals.update({label: v[0] for label, v in labels.items()})
    response_hist = rollup_read.merge(day_hists.values())
    parts = _rollup_summary(session, flt, total, response_hist, assumptions, handoffs())
    summary, tickets, agent_by_day = parts.summary, parts.tickets, parts.agent_by_day
    channels, languages, locations = rollup_read.options(session)
    unanswered, out_of_scope = queue()
    return Dashboard(
        **period_fields(flt),
        channels=channels,
        languages=languages,
        locations=locations,
        summary=summary,
        daily=_rollup_daily(flt, by_day_channel, day_hists, reasons, agent_by_day),
        handoff_reasons=dict(sorted(reason_totals.items(), key=lambda item: (-item[1], item[0]))),
        heatmap=_rollup_heatmap(by_day_channel),
        by_channel=_rollup_breakdown(
            _rollup_by_channel(by_day_channel), dimension_hists["channel"]
        ),
        by_language=_rollup_breakdown_of(session, flt, "language", dimension_hists["language"]),
        by_location=_rollup_breakdown_of(session, flt, "location", dimension_hists["location"]),
        top_faqs=_rollup_top_faqs(session, flt),
        related=_rollup_related(session, flt),
        top_unanswered=unanswered,
        out_of_scope=out_of_scope,
        by_agent=by_agent(tickets),
        by_team=by_team(tickets),
    )
