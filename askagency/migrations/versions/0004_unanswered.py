"""Unanswered-question queue and per-FAQ answer counts (staff console).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kb_unanswered",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("top_faq_id", sa.String(length=64), nullable=True),
        sa.Column("top_score", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_faq_id", sa.String(length=64), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'accepted', 'created', 'dismissed')",
            name=op.f("ck_kb_unanswered_status"),
        ),
        sa.CheckConstraint(
            "reason IN ('low_confidence', 'clarified', 'handoff', 'thumbs_down')",
            name=op.f("ck_kb_unanswered_reason"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_unanswered")),
    )
    for column in ("created_at", "language", "status"):
        op.create_index(op.f(f"ix_kb_unanswered_{column}"), "kb_unanswered", [column])

    op.create_table(
        "kb_faq_usage",
        sa.Column("faq_id", sa.String(length=64), nullable=False),
        sa.Column("answered_count", sa.Integer(), nullable=False),
        sa.Column("first_answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("faq_id", name=op.f("pk_kb_faq_usage")),
    )


def downgrade() -> None:
    op.drop_table("kb_faq_usage")
    for column in ("created_at", "language", "status"):
        op.drop_index(op.f(f"ix_kb_unanswered_{column}"), table_name="kb_unanswered")
    op.drop_table("kb_unanswered")
