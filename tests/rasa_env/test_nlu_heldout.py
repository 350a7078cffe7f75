"""The trained Rasa model recognises the control intents in English and Spanish on phrases that
are NOT in its training data (bench/data/nlu_heldout.yml): this checks generalisation, not
memory, and is the gate any lighter NLU pipeline must hold (bench/bench_nlu.py compares them).

A real question taken for ``ask_question`` or ``nlu_fallback`` is right: both go to the FAQ
retriever. Uses the model `make train` wrote to var/models (skipped when there is none yet).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from askagency.bot_messages import INTENT_ASK_QUESTION, QUESTION_INTENTS
from tests.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "var" / "models" / "askagency.tar.gz"
HELDOUT = yaml.safe_load((ROOT / "bench" / "data" / "nlu_heldout.yml").read_text(encoding="utf-8"))
# Misses tolerated per language: the shipped pipeline had none on either list when the lists
# were written; one is noise, two is a regression.
TOLERATED = 1


@pytest.fixture(scope="module")
def agent():  # type: ignore[no-untyped-def]
    if not MODEL.exists():
        unavailable("no trained model: run `make train`")
    from rasa.core.agent import Agent

    return Agent.load(str(MODEL))


def test_heldout_phrases_are_not_in_the_training_data() -> None:
    training = "".join(
        p.read_text(encoding="utf-8").lower() for p in (ROOT / "bot" / "data").glob("nlu*.yml")
    )
    copied = [t for rows in HELDOUT.values() for t, _ in rows if f"- {t.lower()}\n" in training]
    assert copied == []


@pytest.mark.parametrize("language", sorted(HELDOUT))
def test_control_intents_on_heldout_phrases(agent, language: str) -> None:  # type: ignore[no-untyped-def]
    async def parse_all() -> list[tuple[str, str, str]]:
        out = []
        for text, expected in HELDOUT[language]:
            result = await agent.parse_message(text)
            out.append((text, expected, result["intent"]["name"]))
        return out

    wrong = [
        (text, expected, got)
        for text, expected, got in asyncio.run(parse_all())
        if got != expected and not (expected == INTENT_ASK_QUESTION and got in QUESTION_INTENTS)
    ]
    assert len(wrong) <= TOLERATED, wrong
