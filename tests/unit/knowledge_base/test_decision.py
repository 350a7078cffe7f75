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
    # 0.41 is above clarify_threshold but far below the top (default gap 0.10): not offered.
    decision = decide(hits(0.9, 0.86, 0.41, 0.39, 0.2), S())
    assert decision.outcome is Outcome.CLARIFY
    assert [h.faq_id for h in decision.hits] == ["f0", "f1"]


def test_clarify_options_stay_within_the_gap_and_above_the_threshold():
    @dataclass
    class Gap(S):
        clarify_max_gap: float = 0.2

    decision = decide(hits(0.55, 0.50, 0.35, 0.34), Gap())
    assert [h.faq_id for h in decision.hits] == ["f0", "f1"]  # 0.35 < clarify 0.4
    decision = decide(hits(0.58, 0.45, 0.38), Gap(clarify_threshold=0.3))
    assert [h.faq_id for h in decision.hits] == ["f0", "f1", "f2"]  # 0.38 = top - 0.2
    decision = decide(hits(0.58, 0.37), Gap(clarify_threshold=0.3))
    assert [h.faq_id for h in decision.hits] == ["f0"]  # 0.21 below the top


def test_a_lone_strong_candidate_is_a_single_option_clarify():
    decision = decide(hits(0.55, 0.30, 0.29), S())
    assert decision.outcome is Outcome.CLARIFY
    assert [h.faq_id for h in decision.hits] == ["f0"]  # asked as "Did you mean ...?"


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
    # MiniLM scores an unrelated FAQ around 0.13: that must never be answered.
    assert decide(hits(0.13), S()).outcome is Outcome.HANDOFF


def test_unsorted_input_is_ranked():
    decision = decide(hits(0.3, 0.9), S())
    assert decision.outcome is Outcome.ANSWER and decision.hits[0].faq_id == "f1"


def test_translation_of_same_question_does_not_block_answer():
    a, b = hits(0.8, 0.79)
    groups = {"f0": "g1", "f1": "g1"}
    assert decide([a, b], S()).outcome is Outcome.CLARIFY
    assert decide([a, b], S(), translation_groups=groups).outcome is Outcome.ANSWER


@dataclass
class SC(S):
    answer_confidence: float = 0.25


def conf_hits(*pairs: tuple[float, float]) -> list[FaqHit]:
    """Hits from (score, classifier confidence) pairs."""
    return [
        FaqHit(f"f{i}", s, f"q{i}", f"a{i}", "en", confidence=c) for i, (s, c) in enumerate(pairs)
    ]


def test_confident_in_scope_question_is_answered_below_answer_threshold():
    decision = decide(conf_hits((0.45, 0.60), (0.44, 0.35)), SC())
    assert decision.outcome is Outcome.ANSWER
    assert [h.faq_id for h in decision.hits] == ["f0"] and decision.top_score == 0.45
    # The lead equal to the setting is enough (float rounding allowed).
    assert decide(conf_hits((0.45, 0.55), (0.44, 0.30)), SC()).outcome is Outcome.ANSWER


def test_confidence_lead_is_over_the_most_probable_rival_not_the_second_hit():
    # f2 scores lower than f1 but the classifier prefers it: the lead is 0.5 - 0.4.
    decision = decide(conf_hits((0.5, 0.5), (0.48, 0.05), (0.47, 0.40)), SC())
    assert decision.outcome is Outcome.CLARIFY
    assert [h.faq_id for h in decision.hits] == ["f0", "f1", "f2"]


def test_confidence_never_answers_out_of_scope_or_when_off():
    # Below clarify_threshold the score says out of scope, whatever the classifier says.
    decision = decide(conf_hits((0.39, 0.99), (0.1, 0.0)), SC())
    assert decision.outcome is Outcome.HANDOFF
    # 1.0 turns the rule off; settings without the field keep the score-only rule.
    assert decide(conf_hits((0.45, 0.9)), SC(answer_confidence=1.0)).outcome is Outcome.CLARIFY
    assert decide(conf_hits((0.45, 0.9)), S()).outcome is Outcome.CLARIFY
    # Hits without a classifier probability (hybrid scorer, old callers) never qualify.
    assert decide(hits(0.45, 0.2), SC(answer_confidence=0.0)).outcome is Outcome.CLARIFY


def test_confidence_rival_ignores_translations_of_the_same_question():
    a = FaqHit("en-1", 0.5, "q", "a", "en", confidence=0.5)
    b = FaqHit("es-1", 0.49, "q", "a", "es", confidence=0.45)
    groups = {"en-1": "g", "es-1": "g"}
    assert decide([a, b], SC()).outcome is Outcome.CLARIFY
    decision = decide([a, b], SC(), translation_groups=groups)
    assert decision.outcome is Outcome.ANSWER and decision.hits == (a,)


