"""English answer-quality gate (issue #20): ``askagency kb evaluate`` on the sample KB.

Like the Spanish gate in test_languages.py: the real CLI on the sample KB built by
``kb load-sample`` + ``kb build-index``, at the default settings. The floors are what was
measured (bench/results/quality.json, docs/quality.md), a little below so noise in the last
digit does not fail the build, never the issue's goals that were not reached: a change that
makes answers worse cannot land, and one that reaches the goals should raise them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from knowledge_base.tuning import thresholds_scale
from tests.stack import cli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "knowledge_base" / "sample"


@pytest.fixture(scope="module")
def sample_kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample KB alone, built by the CLI in a data folder of its own.

    Why not the shared stack's folder: other e2e modules add FAQs to it (a live lobster,
    zorbulators), which take borderline questions and move the classifier. On the development
    file, whose thresholds sit just under 2% wrong, that was one wrong answer too many in a
    fresh-clone CI run, and adding test_core_rest's first two-variant lobster FAQ alone to
    the sample KB gives the same 12th wrong answer. Under ``make test`` the build reads the
    stacks' shared vector cache (``ASKAGENCY_EMBEDDING_CACHE_FILE``), so it is warm."""
    data_dir = tmp_path_factory.mktemp("sample-kb")
    cli(data_dir, "kb", "load-sample")
    cli(data_dir, "kb", "build-index")
    return data_dir


def evaluate(
    data_dir: Path, tmp_path: Path, name: str, env: dict[str, str] | None = None
) -> dict[str, object]:
    report_file = tmp_path / f"{name}.json"
    cli(
        data_dir,
        "kb",
        "evaluate",
        str(SAMPLE / name),
        "--language",
        "en",
        "--no-sweep",
        "--json",
        str(report_file),
        env=env,
    )
    return json.loads(report_file.read_text())


def settings_in(env_file: Path) -> dict[str, str]:
    """The ``NAME=value`` lines an ``--apply`` wrote."""
    return dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)


def test_english_quality_on_the_test_file(sample_kb_dir: Path, tmp_path: Path) -> None:
    report = evaluate(sample_kb_dir, tmp_path, "eval_queries.csv")
    # Measured: top-1 86.3%, answered right 45.7% / wrong 1.1% of all queries, right FAQ within
    # one click for 84.9% of the in-scope ones, 65 of 66 out-of-scope handed off (98.5%). The
    # thresholds come from the development files, not this one. Issue goals not reached: right
    # >= 70%, one click >= 95%.
    assert report["n_in_scope"] == 291 and report["n_out_of_scope"] == 66
    assert report["thresholds"]["answer_threshold"] == 0.75  # the defaults (askagency/config.py)
    assert report["thresholds"]["clarify_threshold"] == 0.50
    assert report["top1"] >= 0.85, report
    assert report["answered_correct"] >= 0.45, report
    assert report["answered_wrong"] <= 0.02, report
    assert report["within_one_click"] >= 0.84, report
    assert report["oos_recall"] >= 0.95, report


def test_english_quality_on_the_development_file(sample_kb_dir: Path, tmp_path: Path) -> None:
    report = evaluate(sample_kb_dir, tmp_path, "eval_queries_dev.csv")
    # Measured: top-1 94.3%, right 58.2% / wrong 1.7% (10 of 586), one click 93.9%, OOS recall
    # 90.7%. The thresholds were chosen on this file to stay under 2% wrong: two more wrong
    # answers fail this gate, which is why it runs on the sample KB alone (sample_kb_dir).
    assert report["n_in_scope"] == 424 and report["n_out_of_scope"] == 162
    assert report["top1"] >= 0.93, report
    assert report["answered_correct"] >= 0.57, report
    assert report["answered_wrong"] <= 0.02, report
    assert report["within_one_click"] >= 0.93, report
    assert report["oos_recall"] >= 0.90, report
    # No out-of-scope entry of the sample takes an in-scope development question.
    assert report["taken_by_out_of_scope"] == 0, report


