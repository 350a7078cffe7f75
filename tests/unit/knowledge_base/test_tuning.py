"""kb evaluate --apply: the recommendation lands in the settings file, nothing else changes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from askagency.config import Settings
from knowledge_base.evaluate import SweepRow
from knowledge_base.retriever import SCORING_VERSION
from knowledge_base.tuning import (
    apply_recommendation,
    bundled_model_id,
    thresholds_model_warning,
    thresholds_scale,
    update_env_file,
)
from tests.unit.kb_tiny import shared_embedder


def row() -> SweepRow:
    return SweepRow(0.7, 0.45, 0.5, 0.2, 0.3, 0.48, 0.01, 0.9, 0.8, True, 0.25, 0.85, 0.5)


def test_update_keeps_other_lines_and_replaces_old_values(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# mine\nASKAGENCY_SECRET=x\nASKAGENCY_ANSWER_THRESHOLD=0.9\n")
    update_env_file(env, {"ASKAGENCY_ANSWER_THRESHOLD": "0.7", "ASKAGENCY_NEW": "1"})
    assert env.read_text().splitlines() == [
        "# mine",
        "ASKAGENCY_SECRET=x",
        "ASKAGENCY_ANSWER_THRESHOLD=0.7",
        "ASKAGENCY_NEW=1",
    ]


def test_applied_thresholds_are_what_the_settings_read(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    settings = Settings(_env_file=None)
    apply_recommendation(row(), settings, None, env)
    apply_recommendation(row(), settings, "es", env)
    loaded = Settings(_env_file=env)
    assert (loaded.answer_threshold, loaded.clarify_threshold) == (0.7, 0.45)
    assert (loaded.answer_confidence, loaded.answer_confidence_floor) == (0.25, 0.5)
    # Another language goes into language_thresholds, merged with the languages already there.
    assert loaded.language_thresholds["es"]["answer_threshold"] == 0.7
    assert json.loads(json.dumps(loaded.language_thresholds))["es"]["clarify_threshold"] == 0.45


def test_the_recommended_suggest_threshold_is_applied_per_language(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    settings = Settings(_env_file=None)
    suggesting = replace(row(), suggest_threshold=0.3)
    apply_recommendation(suggesting, settings, None, env)
    apply_recommendation(replace(suggesting, suggest_threshold=0.2), settings, "es", env)
    loaded = Settings(_env_file=env)
    assert loaded.suggest_threshold == 0.3
    assert loaded.language_thresholds["es"]["suggest_threshold"] == 0.2
    # A sweep row without one (not the recommended row) leaves the setting alone.
    apply_recommendation(row(), settings, None, env)
    assert Settings(_env_file=env).suggest_threshold == 0.3


def test_applied_thresholds_record_the_model_they_were_measured_with(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    apply_recommendation(row(), Settings(_env_file=None), None, env, "mpnet-abc-s128")
    recorded = Settings(_env_file=env).thresholds_model
    assert (
        recorded
        == f"mpnet-abc-s128;scoring={SCORING_VERSION}"
        == thresholds_scale("mpnet-abc-s128")
    )
    assert thresholds_model_warning(Settings(_env_file=env), "mpnet-abc-s128") is None


def test_the_bundled_model_id_is_the_embedders() -> None:
    """What the default thresholds were measured with is what an index of the bundled model
    records: otherwise every agency on the defaults would be warned."""
    assert bundled_model_id() == shared_embedder().model_id


def test_thresholds_of_another_model_are_warned_about() -> None:
    defaults = Settings(_env_file=None)
    assert thresholds_model_warning(defaults, bundled_model_id()) is None
    assert thresholds_model_warning(defaults, None) is None  # an empty index says nothing
    warning = thresholds_model_warning(defaults, "all-mpnet-base-v2-e8c3b32-0f00-s128")
    assert warning is not None
    assert f"are the defaults, for embedding model {bundled_model_id()}" in warning
    assert "built with all-mpnet-base-v2-e8c3b32-0f00-s128" in warning
    assert "kb evaluate" in warning and "--apply" in warning

    mpnet = "all-mpnet-base-v2-e8c3b32-0f00-s128"
    measured = Settings(_env_file=None, thresholds_model=thresholds_scale(mpnet))
    assert thresholds_model_warning(measured, "all-mpnet-base-v2-e8c3b32-0f00-s128") is None
    back = thresholds_model_warning(measured, bundled_model_id())
    assert back is not None and "were measured with embedding model all-mpnet" in back


def test_thresholds_of_an_earlier_scoring_are_warned_about() -> None:
    """An agency that applied its thresholds before the retriever's scoring changed (a bare model
    id was recorded then: version 1) is told to measure them again, though the model is the
    same; the defaults move with the scoring and are never warned about."""
    model = bundled_model_id()
    earlier = Settings(_env_file=None, thresholds_model=model)
    warning = thresholds_model_warning(earlier, model)
    assert warning is not None
    assert "version 1 of the retriever's scoring" in warning
    assert f"with version {SCORING_VERSION}" in warning and "--apply" in warning
    current = Settings(_env_file=None, thresholds_model=thresholds_scale(model))
    assert thresholds_model_warning(current, model) is None
    assert SCORING_VERSION >= 2
