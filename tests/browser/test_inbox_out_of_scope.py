"""The out-of-scope entry that took a citizen's question, on the ticket page in Chromium (issue
20): the agent sees which entry and the note the agency wrote on it for staff, as text (markup
in the note runs nothing), with a link to the entry; a ticket without one shows nothing; the page
keeps 0 serious axe violations with it.

A real console process on a seeded data directory (tests/browser/console_process.py), as in
test_inbox_contact.py; no Rasa is needed.
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
from knowledge_base import store
from knowledge_base.store import FaqInput
from tests.browser.conftest import PageFactory
from tests.browser.console_process import log_in_to_inbox, standalone_console
from tests.browser.widget import describe, run_axe, serious

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "browser agent password"
ENTRY = "out-of-scope-bookings"
NOTE = "Send them to the airline's website. <img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, int]]:
    data_dir: Path = tmp_path_factory.mktemp("inbox-out-of-scope") / "data"
    data_dir.mkdir()
    ids: list[int] = []

    def seed(session: Session) -> None:
        create_user(session, "ivy", PASSWORD, Role.AGENT, "Ivy (Passenger Support)")
        store.create_faq(
            session,
            FaqInput(
                id=ENTRY,
                language="en",
                category="Out of scope",
                question="cancel my flight",
                answer=NOTE,
                kind="out_of_scope",
                status="published",
            ),  # type: ignore[arg-type]
            "test",
        )
        for conversation, entry in (("oos-1", ENTRY), ("plain-1", None)):
            ids.append(
                service.open_ticket(
                    session,
                    conversation_id=conversation,
                    reason="low_confidence",
                    channel="socketio",
                    trigger_text="cancel my flight please",
                    out_of_scope_entry=entry,
                ).ticket.id
            )

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASKAGENCY_RASA_URL", f"http://127.0.0.1:{free_port()}")
        with standalone_console(data_dir, seed) as url:
            yield url, ids[0], ids[1]


def test_the_agent_sees_the_entry_and_its_note(
    pages: PageFactory, console: tuple[str, int, int]
) -> None:
    base, taken, plain = console
    page = pages.page()  # the console's own CSP stays on
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in_to_inbox(page, base, "ivy", PASSWORD)

    page.goto(f"{base}/console/inbox/{taken}")
    box = page.locator("#ticket-out-of-scope")
    box.wait_for(state="visible")
    text = box.inner_text()
    assert "set not to answer" in text and f"Note for staff: {NOTE}" in text
    link = page.get_by_role("link", name=ENTRY)
    assert link.get_attribute("href") == f"/console/kb/faq/{ENTRY}"
    assert page.locator("#ticket-out-of-scope img").count() == 0

    page.goto(f"{base}/console/inbox/{plain}")
    page.locator("#ticket-facts", has_text="Reason").wait_for()
    assert page.locator("#ticket-out-of-scope").is_hidden()
    assert dialogs == []

    page2 = pages.page(bypass_csp=True)  # axe is injected as an inline script
    log_in_to_inbox(page2, base, "ivy", PASSWORD)
    page2.goto(f"{base}/console/inbox/{taken}")
    page2.locator("#ticket-out-of-scope").wait_for(state="visible")
    violations = serious(run_axe(page2))
    assert violations == [], describe(violations)
