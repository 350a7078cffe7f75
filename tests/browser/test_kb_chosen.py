"""The console's Unanswered page in Chromium shows which FAQ citizens chose for a group of
questions (issue 20: a citizen pressed it in the bot's "Did you mean ...?" list,
knowledge_base.unanswered.record_choice), and its "Add as variant" button files the wording
there: the group closes and the FAQ holds the citizens' words. The page passes axe (WCAG 2.1
AA, no serious violations) with the line shown.

A real console process serves a fresh data directory (no Rasa needed), as in
test_kb_related.py; the full loop through Rasa is tests/e2e/test_kb_console.py's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import PageFactory
from tests.browser.console_process import standalone_console
from tests.browser.widget import describe, run_axe, serious

PASSWORD = "correct horse battery"
QUESTION = "gel or liquid in my bag"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from sqlalchemy.orm import Session

    from askagency.staff import Role
    from console.auth import create_user
    from knowledge_base import store
    from knowledge_base.store import FaqInput
    from knowledge_base.unanswered import record_choice, record_unanswered

    data_dir = tmp_path_factory.mktemp("chosen") / "data"
    data_dir.mkdir()

    def seed_data(session: Session) -> None:
        create_user(session, "editor", PASSWORD, Role.EDITOR)
        for faq_id, question in (("liquids", "Can I bring liquids?"), ("gels", "Are gels ok?")):
            data = FaqInput(
                id=faq_id, language="en", category="liquids", question=question, answer="See."
            )
            store.create_faq(session, data, "seed")
        for _ in range(2):
            record_unanswered(session, QUESTION, "clarified", "en", top_faq_id="gels")
        assert record_choice(session, QUESTION, "en", "liquids") is not None

    with standalone_console(data_dir, seed_data) as url:
        yield url, data_dir


def test_the_faq_citizens_chose_is_shown_and_takes_the_wording(
    pages: PageFactory, console: tuple[str, Path]
) -> None:
    base, data_dir = console
    page = pages.page(bypass_csp=True)  # axe is injected inline; the console's CSP forbids that
    page.goto(f"{base}/console/login?next=/console/kb/unanswered")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name=re.compile("log in", re.I)).click()
    page.wait_for_url("**/console/kb/unanswered")
    cluster = page.locator("article.cluster", has_text=QUESTION)
    cluster.wait_for(timeout=60_000)
    chosen = cluster.locator(".chosen-by")
    assert "Citizens then chose liquids (1×)" in chosen.inner_text()
    assert chosen.get_by_role("link", name="liquids").count() == 1
    assert "No close FAQ" not in cluster.inner_text()  # citizens chose one
    violations = serious(run_axe(page))
    assert violations == [], describe(violations)

    chosen.get_by_role("button", name="Add as variant of liquids").click()
    page.locator("#unanswered-message", has_text="2 questions closed").wait_for(timeout=30_000)
    assert page.locator("article.cluster", has_text=QUESTION).count() == 0

    from sqlalchemy.orm import Session

    from askagency.config import embedded_database_url
    from askagency.db import make_engine
    from knowledge_base.store import get_faq

    engine = make_engine(embedded_database_url(data_dir))
    try:
        with Session(engine) as session:
            variants = [v.text for v in get_faq(session, "liquids").variants]
    finally:
        engine.dispose()
    assert QUESTION in variants
