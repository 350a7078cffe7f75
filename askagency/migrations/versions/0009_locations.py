"""Locations: the agency's list of places, and the location of each analytics conversation
(issue 22, item 1).

Revision ID: 0009_locations
Revises: 0008_repeated_answers
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_locations"
down_revision: str | Sequence[str] | None = "0008_repeated_answers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "location",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=True),
    )
    with op.batch_alter_table("analytics_event") as batch:
        batch.add_column(sa.Column("location", sa.String(16), nullable=True))
    # Conversations stored before this revision are about no known location.
    with op.batch_alter_table("analytics_conversation") as batch:
        batch.add_column(
            sa.Column("location", sa.String(16), server_default="unknown", nullable=False)
        )
        batch.create_index("ix_analytics_conversation_location", ["location"])


def downgrade() -> None:
    with op.batch_alter_table("analytics_conversation") as batch:
        batch.drop_index("ix_analytics_conversation_location")
        batch.drop_column("location")
    with op.batch_alter_table("analytics_event") as batch:
        batch.drop_column("location")
    op.drop_table("location")
