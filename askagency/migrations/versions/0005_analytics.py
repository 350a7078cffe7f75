"""Analytics: stored Rasa events, derived turns and conversations, checkpoints, rejected events.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("sender_id", sa.String(length=255), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("intent", sa.String(length=128), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_event")),
        sa.UniqueConstraint("event_key", name=op.f("uq_analytics_event_event_key")),
    )
    op.create_index(
        "ix_analytics_event_sender_ts", "analytics_event", ["sender_id", "ts"], unique=False
    )
    op.create_table(
        "analytics_conversation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_key", sa.String(length=300), nullable=False),
        sa.Column("sender_id", sa.String(length=255), nullable=False),
        sa.Column("start_ts", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("user_messages", sa.Integer(), nullable=False),
        sa.Column("questions", sa.Integer(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("fallbacks", sa.Integer(), nullable=False),
        sa.Column("clarifies", sa.Integer(), nullable=False),
        sa.Column("handed_off", sa.Boolean(), nullable=False),
        sa.Column("handoff_reason", sa.String(length=64), nullable=True),
        sa.Column("handoff_after_hours", sa.Boolean(), nullable=True),
        sa.Column("ticket_id", sa.String(length=64), nullable=True),
        sa.Column("handoff_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_agent_reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_resolved", sa.Boolean(), nullable=True),
        sa.Column("feedback", sa.String(length=8), nullable=True),
        sa.Column("first_question", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_conversation")),
        sa.UniqueConstraint(
            "conversation_key", name=op.f("uq_analytics_conversation_conversation_key")
        ),
    )
    for column in ("sender_id", "started_at", "channel", "language", "ticket_id"):
        op.create_index(
            op.f(f"ix_analytics_conversation_{column}"),
            "analytics_conversation",
            [column],
            unique=False,
        )
    op.create_table(
        "analytics_turn",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("user_ts", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_ms", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=128), nullable=True),
        sa.Column("faq_id", sa.String(length=64), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["analytics_conversation.id"],
            name=op.f("fk_analytics_turn_conversation_id_analytics_conversation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_turn")),
    )
    for column in ("conversation_id", "started_at", "outcome", "faq_id"):
        op.create_index(
            op.f(f"ix_analytics_turn_{column}"), "analytics_turn", [column], unique=False
        )
    op.create_table(
        "analytics_checkpoint",
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("events_seen", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_analytics_checkpoint")),
    )
    op.create_table(
        "analytics_rejected_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("raw_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("position", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_rejected_event")),
        sa.UniqueConstraint("raw_key", name=op.f("uq_analytics_rejected_event_raw_key")),
    )


def downgrade() -> None:
    op.drop_table("analytics_rejected_event")
    op.drop_table("analytics_checkpoint")
    for column in ("conversation_id", "started_at", "outcome", "faq_id"):
        op.drop_index(op.f(f"ix_analytics_turn_{column}"), table_name="analytics_turn")
    op.drop_table("analytics_turn")
    for column in ("sender_id", "started_at", "channel", "language", "ticket_id"):
        op.drop_index(
            op.f(f"ix_analytics_conversation_{column}"), table_name="analytics_conversation"
        )
    op.drop_table("analytics_conversation")
    op.drop_index("ix_analytics_event_sender_ts", table_name="analytics_event")
    op.drop_table("analytics_event")
