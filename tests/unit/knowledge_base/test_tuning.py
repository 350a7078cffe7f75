"""kb evaluate --apply: the recommendation lands in the settings file, nothing else changes."""

from __future__ import annotations

import json
from pathlib import Path

from askagency.config import Settings
from knowledge_base.evaluate import SweepRow
from knowledge_base.tuning import apply_recommendation, update_env_file


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
