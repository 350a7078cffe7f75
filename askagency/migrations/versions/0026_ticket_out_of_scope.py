"""``handoff_ticket.out_of_scope_entry``: the knowledge base's out-of-scope entry that took the
question a ticket was opened for (issue 20), so the inbox can show the agent that entry's note
for staff. NULL for every other ticket, and for the tickets opened before this revision.

Revision ID: 0026_ticket_out_of_scope
Revises: 0025_unanswered_out_of_scope
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_ticket_out_of_scope"
down_revision: str | Sequence[str] | None = "0025_unanswered_out_of_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_MAX_LEN = 64  # knowledge_base.models.ID_MAX_LEN at this revision


def upgrade() -> None:
    # A nullable column: no table copy on SQLite, no rewrite on PostgreSQL.
    op.add_column(
        "handoff_ticket",
        sa.Column("out_of_scope_entry", sa.String(length=ID_MAX_LEN), nullable=True),
    )


def _sqlite_foreign_keys(enabled: bool) -> None:
    """Foreign-key enforcement on SQLite (a no-op elsewhere); as in 0018_attachments, it can
    only change outside a transaction."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.get_context().autocommit_block():
        op.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def downgrade() -> None:
    # As in 0020_ticket_contact: the table copy on SQLite must not cascade to the tickets'
    # messages and notes, so enforcement is off while it is copied (the ids are kept).
    _sqlite_foreign_keys(False)
    try:
        with op.batch_alter_table("handoff_ticket") as batch:
            batch.drop_column("out_of_scope_entry")
    finally:
        _sqlite_foreign_keys(True)
