"""Related-FAQ offers and clicks on the dashboard (issue 21, item 2), counted from the bot's
events alone: an answer whose ``custom.related`` lists buttons is an offer, an answer with
``via: related`` is a click of (``from_faq`` -> ``faq_id``). The daily roll-ups count them
exactly like the rows (incremental = rebuild, roll-up dashboard = exact dashboard), and the CSV
export carries them."""

from __future__ import annotations

import json
import random
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.orm import Session

from analytics import rollup, tables
from analytics.dashboard import compute_dashboard
from analytics.ingest import ingest
from analytics.metrics import Assumptions, MetricFilter
from analytics.models import AnalyticsTurn
from askagency import bot_messages as msg
from askagency.config import Settings
from askagency.db import session_scope
from askagency.staff import Role
from console.auth import create_user
from knowledge_base import store
from knowledge_base.store import FaqInput
from tests.console_helpers import PASSWORD, login
from tests.services import migrated_pg_session
from tests.unit.analytics.test_rollup import (
    assert_same_dashboard,
    ingest_randomly,
    rebuilt_rows,
    roll_up_rows,
    rolled_up,
)
from tests.unit.analytics.test_scenario import DAY1, Conversation

PERIOD = MetricFilter(DAY1.date(), (DAY1 + timedelta(days=1)).date())


def answer(faq_id: str, related: list[str] = (), from_faq: str | None = None) -> dict[str, Any]:
    return msg.faq_answer(
        faq_id=faq_id,
        score=0.8,
        source_url=None,
        language="en",
        related=list(related),
        via=msg.VIA_RELATED if from_faq else None,
        from_faq=from_faq,
    )


def press(c: Conversation, faq_id: str) -> Conversation:
    return c.user(f'/choose_faq{{"faq_id":"{faq_id}"}}', msg.INTENT_CHOOSE_FAQ)


def related_events() -> list[dict[str, Any]]:
    """A: batteries offers liquids and knives; liquids is pressed (and offers batteries, which
    is pressed back). B: liquids offers, nothing pressed. C: knives, no offer (SMS). D, the
    next day on another channel: batteries -> liquids again."""
    a = Conversation("rel-a", DAY1 + timedelta(hours=9)).session_start()
    a.user("can I take a power bank", "ask_question").bot(
        30, answer("batteries", ["liquids", "knives"])
    )
    press(a, "liquids").bot(20, answer("liquids", ["batteries"], from_faq="batteries"))
    press(a, "batteries").bot(20, answer("batteries", ["liquids", "knives"], from_faq="liquids"))
    b = Conversation("rel-b", DAY1 + timedelta(hours=23, minutes=30)).session_start()
    b.user("shampoo on the plane?", "ask_question").bot(25, answer("liquids", ["batteries"]))
    c = Conversation("rel-c", DAY1 + timedelta(hours=11)).session_start()
    c.user("pocket knife", "ask_question", channel="sms").bot(40, answer("knives"))
    d = Conversation("rel-d", DAY1 + timedelta(days=1, hours=8)).session_start()
    d.user("power bank?", "ask_question", channel="socketio").bot(
        30, answer("batteries", ["liquids"])
    )
    press(d, "liquids").bot(20, answer("liquids", [], from_faq="batteries"))
    return [*a.events, *b.events, *c.events, *d.events]


@pytest.fixture
def seeded(db_session: Session) -> Session:
    for faq_id, question in (
        ("batteries", "Can I take spare batteries?"),
        ("liquids", "Can I bring liquids?"),
    ):
        data = {"id": faq_id, "language": "en", "category": "items", "question": question}
        store.create_faq(db_session, FaqInput(**data, answer="Yes."), "seed")
    ingest(db_session, [(str(i), e) for i, e in enumerate(related_events())], "test")
    db_session.commit()
    return db_session


def test_turns_store_the_offers_and_the_pressed_pair(seeded: Session) -> None:
    turns = seeded.query(AnalyticsTurn).order_by(AnalyticsTurn.user_ts).all()
    clicks = [(t.related_from, t.faq_id) for t in turns if t.related_from]
    assert clicks == [("batteries", "liquids"), ("liquids", "batteries"), ("batteries", "liquids")]
    assert [t.related_offered for t in turns if t.faq_id == "knives"] == [0]


def test_the_dashboard_counts_offers_clicks_and_the_top_pairs(seeded: Session) -> None:
    related = compute_dashboard(seeded, PERIOD, Assumptions(6.0, 37.5)).related
    assert (related.offers, related.clicks) == (5, 3)
    assert related.click_rate == pytest.approx(3 / 5)
    top = [(p.from_faq, p.to_faq, p.clicks) for p in related.top_pairs]
    assert top == [("batteries", "liquids", 2), ("liquids", "batteries", 1)]
    assert related.top_pairs[0].from_question == "Can I take spare batteries?"
    assert related.top_pairs[0].to_question == "Can I bring liquids?"
    sms = compute_dashboard(seeded, MetricFilter(PERIOD.start, PERIOD.end, channel="sms"), _a())
    assert (sms.related.offers, sms.related.clicks, sms.related.click_rate) == (0, 0, None)


