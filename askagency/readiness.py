"""Dependency checks behind every process's ``GET /ready`` (``/health`` only says "alive").

Kept in one module so the action server, console and analytics consumer report the database the
same way and the launcher can wait for the same meaning of "ready".
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from askagency.db import get_engine

logger = logging.getLogger(__name__)


# What a probe answers when the database fails. ``/ready`` is public (load balancers, Kubernetes),
# and a driver's message names the database host, address and user: those go to the log only.
DATABASE_UNAVAILABLE = "database unavailable"


def database_status(url: str | None = None) -> dict[str, Any]:
    """``{"ok": True}`` when the schema can be read, else ``{"ok": False, "error":
    "database unavailable"}``; the exception itself is logged, never returned."""
    try:
        with get_engine(url).connect() as conn:
            # Reads the schema: unlike ``SELECT 1``, SQLite must open the file for this.
            inspect(conn).get_table_names()
    except (SQLAlchemyError, OSError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        logger.error("%s: %s: %s", DATABASE_UNAVAILABLE, type(exc).__name__, first_line)
        return {"ok": False, "error": DATABASE_UNAVAILABLE}
    return {"ok": True}
