"""Console security (issue 17): per-(account, address) login failures; the client key of a ticket.

Revision ID: 0007_console_security
Revises: 0006_opt_out
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_console_security"
down_revision: str | Sequence[str] | None = "0006_opt_out"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_login_failure",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", "address_hash", name=op.f("pk_console_login_failure")),
    )
    op.create_index(
        op.f("ix_console_login_failure_last_failure_at"),
        "console_login_failure",
        ["last_failure_at"],
        unique=False,
    )
    with op.batch_alter_table("handoff_ticket") as batch:
        batch.add_column(sa.Column("client_key", sa.String(length=64), nullable=True))
        batch.create_index(batch.f("ix_handoff_ticket_client_key"), ["client_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("handoff_ticket") as batch:
        batch.drop_index(batch.f("ix_handoff_ticket_client_key"))
        batch.drop_column("client_key")
    op.drop_index(
        op.f("ix_console_login_failure_last_failure_at"), table_name="console_login_failure"
    )
    op.drop_table("console_login_failure")
