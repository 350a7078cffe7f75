"""A partial index on the unanswered queue's questions that out-of-scope entries took (reason
``out_of_scope``): the dashboard counts them per entry for a period, and they are a few percent
of the queue, so the count reads them from this index instead of every row of the period (a
year of AskTSA volume is about a million queue rows).

Revision ID: 0027_unanswered_oos_index
Revises: 0026_ticket_out_of_scope
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027_unanswered_oos_index"
down_revision: str | Sequence[str] | None = "0026_ticket_out_of_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_kb_unanswered_out_of_scope"
TAKEN_BY_AN_ENTRY = "reason = 'out_of_scope'"  # knowledge_base.unanswered at this revision


def upgrade() -> None:
    op.create_index(
        INDEX,
        "kb_unanswered",
        ["created_at", "top_faq_id"],
        postgresql_where=sa.text(TAKEN_BY_AN_ENTRY),
        sqlite_where=sa.text(TAKEN_BY_AN_ENTRY),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="kb_unanswered")
