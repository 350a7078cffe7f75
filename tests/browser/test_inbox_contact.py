"""The contact a citizen left for a reply, on the ticket page in Chromium (issue 21, item 3): shown
as text with a mailto: link from the server; a value tampered with in the database (markup) is
not shown at all and runs nothing; the page keeps 0 serious axe violations with it.

A real console process on a seeded data directory (tests/browser/console_process.py), as in
test_inbox_attachments.py; no Rasa is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from askagency.ports import free_port
from askagency.staff import Role
from console.auth import create_user
from handoff import service
from tests.browser.conftest import PageFactory
from tests.browser.console_process import log_in_to_inbox, standalone_console
from tests.browser.widget import describe, run_axe, serious

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "browser agent password"
XSS = '"><img src=x onerror=alert(1)>@x.org'


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, int]]:
    data_dir: Path = tmp_path_factory.mktemp("inbox-contact") / "data"
    data_dir.mkdir()
    ids: list[int] = []

    def seed(session: Session) -> None:
        create_user(session, "ivy", PASSWORD, Role.AGENT, "Ivy (Passenger Support)")
        for conversation in ("contact-1", "contact-2"):
            ids.append(
                service.open_ticket(
                    session, conversation_id=conversation, reason="requested", channel="socketio"
                ).ticket.id
            )
        service.add_citizen_message(session, "contact-1", "mail me: ana+100%@example.org")
        service.add_citizen_message(session, "contact-2", XSS)
        tampered = service.get_ticket(session, ids[1])
        assert tampered.contact is None  # markup is no e-mail address
        tampered.contact, tampered.contact_kind = XSS, "email"  # as if written behind our back

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASKAGENCY_RASA_URL", f"http://127.0.0.1:{free_port()}")
        with standalone_console(data_dir, seed) as url:
            yield url, ids[0], ids[1]


def test_the_agent_sees_the_contact_and_markup_runs_nothing(
    pages: PageFactory, console: tuple[str, int, int]
) -> None:
    base, with_contact, tampered = console
    page = pages.page()  # the console's own CSP stays on
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in_to_inbox(page, base, "ivy", PASSWORD)

    page.goto(f"{base}/console/inbox/{with_contact}")
    box = page.locator("#ticket-contact")
    box.wait_for(state="visible")
    assert "Contact left by the citizen" in box.inner_text()
    link = page.get_by_role("link", name="ana+100%@example.org")
    assert link.get_attribute("href") == "mailto:ana+100%25@example.org"

    page.goto(f"{base}/console/inbox/{tampered}")
    page.locator("#transcript li.citizen").first.wait_for()
    assert page.locator("#ticket-contact").is_hidden()
    assert page.locator("#ticket-contact-link").get_attribute("href") is None
    # The citizen's message itself is shown as text, never as markup.
    assert page.locator("#transcript li.citizen", has_text="onerror=alert(1)").count() == 1
    assert page.locator("#ticket img[src='x']").count() == 0
    assert dialogs == []


def test_the_ticket_with_a_contact_passes_axe(
    pages: PageFactory, console: tuple[str, int, int]
) -> None:
    base, with_contact, _ = console
    page = pages.page(bypass_csp=True)  # axe is injected as an inline script
    log_in_to_inbox(page, base, "ivy", PASSWORD)
    page.goto(f"{base}/console/inbox/{with_contact}")
    page.locator("#ticket-contact").wait_for(state="visible")
    violations = serious(run_axe(page))
    assert violations == [], describe(violations)
