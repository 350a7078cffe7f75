"""Rasa-only tests: skipped as a whole when collected from .venv (no rasa installed there)."""

import importlib.util
import os

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

if importlib.util.find_spec("rasa") is None:
    # Collected by the main test run in .venv: these run with .venv-rasa (see pytest.ini here).
    collect_ignore_glob = ["test_*.py"]
