"""``handoff_ticket.notified_at`` (issue 21, item 3): when the on-duty list was e-mailed about a
new ticket. Tickets that exist at the upgrade count as notified, so turning the e-mail on does not
send one for every old ticket.

Revision ID: 0017_ticket_notified
Revises: 0016_handoff_index_covering
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_ticket_notified"
down_revision: str | Sequence[str] | None = "0016_handoff_index_covering"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("handoff_ticket") as batch:
        batch.add_column(sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE handoff_ticket SET notified_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("handoff_ticket") as batch:
        batch.drop_column("notified_at")
