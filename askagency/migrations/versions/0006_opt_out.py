"""SMS/WhatsApp opt-out list in the product database, keyed by channel and E.164 number.

Replaces the per-process SQLite file ``channel_opt_out.db`` (keyed by conversation id), so a
STOP holds on every Rasa replica and after restarts (askagency/opt_out.py). Rows of that file,
when it is found in the data folder, are copied over on the channels' first use.

Revision ID: 0006_opt_out
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_opt_out"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_opt_out",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "number", name=op.f("pk_channel_opt_out")),
    )


def downgrade() -> None:
    op.drop_table("channel_opt_out")
