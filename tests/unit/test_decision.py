"""decide(): answer / clarify / handoff boundaries."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge_base.decision import decide
from knowledge_base.types import FaqHit, Outcome


@dataclass
class S:
    answer_threshold: float = 0.6
    clarify_threshold: float = 0.4
    answer_margin: float = 0.05
    clarify_max_options: int = 3


def hits(*scores: float) -> list[FaqHit]:
    return [FaqHit(f"f{i}", s, f"q{i}", f"a{i}", "en") for i, s in enumerate(scores)]


def test_no_hits_is_handoff():
    decision = decide([], S())
    assert decision.outcome is Outcome.HANDOFF and decision.hits == () and decision.top_score == 0


def test_answer_at_threshold_with_margin():
    decision = decide(hits(0.60, 0.55), S())
    assert decision.outcome is Outcome.ANSWER
    assert [h.faq_id for h in decision.hits] == ["f0"]
    assert decision.top_score == 0.60


def test_just_below_answer_threshold_clarifies():
    assert decide(hits(0.5999, 0.1), S()).outcome is Outcome.CLARIFY


def test_small_margin_clarifies_with_both_options():
    decision = decide(hits(0.9, 0.86, 0.41, 0.39, 0.2), S())
    assert decision.outcome is Outcome.CLARIFY
    assert [h.faq_id for h in decision.hits] == ["f0", "f1", "f2"]  # 0.39 is out of reach


def test_clarify_options_capped():
    decision = decide(hits(0.5, 0.5, 0.5, 0.5, 0.5), S(clarify_max_options=2))
    assert len(decision.hits) == 2


def test_single_hit_answers_when_high():
    assert decide(hits(0.7), S()).outcome is Outcome.ANSWER


def test_clarify_boundary_and_handoff():
    assert decide(hits(0.40), S()).outcome is Outcome.CLARIFY
    decision = decide(hits(0.3999, 0.2), S())
    assert decision.outcome is Outcome.HANDOFF
    assert [h.faq_id for h in decision.hits] == ["f0", "f1"]  # near misses for the agent


def test_unrelated_low_score_is_never_answered():
    # STACK_NOTES pitfall 4: an unrelated FAQ at 0.13 must not be answered.
    assert decide(hits(0.13), S()).outcome is Outcome.HANDOFF


def test_unsorted_input_is_ranked():
    decision = decide(hits(0.3, 0.9), S())
    assert decision.outcome is Outcome.ANSWER and decision.hits[0].faq_id == "f1"


def test_translation_of_same_question_does_not_block_answer():
    a, b = hits(0.8, 0.79)
    groups = {"f0": "g1", "f1": "g1"}
    assert decide([a, b], S()).outcome is Outcome.CLARIFY
    assert decide([a, b], S(), translation_groups=groups).outcome is Outcome.ANSWER
