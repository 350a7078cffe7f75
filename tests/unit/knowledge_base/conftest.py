"""Fixtures shared by the `askagency kb` command tests."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from askagency.config import Settings
from knowledge_base import cli_index
from knowledge_base.index import build_bundle, save_bundle
from tests.unit.kb_tiny import TINY_KB, shared_embedder


@pytest.fixture
def kb_runner(tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner whose settings' index is the tiny KB (English and Spanish FAQs), with a
    console wide enough that tables do not wrap the values tests look for."""
    assert tmp_settings.index_dir is not None
    save_bundle(build_bundle(TINY_KB, shared_embedder()), tmp_settings.index_dir)
    monkeypatch.setattr(cli_index.console, "width", 250)
    return CliRunner()