def test_score_rule_still_answers_without_confidence():
    decision = decide(conf_hits((0.7, 0.3), (0.5, 0.3)), SC())
    assert decision.outcome is Outcome.ANSWER and decision.hits[0].faq_id == "f0"


def test_language_thresholds_apply_by_the_top_hit_language() -> None:
    """A language scored on another scale gets its own calibrated thresholds; the others keep
    the global ones."""
    from types import SimpleNamespace

    from knowledge_base.decision import thresholds_for

    settings = SimpleNamespace(
        answer_threshold=0.65,
        clarify_threshold=0.4,
        answer_margin=0.05,
        answer_confidence=1.0,
        clarify_max_options=3,
        language_thresholds={"es": {"answer_threshold": 0.45, "clarify_threshold": 0.35}},
    )
    spanish = [FaqHit("a-es", 0.5, "q", "a", "es"), FaqHit("b-es", 0.3, "q", "a", "es")]
    english = [FaqHit("a", 0.5, "q", "a", "en"), FaqHit("b", 0.3, "q", "a", "en")]
    assert decide(spanish, settings).outcome == Outcome.ANSWER
    assert decide(english, settings).outcome == Outcome.CLARIFY
    low = [FaqHit("a-es", 0.37, "q", "a", "es")]
    assert decide(low, settings).outcome == Outcome.CLARIFY  # 0.35 clarify for Spanish
    resolved = thresholds_for(settings, "es")
    assert (resolved.answer_threshold, resolved.answer_margin) == (0.45, 0.05)
    assert thresholds_for(settings, "en") is settings
    assert thresholds_for(settings, None) is settings


def test_the_confidence_rule_has_its_own_floor():
    """answer_confidence_floor: the classifier may answer only from that score up, while the
    clarify threshold below it still offers the FAQ instead of handing off."""

    @dataclass
    class Floor(S):
        answer_confidence: float = 0.2
        answer_confidence_floor: float = 0.5

    def confident(score: float) -> list[FaqHit]:
        return [
            FaqHit("f0", score, "q0", "a0", "en", confidence=0.9),
            FaqHit("f1", score - 0.01, "q1", "a1", "en", confidence=0.05),
        ]

    assert decide(confident(0.52), Floor()).outcome is Outcome.ANSWER
    assert decide(confident(0.45), Floor()).outcome is Outcome.CLARIFY
    # Never below clarify_threshold, whatever the floor says.
    assert decide(confident(0.35), Floor(answer_confidence_floor=0.1)).outcome is Outcome.HANDOFF


@dataclass
class Suggesting(S):
    suggest_threshold: float = 0.25
    clarify_max_gap: float = 0.10


def test_a_handoff_suggests_the_near_misses_above_suggest_threshold():
    # Top 0.35 < clarify 0.4: a handoff. 0.30 is within the gap and above 0.25: suggested;
    # 0.24 is within the gap but below suggest_threshold; the near misses for the agent stay.
    decision = decide(hits(0.35, 0.30, 0.24, 0.1), Suggesting())
    assert decision.outcome is Outcome.HANDOFF
    assert [h.faq_id for h in decision.suggestions] == ["f0", "f1"]
    assert [h.faq_id for h in decision.hits] == ["f0", "f1", "f2"]
    # Far below the top (gap 0.10): not suggested even above the floor.
    assert [h.faq_id for h in decide(hits(0.39, 0.28), Suggesting()).suggestions] == ["f0"]
    # At most clarify_max_options.
    assert len(decide(hits(0.39, 0.38, 0.37, 0.36), Suggesting()).suggestions) == 3


def test_no_suggestions_below_the_floor_or_when_off():
    assert decide(hits(0.2499, 0.24), Suggesting()).suggestions == ()
    assert decide(hits(0.25, 0.1), Suggesting()).suggestions != ()  # at the floor
    # suggest_threshold at or above clarify_threshold, or missing: off.
    assert decide(hits(0.39, 0.38), Suggesting(suggest_threshold=0.4)).suggestions == ()
    assert decide(hits(0.39, 0.38), S()).suggestions == ()
    # Answers and clarify questions never carry suggestions.
    assert decide(hits(0.9, 0.1), Suggesting()).suggestions == ()
    assert decide(hits(0.5, 0.45), Suggesting()).suggestions == ()


def test_suggest_threshold_per_language():
    @dataclass
    class PerLanguage(Suggesting):
        language_thresholds: dict = None  # type: ignore[assignment]

    es = [FaqHit("e0", 0.22, "q", "a", "es"), FaqHit("e1", 0.2, "q", "a", "es")]
    settings = PerLanguage(language_thresholds={"es": {"suggest_threshold": 0.15}})
    assert [h.faq_id for h in decide(es, settings).suggestions] == ["e0", "e1"]
    assert decide(es, Suggesting()).suggestions == ()  # the main language's 0.25
