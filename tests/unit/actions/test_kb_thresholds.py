"""The action server decides at the thresholds for its index (decision.for_retriever): a KB
without out-of-scope entries is not decided at the defaults chosen with them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actions import kb
from askagency.config import Settings
from knowledge_base.index import build_bundle
from knowledge_base.retriever import Retriever
from knowledge_base.types import FaqRecord, Outcome
from tests.fakes import FakeHandle
from tests.unit.kb_tiny import BOOKINGS, TINY_KB, shared_embedder

# Scores about 0.54 for the ID FAQ with a classifier lead of about 0.6 on the tiny KB: answered
# by the classifier rule from 0.50 (the defaults, with entries), below the 0.55 clarify
# threshold of a KB without entries.
QUESTION = "passport questions"


@pytest.fixture
def serve() -> Iterator[object]:
    def use(records: list[FaqRecord]) -> None:
        embedder = shared_embedder()
        kb.set_handle(FakeHandle(Retriever(build_bundle(records, embedder), embedder)))  # type: ignore[arg-type]

    yield use
    kb.set_handle(None)


def test_the_index_without_entries_hands_off_what_the_defaults_answer(
    serve, tmp_settings: Settings
) -> None:
    serve([*TINY_KB, BOOKINGS])
    with_entries = kb.lookup(QUESTION, "en", tmp_settings)
    assert with_entries.outcome is Outcome.ANSWER
    assert with_entries.hits[0].faq_id == "id-docs"
    serve(list(TINY_KB))
    assert kb.lookup(QUESTION, "en", tmp_settings).outcome is Outcome.HANDOFF
    assert kb.lookup_in_language(QUESTION, "en", tmp_settings).decision.outcome is Outcome.HANDOFF
    # An agency's own clarify threshold is kept: the question is asked about, not handed off.
    own = Settings(clarify_threshold=0.50)
    assert kb.lookup(QUESTION, "en", own).outcome is Outcome.CLARIFY
