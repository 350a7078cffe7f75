"""``out_of_scope`` as a reason of the unanswered queue (issue 20): a question an out-of-scope
entry took is handed off by design; the queue keeps it apart from the questions that need an
answer, with the entry in ``top_faq_id``.

The reason list is spelled out here, not read from knowledge_base.unanswered, so this revision
means the same thing whatever the application code says later.

Revision ID: 0025_unanswered_out_of_scope
Revises: 0024_faq_kind
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0025_unanswered_out_of_scope"
down_revision: str | Sequence[str] | None = "0024_faq_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASON_CHECK = "ck_kb_unanswered_reason"
_REASONS = "'low_confidence', 'clarified', 'handoff', 'thumbs_down'"
REASONS_BEFORE = f"reason IN ({_REASONS})"
REASONS_AFTER = f"reason IN ({_REASONS}, 'out_of_scope')"


def _replace_reason_check(condition: str) -> None:
    """Swap the reason CHECK constraint: ALTER TABLE on PostgreSQL; on SQLite, batch mode copies
    the table with the new constraint (no other table refers to ``kb_unanswered``)."""
    with op.batch_alter_table("kb_unanswered") as batch:
        batch.drop_constraint(op.f(REASON_CHECK), type_="check")
        batch.create_check_constraint(op.f(REASON_CHECK), condition)


def upgrade() -> None:
    _replace_reason_check(REASONS_AFTER)


def downgrade() -> None:
    # Before this revision such questions were queued as low-confidence ones.
    op.execute("UPDATE kb_unanswered SET reason = 'low_confidence' WHERE reason = 'out_of_scope'")
    _replace_reason_check(REASONS_BEFORE)
