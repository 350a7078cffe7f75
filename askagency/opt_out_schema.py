"""Registers the opt-out table (askagency/opt_out.py) on the shared ``Base.metadata``, so that
Alembic's models-vs-migrations check covers it. Imported by ``askagency.migrate`` only: the
Rasa channels use :mod:`askagency.opt_out`, which does not need this package's settings."""

from __future__ import annotations

from askagency.db import Base
from askagency.opt_out import TABLE_NAME, define_table

channel_opt_out = Base.metadata.tables.get(TABLE_NAME) or define_table(Base.metadata)
