"""``analytics_monthly_count`` and ``analytics_daily_total_count`` (issue 22, item 6): the
labelled daily counts added up by calendar month, so a year's dashboard reads twelve rows per
key instead of 365, and by day over every channel, language and location, for the unfiltered
per-day charts; and an index on the daily counts by kind and location, so one location's year
is read from its own rows. Filled here from the daily rows that exist (they are in the agency's days
already); from then on analytics.rollup writes all three.

Revision ID: 0022_monthly_rollup
Revises: 0021_ticket_staffed_response
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_monthly_rollup"
down_revision: str | Sequence[str] | None = "0021_ticket_staffed_response"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("channel", "language", "location", "kind", "label")
LOCATION_INDEX = "ix_analytics_daily_count_kind_location_day"


def upgrade() -> None:
    op.create_table(
        "analytics_monthly_count",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("location", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=129), nullable=False),  # a related-click pair
        sa.Column("n", sa.Integer(), server_default="0", nullable=False),
        sa.Column("score_sum", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("scored", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("month", *KEY, name=op.f("pk_analytics_monthly_count")),
    )
    op.create_index(
        "ix_analytics_monthly_count_kind_month", "analytics_monthly_count", ["kind", "month"]
    )
    op.create_index(
        LOCATION_INDEX,
        "analytics_daily_count",
        ["kind", "location", "day"],
        postgresql_include=["label", "n"],
    )
    month = (
        "date(day, 'start of month')"
        if op.get_bind().dialect.name == "sqlite"
        else "CAST(date_trunc('month', day) AS date)"
    )
    key = ", ".join(KEY)
    op.execute(
        f"INSERT INTO analytics_monthly_count (month, {key}, n, score_sum, scored) "
        f"SELECT {month}, {key}, sum(n), sum(score_sum), sum(scored) "
        f"FROM analytics_daily_count GROUP BY {month}, {key}"
    )
    op.create_table(
        "analytics_daily_total_count",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=129), nullable=False),
        sa.Column("n", sa.Integer(), server_default="0", nullable=False),
        sa.Column("score_sum", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("scored", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "kind", "label", name=op.f("pk_analytics_daily_total_count")
        ),
    )
    op.create_index(
        "ix_analytics_daily_total_count_kind_day", "analytics_daily_total_count", ["kind", "day"]
    )
    op.execute(
        "INSERT INTO analytics_daily_total_count (day, kind, label, n, score_sum, scored) "
        "SELECT day, kind, label, sum(n), sum(score_sum), sum(scored) "
        "FROM analytics_daily_count GROUP BY day, kind, label"
    )


def downgrade() -> None:
    op.drop_index(LOCATION_INDEX, table_name="analytics_daily_count")
    op.drop_index(
        "ix_analytics_daily_total_count_kind_day", table_name="analytics_daily_total_count"
    )
    op.drop_table("analytics_daily_total_count")
    op.drop_index("ix_analytics_monthly_count_kind_month", table_name="analytics_monthly_count")
    op.drop_table("analytics_monthly_count")
