"""evaluate(): metrics on a hand-made result set where every number is known."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from knowledge_base.evaluate import (
    MIN_OOS_RECALL,
    LabelledFileError,
    SweepLimits,
    evaluate,
    load_labelled,
    recommend,
    with_thresholds,
)
from knowledge_base.types import FaqHit
from tests.fakes import FakeRetriever


@dataclass
class S:
    answer_threshold: float = 0.6
    clarify_threshold: float = 0.4
    answer_margin: float = 0.05
    clarify_max_options: int = 3


def hit(faq_id: str, score: float) -> FaqHit:
    return FaqHit(faq_id, score, faq_id, "answer", "en")


TABLE = {
    # in scope, answered correctly
    "q1": [hit("a", 0.9), hit("b", 0.3)],
    "q2": [hit("b", 0.8), hit("a", 0.2)],
    # in scope, top-1 wrong, answered wrongly; expected is 2nd (top-3 hit)
    "q3": [hit("b", 0.7), hit("a", 0.5)],
    # in scope, right but small margin -> clarify offering a and b
    "q4": [hit("a", 0.65), hit("b", 0.62)],
    # in scope, low score -> handoff; expected not in top 3
    "q5": [hit("b", 0.3), hit("c", 0.2), hit("d", 0.1), hit("a", 0.05)],
    # out of scope, handed off
    "o1": [hit("a", 0.2)],
    # out of scope, answered (wrong)
    "o2": [hit("c", 0.75), hit("a", 0.1)],
    # out of scope, clarify
    "o3": [hit("c", 0.5)],
}
LABELS = [
    ("q1", "a"),
    ("q2", "b"),
    ("q3", "a"),
    ("q4", "a"),
    ("q5", "a"),
    ("o1", "none"),
    ("o2", "none"),
    ("o3", "none"),
]


def test_known_numbers():
    report = evaluate(FakeRetriever(by_text=TABLE), LABELS, S(), sweep=True)
    assert report.n_queries == 8 and report.n_in_scope == 5 and report.n_out_of_scope == 3
    assert report.top1 == pytest.approx(3 / 5)  # q1 q2 q4
    assert report.top3 == pytest.approx(4 / 5)  # + q3
    assert report.answer_rate == pytest.approx(4 / 8)  # q1 q2 q3 o2
    assert report.clarify_rate == pytest.approx(2 / 8)  # q4 o3
    assert report.handoff_rate == pytest.approx(2 / 8)  # q5 o1
    assert report.answered_correct == pytest.approx(2 / 8)
    assert report.answered_correct_in_scope == pytest.approx(2 / 5)  # q1 q2 of q1..q5
    assert report.answered_wrong == pytest.approx(2 / 8)  # q3, o2
    assert report.clarify_contains_expected == 1.0  # q4's options include a
    assert report.oos_recall == pytest.approx(1 / 3)  # o1 of o1..o3
    assert report.oos_precision == pytest.approx(1 / 2)  # handoffs: q5, o1
    confusions = {(c.expected, c.got): (c.count, c.example) for c in report.confusions}
    assert confusions == {("a", "b"): (2, "q3"), ("none", "c"): (1, "o2")}
    assert report.index_version == FakeRetriever.version


def test_sweep_and_recommendation_rule():
    report = evaluate(FakeRetriever(by_text=TABLE), LABELS, S(), sweep=True)
    by_pair = {(r.answer_threshold, r.clarify_threshold): r for r in report.sweep}
    assert all(c <= a for a, c in by_pair)
    # Same thresholds as the settings reproduce the headline numbers.
    row = by_pair[(0.6, 0.4)]
    assert row.answered_correct == pytest.approx(report.answered_correct)
    assert row.oos_recall == pytest.approx(report.oos_recall)
    # answer >= 0.8 answers only q1 and q2 (no wrong answers); clarify >= 0.55 hands off
    # o1 and o3 but clarifies q4/q3/o2 -> OOS recall 2/3 < 85%: fails.
    assert not by_pair[(0.8, 0.55)].meets_constraints
    # clarify above 0.75 hands off all three OOS queries (recall 100%), answers q1 q2.
    best = by_pair[(0.8, 0.8)]
    assert best.meets_constraints and best.answered_wrong == 0
    assert best.answered_correct == pytest.approx(2 / 8)
    assert report.recommended is not None
    assert report.recommended.answered_correct == pytest.approx(2 / 8)
    assert report.recommended.answered_wrong <= 0.02
    assert report.recommended.oos_recall >= MIN_OOS_RECALL
    assert recommend([]) is None


def test_an_agency_sets_its_own_limits():
    """Looser out-of-scope recall lets the pair above through; the rule says which limits."""
    limits = SweepLimits(max_wrong=0.0, min_oos_recall=0.6)
    report = evaluate(FakeRetriever(by_text=TABLE), LABELS, S(), sweep=True, limits=limits)
    by_pair = {(r.answer_threshold, r.clarify_threshold): r for r in report.sweep}
    assert by_pair[(0.8, 0.55)].meets_constraints  # recall 2/3 >= 60%, no wrong answer
    assert not by_pair[(0.6, 0.4)].meets_constraints  # answers q3 and o2 wrongly
    assert "answered_wrong <= 0.0%" in report.recommendation_rule
    assert "oos_recall >= 60%" in report.recommendation_rule
    default = evaluate(FakeRetriever(by_text=TABLE), LABELS, S(), sweep=True)
    assert f"oos_recall >= {MIN_OOS_RECALL:.0%}" in default.recommendation_rule
    with pytest.raises(ValueError, match="max_wrong"):
        SweepLimits(max_wrong=1.5)


def test_json_round_trip():
    report = evaluate(FakeRetriever(by_text=TABLE), LABELS, S(), sweep=False)
    data = json.loads(report.to_json())
    assert (
        data["top1"] == pytest.approx(0.6) and data["sweep"] == [] and data["recommended"] is None
    )
    assert data["confusions"][0]["expected"] == "a"
    swept = json.loads(evaluate(FakeRetriever(by_text=TABLE), LABELS, S(), sweep=True).to_json())
    assert swept["recommended"]["meets_constraints"] is True
    assert len(swept["sweep"]) > 50


def test_empty_labelled_set_is_an_error():
    with pytest.raises(ValueError):
        evaluate(FakeRetriever(by_text=TABLE), [], S())


def test_load_labelled(tmp_path):
    good = tmp_path / "q.csv"
    good.write_text("text,expected_faq_id\nhello there,a\nweather?,NONE\n", encoding="utf-8")
    assert load_labelled(good) == [("hello there", "a"), ("weather?", "none")]
    bad_header = tmp_path / "h.csv"
    bad_header.write_text("query,label\nx,y\n")
    with pytest.raises(LabelledFileError, match="header"):
        load_labelled(bad_header)
    blank = tmp_path / "b.csv"
    blank.write_text("text,expected_faq_id\nx,a\n,b\n")
    with pytest.raises(LabelledFileError, match=":3:"):
        load_labelled(blank)
    empty = tmp_path / "e.csv"
    empty.write_text("text,expected_faq_id\n")
    with pytest.raises(LabelledFileError, match="no labelled"):
        load_labelled(empty)
    with pytest.raises(LabelledFileError, match="Cannot read"):
        load_labelled(tmp_path / "missing.csv")


def test_with_thresholds():
    changed = with_thresholds(S(), 0.7, 0.5)
    assert (changed.answer_threshold, changed.clarify_threshold) == (0.7, 0.5)


def chit(faq_id: str, score: float, confidence: float) -> FaqHit:
    return FaqHit(faq_id, score, faq_id, "answer", "en", confidence=confidence)


# q1 is right but scores low (only the classifier is sure); q2 is wrong and the classifier
# hesitates; o1 is out of scope with a confident classifier but a low score.
CONF_TABLE = {
    "q1": [chit("a", 0.5, 0.8), chit("b", 0.45, 0.1)],
    "q2": [chit("b", 0.5, 0.4), chit("a", 0.45, 0.35)],
    "o1": [chit("a", 0.3, 0.9), chit("b", 0.2, 0.05)],
}
CONF_LABELS = [("q1", "a"), ("q2", "a"), ("o1", "none")]


@dataclass
class SC(S):
    answer_confidence: float = 0.25


def test_confidence_rule_in_report_and_sweep():
    report = evaluate(FakeRetriever(by_text=CONF_TABLE), CONF_LABELS, SC(), sweep=True)
    assert report.thresholds["answer_confidence"] == 0.25
    assert report.answered_correct == pytest.approx(1 / 3)  # q1 via confidence
    assert report.answered_wrong == 0  # q2 lead 0.05 -> clarify
    assert report.oos_recall == 1.0  # o1 below clarify_threshold
    # Rows with the confidence rule's floor at the clarify threshold (decide()'s default).
    rows = {
        (r.answer_threshold, r.clarify_threshold, r.answer_confidence): r
        for r in report.sweep
        if r.answer_confidence_floor == r.clarify_threshold
    }
    assert {r.answer_confidence for r in report.sweep} >= {0.25, 1.0}
    # The sweep reproduces decide(): same thresholds, same numbers.
    row = rows[(0.6, 0.4, 0.25)]
    assert row.answered_correct == pytest.approx(report.answered_correct)
    assert row.answered_wrong == report.answered_wrong and row.oos_recall == report.oos_recall
    # Off: nothing reaches answer_threshold 0.6, so nothing is answered.
    assert rows[(0.6, 0.4, 1.0)].answer_rate == 0
    # Too lax a lead answers q2 wrongly (1/3 > 2%): rejected.
    assert not rows[(0.6, 0.4, 0.05)].meets_constraints
    # Clarify threshold 0.3 lets o1 be answered on confidence: OOS recall 0.
    assert rows[(0.6, 0.3, 0.25)].oos_recall == 0
    best = report.recommended
    assert best is not None and best.answer_confidence < 1.0
    assert best.answered_correct == pytest.approx(1 / 3) and best.answered_wrong == 0
    # Among equally good rows the stricter confidence wins.
    assert best.answer_confidence == max(
        r.answer_confidence
        for r in report.sweep
        if r.meets_constraints
        and (r.answer_threshold, r.clarify_threshold)
        == (best.answer_threshold, best.clarify_threshold)
        and r.answered_correct == best.answered_correct
    )


def test_with_thresholds_sets_confidence_only_when_given():
    assert with_thresholds(SC(), 0.7, 0.5).answer_confidence == 0.25
    assert with_thresholds(SC(), 0.7, 0.5, 0.3).answer_confidence == 0.3
    with pytest.raises(TypeError):
        with_thresholds(S(), 0.7, 0.5, 0.3)  # settings without the field: clear error


def test_right_faq_within_one_click_in_report_and_sweep():
    """In scope: q1 q2 answered right, q4 clarified with a among its options -> 3 of 5; the
    sweep row at the same thresholds says the same."""
    report = evaluate(FakeRetriever(by_text=TABLE), LABELS, S(), sweep=True)
    assert report.within_one_click == pytest.approx(3 / 5)
    assert report.clarify_options_mean == pytest.approx(3 / 2)  # q4: a, b; o3: c
    row = next(
        r
        for r in report.sweep
        if (r.answer_threshold, r.clarify_threshold, r.answer_confidence) == (0.6, 0.4, 1.0)
    )
    assert row.within_one_click == pytest.approx(report.within_one_click)


@dataclass
class Suggesting(S):
    suggest_threshold: float = 0.25
    clarify_max_gap: float = 1.0


def test_suggestions_in_report():
    """Handoffs at suggest 0.25: q5 (top b 0.3; a is 4th, never suggested) and o1 (0.2, below
    the floor). q6 is handed off with its FAQ second in the list: one press away."""
    table = {**TABLE, "q6": [hit("c", 0.35), hit("a", 0.33)], "o4": [hit("d", 0.3)]}
    labels = [*LABELS, ("q6", "a"), ("o4", "none")]
    report = evaluate(FakeRetriever(by_text=table), labels, Suggesting(), sweep=False)
    assert report.within_one_click == pytest.approx(3 / 6)  # q1 q2 q4
    assert report.within_one_click_suggested == pytest.approx(4 / 6)  # + q6
    assert report.suggestion_precision == pytest.approx(1 / 3)  # lists: q5, q6, o4
    assert report.oos_suggested == pytest.approx(1 / 4)  # o4 of o1..o4
    assert report.oos_recall == pytest.approx(2 / 4)  # suggestions stay handoffs: o1, o4
    assert report.thresholds["suggest_threshold"] == 0.25
    off = evaluate(FakeRetriever(by_text=table), labels, S(), sweep=False)
    assert off.within_one_click_suggested == off.within_one_click
    assert off.suggestion_precision is None and off.thresholds["suggest_threshold"] == 0.4


def test_recommended_suggest_threshold_is_the_lowest_floor_a_third_of_lists_help():
    """OOS recall >= 85% of three OOS questions puts the recommended clarify threshold above
    0.57 (0.60): everything below is handed off. Lists shown from a floor of 0.55: h2 (0 of 1
    holds the FAQ); 0.50: h2 h3 (0 of 2); 0.45: + h1 (1 of 3: enough); 0.40: + h5 (1 of 4)."""
    table = {
        "r1": [hit("a", 0.95)],
        "h1": [hit("a", 0.45)],  # in scope, its FAQ first
        "h2": [hit("x", 0.57)],  # out of scope
        "h3": [hit("x", 0.52)],  # out of scope
        "h5": [hit("y", 0.42)],  # out of scope
    }
    labels = [("r1", "a"), ("h1", "a"), ("h2", "none"), ("h3", "none"), ("h5", "none")]
    report = evaluate(FakeRetriever(by_text=table), labels, Suggesting(), sweep=True)
    best = report.recommended
    assert best is not None and best.clarify_threshold == 0.6
    assert best.suggest_threshold == 0.45
    # No list ever holds the right FAQ: off (the clarify threshold).
    labels[1] = ("h1", "b")
    report = evaluate(FakeRetriever(by_text=table), labels, Suggesting(), sweep=True)
    assert report.recommended is not None
    assert report.recommended.suggest_threshold == report.recommended.clarify_threshold
