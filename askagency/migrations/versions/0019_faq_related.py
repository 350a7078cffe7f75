"""Related FAQs (issue 21, item 2): the FAQs staff chose to offer after an answer, in order,
and what analytics counts of them.

Both ends of ``kb_faq_related`` are foreign keys with ON DELETE CASCADE, so deleting an FAQ
removes every link to and from it; the unique pair keeps a list from naming the same FAQ twice.
``analytics_turn`` gets the related FAQs offered with a turn's answer and the FAQ whose related
button the turn pressed (stored turns had neither: 0 and NULL); a roll-up label grows to hold a
click's "<from>><to>" pair of FAQ ids.

Revision ID: 0019_faq_related
Revises: 0018_attachments
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_faq_related"
down_revision: str | Sequence[str] | None = "0018_attachments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LABEL = 64
PAIR_LABEL = 2 * LABEL + 1


def upgrade() -> None:
    op.create_table(
        "kb_faq_related",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("faq_id", sa.String(length=64), nullable=False),
        sa.Column("related_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["faq_id"],
            ["kb_faq.id"],
            name=op.f("fk_kb_faq_related_faq_id_kb_faq"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["related_id"],
            ["kb_faq.id"],
            name=op.f("fk_kb_faq_related_related_id_kb_faq"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_faq_related")),
        sa.UniqueConstraint("faq_id", "related_id", name="uq_kb_faq_related_pair"),
    )
    op.create_index(op.f("ix_kb_faq_related_faq_id"), "kb_faq_related", ["faq_id"])
    op.create_index(op.f("ix_kb_faq_related_related_id"), "kb_faq_related", ["related_id"])
    with op.batch_alter_table("analytics_turn") as batch:
        batch.add_column(
            sa.Column("related_offered", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("related_from", sa.String(length=LABEL), nullable=True))
    with op.batch_alter_table("analytics_daily_count") as batch:
        batch.alter_column(
            "label", type_=sa.String(length=PAIR_LABEL), existing_type=sa.String(length=LABEL)
        )


def downgrade() -> None:
    # Click pairs do not fit the old label: they go (a roll-up rebuild recounts the rest).
    op.execute("DELETE FROM analytics_daily_count WHERE kind IN ('related_offer', 'related_click')")
    with op.batch_alter_table("analytics_daily_count") as batch:
        batch.alter_column(
            "label", type_=sa.String(length=LABEL), existing_type=sa.String(length=PAIR_LABEL)
        )
    with op.batch_alter_table("analytics_turn") as batch:
        batch.drop_column("related_from")
        batch.drop_column("related_offered")
    op.drop_index(op.f("ix_kb_faq_related_related_id"), table_name="kb_faq_related")
    op.drop_index(op.f("ix_kb_faq_related_faq_id"), table_name="kb_faq_related")
    op.drop_table("kb_faq_related")
