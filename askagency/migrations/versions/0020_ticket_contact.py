"""``handoff_ticket.contact`` and ``contact_kind`` (issue 21, item 3): an e-mail address or phone
number the citizen left during a handoff, for a reply their channel may no longer deliver
(Messenger after 7 days, WhatsApp after 24 hours, a closed web tab). Nullable columns: existing
tickets have none, and SQLite adds them without rebuilding the table.

Revision ID: 0020_ticket_contact
Revises: 0019_faq_related
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_ticket_contact"
down_revision: str | Sequence[str] | None = "0019_faq_related"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTACT = 254  # askagency.privacy.CONTACT_MAX_CHARS at the time of writing


def upgrade() -> None:
    with op.batch_alter_table("handoff_ticket") as batch:
        batch.add_column(sa.Column("contact", sa.String(length=CONTACT), nullable=True))
        batch.add_column(sa.Column("contact_kind", sa.String(length=16), nullable=True))


def _sqlite_foreign_keys(enabled: bool) -> None:
    """Foreign-key enforcement on SQLite (a no-op elsewhere); as in 0018_attachments, it can
    only change outside a transaction."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.get_context().autocommit_block():
        op.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def downgrade() -> None:
    # Dropping a column copies the table on SQLite, and dropping the old ``handoff_ticket`` with
    # foreign keys enforced would cascade to every ticket's messages and notes (see the note in
    # 0018_attachments): enforcement is off while the table is copied, the ids are kept.
    _sqlite_foreign_keys(False)
    try:
        with op.batch_alter_table("handoff_ticket") as batch:
            batch.drop_column("contact_kind")
            batch.drop_column("contact")
    finally:
        _sqlite_foreign_keys(True)
