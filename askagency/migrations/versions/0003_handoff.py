"""Human handoff: tickets, ticket messages (reply outbox), internal notes, agent presence.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "handoff_ticket",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("open_marker", sa.String(length=255), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("assigned_agent_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("first_agent_reply_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("after_hours", sa.Boolean(), nullable=False),
        sa.Column("expected_reply_at", TS, nullable=True),
        sa.Column("trigger_text", sa.Text(), nullable=False),
        sa.Column("transcript_url", sa.String(length=2000), nullable=False),
        sa.CheckConstraint(
            "reason IN ('low_confidence', 'requested', 'frustration', 'repeated_fallback', "
            "'negative_feedback')",
            name=op.f("ck_handoff_ticket_reason"),
        ),
        sa.CheckConstraint(
            "priority IN ('normal', 'high')", name=op.f("ck_handoff_ticket_priority")
        ),
        sa.CheckConstraint(
            "status IN ('waiting', 'assigned', 'closed_resolved', 'closed_unresolved')",
            name=op.f("ck_handoff_ticket_status"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_agent_id"],
            ["console_user.id"],
            name=op.f("fk_handoff_ticket_assigned_agent_id_console_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_ticket")),
        sa.UniqueConstraint("open_marker", name=op.f("uq_handoff_ticket_open_marker")),
    )
    for column in ("conversation_id", "status", "assigned_agent_id", "created_at"):
        op.create_index(op.f(f"ix_handoff_ticket_{column}"), "handoff_ticket", [column])

    op.create_table(
        "handoff_message",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivery_status", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.CheckConstraint(
            "direction IN ('citizen', 'agent', 'system')",
            name=op.f("ck_handoff_message_direction"),
        ),
        sa.CheckConstraint("kind IN ('text', 'close')", name=op.f("ck_handoff_message_kind")),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["handoff_ticket.id"],
            name=op.f("fk_handoff_message_ticket_id_handoff_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_message")),
    )
    op.create_index(op.f("ix_handoff_message_ticket_id"), "handoff_message", ["ticket_id"])
    op.create_index(
        "ix_handoff_message_outbox", "handoff_message", ["delivery_status", "ticket_id", "id"]
    )

    op.create_table(
        "handoff_note",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["console_user.id"],
            name=op.f("fk_handoff_note_author_id_console_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["handoff_ticket.id"],
            name=op.f("fk_handoff_note_ticket_id_handoff_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_note")),
    )
    op.create_index(op.f("ix_handoff_note_ticket_id"), "handoff_note", ["ticket_id"])

    op.create_table(
        "handoff_presence",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["console_user.id"],
            name=op.f("fk_handoff_presence_user_id_console_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_handoff_presence")),
    )
    op.create_index(op.f("ix_handoff_presence_last_seen_at"), "handoff_presence", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_handoff_presence_last_seen_at"), table_name="handoff_presence")
    op.drop_table("handoff_presence")
    op.drop_index(op.f("ix_handoff_note_ticket_id"), table_name="handoff_note")
    op.drop_table("handoff_note")
    op.drop_index("ix_handoff_message_outbox", table_name="handoff_message")
    op.drop_index(op.f("ix_handoff_message_ticket_id"), table_name="handoff_message")
    op.drop_table("handoff_message")
    for column in ("created_at", "assigned_agent_id", "status", "conversation_id"):
        op.drop_index(op.f(f"ix_handoff_ticket_{column}"), table_name="handoff_ticket")
    op.drop_table("handoff_ticket")
