"""Sentiment of citizen messages and conversations (issue 22, item 2).

Stored conversations get no score from this migration (scoring needs the text analysis, not
SQL): `askagency analytics rebuild --from <day>` scores a past period.

Revision ID: 0010_sentiment
Revises: 0009_locations
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_sentiment"
down_revision: str | Sequence[str] | None = "0009_locations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("analytics_turn") as batch:
        batch.add_column(sa.Column("sentiment", sa.Float(), nullable=True))
    with op.batch_alter_table("analytics_conversation") as batch:
        batch.add_column(sa.Column("sentiment_start", sa.Float(), nullable=True))
        batch.add_column(sa.Column("sentiment_end", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("sentiment_messages", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("negative_messages", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("analytics_conversation") as batch:
        for column in (
            "negative_messages",
            "sentiment_messages",
            "sentiment_end",
            "sentiment_start",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("analytics_turn") as batch:
        batch.drop_column("sentiment")
