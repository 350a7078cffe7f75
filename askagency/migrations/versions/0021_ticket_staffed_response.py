"""``handoff_ticket.first_response_staffed_s`` (issue 22, item 6): the ticket's first response
in staffed hours, stored when the first agent reply is written, as Chatwoot stores
``value_in_business_hours`` on its reporting events. A year's dashboard read 57,000 tickets'
timestamps and computed this for each (a third of a second of Python); now it reads a number.
Nullable: existing tickets have none, and the dashboard computes theirs when it reads them.

Revision ID: 0021_ticket_staffed_response
Revises: 0020_ticket_contact
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_ticket_staffed_response"
down_revision: str | Sequence[str] | None = "0020_ticket_contact"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("handoff_ticket") as batch:
        batch.add_column(sa.Column("first_response_staffed_s", sa.Float(), nullable=True))


def _sqlite_foreign_keys(enabled: bool) -> None:
    """Foreign-key enforcement on SQLite (a no-op elsewhere); as in 0018_attachments, it can
    only change outside a transaction."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.get_context().autocommit_block():
        op.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def downgrade() -> None:
    # As in 0020_ticket_contact: copying ``handoff_ticket`` on SQLite with foreign keys enforced
    # would cascade to every ticket's messages and notes.
    _sqlite_foreign_keys(False)
    try:
        with op.batch_alter_table("handoff_ticket") as batch:
            batch.drop_column("first_response_staffed_s")
    finally:
        _sqlite_foreign_keys(True)
