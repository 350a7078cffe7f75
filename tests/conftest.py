"""Fixtures shared by every test package: an isolated data directory and a
migrated database, so no test ever touches the project's var/."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from askagency.clock import FakeClock, use_clock
from askagency.config import ENV_FILE_VARIABLE, Settings, embedded_database_url, get_settings
from askagency.db import get_engine, get_sessionmaker

# One real stack per session, shared by tests/e2e and tests/browser (see tests/stack.py).
from tests.stack import platform_fake, rest, stack, stack_data_dir  # noqa: F401

# Each running stack's tests on one process when the stack suites run on two.
from tests.stack_groups import pytest_collection_modifyitems, pytest_configure  # noqa: F401

# No settings file: a checkout's own .env (written by `make model-mpnet` or `kb evaluate
# --apply`) must not reach the tests or the stacks and commands they start (askagency/config.py).
os.environ[ENV_FILE_VARIABLE] = ""
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
# Every stack's data folder would otherwise export the embedding model to ONNX again (about 5 s
# each, knowledge_base/onnx_export.py); one export per checkout serves them all.
os.environ.setdefault(
    "ASKAGENCY_EMBEDDING_EXPORT_DIR",
    str(Path(__file__).resolve().parent.parent / "build" / "test-models"),
)


# A Wednesday at noon UTC: tests that need a known instant install it with the ``clock`` fixture,
# and the code under test then reads the same instant through askagency.clock.now_utc().
FIXED_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """The product's clock, frozen at ``FIXED_NOW`` for this test; move it with ``advance``."""
    fake = FakeClock(FIXED_NOW)
    with use_clock(fake):
        yield fake


def _reset_caches() -> None:
    get_settings.cache_clear()
    get_engine.cache_clear()


@pytest.fixture
def tmp_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings whose data dir, SQLite database and index live under ``tmp_path``."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("ASKAGENCY_DATA_DIR", str(data_dir))
    monkeypatch.setenv("ASKAGENCY_DATABASE_URL", embedded_database_url(data_dir))
    monkeypatch.setenv("ASKAGENCY_INDEX_DIR", str(data_dir / "index"))
    _reset_caches()
    settings = get_settings()
    yield settings
    get_engine(settings.database_url).dispose()
    _reset_caches()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database migrated to head once per test session, for ``db_url`` to copy.

    Running every migration took 0.3 s per test, for some 360 tests and twice per ``make test``
    (the shifted-clock run too); copying the result takes a millisecond. ``VACUUM INTO`` writes
    one self-contained file (no WAL beside it) from the migrated database; its output is in
    rollback-journal mode, so the template is switched back to WAL, as production's migrated
    file is, before it is copied (a copy left in rollback mode had each test's first connection
    convert it while the app under test held a lock: "database is locked").
    """
    from askagency.migrate import upgrade

    folder = tmp_path_factory.mktemp("migrated")
    built = folder / "built.db"
    upgrade(f"sqlite:///{built}")
    template = folder / "template.db"
    with closing(sqlite3.connect(built)) as connection:
        connection.execute("VACUUM INTO ?", (str(template),))
    with closing(sqlite3.connect(template)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    return template


@pytest.fixture
def db_url(tmp_settings: Settings, migrated_sqlite: Path) -> str:
    """URL of a fresh database at the latest schema (the configured one, in ``tmp_path``)."""
    url = tmp_settings.database_url
    target = Path(make_url(url).database or "")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, target)
    return url


@pytest.fixture
def db_session(db_url: str) -> Iterator[Session]:
    """A session on the migrated test database; the test commits if it wants to."""
    session = get_sessionmaker(db_url)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()
