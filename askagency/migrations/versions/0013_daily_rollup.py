"""Daily roll-ups of the analytics rows (issue 22, item 6: fast at volume).

The tables start empty and without a state row, so the dashboard keeps reading the rows until
the roll-ups are built: the analytics consumer builds them when it starts, or
`askagency analytics rollup --rebuild` does (analytics/rollup.py).

Revision ID: 0013_daily_rollup
Revises: 0012_teams
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_daily_rollup"
down_revision: str | Sequence[str] | None = "0012_teams"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DAILY_COUNTS = (
    "conversations",
    "user_messages",
    "handoffs",
    "bot_resolved",
    "bot_resolved_confirmed",
    "feedback_good",
    "feedback_bad",
    "scored_conversations",
    "negative_conversations",
    "scored_messages",
    "negative_messages",
    "sentiment_start_sum",
    "sentiment_start_count",
    "sentiment_end_sum",
    "sentiment_end_count",
    "improved",
    "worsened",
    *(f"h{hour:02d}" for hour in range(24)),
)
BIG = {"sentiment_start_sum", "sentiment_end_sum"}


def _key() -> list[sa.Column]:
    return [
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("location", sa.String(length=16), nullable=False),
    ]


def _count(name: str) -> sa.Column:
    kind = sa.BigInteger() if name in BIG else sa.Integer()
    return sa.Column(name, kind, server_default="0", nullable=False)


def upgrade() -> None:
    op.create_table(
        "analytics_daily",
        *_key(),
        *(_count(name) for name in DAILY_COUNTS),
        sa.PrimaryKeyConstraint(
            "day", "channel", "language", "location", name=op.f("pk_analytics_daily")
        ),
    )
    op.create_table(
        "analytics_daily_count",
        *_key(),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        _count("n"),
        sa.Column("score_sum", sa.BigInteger(), server_default="0", nullable=False),
        _count("scored"),
        sa.PrimaryKeyConstraint(
            "day",
            "channel",
            "language",
            "location",
            "kind",
            "label",
            name=op.f("pk_analytics_daily_count"),
        ),
    )
    op.create_index("ix_analytics_daily_count_kind_day", "analytics_daily_count", ["kind", "day"])
    op.create_table(
        "analytics_rollup_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_rollup_state")),
    )


def downgrade() -> None:
    op.drop_table("analytics_rollup_state")
    op.drop_index("ix_analytics_daily_count_kind_day", table_name="analytics_daily_count")
    op.drop_table("analytics_daily_count")
    op.drop_table("analytics_daily")
