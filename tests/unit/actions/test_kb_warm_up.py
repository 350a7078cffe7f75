"""The action server's start-up (``actions.kb.warm_up``) says when the decision thresholds were
measured with another embedding model than the live index's (knowledge_base/tuning.py): on a
real index of the bundled model, silent at the defaults, a warning naming both models otherwise."""

from __future__ import annotations

import logging

import pytest

from actions import kb
from askagency.config import Settings, get_settings
from knowledge_base.index import build_bundle
from knowledge_base.retriever import Retriever
from tests.fakes import FakeHandle
from tests.unit.kb_tiny import TINY_KB, shared_embedder


@pytest.fixture
def live_index(tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Retriever:
    retriever = Retriever(
        build_bundle(TINY_KB, shared_embedder(), classifier=False), shared_embedder()
    )
    monkeypatch.setattr(kb, "_handle", None)
    monkeypatch.setattr(kb, "_create_handle", lambda settings: FakeHandle(retriever))
    return retriever


def test_the_defaults_on_the_bundled_model_warn_about_nothing(live_index, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="actions.kb"):
        assert kb.warm_up() is True
    assert not [r for r in caplog.records if "thresholds" in r.getMessage()]


def test_thresholds_of_another_model_are_logged_at_start_up(
    live_index, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASKAGENCY_THRESHOLDS_MODEL", "all-mpnet-base-v2-e8c3b32-0f00-s128")
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="actions.kb"):
            assert kb.warm_up() is True
    finally:
        get_settings.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "measured with embedding model all-mpnet-base-v2-e8c3b32-0f00-s128" in warnings[0]
    assert f"built with {live_index.model_id}" in warnings[0]
