"""Every module that defines tables on ``askagency.db.Base``.

Why a list: one Alembic history migrates every table, and both its environment
(askagency/migrations/env.py, for autogenerate) and the models-vs-migrations test need the complete
``Base.metadata``. A new module with tables is added here.
"""

from __future__ import annotations

from types import ModuleType

from sqlalchemy import MetaData

import analytics.delivery
import analytics.models
import askagency.opt_out_schema
import askagency.staff
import attachments.models
import console.models
import handoff.models
import knowledge_base.locations.models
import knowledge_base.models
import knowledge_base.unanswered
from askagency.db import Base

MODEL_MODULES: tuple[ModuleType, ...] = (
    knowledge_base.models,
    askagency.staff,
    console.models,
    handoff.models,
    knowledge_base.unanswered,
    analytics.models,
    askagency.opt_out_schema,
    knowledge_base.locations.models,
    analytics.delivery,
    attachments.models,
)


def metadata() -> MetaData:
    """``Base.metadata`` with the tables of every module in :data:`MODEL_MODULES`."""
    return Base.metadata
