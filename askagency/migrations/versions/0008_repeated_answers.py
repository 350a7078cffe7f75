"""Analytics: answers that repeat an FAQ already given in the conversation (issue 22: staff
hours saved count only conversations the bot resolved).

Revision ID: 0008_repeated_answers
Revises: 0007_console_security
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_repeated_answers"
down_revision: str | Sequence[str] | None = "0007_console_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("analytics_conversation") as batch:
        batch.add_column(
            sa.Column("repeated_answers", sa.Integer(), server_default="0", nullable=False)
        )
    # Stored conversations get the count from their stored turns (the same rule as
    # analytics.ingest.repeated_answers), so past periods are reported the same way.
    op.execute(
        "UPDATE analytics_conversation SET repeated_answers = ("
        " SELECT COUNT(t.faq_id) - COUNT(DISTINCT t.faq_id) FROM analytics_turn t"
        " WHERE t.conversation_id = analytics_conversation.id AND t.outcome = 'answer')"
    )


def downgrade() -> None:
    with op.batch_alter_table("analytics_conversation") as batch:
        batch.drop_column("repeated_answers")
