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


def database_status(url: str | None = None) -> dict[str, Any]:
    """``{"ok": True}`` when the schema can be read, else ``{"ok": False, "error": ...}``."""
    try:
        with get_engine(url).connect() as conn:
            # Reads the schema: unlike ``SELECT 1``, SQLite must open the file for this.
            inspect(conn).get_table_names()
    except (SQLAlchemyError, OSError) as exc:
        message = f"database unavailable: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        logger.error("%s", message)
        return {"ok": False, "error": message}
    return {"ok": True}
