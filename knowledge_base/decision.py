"""Turn ranked hits into answer / clarify / handoff.

Thresholds live in configuration and are chosen with ``askagency kb evaluate``.
Answering needs both a high score and a clear lead over the next FAQ: two
near-identical candidates mean the bot should ask, not guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from knowledge_base.types import Decision, FaqHit, Outcome

# Scores are floats: 0.60 - 0.55 is 0.0499999... A margin equal to the setting
# must count as enough, so comparisons allow this much rounding error.
EPSILON = 1e-9


class DecisionSettings(Protocol):
    answer_threshold: float
    clarify_threshold: float
    answer_margin: float
    clarify_max_options: int


def _same_question(a: FaqHit, b: FaqHit, groups: dict[str, str]) -> bool:
    """True when ``b`` is a translation of ``a`` (same translation group)."""
    group_a, group_b = groups.get(a.faq_id, ""), groups.get(b.faq_id, "")
    return bool(group_a) and group_a == group_b


def decide(
    hits: Sequence[FaqHit],
    settings: DecisionSettings,
    translation_groups: dict[str, str] | None = None,
) -> Decision:
    """ANSWER when top >= answer_threshold and it leads the next *different*
    FAQ by >= answer_margin; CLARIFY when top >= clarify_threshold, offering the
    hits within reach (score >= clarify_threshold) up to clarify_max_options;
    otherwise HANDOFF with the near misses for the agent's context."""
    ranked = sorted(hits, key=lambda h: -h.score)
    if not ranked:
        return Decision(Outcome.HANDOFF, (), 0.0)
    groups = translation_groups or {}
    top = ranked[0]
    rivals = [h for h in ranked[1:] if not _same_question(top, h, groups)]
    margin = top.score - rivals[0].score if rivals else top.score
    if (
        top.score >= settings.answer_threshold - EPSILON
        and margin >= settings.answer_margin - EPSILON
    ):
        return Decision(Outcome.ANSWER, (top,), top.score)
    if top.score >= settings.clarify_threshold - EPSILON:
        options = [h for h in ranked if h.score >= settings.clarify_threshold - EPSILON]
        max_options = max(1, settings.clarify_max_options)
        return Decision(Outcome.CLARIFY, tuple(options[:max_options]), top.score)
    return Decision(
        Outcome.HANDOFF, tuple(ranked[: max(1, settings.clarify_max_options)]), top.score
    )
