"""The FAQ editor's "Related questions" field in Chromium (issue 21, item 2): an editor finds
questions by their words (same language only), adds, reorders and removes them, is stopped at 3
and at the FAQ itself with a clear message, saves, and the list is stored in that order. The
editor passes axe (WCAG 2.1 AA, no serious violations) with the field filled in.

A real console process serves a fresh data directory (no Rasa needed), as in
test_kb_locations.py; it has no index, so the editor says the suggestions need a publish.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import PageFactory
from tests.browser.console_process import standalone_console
from tests.browser.widget import describe, run_axe, serious

PASSWORD = "correct horse battery"
FAQS = {
    "liquids": "Can I bring liquids in my carry-on?",
    "liquid-medicine": "Can I bring liquid medicine?",
    "liquid-baby-food": "Can I bring baby food and liquids for my baby?",
    "liquid-cosmetics": "Are liquid cosmetics limited?",
    "gel-packs": "Are frozen gel packs allowed?",
    "liquidos": "¿Puedo llevar líquidos?",
}


@pytest.fixture(scope="module")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from sqlalchemy.orm import Session

    from askagency.staff import Role
    from console.auth import create_user
    from knowledge_base import store
    from knowledge_base.store import FaqInput

    data_dir = tmp_path_factory.mktemp("related") / "data"
    data_dir.mkdir()

    def seed_data(session: Session) -> None:
        create_user(session, "editor", PASSWORD, Role.EDITOR)
        for faq_id, question in FAQS.items():
            data = FaqInput(
                id=faq_id,
                language="es" if faq_id == "liquidos" else "en",
                category="liquids",
                question=question,
                answer="See the rules.",
            )
            store.create_faq(session, data, "seed")

    with standalone_console(data_dir, seed_data) as url:
        yield url


def open_editor(page: Any, base: str, faq_id: str) -> None:
    page.goto(f"{base}/console/login?next=/console/kb/faq/{faq_id}")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill(PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/kb/faq/{faq_id}")


def chosen(page: Any) -> list[str]:
    return page.locator("#faq-related li").evaluate_all("items => items.map(i => i.dataset.faqId)")


def add(page: Any, words: str, faq_id: str) -> None:
    page.get_by_label("Find a question to add", exact=False).fill(words)
    button = page.get_by_role(
        "button", name=f"Add related question (search result): {FAQS[faq_id]}"
    )
    button.click()


def test_editor_picks_orders_and_saves_related_questions(
    pages: PageFactory, console_url: str
) -> None:
    page = pages.page(bypass_csp=True)  # axe is injected inline; the console's CSP forbids that
    open_editor(page, console_url, "liquids")
    page.locator("#related-suggested", has_text="publish it").wait_for()

    # Only questions of the FAQ's language are found; the FAQ itself is never offered.
    page.get_by_label("Find a question to add", exact=False).fill("liquid")
    page.locator("#related-results li").first.wait_for()
    found = page.inner_text("#related-results")
    assert "medicine" in found and "líquidos" not in found and FAQS["liquids"] not in found

    add(page, "medicine", "liquid-medicine")
    add(page, "baby", "liquid-baby-food")
    add(page, "cosmetics", "liquid-cosmetics")
    assert chosen(page) == ["liquid-medicine", "liquid-baby-food", "liquid-cosmetics"]

    # A fourth is refused with a clear message.
    page.get_by_label("Find a question to add", exact=False).fill("medicine")
    page.get_by_role(
        "button", name=f"Add related question (search result): {FAQS['liquid-medicine']}"
    ).click()
    assert "already in the list" in page.inner_text("#err-related")

    violations = run_axe(page)
    assert serious(violations) == [], describe(violations)

    page.get_by_role(
        "button", name=f"Move related question 3 up: {FAQS['liquid-cosmetics']}"
    ).click()
    page.get_by_role("button", name=f"Remove related question 1: {FAQS['liquid-medicine']}").click()
    assert chosen(page) == ["liquid-cosmetics", "liquid-baby-food"]

    page.get_by_role("button", name="Save", exact=True).click()
    page.locator("#faq-message.ok").wait_for()
    stored = page.evaluate("fetch('/api/kb/faqs/liquids').then(r => r.json())")
    assert stored["related"] == ["liquid-cosmetics", "liquid-baby-food"]

    page.reload()
    assert chosen(page) == ["liquid-cosmetics", "liquid-baby-food"]


def test_a_fourth_related_question_is_refused(pages: PageFactory, console_url: str) -> None:
    page = pages.page()
    open_editor(page, console_url, "liquid-cosmetics")
    add(page, "medicine", "liquid-medicine")
    add(page, "baby", "liquid-baby-food")
    add(page, "carry-on", "liquids")
    add(page, "gel packs", "gel-packs")
    assert "At most 3 related questions" in page.inner_text("#err-related")
    assert chosen(page) == ["liquid-medicine", "liquid-baby-food", "liquids"]