def _a() -> Assumptions:
    return Assumptions(6.0, 37.5)


def test_the_csv_export_carries_the_figures_and_the_pairs(seeded: Session) -> None:
    board = compute_dashboard(seeded, PERIOD, _a())
    exported = tables.all_tables(board)
    assert exported["related_summary"].to_csv().splitlines() == [
        "offers,clicks,click_rate",
        "5,3,0.6",
    ]
    assert exported["related_pairs"].to_csv().splitlines()[:2] == [
        "from_faq,from_question,to_faq,to_question,clicks",
        "batteries,Can I take spare batteries?,liquids,Can I bring liquids?,2",
    ]
    assert json.loads(board.model_dump_json())["related"]["clicks"] == 3


@pytest.mark.parametrize("zone", ["UTC", "America/Denver"])
def test_the_roll_ups_count_them_exactly_like_the_rows(seeded: Session, zone: str) -> None:
    rollup.rebuild(seeded, zone)
    flt = MetricFilter(PERIOD.start, PERIOD.end, zone=zone)
    for each in (flt, MetricFilter(flt.start, flt.start, zone=zone)):
        assert_same_dashboard(compute_dashboard(seeded, each, _a()), rolled_up(seeded, each))
    assert rolled_up(seeded, flt).related.clicks == 3


@pytest.mark.parametrize("seed_value", [1, 2])
def test_incremental_roll_ups_equal_a_rebuild(db_session: Session, seed_value: int) -> None:
    rollup.rebuild(db_session, "UTC")
    db_session.commit()
    ingest_randomly(db_session, related_events(), random.Random(seed_value))
    incremental = roll_up_rows(db_session)
    assert any(row[4] == "related_click" for row in incremental[1])
    assert incremental == rebuilt_rows(db_session, "UTC")


@pytest.fixture
def pg_session() -> Iterator[Session]:
    """A fresh PostgreSQL schema migrated to head (skips, or fails under CI, without it)."""
    with migrated_pg_session("related") as session:
        yield session


def test_click_pairs_of_the_longest_ids_fit_the_roll_ups_on_postgresql(
    pg_session: Session,
) -> None:
    """PostgreSQL enforces the label's length: a pair of two 64-character FAQ ids fits."""
    longest_a, longest_b = "a" * 64, "b" * 64
    c = Conversation("rel-long", DAY1 + timedelta(hours=9)).session_start()
    c.user("question", "ask_question").bot(30, answer(longest_a, [longest_b]))
    press(c, longest_b).bot(20, answer(longest_b, [], from_faq=longest_a))
    rollup.rebuild(pg_session, "UTC")
    pg_session.commit()
    ingest_randomly(pg_session, [*c.events, *related_events()], random.Random(5))
    assert roll_up_rows(pg_session) == rebuilt_rows(pg_session, "UTC")
    board = rolled_up(pg_session, PERIOD)
    assert (longest_a, longest_b, 1) in [
        (p.from_faq, p.to_faq, p.clicks) for p in board.related.top_pairs
    ]
    assert_same_dashboard(compute_dashboard(pg_session, PERIOD, _a()), board)


@pytest.fixture
async def console(tmp_settings: Settings, db_url: str) -> AsyncIterator[TestClient]:
    """The real console app over HTTP, on the database :func:`seeded` filled."""
    from console.app import create_app

    with session_scope() as session:
        create_user(session, "viewer", PASSWORD, Role.VIEWER)
        for faq_id, question in (("batteries", "Can I take spare batteries?"),):
            data = {"id": faq_id, "language": "en", "category": "items", "question": question}
            store.create_faq(session, FaqInput(**data, answer="Yes."), "seed")
        ingest(session, [(str(i), e) for i, e in enumerate(related_events())], "test")
    async with TestClient(TestServer(create_app(tmp_settings))) as client:
        yield client


async def test_the_console_shows_and_exports_the_related_figures(console: TestClient) -> None:
    await login(console, "viewer")
    period = "from=2026-03-02&to=2026-03-03"
    html = await (await console.get(f"/console/dashboard?{period}")).text()
    figure = re.sub(r"<[^>]+>|\s+", " ", html.split('id="related-figure">')[1].split("</p>")[0])
    assert " ".join(figure.split()) == (
        "3 related questions pressed after 5 answers offering them (60.0%)."
    )
    assert 'data-table="related_pairs"' in html and "Can I take spare batteries?" in html
    csv = await (await console.get(f"/console/dashboard/export/related_pairs.csv?{period}")).text()
    assert csv.splitlines()[1].startswith("batteries,Can I take spare batteries?,liquids,,2")
    api = await (await console.get(f"/api/metrics?{period}")).json()
    assert (api["related"]["offers"], api["related"]["clicks"]) == (5, 3)
