"""Thresholds from a KB's own wordings (knowledge_base/calibrate.py, `askagency kb calibrate`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from askagency.config import Settings
from bench.bench_spanish import sample_records
from knowledge_base import cli_calibrate
from knowledge_base.calibrate import (
    CALIBRATION_LIMITS,
    WORDINGS_PER_LEFT_OUT_FAQ,
    CalibrationError,
    _weighted,
    calibrate,
    folds_of,
)
from knowledge_base.cli import app
from knowledge_base.evaluate import OUT_OF_SCOPE
from knowledge_base.index import build_bundle
from knowledge_base.retriever import Retriever
from knowledge_base.types import FaqKind, FaqRecord
from tests.unit.kb_tiny import shared_embedder


def _sample(n: int) -> list[FaqRecord]:
    """The first ``n`` English FAQs of the sample KB and its first English out-of-scope entry:
    real wordings, few enough for ten small indexes in a unit test."""
    english = [r for r in sample_records() if r.language == "en"]
    return [r for r in english if not r.out_of_scope][:n] + [
        next(r for r in english if r.out_of_scope)
    ]


def _record(i: int, language: str = "en", variants: int = 6, **extra: str) -> FaqRecord:
    return FaqRecord(
        id=f"{language}-{i}",
        language=language,
        question=f"question {i}",
        answer="answer",
        category="c",
        variants=tuple(f"{language} q{i} wording {j}" for j in range(variants)),
        **extra,  # type: ignore[arg-type]
    )


def test_each_wording_is_asked_once_without_itself_in_the_index() -> None:
    records = [_record(i) for i in range(10)] + [_record(0, "es")]
    records.append(_record(99, kind=FaqKind.OUT_OF_SCOPE.value))
    wordings = [f for f in folds_of(records, "en", folds=3) if f.kind == "wordings"]
    assert len(wordings) == 3
    asked: list[tuple[str, str]] = []
    for fold in wordings:
        indexed = {v for r in fold.records for v in r.variants}
        assert not indexed & {text for text, _ in fold.questions}
        # The other language's FAQ stays whole in every index.
        assert next(r for r in fold.records if r.language == "es").variants == records[10].variants
        asked.extend(fold.questions)
    expected = {(v, r.id) for r in records[:10] for v in r.variants}
    expected |= {(v, OUT_OF_SCOPE) for v in records[11].variants}
    assert sorted(asked) == sorted(expected)


def test_each_faq_is_left_out_once_and_its_wordings_are_out_of_scope() -> None:
    records = [_record(i, variants=20) for i in range(10)]
    records.append(_record(50, "es", translation_group="en-3"))
    topics = [f for f in folds_of(records, "en", folds=5) if f.kind == "topics"]
    left_out: list[str] = []
    for fold in topics:
        kept = {r.id for r in fold.records}
        gone = {r.id for r in records if r.id not in kept and r.language == "en"}
        left_out.extend(gone)
        assert {label for _, label in fold.questions} == {OUT_OF_SCOPE}
        assert len(fold.questions) == WORDINGS_PER_LEFT_OUT_FAQ * len(gone)
        texts = {t for r in records if r.id in gone for t in (r.question, *r.variants)}
        assert {text for text, _ in fold.questions} <= texts
        # A left-out FAQ's translation goes with it.
        assert ("es-50" in kept) == ("en-3" in kept)
    assert sorted(left_out) == sorted(r.id for r in records if r.language == "en")


def test_a_kb_too_small_or_without_variants_is_refused() -> None:
    with pytest.raises(CalibrationError, match="at least 10"):
        list(folds_of([_record(i) for i in range(9)], "en"))
    with pytest.raises(CalibrationError, match="no FAQ in 'en' has variants"):
        list(folds_of([_record(i, variants=0) for i in range(12)], "en"))
    with pytest.raises(CalibrationError, match="0 FAQs in 'fr'"):
        list(folds_of([_record(i) for i in range(12)], "fr"))


def test_the_pool_holds_the_out_of_scope_share() -> None:
    expected = ["a"] * 700 + [OUT_OF_SCOPE] * 1000
    results: list[list] = [[] for _ in expected]  # type: ignore[type-arg]
    _, kept = _weighted(results, expected, 0.30, seed=1)
    assert kept.count(OUT_OF_SCOPE) == 300 and len(kept) == 1000
    expected = ["a"] * 7000 + [OUT_OF_SCOPE] * 1000
    _, kept = _weighted([[] for _ in expected], expected, 0.30, seed=1)
    assert kept.count(OUT_OF_SCOPE) == 1000 and kept.count("a") == 2333


def _retriever_for(records: object) -> Retriever:
    embedder = shared_embedder()
    return Retriever(build_bundle(list(records), embedder), embedder)  # type: ignore[arg-type]


def test_calibration_recommends_within_the_limits_on_real_wordings(
    tmp_settings: Settings,
) -> None:
    records = _sample(12)
    report = calibrate(records, _retriever_for, tmp_settings, "en")
    assert report.n_answers == 12
    share = report.n_out_of_scope / (report.n_in_scope + report.n_out_of_scope)
    assert share == pytest.approx(0.30, abs=0.01)
    assert report.recommended is not None and report.recommended.meets_constraints
    assert report.recommended.answered_wrong <= 0.02
    assert report.recommended.oos_recall >= CALIBRATION_LIMITS.min_oos_recall


def test_kb_calibrate_applies_its_recommendation(
    tmp_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "faqs.jsonl"
    source.write_text(
        "\n".join(
            json.dumps(
                {
                    "id": r.id,
                    "language": r.language,
                    "question": r.question,
                    "answer": r.answer,
                    "category": r.category,
                    "variants": list(r.variants),
                    "kind": r.kind,
                }
            )
            for r in _sample(12)
        ),
        encoding="utf-8",
    )
    runner = CliRunner()
    monkeypatch.setattr(cli_calibrate.console, "width", 250)
    imported = runner.invoke(app, ["import", str(source), "--publish"])
    assert imported.exit_code == 0, imported.output
    env_file = tmp_path / "tuned.env"
    report = tmp_path / "calibration.json"
    result = runner.invoke(
        app, ["calibrate", "--apply", "--env-file", str(env_file), "--json", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert "estimated from the KB's own wordings" in result.output
    data = json.loads(report.read_text(encoding="utf-8"))
    written = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert float(written["ASKAGENCY_ANSWER_THRESHOLD"]) == data["recommended"]["answer_threshold"]
    assert float(written["ASKAGENCY_CLARIFY_THRESHOLD"]) == data["recommended"]["clarify_threshold"]
    assert written["ASKAGENCY_THRESHOLDS_MODEL"].startswith(shared_embedder().model_id)
    assert data["estimate"]["answered_wrong"] <= 0.02
    # The current thresholds (the defaults: on the sweep's grid) are found among its rows.
    assert data["current"] is not None

    # Another language's recommendation goes into its own thresholds; none in it: a clear error.
    missing = runner.invoke(app, ["calibrate", "--language", "fr"])
    assert missing.exit_code == 1
    assert "0 FAQs in 'fr'" in missing.output


def test_the_current_row_is_the_one_decide_applies() -> None:
    """A classifier floor set below the clarify threshold answers from the clarify threshold
    (decision.confidence_floor): the "current" row is looked up at that floor, which is where
    the sweep's grid has it, instead of missing."""
    settings = Settings(clarify_threshold=0.50, answer_confidence_floor=0.30)
    current = cli_calibrate._current(settings, "en", _sample(12))
    assert current["clarify_threshold"] == 0.50
    assert current["answer_confidence_floor"] == 0.50
