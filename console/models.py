"""Console accounts and their server-side sessions.

Sessions live in the database (not in a signed cookie) so that logging out, a
role change or a lock-out takes effect at once on every console process.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from askagency.clock import now_utc
from askagency.db import Base
from knowledge_base.models import UtcDateTime


class Role(StrEnum):
    """Roles in order of power; ``ROLE_RANK`` lets a route ask for "at least"."""

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
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class WebSession(Base):
    __tablename__ = "console_session"

    # sha256 of the cookie value: a leaked database does not yield live sessions.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("console_user.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=now_utc)


class LoginFailure(Base):
    """Failed logins of one account name from one client address, within a decaying window.

    Keyed by (username, address) so that guessing from one address slows down only that
    address: the owner of the account logs in from theirs as usual (no lock-out of someone
    else). Unknown usernames get rows too, so they behave exactly like real accounts.
    """

    __tablename__ = "console_login_failure"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    # sha256 of the client address: enough to tell addresses apart, no IP kept at rest.
    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
