"""The Locations page in Chromium: an editor adds a location through the form and sees it in
the table, an alias clash is shown and stores nothing, edit and delete work, and the page passes
axe (WCAG 2.1 AA, no serious violations).

A real console process serves a fresh data directory (no Rasa needed), as in test_dashboard.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import PageFactory
from tests.browser.console_process import standalone_console
from tests.browser.widget import describe, run_axe, serious

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from sqlalchemy.orm import Session

    from askagency.staff import Role
    from console.auth import create_user
    from knowledge_base.locations import store
    from knowledge_base.locations.store import LocationIn

    data_dir = tmp_path_factory.mktemp("locations") / "data"
    data_dir.mkdir()

    def seed_data(session: Session) -> None:
        create_user(session, "editor", PASSWORD, Role.EDITOR)
        store.save(
            session,
            LocationIn(code="ORD", name="Chicago O'Hare International Airport", aliases=["O'Hare"]),
            "seed",
        )

    with standalone_console(data_dir, seed_data) as url:
        yield url


def open_locations(page: Any, base: str) -> None:
    page.goto(f"{base}/console/login?next=/console/kb/locations")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill(PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/kb/locations")


def row(page: Any, code: str) -> Any:
    return page.locator(f"#locations-table tbody tr[data-code='{code}']")


def test_editor_adds_edits_and_deletes_a_location(pages: PageFactory, console_url: str) -> None:
    page = pages.page()
    open_locations(page, console_url)
    assert row(page, "ORD").count() == 1

    page.get_by_label("Code", exact=False).fill("den")
    page.get_by_label("Name", exact=True).fill("Denver International Airport")
    page.get_by_label("Aliases", exact=False).fill("Denver airport\naeropuerto de Denver, DIA")
    page.get_by_role("button", name="Save location").click()
    row(page, "DEN").wait_for()
    assert "Added DEN" in page.inner_text("#locations-message")
    cells = row(page, "DEN").inner_text()
    assert "Denver International Airport" in cells
    assert "Denver airport · aeropuerto de Denver · DIA" in cells and "editor" in cells

    # An alias another location has: the message names it, nothing is stored.
    page.get_by_label("Code", exact=False).fill("MDW")
    page.get_by_label("Name", exact=True).fill("Chicago Midway")
    page.get_by_label("Aliases", exact=False).fill("O'Hare")
    page.get_by_role("button", name="Save location").click()
    message = page.locator("#locations-message.error")
    message.wait_for()
    assert "already names ORD" in message.inner_text()
    assert row(page, "MDW").count() == 0

    # Edit fills the form; saving replaces the location.
    page.get_by_role("button", name="Edit DEN").click()
    assert page.get_by_label("Name", exact=True).input_value() == "Denver International Airport"
    page.get_by_label("Active", exact=False).uncheck()
    page.get_by_role("button", name="Save location").click()
    page.locator("#locations-message", has_text="Saved DEN").wait_for()
    assert "inactive" in row(page, "DEN").inner_text()

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete DEN").click()
    page.locator("#locations-message", has_text="Deleted DEN").wait_for()
    assert row(page, "DEN").count() == 0 and row(page, "ORD").count() == 1


def test_locations_page_is_accessible(pages: PageFactory, console_url: str) -> None:
    # axe is injected as an inline script, which the console's CSP rightly forbids.
    page = pages.page(bypass_csp=True)
    open_locations(page, console_url)
    page.get_by_role("button", name="Edit ORD").click()
    violations = run_axe(page)
    assert serious(violations) == [], describe(violations)
