"""``kb_faq.kind``: an entry is an answer (the default) or out-of-scope examples (issue 20).

Out-of-scope entries hold questions the service does not answer (airline bookings, passports,
chit-chat, ...) as their variants: a question they match best is handed to a person instead of
answered with the nearest FAQ (knowledge_base/retriever.py). Stored FAQs become answers.

Revision ID: 0024_faq_kind
Revises: 0023_turn_wording
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_faq_kind"
down_revision: str | Sequence[str] | None = "0023_turn_wording"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of knowledge_base.models.FaqKind at this revision.
KINDS = ("answer", "out_of_scope")


def upgrade() -> None:
    with op.batch_alter_table("kb_faq") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), server_default=KINDS[0], nullable=False)
        )
        batch.create_check_constraint(
            op.f("ck_kb_faq_kind"), "kind IN (" + ", ".join(f"'{kind}'" for kind in KINDS) + ")"
        )


def downgrade() -> None:
    with op.batch_alter_table("kb_faq") as batch:
        batch.drop_constraint(op.f("ck_kb_faq_kind"), type_="check")
        batch.drop_column("kind")
