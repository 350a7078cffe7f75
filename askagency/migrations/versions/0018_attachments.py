"""Photos and files in conversations (issue 21, item 1): the ``attachment`` table (bytes and
thumbnail in the row, so every replica serves them and privacy covers them), and ``attachment``
as a ticket reason (a citizen's photo opens a ticket: only a person can look at it).

The reason list is spelled out here, not read from handoff.models, so this revision means the
same thing whatever the application code says later.

Revision ID: 0018_attachments
Revises: 0017_ticket_notified
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_attachments"
down_revision: str | Sequence[str] | None = "0017_ticket_notified"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
REASON_CHECK = "ck_handoff_ticket_reason"
_REASONS = "'low_confidence', 'requested', 'frustration', 'repeated_fallback', 'negative_feedback'"
REASONS_BEFORE = f"reason IN ({_REASONS})"
REASONS_AFTER = f"reason IN ({_REASONS}, 'attachment')"


def _sqlite_foreign_keys(enabled: bool) -> None:
    """Foreign-key enforcement on SQLite (a no-op elsewhere). It can only change outside a
    transaction, hence the autocommit block (which commits the revisions before this one)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.get_context().autocommit_block():
        op.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def _replace_reason_check(condition: str) -> None:
    """Swap the reason CHECK constraint: ALTER TABLE on PostgreSQL; on SQLite, batch mode copies
    the table with the new constraint (the other named constraints are reflected and kept).

    The copy drops the old ``handoff_ticket``; with foreign keys enforced (askagency.db turns
    them on for every connection) that drop is a DELETE which cascades to every ticket's
    messages and notes. Enforcement is off while the table is copied, and the copy keeps the
    ids, so every reference is valid again afterwards (tests/unit/askagency/test_migrate.py)."""
    _sqlite_foreign_keys(False)
    try:
        with op.batch_alter_table("handoff_ticket") as batch:
            batch.drop_constraint(op.f(REASON_CHECK), type_="check")
            batch.create_check_constraint(op.f(REASON_CHECK), condition)
    finally:
        _sqlite_foreign_keys(True)


def upgrade() -> None:
    op.create_table(
        "attachment",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("mime", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint(
            "direction IN ('citizen', 'agent')", name=op.f("ck_attachment_direction")
        ),
        sa.CheckConstraint("kind IN ('image', 'document')", name=op.f("ck_attachment_kind")),
        sa.ForeignKeyConstraint(
            ["uploaded_by"],
            ["console_user.id"],
            name=op.f("fk_attachment_uploaded_by_console_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["handoff_message.id"],
            name=op.f("fk_attachment_message_id_handoff_message"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
    )
    for column in ("conversation_id", "created_at", "message_id"):
        op.create_index(op.f(f"ix_attachment_{column}"), "attachment", [column])
    _replace_reason_check(REASONS_AFTER)


def downgrade() -> None:
    # Tickets opened for an attachment would violate the old constraint: they become
    # "requested" (the citizen asked for a person by sending the file).
    op.execute("UPDATE handoff_ticket SET reason = 'requested' WHERE reason = 'attachment'")
    _replace_reason_check(REASONS_BEFORE)
    for column in ("message_id", "created_at", "conversation_id"):
        op.drop_index(op.f(f"ix_attachment_{column}"), table_name="attachment")
    op.drop_table("attachment")
