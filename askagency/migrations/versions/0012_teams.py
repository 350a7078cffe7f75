"""Teams of staff (issue 22, item 5): ``console_user.team``, so supervisors read handoff
figures per team as well as per agent (analytics.metrics by_team).

Revision ID: 0012_teams
Revises: 0011_report_delivery
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_teams"
down_revision: str | Sequence[str] | None = "0011_report_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("console_user") as batch:
        batch.add_column(sa.Column("team", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("console_user") as batch:
        batch.drop_column("team")
