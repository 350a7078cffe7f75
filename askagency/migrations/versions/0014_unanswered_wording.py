"""The unanswered queue stores each question's wording key, so top unanswered questions are one
SQL GROUP BY (a year of AskTSA volume read into Python took ~8 s).

Stored questions get their wording here, in batches, from the same rule as
``knowledge_base.unanswered.wording_key``. The rule is copied (``_wording_key``) because the
foundation package imports no feature package and a migration must not change meaning when
application code changes later; tests/unit/askagency/test_migrate.py keeps the two equal.

Revision ID: 0014_unanswered_wording
Revises: 0013_daily_rollup
Create Date: 2026-12-09
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_unanswered_wording"
down_revision: str | Sequence[str] | None = "0013_daily_rollup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUESTION_MAX_LEN = 500
BATCH = 5000
INDEX = "ix_kb_unanswered_created_at_wording"
_SPACES = re.compile(r"\s+")

_queue = sa.table(
    "kb_unanswered",
    sa.column("id", sa.Integer()),
    sa.column("text", sa.String()),
    sa.column("wording", sa.String()),
)


def _wording_key(text: str) -> str:
    """knowledge_base.unanswered.wording_key as of this revision."""
    return _SPACES.sub(" ", text.casefold()).strip().rstrip("?!. ")[:QUESTION_MAX_LEN]


def _backfill(connection: sa.Connection) -> None:
    """Key the stored rows in id order, BATCH rows per round trip (keyset paging, so memory
    stays flat on a table of millions)."""
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(_queue.c.id, _queue.c.text)
            .where(_queue.c.id > last_id)
            .order_by(_queue.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            _queue.update().where(_queue.c.id == sa.bindparam("row_id")),
            [{"row_id": row_id, "wording": _wording_key(text or "")} for row_id, text in rows],
        )
        last_id = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("kb_unanswered") as batch:
        batch.add_column(sa.Column("wording", sa.String(length=QUESTION_MAX_LEN), nullable=True))
    _backfill(op.get_bind())
    with op.batch_alter_table("kb_unanswered") as batch:
        batch.alter_column(
            "wording", existing_type=sa.String(length=QUESTION_MAX_LEN), nullable=False
        )
        batch.create_index(INDEX, ["created_at", "wording"])


def downgrade() -> None:
    with op.batch_alter_table("kb_unanswered") as batch:
        batch.drop_index(INDEX)
        batch.drop_column("wording")
