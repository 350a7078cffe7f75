"""Rasa-only tests: skipped as a whole when collected from .venv (no rasa installed there)."""

import importlib.util
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

if importlib.util.find_spec("rasa") is None:
    # Collected by the main test run in .venv: these run with .venv-rasa (see pytest.ini here).
    collect_ignore_glob = ["test_*.py"]
else:
    # Channel state (rate limits, seen message ids) in this process, even in a shell that
    # sourced deploy/scale.env: tests reuse fixed sender and message ids, which a shared Redis
    # would remember between runs. The tests of the shared state configure Redis explicitly.
    for _name in ("ASKAGENCY_REDIS_HOST", "ASKAGENCY_RATE_LIMIT_REDIS_URL"):
        os.environ.pop(_name, None)
    # Web conversations are signed with this secret (askagency/conversation_token.py); the
    # tests sign their own senders with it, as an integration holding the secret may.
    os.environ["ASKAGENCY_CONVERSATION_SECRET"] = "rasa-env-tests-conversation-secret-0123456789"


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of the test's own (redis_kit.fresh_prefix)."""
    from redis_kit import fresh_prefix

    yield from fresh_prefix()
