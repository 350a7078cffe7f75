"""holdout(): thresholds swept on one half of a labelled file, measured on the other; and
`kb evaluate --holdout` on a real index."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from askagency.config import Settings
from knowledge_base.cli import app
from knowledge_base.evaluate import MAX_WRONG_RATE, MIN_OOS_RECALL, SweepLimits, evaluate
from knowledge_base.holdout import MIN_HALF, holdout
from knowledge_base.tuning import with_recommendation
from knowledge_base.types import FaqHit
from tests.fakes import FakeRetriever


@pytest.fixture
def settings(tmp_settings: Settings) -> Settings:
    """The shipped decision settings (thresholds, margin, sweep limits)."""
    return tmp_settings


def hit(faq_id: str, score: float) -> FaqHit:
    return FaqHit(faq_id, score, faq_id, "answer", "en")


def overfit_table() -> tuple[dict[str, list[FaqHit]], list[tuple[str, str]]]:
    """30 clear right answers (0.97) and 10 out-of-scope questions spread over the answer
    range, each beside an in-scope question scoring just above it: on one half the sweep
    answers from just above that half's highest out-of-scope score, which the other half's
    out-of-scope questions often pass."""
    table: dict[str, list[FaqHit]] = {}
    labels: list[tuple[str, str]] = []
    for i in range(30):
        table[f"clear {i}"] = [hit("a", 0.97), hit("b", 0.1)]
        labels.append((f"clear {i}", "a"))
    for i in range(10):
        score = 0.46 + 0.05 * i  # 0.46 .. 0.91: between the sweep's 0.05 steps
        table[f"near {i}"] = [hit("b", score + 0.02), hit("a", 0.1)]
        labels.append((f"near {i}", "b"))
        table[f"other {i}"] = [hit("c", score), hit("a", 0.1)]
        labels.append((f"other {i}", "none"))
    return table, labels


def test_each_half_is_measured_at_the_thresholds_swept_on_the_other(settings: Settings) -> None:
    table, labels = overfit_table()
    retriever = FakeRetriever(by_text=table)
    report = holdout(retriever, labels, settings, rounds=1, seed=1)
    assert len(report.halves) == 2 and report.n_queries == 50
    # Every question was searched once, not once per half.
    assert sorted(text for text, _, _ in retriever.calls) == sorted(t for t, _ in labels)
    # In sample, the sweep's recommendation keeps within the wrong-answer limit by construction.
    whole = evaluate(FakeRetriever(by_text=table), labels, settings, sweep=True)
    assert whole.recommended is not None
    assert whole.recommended.answered_wrong <= MAX_WRONG_RATE
    # Held out, thresholds fitted to one half let the other half's out-of-scope questions in
    # (the half whose other half met the constraints; the other is measured at the defaults).
    fitted = [h for h in report.halves if h.thresholds is not None]
    assert fitted and max(h.answered_wrong for h in fitted) > MAX_WRONG_RATE
    assert (report.mean("answered_wrong") or 0.0) > whole.recommended.answered_wrong
    low, high = report.spread("answered_correct") or (0.0, 0.0)
    assert low < high


def test_the_thresholds_of_a_half_are_the_recommendation_of_the_other(settings: Settings) -> None:
    """Each half is measured at what the sweep recommended on the other half, or at the current
    settings when nothing met the constraints there (both happen in this round)."""
    table, labels = overfit_table()
    report = holdout(FakeRetriever(by_text=table), labels, settings, rounds=1, seed=3)
    order = list(range(len(labels)))
    random.Random(3).shuffle(order)  # the same split, rebuilt
    first = [labels[i] for i in order[: len(order) // 2]]
    second = [labels[i] for i in order[len(order) // 2 :]]
    expected = [(first, second), (second, first)]
    kinds = set()
    for half, (chose_on, measured_on) in zip(report.halves, expected, strict=True):
        swept = evaluate(FakeRetriever(by_text=table), chose_on, settings, sweep=True)
        chosen = with_recommendation(settings, swept.recommended, None)
        kinds.add(chosen is None)
        if chosen is None:
            assert half.thresholds is None
        else:
            assert half.thresholds is not None
            assert half.thresholds["answer_threshold"] == chosen.answer_threshold
            assert half.thresholds["clarify_threshold"] == chosen.clarify_threshold
        measured = evaluate(
            FakeRetriever(by_text=table), measured_on, chosen or settings, sweep=False
        )
        assert half.answered_correct == pytest.approx(measured.answered_correct)
        assert half.answered_wrong == pytest.approx(measured.answered_wrong)
        assert half.oos_recall == pytest.approx(measured.oos_recall)
    assert kinds == {True, False}


def test_another_languages_thresholds_go_into_language_thresholds(settings: Settings) -> None:
    table, labels = overfit_table()
    swept = evaluate(FakeRetriever(by_text=table), labels, settings, sweep=True, language="es")
    chosen = with_recommendation(settings, swept.recommended, "es")
    assert chosen is not None and swept.recommended is not None
    assert chosen.answer_threshold == settings.answer_threshold  # English untouched
    assert (
        chosen.language_thresholds["es"]["answer_threshold"] == swept.recommended.answer_threshold
    )


def test_too_few_questions_or_rounds_are_refused(settings: Settings) -> None:
    table, labels = overfit_table()
    with pytest.raises(ValueError, match="at least"):
        holdout(FakeRetriever(by_text=table), labels[: 2 * MIN_HALF - 1], settings)
    with pytest.raises(ValueError, match="rounds"):
        holdout(FakeRetriever(by_text=table), labels, settings, rounds=0)


def test_the_halves_are_chosen_within_the_limits_given(settings: Settings) -> None:
    """No wrong answer allowed: every half's sweep picks thresholds above its out-of-scope
    scores, so fewer halves answer the other half's out-of-scope questions wrongly."""
    table, labels = overfit_table()
    loose = holdout(FakeRetriever(by_text=table), labels, settings, rounds=1, seed=1)
    strict = holdout(
        FakeRetriever(by_text=table),
        labels,
        settings,
        rounds=1,
        seed=1,
        limits=SweepLimits(max_wrong=0.0, min_oos_recall=0.0),
    )
    assert all(h.thresholds is not None for h in strict.halves)
    assert [h.thresholds for h in strict.halves] != [h.thresholds for h in loose.halves]


