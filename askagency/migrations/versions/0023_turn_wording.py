"""``analytics_turn.wording`` and the indexes that count a location's unanswered questions in SQL
(issue 22, item 6).

Under a location filter the top unanswered questions are the location's fallback and clarify
turns (the queue does not know where a question came from). A year of them for one location
(117,000 turns) was read into Python and grouped there: 2.3 s of a 2.4 s dashboard. The turns now
carry the wording key, as the queue does since 0014, set for fallback and clarify turns with text
(NULL otherwise); a partial index on them (covering on PostgreSQL: wording, time and text), and
the conversations' location index extended by the start time (covering too), let PostgreSQL
count them and pick the texts shown from the indexes alone (2.3 s -> 0.45 s on one core).

Stored turns get their wording here, in batches, from a frozen copy of the rule
(``knowledge_base.unanswered.wording_key`` at this revision; tests/unit/askagency/test_migrate.py
keeps them equal).

Revision ID: 0023_turn_wording
Revises: 0022_monthly_rollup
Create Date: 2026-12-06
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_turn_wording"
down_revision: str | Sequence[str] | None = "0022_monthly_rollup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUESTION_MAX_LEN = 500
BATCH = 5000
UNANSWERED = ("fallback", "clarify")
TURN_INDEX = "ix_analytics_turn_unanswered"
LOCATION_INDEX = "ix_analytics_conversation_location"
LOCATION_STARTED_INDEX = "ix_analytics_conversation_location_started"
_SPACES = re.compile(r"\s+")

_turns = sa.table(
    "analytics_turn",
    sa.column("id", sa.Integer()),
    sa.column("outcome", sa.String()),
    sa.column("text", sa.Text()),
    sa.column("wording", sa.String()),
)


def _wording_key(text: str) -> str:
    """knowledge_base.unanswered.wording_key as of this revision."""
    return _SPACES.sub(" ", text.casefold()).strip().rstrip("?!. ")[:QUESTION_MAX_LEN]


def _backfill(connection: sa.Connection) -> None:
    """Key the stored fallback and clarify turns in id order, BATCH per round trip (keyset
    paging: memory stays flat on a table of millions)."""
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(_turns.c.id, _turns.c.text)
            .where(
                _turns.c.id > last_id,
                _turns.c.outcome.in_(UNANSWERED),
                _turns.c.text.is_not(None),
            )
            .order_by(_turns.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            _turns.update().where(_turns.c.id == sa.bindparam("row_id")),
            [{"row_id": row_id, "wording": _wording_key(text)} for row_id, text in rows],
        )
        last_id = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("analytics_turn") as batch:
        batch.add_column(sa.Column("wording", sa.String(length=QUESTION_MAX_LEN), nullable=True))
    _backfill(op.get_bind())
    op.create_index(
        TURN_INDEX,
        "analytics_turn",
        ["conversation_id"],
        postgresql_where=sa.text("wording IS NOT NULL"),
        postgresql_include=["wording", "started_at", "text"],
        sqlite_where=sa.text("wording IS NOT NULL"),
    )
    op.drop_index(LOCATION_INDEX, table_name="analytics_conversation")
    op.create_index(
        LOCATION_STARTED_INDEX,
        "analytics_conversation",
        ["location", "started_at"],
        postgresql_include=["id", "channel", "language"],
    )


def downgrade() -> None:
    op.drop_index(LOCATION_STARTED_INDEX, table_name="analytics_conversation")
    op.create_index(LOCATION_INDEX, "analytics_conversation", ["location"])
    op.drop_index(TURN_INDEX, table_name="analytics_turn")
    with op.batch_alter_table("analytics_turn") as batch:
        batch.drop_column("wording")
