"""Alembic environment for the single AskAgency migration history.

The URL comes, in order, from: a connection handed over in
``config.attributes["connection"]``, ``config.attributes["url"]`` (set by
``askagency.migrate``; kept out of the ini so ``%`` in passwords needs no
escaping), ``sqlalchemy.url`` in alembic.ini, then ``get_settings().database_url``.
"""

from __future__ import annotations

import importlib
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, MetaData

from askagency.config import get_settings
from askagency.db import make_engine

config = context.config


def _target_metadata() -> MetaData:
    """What askagency.migrate hands over; from the alembic command line (a developer writing a
    migration with --autogenerate) every table of every package, listed by the composition root
    (agencyctl.models), imported by name because the foundation package depends on no feature
    package."""
    given = config.attributes.get("target_metadata")
    if given is not None:
        return given
    return importlib.import_module("agencyctl.models").metadata()


target_metadata = _target_metadata()

if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return (
        config.attributes.get("url")
        or config.get_main_option("sqlalchemy.url")
        or get_settings().database_url
    )


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
