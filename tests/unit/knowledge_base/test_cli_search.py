"""`askagency kb search`: the decision line names the thresholds decide() used, which are the
top FAQ's language's (language_thresholds) for this index (decision.for_index), and the
suggestions of a handoff."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from askagency.config import Settings, get_settings
from knowledge_base.cli import app
from knowledge_base.decision import for_index, suggest_floor, thresholds_for


def decision_line(kb_runner: CliRunner, *args: str) -> str:
    result = kb_runner.invoke(app, ["search", *args])
    assert result.exit_code == 0, result.output
    return next(line for line in result.output.splitlines() if line.startswith("decision:"))


def test_the_decision_line_shows_the_thresholds_of_the_top_faqs_language(
    kb_runner: CliRunner, tmp_settings: Settings
) -> None:
    # The tiny KB has no out-of-scope entries: its thresholds are those for a KB without them.
    used = for_index(tmp_settings, frozenset())
    english = decision_line(kb_runner, "can I take shampoo on the plane", "--language", "en")
    assert f"answer >= {used.answer_threshold}, clarify >= {used.clarify_threshold}," in english
    assert used.clarify_threshold != tmp_settings.clarify_threshold
    assert f"margin >= {used.answer_margin}" in english
    spanish = thresholds_for(used, "es")
    line = decision_line(kb_runner, "líquidos en el equipaje de mano", "--language", "es")
    assert f"answer >= {spanish.answer_threshold}, clarify >= {spanish.clarify_threshold}" in line
    assert spanish.answer_threshold != used.answer_threshold
    floor = suggest_floor(spanish)
    assert (f"suggest >= {floor}" in line) if floor is not None else ("suggest >=" not in line)


def test_a_handoff_lists_its_suggestions(
    kb_runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASKAGENCY_CLARIFY_THRESHOLD", "0.99")
    monkeypatch.setenv("ASKAGENCY_ANSWER_THRESHOLD", "0.99")
    monkeypatch.setenv("ASKAGENCY_SUGGEST_THRESHOLD", "0.3")
    get_settings.cache_clear()
    line = decision_line(kb_runner, "can I take shampoo on the plane", "--language", "en")
    assert "handoff to a person (low confidence); suggests liquids" in line


def test_a_handoff_by_an_out_of_scope_entry_says_which(
    kb_runner: CliRunner, tmp_settings: Settings
) -> None:
    """A question that an out-of-scope entry matches best has no hits; the decision line says
    why, with the example it resembles, so staff see it is not a low score."""
    from knowledge_base.index import build_bundle, save_bundle
    from knowledge_base.types import FaqKind, FaqRecord
    from tests.unit.kb_tiny import TINY_KB, shared_embedder

    bookings = FaqRecord(
        id="out-of-scope-bookings",
        language="en",
        question="how do I change my flight booking",
        answer="Bookings are handled by the airline.",
        variants=("can I get a refund for my plane ticket", "how do i cancel my flight"),
        kind=FaqKind.OUT_OF_SCOPE,
    )
    assert tmp_settings.index_dir is not None
    save_bundle(build_bundle([*TINY_KB, bookings], shared_embedder()), tmp_settings.index_dir)
    line = decision_line(kb_runner, "refund for my plane ticket please", "--language", "en")
    assert "handoff to a person: out of scope, like out-of-scope-bookings" in line
    assert '"can I get a refund for my plane ticket"' in line
    # An in-scope question is decided as before.
    line = decision_line(kb_runner, "can I take shampoo on the plane", "--language", "en")
    assert "out of scope" not in line
