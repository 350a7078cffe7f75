"""The action server's shared secret (L1): generated once per installation, private, the same
header name in Python and in Rasa's endpoint files, and passed to every process by the launcher."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from askagency.config import PROJECT_ROOT
from askagency.launcher import StackConfig, service_specs
from askagency.secrets import (
    ACTION_SECRET_ENV,
    ACTION_SECRET_HEADER,
    action_secret,
    load_or_create_secret,
)


def test_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path, "action_secret")
    assert len(first) >= 40 and first == load_or_create_secret(tmp_path, "action_secret")
    assert load_or_create_secret(tmp_path / "other", "action_secret") != first
    path = tmp_path / "secrets" / "action_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["action_secret"]  # no temporary left
    with pytest.raises(ValueError):
        load_or_create_secret(tmp_path, "../escape")


def test_the_environment_wins(tmp_path: Path) -> None:
    assert action_secret(tmp_path, {ACTION_SECRET_ENV: "from-env"}) == "from-env"
    assert action_secret(tmp_path, {}) == load_or_create_secret(tmp_path, "action_secret")


@pytest.mark.parametrize("name", ["endpoints.yml", "endpoints.scale.yml"])
def test_rasa_sends_the_header_the_action_server_checks(name: str) -> None:
    endpoint = yaml.safe_load((PROJECT_ROOT / "bot" / name).read_text())["action_endpoint"]
    assert endpoint["headers"] == {ACTION_SECRET_HEADER: f"${{{ACTION_SECRET_ENV}}}"}
    assert "token" not in endpoint  # a query-string token would end up in proxy logs


def test_the_launcher_gives_rasa_and_the_action_server_the_same_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ACTION_SECRET_ENV, raising=False)
    cfg = StackConfig(
        data_dir=tmp_path,
        rasa_port=5005,
        action_port=5055,
        console_port=8080,
        rasa_token="t",
        model_path=tmp_path / "model.tar.gz",
        log_dir=tmp_path / "logs",
        extra_env={},
    )
    specs = {spec.name: spec for spec in service_specs(cfg)}
    expected = load_or_create_secret(tmp_path, "action_secret")
    assert specs["rasa"].env[ACTION_SECRET_ENV] == expected
    assert specs["actions"].env[ACTION_SECRET_ENV] == expected
