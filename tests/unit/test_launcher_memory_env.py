"""The launcher bounds glibc's malloc arenas for its children (docs/scale.md, action-server
memory), unless the operator set MALLOC_ARENA_MAX explicitly."""

from __future__ import annotations

from pathlib import Path

import pytest

from askagency.launcher import StackConfig, service_specs


def _cfg(tmp_path: Path, extra_env: dict[str, str] | None = None) -> StackConfig:
    return StackConfig(
        data_dir=tmp_path,
        rasa_port=5005,
        action_port=5055,
        console_port=8080,
        rasa_token="t",
        model_path=tmp_path / "models",
        log_dir=tmp_path / "logs",
        with_console=False,
        extra_env=extra_env or {},
    )


def test_children_get_two_malloc_arenas_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    specs = {s.name: s for s in service_specs(_cfg(tmp_path))}
    assert specs["actions"].env["MALLOC_ARENA_MAX"] == "2"
    assert {s.env.get("MALLOC_ARENA_MAX") for s in specs.values()} == {"2"}


def test_an_explicit_value_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert service_specs(_cfg(tmp_path))[0].env["MALLOC_ARENA_MAX"] == "4"
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    cfg = _cfg(tmp_path, {"MALLOC_ARENA_MAX": "1"})
    assert service_specs(cfg)[0].env["MALLOC_ARENA_MAX"] == "1"
