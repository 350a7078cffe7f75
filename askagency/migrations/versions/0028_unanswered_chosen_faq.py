"""``kb_unanswered.chosen_faq_id``: the FAQ a citizen picked from the bot's options (a clarify
list, a handoff's suggestions) for a queued question (issue 20), shown to staff as the
citizens' own verdict on which FAQ the wording belongs to. NULL for every other question, and
for the questions queued before this revision.

Revision ID: 0028_unanswered_chosen_faq
Revises: 0027_unanswered_oos_index
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028_unanswered_chosen_faq"
down_revision: str | Sequence[str] | None = "0027_unanswered_oos_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID_MAX_LEN = 64  # knowledge_base.models.ID_MAX_LEN at this revision


def upgrade() -> None:
    # A nullable column: no table copy on SQLite, no rewrite on PostgreSQL.
    op.add_column(
        "kb_unanswered", sa.Column("chosen_faq_id", sa.String(length=ID_MAX_LEN), nullable=True)
    )


def downgrade() -> None:
    # kb_unanswered has no foreign keys either way, so SQLite's table copy needs no pragma.
    with op.batch_alter_table("kb_unanswered") as batch:
        batch.drop_column("chosen_faq_id")
