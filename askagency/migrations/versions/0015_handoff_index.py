"""A partial index on the handed-off conversations by start (issue 22, item 6): the roll-up
dashboard reads them as rows for every week of the weekly report, and without it each read
filtered a week's conversations (tens of thousands at AskTSA volume) for the few handed off.

Revision ID: 0015_handoff_index
Revises: 0014_unanswered_wording
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_handoff_index"
down_revision: str | Sequence[str] | None = "0014_unanswered_wording"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_analytics_conversation_handoff_started"


def upgrade() -> None:
    op.create_index(
        INDEX,
        "analytics_conversation",
        ["started_at"],
        postgresql_where=sa.text("handed_off"),
        sqlite_where=sa.text("handed_off"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="analytics_conversation")
