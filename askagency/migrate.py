"""Programmatic Alembic: bring any AskAgency database to the latest schema.

The CLI, the launcher and the tests call ``upgrade()`` before touching the
database so that a fresh data directory just works; when the database is
already at head this costs one small query. Which modules define tables is
the composition root's to say (``agencyctl.models``), not this module's.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from askagency.config import get_settings
from askagency.db import Base, make_engine

# Inside the package, so a wheel carries them (pyproject.toml package-data).
ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"
MIGRATIONS_DIR = ALEMBIC_INI.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """Alembic config for ``url`` (default: the configured database)."""
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url or get_settings().database_url
    # Called from inside an application: keep its logging configuration.
    cfg.attributes["skip_logging"] = True
    # Upgrades compare nothing; the tables imported so far are enough (autogenerate, from the
    # alembic command line, loads every package's: migrations/env.py).
    cfg.attributes["target_metadata"] = Base.metadata
    return cfg


def head_revisions() -> set[str]:
    """The newest revision(s) in the migrations folder (several while feature
    branches of the history are being merged)."""
    heads = set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
    if not heads:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return heads


def current_revisions(url: str | None = None) -> set[str]:
    """Revisions the database is at; empty for a database never migrated."""
    engine = make_engine(url or get_settings().database_url)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def current_revision(url: str | None = None) -> str | None:
    """The single revision the database is at (None when never migrated)."""
    revisions = current_revisions(url)
    return max(revisions) if revisions else None


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` (default: configured) to ``revision``.

    Skips loading Alembic's environment when the database is already at head,
    which keeps every CLI command's start-up fast.
    """
    url = url or get_settings().database_url
    if revision in ("head", "heads"):
        if current_revisions(url) == head_revisions():
            return
        revision = "heads"
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Undo migrations down to ``revision`` (tests and disaster recovery only)."""
    command.downgrade(alembic_config(url), revision)
