"""Server-side sessions and login failures of console accounts.

The accounts themselves (``User``, ``Role``) are in ``askagency.staff``: the handoff assigns
tickets to them too. Sessions live in the database (not in a signed cookie) so that logging
out, a role change or a lock-out takes effect at once on every console process.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from askagency.clock import now_utc
from askagency.db import Base, UtcDateTime
from askagency.staff import User


class WebSession(Base):
    __tablename__ = "console_session"

    # sha256 of the cookie value: a leaked database does not yield live sessions.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey(User.id, ondelete="CASCADE"), index=True
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
