"""H3 / L11: the Rasa API token is generated per data folder (0600), never a public default,
refused when weak where other machines can reach Rasa, and kept out of Rasa's command line;
Rasa's CORS lists origins, never "*".

Each test runs the real component: Settings, the launcher's Stack, and bot.serve in Rasa's own
Python (it exits before importing Rasa when it refuses).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from askagency.config import PROJECT_ROOT, Settings
from askagency.launcher import RASA_VENV, Stack, StackConfig, StartupError, service_specs
from askagency.secrets import WeakSecretError, check_api_token, load_or_create_secret
from bench.throwaway import stack_config

RASA_PYTHON = RASA_VENV / "bin" / "python"


def test_the_token_is_generated_per_data_folder_private_and_stable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.rasa_token != "askagency-dev-token"
    assert len(settings.rasa_token) >= 40
    secret = tmp_path / "secrets" / "rasa_token"
    assert secret.read_text().strip() == settings.rasa_token
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    # Every process of the data folder reads the same one; another folder gets its own.
    assert Settings(data_dir=tmp_path).rasa_token == settings.rasa_token
    assert Settings(data_dir=tmp_path / "other").rasa_token != settings.rasa_token
    assert load_or_create_secret(tmp_path, "rasa_token") == settings.rasa_token
    # An operator's token wins (compose, Kubernetes Secret).
    assert Settings(data_dir=tmp_path, rasa_token="x" * 40).rasa_token == "x" * 40


def test_stack_token_comes_from_the_same_place(tmp_path: Path) -> None:
    cfg = stack_config(tmp_path, model_path=tmp_path)
    assert cfg.rasa_token == Settings(data_dir=tmp_path).rasa_token


def test_weak_tokens_are_refused_where_they_matter() -> None:
    with pytest.raises(WeakSecretError, match="published default"):
        check_api_token("askagency-dev-token", "127.0.0.1")
    with pytest.raises(WeakSecretError, match="at least 24"):
        check_api_token("short-token", "0.0.0.0")
    check_api_token("short-token", "127.0.0.1")  # loopback: allowed (tests, development)
    check_api_token("k" * 32, "0.0.0.0")


def test_launcher_refuses_the_public_default_token_before_starting_anything(
    tmp_path: Path,
) -> None:
    for token, interface in (("askagency-dev-token", "127.0.0.1"), ("short", "0.0.0.0")):
        cfg = stack_config(tmp_path, token, tmp_path, rasa_interface=interface, with_console=False)
        stack = Stack(cfg)
        with pytest.raises(StartupError, match="refusing to start Rasa"):
            stack.start()
        assert stack.procs == {}


def test_rasa_command_line_holds_no_token_and_no_wildcard_cors(tmp_path: Path) -> None:
    cfg = stack_config(tmp_path, model_path=tmp_path, with_console=False)
    rasa = next(s for s in service_specs(cfg) if s.name == "rasa")
    assert cfg.rasa_token not in " ".join(rasa.argv)
    assert "--auth-token" not in rasa.argv
    assert rasa.env["ASKAGENCY_RASA_TOKEN"] == cfg.rasa_token  # environment: owner-only
    cors = rasa.argv[rasa.argv.index("--cors") + 1 :]
    assert cors == [
        f"http://127.0.0.1:{cfg.console_port}",
        f"http://localhost:{cfg.console_port}",
    ]
    assert rasa.argv[rasa.argv.index("--interface") + 1] == "127.0.0.1"


def test_widget_origins_setting(tmp_path: Path) -> None:
    origins = ["https://www.agency.gov", "https://help.agency.gov/"]
    settings = Settings(data_dir=tmp_path, widget_origins=origins)
    assert settings.cors_origins() == ["https://www.agency.gov", "https://help.agency.gov"]
    assert StackConfig.from_settings(settings).rasa_cors() == settings.cors_origins()
    with pytest.raises(ValueError, match="any web page"):
        Settings(data_dir=tmp_path, widget_origins=["*"])


def test_bot_serve_argv_refusals_and_token_placement(tmp_path: Path) -> None:
    from bot.serve import rasa_argv

    env = {"ASKAGENCY_DATA_DIR": str(tmp_path)}
    refused = [
        (["run", "--interface", "0.0.0.0"], {"ASKAGENCY_RASA_TOKEN": "askagency-dev-token"}),
        (["run", "--interface", "0.0.0.0"], {"ASKAGENCY_RASA_TOKEN": "abc123"}),
        (["run"], {"ASKAGENCY_RASA_TOKEN": "abc123"}),  # Rasa's default interface is 0.0.0.0
        (["run", "-i", "127.0.0.1", "--auth-token", "k" * 40], {}),
        (["run", "-i", "127.0.0.1", "--cors", "https://a.example", "*"], {}),
    ]
    for args, extra in refused:
        with pytest.raises(ValueError):
            rasa_argv(args, {**env, **extra})
    # Accepted: the generated token of the data folder, appended for Rasa's parser only.
    argv = rasa_argv(["run", "-i", "127.0.0.1", "--cors", "http://127.0.0.1:8080"], env)
    token = Settings(data_dir=tmp_path).rasa_token
    assert argv[-1] == f"--auth-token={token}" and argv[0] == "rasa"


@pytest.mark.skipif(not RASA_PYTHON.exists(), reason="needs .venv-rasa (make setup)")
def test_bot_serve_refuses_before_rasa_starts(tmp_path: Path) -> None:
    """The compose and Kubernetes images start Rasa through bot.serve too: on a non-loopback
    interface the published default token stops it with a clear message (Rasa's own Python)."""
    proc = subprocess.run(
        [str(RASA_PYTHON), "-m", "bot.serve", "run", "--interface", "0.0.0.0"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "ASKAGENCY_DATA_DIR": str(tmp_path),
            "ASKAGENCY_RASA_TOKEN": "askagency-dev-token",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "refusing to start Rasa" in proc.stderr and "published default" in proc.stderr
    assert not (tmp_path / "secrets").exists()  # refused before generating anything
