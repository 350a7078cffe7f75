"""Which settings file a process reads (askagency/config.py): ./.env unless ASKAGENCY_ENV_FILE
names another, none when it is empty, which is how the test suite keeps a checkout's own .env
(written by `make model-mpnet` or `kb evaluate --apply`) out of the tests and their stacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from askagency.config import ENV_FILE_VARIABLE, PROJECT_ROOT, Settings, settings_file
from knowledge_base.tuning import target_env_file

# The default, which neither settings file below holds.
DEFAULT_ANSWER = Settings.model_fields["answer_threshold"].default


@pytest.fixture
def folder_with_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".env").write_text("ASKAGENCY_ANSWER_THRESHOLD=0.9\n")
    (tmp_path / "other.env").write_text("ASKAGENCY_ANSWER_THRESHOLD=0.8\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_suite_reads_no_settings_file(folder_with_env: Path) -> None:
    assert os.environ[ENV_FILE_VARIABLE] == ""  # tests/conftest.py
    assert settings_file() is None
    assert Settings().answer_threshold == DEFAULT_ANSWER  # ./.env says 0.9


def test_dot_env_by_default_or_the_named_file(
    folder_with_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_FILE_VARIABLE)
    assert settings_file() == Path(".env")
    assert Settings().answer_threshold == 0.9
    assert target_env_file(None) == Path(".env")  # where --apply writes
    monkeypatch.setenv(ENV_FILE_VARIABLE, str(folder_with_env / "other.env"))
    assert Settings().answer_threshold == 0.8
    assert target_env_file(None) == folder_with_env / "other.env"
    assert target_env_file(Path("given.env")) == Path("given.env")
    # A file passed explicitly still wins.
    assert Settings(_env_file=folder_with_env / ".env").answer_threshold == 0.9


def test_a_command_started_by_a_test_ignores_the_checkouts_env(folder_with_env: Path) -> None:
    """What the stacks and the CLI runs inherit: the emptied variable, so a .env in their
    working folder is not read."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from askagency.config import Settings; print(Settings().answer_threshold)",
        ],
        cwd=folder_with_env,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(probe.stdout) == DEFAULT_ANSWER  # ./.env says 0.9
