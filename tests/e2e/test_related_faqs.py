"""Related FAQs end to end (issue 21, item 2), through Rasa's REST webhook, the action server and
the sample KB's index: an answer carries related questions as buttons, pressing one answers it
(``via: related``) without another search, and the analytics consumer counts the offer and the
click from Rasa's broker events alone."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from analytics.dashboard import compute_dashboard
from analytics.metrics import Assumptions
from askagency import bot_messages as msg
from askagency.db import make_engine
from askagency.launcher import Stack
from askagency.migrate import upgrade
from askagency.paths import embedded_database_url
from tests.e2e.test_metrics import broker_rows, run_consumer_once, today_filter, write_broker
from tests.stack import RestClient

pytestmark = pytest.mark.e2e

LAPTOP = "electronics-laptop-carry-on"


def test_an_answer_offers_related_questions_and_a_press_is_answered_and_counted(
    stack: Stack, rest: RestClient, tmp_path: Path
) -> None:
    sender = f"related-{uuid.uuid4().hex[:10]}"
    [answer] = rest.send(sender, "can I bring my laptop in my carry-on")
    custom = answer["custom"]
    assert custom["type"] == msg.MessageType.FAQ_ANSWER and custom["faq_id"] == LAPTOP
    offered = custom["related"]
    assert 1 <= len(offered) <= 3 and LAPTOP not in offered
    assert [b["payload"] for b in answer["buttons"]] == [
        f'/{msg.INTENT_CHOOSE_FAQ}{{"faq_id":"{faq_id}"}}' for faq_id in offered
    ]

    [clicked] = rest.send(sender, answer["buttons"][0]["payload"])
    chosen = clicked["custom"]
    assert chosen["type"] == msg.MessageType.FAQ_ANSWER, chosen
    assert chosen["faq_id"] == offered[0]
    assert chosen["via"] == msg.VIA_RELATED and chosen["from_faq"] == LAPTOP

    # The analytics consumer, on this conversation's broker rows only, counts both.
    data_dir = tmp_path / "isolated"
    data_dir.mkdir()
    url = embedded_database_url(data_dir)
    upgrade(url)
    write_broker(data_dir / "rasa_events.db", broker_rows(stack.cfg.data_dir, [sender]))
    run_consumer_once(data_dir)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            related = compute_dashboard(session, today_filter(), Assumptions(6.0, 37.5)).related
    finally:
        engine.dispose()
    assert related.clicks == 1
    assert related.offers == 1 + bool(chosen.get("related"))
    assert [(p.from_faq, p.to_faq, p.clicks) for p in related.top_pairs] == [
        (LAPTOP, offered[0], 1)
    ]