def test_follow_up_questions_are_read_with_the_question_just_answered(
    sample_kb_dir: Path, tmp_path: Path
) -> None:
    """Issue 21, item 2: ``askagency kb evaluate-followups`` on the sample follow-up pairs.
    Measured: alone 10/26 answered right (0 wrong), 14/26 within one click; read with the
    previous question 11/26 right, 0 wrong, 19/26 within one click, 7 replies carried over
    (18 within one click before the out-of-scope entries and clarify threshold 0.50; 13 right
    and 19 within one click before each FAQ was scored by its best variant,
    retriever.TOP_VARIANTS; docs/quality.md).
    The pairs were written with this change and the rule shaped while reading them, so these
    are development figures: the gate keeps them from getting worse."""
    report_file = tmp_path / "followups.json"
    cli(
        sample_kb_dir,
        "kb",
        "evaluate-followups",
        str(SAMPLE / "followups_en.csv"),
        "--language",
        "en",
        "--json",
        str(report_file),
    )
    report = json.loads(report_file.read_text())
    assert report["pairs"] == 26 and report["max_words"] == 6
    assert report["alone_correct"] == 10 and report["alone_within_one_click"] == 14
    assert report["with_context_correct"] >= 11, report
    assert report["with_context_wrong"] <= 0, report
    assert report["with_context_within_one_click"] >= 19, report


def test_thresholds_measured_with_another_model_are_warned_about(
    sample_kb_dir: Path, tmp_path: Path
) -> None:
    """`kb evaluate --apply` records the index's model beside the thresholds it writes;
    thresholds recorded for another model (an agency that switched models and kept them) make
    `kb build-index` and `kb evaluate` say what to run. (That the defaults fit the bundled
    model's index is tests/unit/knowledge_base/test_tuning.py's.) In a copy of the data folder:
    a rebuild warm-starts the classifier, and the gates above read this one."""
    data_dir = tmp_path / "data"
    shutil.copytree(sample_kb_dir, data_dir)
    env_file = tmp_path / "tuned.env"
    cli(
        data_dir,
        "kb",
        "evaluate",
        str(SAMPLE / "eval_queries_dev.csv"),
        "--language",
        "en",
        "--apply",
        "--env-file",
        str(env_file),
    )
    recorded = settings_in(env_file)
    index_meta = json.loads(
        next((data_dir / "index").glob("*/meta.json")).read_text(encoding="utf-8")
    )
    assert recorded["ASKAGENCY_THRESHOLDS_MODEL"] == thresholds_scale(index_meta["model_id"])
    # The sweep's recommendation; the default is 0.75 for the follow-up pairs (askagency/config.py).
    assert recorded["ASKAGENCY_ANSWER_THRESHOLD"] == "0.6"
    assert recorded["ASKAGENCY_CLARIFY_THRESHOLD"] == "0.5"

    other = {"ASKAGENCY_THRESHOLDS_MODEL": "all-mpnet-base-v2-e8c3b32-0f00-s128"}
    for args in (
        ("build-index",),
        ("evaluate", str(SAMPLE / "eval_queries.csv"), "--language", "en", "--no-sweep"),
    ):
        warned = cli(data_dir, "kb", *args, env=other)
        message = " ".join(warned.stderr.split())  # rich wraps long lines
        assert "were measured with embedding model all-mpnet-base-v2-e8c3b32-0f00-s128" in message
        assert f"built with {index_meta['model_id']}" in message


def test_thresholds_calibrated_from_the_kb_alone_hold_on_real_questions(
    sample_kb_dir: Path, tmp_path: Path
) -> None:
    """`kb calibrate --apply` chooses thresholds without a labelled question
    (knowledge_base/calibrate.py); on the development file's real questions they must keep the
    wrong answers within the limit and hand off the out-of-scope ones. Measured: 58.7% right,
    1.7% wrong, 96.3% of out-of-scope questions handed off (bench/results/calibration.json)."""
    data_dir = tmp_path / "data"
    shutil.copytree(sample_kb_dir, data_dir)
    env_file = tmp_path / "calibrated.env"
    cli(data_dir, "kb", "calibrate", "--apply", "--env-file", str(env_file))
    calibrated = settings_in(env_file)
    assert "ASKAGENCY_ANSWER_THRESHOLD" in calibrated
    report = evaluate(data_dir, tmp_path, "eval_queries_dev.csv", env=calibrated)
    assert report["thresholds"]["answer_threshold"] == float(
        calibrated["ASKAGENCY_ANSWER_THRESHOLD"]
    )
    assert report["answered_wrong"] <= 0.02
    assert report["oos_recall"] >= 0.93
    assert report["answered_correct"] >= 0.56