LABELLED = [
    ("can I take shampoo on the plane", "liquids"),
    ("liquids in hand luggage", "liquids"),
    ("how much lotion can I carry on", "liquids"),
    ("water bottle through security", "liquids"),
    ("can I bring a pocket knife", "knives"),
    ("is a small knife allowed", "knives"),
    ("knife in my carry-on", "knives"),
    ("swiss army knife on the plane", "knives"),
    ("what ID do I need", "id-docs"),
    ("driver's license at the airport", "id-docs"),
    ("which identification is accepted", "id-docs"),
    ("I forgot my passport, what ID works", "id-docs"),
    ("travelling with my cat", "pets"),
    ("my dog through screening", "pets"),
    ("pet carrier at the checkpoint", "pets"),
    ("can my puppy fly with me", "pets"),
    ("what is the weather tomorrow", "none"),
    ("tell me a joke", "none"),
    ("how do I cook pasta", "none"),
    ("who won the football game", "none"),
    ("best pizza in town", "none"),
    ("how old is the moon", "none"),
]


def write_labelled(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text(
        "text,expected_faq_id\n" + "".join(f'"{t}",{e}\n' for t, e in rows), encoding="utf-8"
    )
    return path


def test_kb_evaluate_holdout_on_a_real_index(kb_runner: CliRunner, tmp_path: Path) -> None:
    labelled = write_labelled(tmp_path / "dev.csv", LABELLED)
    out = tmp_path / "report.json"
    result = kb_runner.invoke(
        app,
        ["evaluate", str(labelled), "--language", "en", "--holdout", "2", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "held out: 2 halvings" in result.output
    assert (
        f"answered_wrong <= {MAX_WRONG_RATE:.1%} and oos_recall >= {MIN_OOS_RECALL:.0%}"
        in result.output
    )
    assert "answered correctly" in result.output.split("held out:")[1]
    data = json.loads(out.read_text())
    assert len(data["holdout"]["halves"]) == 4
    mean = data["holdout"]["mean"]["answered_correct"]
    halves = [h["answered_correct"] for h in data["holdout"]["halves"]]
    assert mean == pytest.approx(sum(halves) / len(halves))
    assert mean > 0.0


def test_kb_evaluate_holdout_refuses_a_small_file(kb_runner: CliRunner, tmp_path: Path) -> None:
    labelled = write_labelled(tmp_path / "dev.csv", LABELLED[:8])
    result = kb_runner.invoke(app, ["evaluate", str(labelled), "--holdout", "2"])
    assert result.exit_code == 1
    assert "at least 20 labelled questions (8 given)" in result.output


SPANISH = [
    ("¿puedo llevar líquidos en el equipaje de mano?", "liquidos"),
    ("líquidos en la maleta de cabina", "liquidos"),
    ("champú en el equipaje de mano", "liquidos"),
    ("¿qué tiempo hace mañana?", "none"),
    ("cuéntame un chiste", "none"),
]


def test_the_printed_recommendation_is_what_apply_writes(
    kb_runner: CliRunner, tmp_path: Path
) -> None:
    """A Spanish file's recommendation is printed as Spanish language_thresholds, as --apply
    writes it; it once printed ASKAGENCY_ANSWER_THRESHOLD=..., the main language's setting,
    for an agency to copy into its settings."""
    labelled = write_labelled(tmp_path / "es.csv", SPANISH)
    result = kb_runner.invoke(app, ["evaluate", str(labelled), "--language", "es"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("recommended:"))
    assert "ASKAGENCY_LANGUAGE_THRESHOLDS=" in line and '"es": {' in line
    assert "ASKAGENCY_ANSWER_THRESHOLD=" not in line
    strict = kb_runner.invoke(
        app,
        ["evaluate", str(labelled), "--language", "es"]
        + ["--max-wrong", "0", "--min-oos-recall", "1"],
    )
    assert strict.exit_code == 0, strict.output
    assert "answered_wrong <= 0.0% and oos_recall >= 100%" in strict.output
    bad = kb_runner.invoke(app, ["evaluate", str(labelled), "--max-wrong", "2"])
    assert bad.exit_code == 2 and "--max-wrong" in bad.output
    english = write_labelled(tmp_path / "en.csv", LABELLED)
    result = kb_runner.invoke(app, ["evaluate", str(english), "--language", "en"])
    line = next(x for x in result.output.splitlines() if x.startswith("recommended:"))
    assert "ASKAGENCY_ANSWER_THRESHOLD=" in line and "ASKAGENCY_LANGUAGE_THRESHOLDS" not in line
