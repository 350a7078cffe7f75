"""`askagency kb search`: the decision line names the thresholds decide() used, which are the
top FAQ's language's (language_thresholds), and the suggestions of a handoff."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from askagency.config import Settings, get_settings
from knowledge_base import cli_index
from knowledge_base.cli import app
from knowledge_base.index import build_bundle, save_bundle
from tests.unit.kb_tiny import TINY_KB, shared_embedder


@pytest.fixture
def runner(tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    assert tmp_settings.index_dir is not None
    save_bundle(build_bundle(TINY_KB, shared_embedder()), tmp_settings.index_dir)
    monkeypatch.setattr(cli_index.console, "width", 250)
    return CliRunner()


def decision_line(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["search", *args])
    assert result.exit_code == 0, result.output
    return next(line for line in result.output.splitlines() if line.startswith("decision:"))


def test_the_decision_line_shows_the_thresholds_of_the_top_faqs_language(
    runner: CliRunner, tmp_settings: Settings
) -> None:
    english = decision_line(runner, "can I take shampoo on the plane", "--language", "en")
    assert f"answer >= {tmp_settings.answer_threshold}," in english
    assert f"margin >= {tmp_settings.answer_margin}" in english
    spanish = tmp_settings.language_thresholds["es"]
    line = decision_line(runner, "líquidos en el equipaje de mano", "--language", "es")
    assert (
        f"answer >= {spanish['answer_threshold']}, clarify >= {spanish['clarify_threshold']}"
        in line
    )
    assert f"suggest >= {spanish['suggest_threshold']}" in line


def test_a_handoff_lists_its_suggestions(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASKAGENCY_CLARIFY_THRESHOLD", "0.99")
    monkeypatch.setenv("ASKAGENCY_ANSWER_THRESHOLD", "0.99")
    monkeypatch.setenv("ASKAGENCY_SUGGEST_THRESHOLD", "0.3")
    get_settings.cache_clear()
    line = decision_line(runner, "can I take shampoo on the plane", "--language", "en")
    assert "handoff to a person (low confidence); suggests liquids" in line
