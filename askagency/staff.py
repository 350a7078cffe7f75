"""Staff accounts and their roles: the people who sign in to the console and answer tickets.

Why in the foundation: the console authenticates these accounts and the handoff assigns
tickets to them (``handoff_ticket.assigned_agent_id`` references ``console_user``), and the
handoff must not depend on the console. The table keeps its historical name, ``console_user``
(migration 0002); the console's own tables (sessions, login failures) stay in
``console.models``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from askagency.clock import now_utc
from askagency.db import Base, UtcDateTime

TEAM_MAX_LEN = 64


def team_name(value: str | None) -> str | None:
    """A team name as stored: trimmed, inner whitespace collapsed; blank means no team.

    Raises ValueError for a name longer than :data:`TEAM_MAX_LEN` or with control characters
    (the name ends up in CSV files, PDFs and e-mails)."""
    if value is None:
        return None
    name = " ".join(value.split())
    if not name:
        return None
    if len(name) > TEAM_MAX_LEN:
        raise ValueError(f"a team name has at most {TEAM_MAX_LEN} characters")
    if any(not ch.isprintable() for ch in name):
        raise ValueError("a team name cannot contain control characters")
    return name


class Role(StrEnum):
    """Roles in order of power; ``console.auth.ROLE_RANK`` lets a route ask for "at least"."""

    VIEWER = "viewer"
    AGENT = "agent"
    EDITOR = "editor"
    ADMIN = "admin"


class User(Base):
    __tablename__ = "console_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # Languages the person can serve citizens in (handoff routing), e.g. ["en", "es"].
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["en"])
    # The team a supervisor reads the person's figures under (e.g. "DEN checkpoint", "night
    # shift"); None: no team. Only reports use it (analytics.metrics by_team).
    team: Mapped[str | None] = mapped_column(String(TEAM_MAX_LEN), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
