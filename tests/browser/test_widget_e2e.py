"""The widget on the demo page, in Chromium, against the real stack: Rasa 3.6 with our socket.io
channel, the action server with the sample knowledge base, and the console serving the page
(cross-origin: the page is on the console's port, socket.io on Rasa's).

Set ``ASKAGENCY_UPDATE_SCREENSHOTS=1`` to refresh docs/screenshots/ from this run.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from askagency.bot_messages import MessageType
from askagency.config import PROJECT_ROOT
from askagency.launcher import Stack
from tests.browser.conftest import PageFactory, cli
from tests.browser.test_widget_attachments import bottle_photo, rule_card
from tests.browser.widget import XSS, Widget, describe, serious
from tests.e2e.test_handoff import Console, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAPTOP_QUESTION = "can I bring my laptop in my carry-on"
# Broad questions that match several sample FAQs about equally: the bot must ask which one.
CLARIFY_CANDIDATES = ("laptop", "batteries", "liquids", "food")
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def save_screenshot(data: bytes, name: str, tmp_path: Path) -> None:
    (tmp_path / name).write_bytes(data)
    if os.environ.get("ASKAGENCY_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / name).write_bytes(data)


def ask_laptop(w: Widget):  # type: ignore[no-untyped-def]
    """The laptop question's answer. The sample KB has two close laptop FAQs (carry-on and
    checked bag), so depending on the tuned margin the bot may first ask which one is meant;
    then the citizen picks the carry-on option, as a person would."""
    reply = w.ask_and_wait(LAPTOP_QUESTION)
    if reply.get_attribute("data-type") == MessageType.CLARIFY:
        before = w.messages("bot").count()
        reply.get_by_role("button", name="carry-on").first.click()
        reply = w.wait_for_reply(before)
    assert reply.get_attribute("data-type") == MessageType.FAQ_ANSWER, reply.inner_text()
    return reply


def test_question_answer_source_link_and_feedback(pages: PageFactory, stack: Stack) -> None:
    w = Widget(pages.page()).load(stack.cfg.console_url).open()
    answer = ask_laptop(w)
    assert "laptop" in answer.locator(".aaw-text").inner_text().lower()
    link = answer.locator("a.aaw-source-link")
    href = link.get_attribute("href")
    assert href and href.startswith(("https://", "http://")), href
    assert link.get_attribute("target") == "_blank"
    assert answer.get_attribute("data-faq-id")

    before = w.messages("bot").count()
    answer.get_by_role("button", name="Yes, this answer was helpful").click()
    assert answer.locator(".aaw-feedback-thanks").is_visible()
    ack = w.wait_for_reply(before)
    assert ack.get_attribute("data-type") == MessageType.FEEDBACK_ACK, ack.inner_text()
    assert w.messages("citizen").count() in (1, 2)  # the question (and a clarify choice)


def test_clarify_button_click(pages: PageFactory, stack: Stack) -> None:
    w = Widget(pages.page()).load(stack.cfg.console_url).open()
    for query in CLARIFY_CANDIDATES:
        reply = w.ask_and_wait(query)
        if reply.get_attribute("data-type") == MessageType.CLARIFY:
            break
    else:
        pytest.fail(f"none of {CLARIFY_CANDIDATES} made the bot ask a clarifying question")
    options = reply.get_by_role("group", name="Suggested replies").get_by_role("button")
    assert 2 <= options.count() <= 3
    title = options.first.inner_text()

    before = w.messages("bot").count()
    options.first.click()
    chosen = w.wait_for_reply(before)
    assert w.messages("citizen").last.locator(".aaw-text").inner_text() == title
    assert chosen.get_attribute("data-type") == MessageType.FAQ_ANSWER, chosen.inner_text()
    assert chosen.locator("a.aaw-source-link").count() == 1


def test_talk_to_a_person(pages: PageFactory, stack: Stack) -> None:
    w = Widget(pages.page()).load(stack.cfg.console_url).open()
    before = w.messages("bot").count()
    w.page.get_by_role("button", name="Talk to a person", exact=True).click()
    reply = w.wait_for_reply(before)
    assert w.messages("citizen").last.locator(".aaw-text").inner_text() == "Talk to a person"
    assert reply.get_attribute("data-type") == MessageType.HANDOFF, reply.inner_text()
    assert "person" in reply.inner_text().lower()

    # Issue 21, item 3: the citizen can go back to the assistant. The button stays usable while
    # they write to the person (relayed: no bot answer), and is done once the handoff ended.
    back = reply.get_by_role("button", name="Back to the assistant", exact=True)
    w.ask("my flight leaves at 6")
    w.page.wait_for_function(
        "() => [...document.querySelectorAll('.aaw-msg--citizen')].some("
        "m => m.innerText.includes('my flight leaves at 6'))"
    )
    assert back.is_enabled()
    before = w.messages("bot").count()
    back.click()
    left = w.wait_for_reply(before)
    assert left.get_attribute("data-type") == MessageType.HANDOFF_CLOSED, left.inner_text()
    assert "withdrawn your request" in left.inner_text()
    assert back.is_disabled()
    assert ask_laptop(w) is not None  # the bot answers again


def test_new_conversation_withdraws_a_waiting_handoff_and_starts_again(
    pages: PageFactory, stack: Stack
) -> None:
    """Issue 21, item 3: "New conversation" closes a waiting handoff politely (the ticket is
    withdrawn with a note for the agent), then the assistant issues a new conversation: the log
    starts again, the bot answers there, and a reload keeps the new one."""
    w = Widget(pages.page()).load(stack.cfg.console_url).open()
    w.ask_and_wait("hello")
    before = w.messages("bot").count()
    w.page.get_by_role("button", name="Talk to a person", exact=True).click()
    assert w.wait_for_reply(before).get_attribute("data-type") == MessageType.HANDOFF
    old_id = w.session_id()

    w.page.get_by_role("button", name="New conversation", exact=True).click()
    w.page.wait_for_function(
        "old => window.AskAgencyWidget.sessionId() && window.AskAgencyWidget.sessionId() !== old",
        arg=old_id,
    )
    new_id = w.session_id()
    assert w.messages("citizen").count() == 0
    assert w.log.locator(".aaw-msg").count() == 1  # the greeting only
    with sqlite3.connect(stack.cfg.data_dir / "askagency.db") as db:
        status, note = db.execute(
            "SELECT t.status, m.text FROM handoff_ticket t JOIN handoff_message m "
            "ON m.ticket_id = t.id WHERE t.conversation_id = ? ORDER BY m.id DESC LIMIT 1",
            (old_id,),
        ).fetchone()
    assert (status, note) == ("closed_unresolved", "the citizen went back to the assistant")

    ask_laptop(w)  # the bot answers in the new conversation
    w.page.reload()
    w.open()
    w.page.wait_for_function("() => document.querySelectorAll('.aaw-msg--citizen').length > 0")
    assert w.session_id() == new_id
    assert "Talk to a person" not in w.log.inner_text()


def test_reload_keeps_the_conversation(pages: PageFactory, stack: Stack) -> None:
    w = Widget(pages.page()).load(stack.cfg.console_url).open()
    answer_text = ask_laptop(w).locator(".aaw-text").inner_text()
    citizen_before = w.messages("citizen").locator(".aaw-text").all_inner_texts()
    session_id = w.session_id()

    w.page.reload()
    w.launcher.wait_for()
    assert w.session_id() == session_id
    w.open()
    restored = w.bot_of_type(MessageType.FAQ_ANSWER)
    restored.first.wait_for()
    assert restored.first.locator(".aaw-text").inner_text() == answer_text
    assert w.messages("citizen").first.locator(".aaw-text").inner_text() == LAPTOP_QUESTION
    assert restored.first.locator("a.aaw-source-link").count() == 1
    assert w.messages("citizen").count() == len(citizen_before)
    assert w.messages("citizen").locator(".aaw-text").all_inner_texts() == citizen_before

    # Same conversation: the next question goes on in the same session (and is answered there).
    reply = w.ask_and_wait("What is the liquids rule for carry-on bags?")
    assert reply.get_attribute("data-type") in ("faq_answer", "clarify"), reply.inner_text()
    assert w.session_id() == session_id


def test_keyboard_only(pages: PageFactory, stack: Stack) -> None:
    page = pages.page()
    w = Widget(page).load(stack.cfg.console_url)
    focused = "document.activeElement && document.activeElement.className"
    focused_text = "document.activeElement && document.activeElement.textContent"

    def shift_tab_to(css_class: str, text: str = "") -> None:
        for _ in range(15):
            page.keyboard.press("Shift+Tab")
            if css_class in page.evaluate(focused) and text in page.evaluate(focused_text):
                return
        pytest.fail(f"{css_class} {text!r} is not reachable with Shift+Tab")

    for _ in range(40):
        page.keyboard.press("Tab")
        if "aaw-launcher" in (page.evaluate(focused) or ""):
            break
    else:
        pytest.fail("the launcher is not reachable with Tab")
    page.keyboard.press("Enter")
    assert "aaw-input" in page.evaluate(focused)
    before = w.messages("bot").count()
    page.keyboard.type(LAPTOP_QUESTION)
    page.keyboard.press("Enter")
    reply = w.wait_for_reply(before)
    if reply.get_attribute("data-type") == MessageType.CLARIFY:
        shift_tab_to("aaw-quick-btn", "carry-on")
        before = w.messages("bot").count()
        page.keyboard.press("Enter")
        reply = w.wait_for_reply(before)
        assert "aaw-input" in page.evaluate(focused)
    assert reply.get_attribute("data-type") == MessageType.FAQ_ANSWER, reply.inner_text()

    # Tab forward from the input reaches Send; Shift+Tab goes back past "Talk to a person" to
    # the feedback buttons, which Space activates.
    page.keyboard.press("Tab")
    assert "aaw-send" in page.evaluate(focused)
    shift_tab_to("aaw-feedback-good")
    page.keyboard.press("Space")
    reply.locator(".aaw-feedback-thanks").wait_for()
    assert "aaw-input" in page.evaluate(focused)

    page.keyboard.press("Escape")
    assert w.panel.is_hidden()
    assert "aaw-launcher" in page.evaluate(focused)


def test_axe_on_open_widget(pages: PageFactory, stack: Stack, tmp_path: Path) -> None:
    w = Widget(pages.page(bypass_csp=True)).load(stack.cfg.console_url).open()
    ask_laptop(w)
    violations = w.axe()
    (tmp_path / "axe.json").write_text(json.dumps(violations, indent=2))
    bad = serious(violations)
    assert bad == [], describe(bad)


def test_screenshots_desktop_and_360px(pages: PageFactory, stack: Stack, tmp_path: Path) -> None:
    for name, width, height in (
        ("widget-desktop.png", 1280, 800),
        ("widget-mobile-360.png", 360, 740),
    ):
        ctx = pages.context(width=width, height=height, reduced_motion="reduce")
        w = Widget(pages.page(ctx)).load(stack.cfg.console_url).open()
        ask_laptop(w)
        w.page.evaluate("document.activeElement.blur()")
        data = w.page.screenshot()
        assert png_size(data) == (width, height)
        if width == 360:
            scroll_width = w.page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= 360
        save_screenshot(data, name, tmp_path)


def test_xss_in_citizen_message_and_faq_answer_renders_as_text(
    pages: PageFactory, stack: Stack, stack_data_dir: Path, tmp_path: Path
) -> None:
    faq = {
        "id": "widget-xss-probe",
        "language": "en",
        "category": "Testing",
        "question": "What is the zebra giraffe marmalade rule?",
        "answer": f"The zebra giraffe marmalade rule: {XSS} must show as text.",
        "variants": ["zebra giraffe marmalade rule", "tell me about zebra giraffe marmalade"],
        "source_url": "https://www.example.gov/zebra",
        "status": "published",
    }
    path = tmp_path / "xss.jsonl"
    path.write_text(json.dumps(faq) + "\n", encoding="utf-8")
    cli(stack_data_dir, "kb", "import", str(path), "--publish")
    cli(stack_data_dir, "kb", "build-index")

    # bypass_csp: only the widget's rendering may stand between the payload and its execution.
    w = Widget(pages.page(bypass_csp=True)).load(stack.cfg.console_url).open()
    w.ask_and_wait(XSS)
    assert w.messages("citizen").first.locator(".aaw-text").inner_text() == XSS

    answer = w.ask_and_wait("what is the zebra giraffe marmalade rule")
    assert answer.get_attribute("data-type") == MessageType.FAQ_ANSWER, answer.inner_text()
    assert XSS in answer.locator(".aaw-text").inner_text()
    assert w.page.locator(".aaw-root img").count() == 0
    w.page.wait_for_timeout(300)
    assert w.page.evaluate("typeof window.__xss") == "undefined"


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 90), colour).save(out, "JPEG")
    return out.getvalue()


AGENT_PHOTO_TEXT = "That bottle is fine if it is empty at the checkpoint."


async def _agent_sees_it_and_sends_a_photo(stack: Stack, session_id: str) -> str:
    """The agent's side, over the console's JSON API as the inbox page uses it: the ticket
    carries the citizen's photo; the agent replies with a picture of their own."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        console = Console(stack.cfg.console_url, http)
        await console.login("photo-agent")
        ticket = await console.ticket_for(session_id)
        _, detail = await console.get(f"/api/tickets/{ticket['id']}")
        (message,) = [m for m in detail["messages"] if m["direction"] == "citizen"]
        assert message["text"] == "can I bring this?" and len(message["attachments"]) == 1
        form = aiohttp.FormData()
        form.add_field("file", rule_card(), filename="bottles.png")
        form.add_field("text", AGENT_PHOTO_TEXT)
        async with http.post(
            f"{stack.cfg.console_url}/api/tickets/{ticket['id']}/attachments",
            data=form,
            headers={"X-CSRF-Token": console.csrf},
        ) as resp:
            assert resp.status == 201, await resp.text()
        return str(ticket["reason"])


def test_a_photo_reaches_a_person_whose_photo_comes_back(
    pages: PageFactory, stack: Stack, tmp_path: Path
) -> None:
    """Issue 21, item 1, end to end in Chromium on the real stack: the citizen picks a photo
    with the paper clip and sends it with a caption; the bot hands over; the agent sees the
    photo on the ticket and replies with one; the widget shows the agent's image, loaded through
    its signed link under the page's real Content-Security-Policy (axe with files on screen:
    test_widget_attachments.py). The phone-sized view is docs/screenshots/widget-photo.png."""
    create_agent(stack.cfg.data_dir, "photo-agent", "Agent Pia")
    width, height = 412, 1000  # a phone: the panel fills the screen, the whole exchange fits
    page = pages.page(pages.context(width=width, height=height, reduced_motion="reduce"))
    w = Widget(page).load(stack.cfg.console_url).open()
    w.page.wait_for_function("() => !!window.AskAgencyWidget.sessionId()")
    session_id = w.session_id()
    w.page.locator(".aaw-file-input").set_input_files(
        files=[{"name": "water-bottle.png", "mimeType": "image/png", "buffer": bottle_photo()}]
    )
    w.page.get_by_role("button", name="Remove water-bottle.png").wait_for()
    before = w.messages("bot").count()
    w.ask("can I bring this?")
    reply = w.wait_for_reply(before)
    assert reply.get_attribute("data-type") == MessageType.HANDOFF, reply.inner_text()
    assert "Thank you for the photo" in reply.inner_text()
    assert w.messages("citizen").last.locator("img").count() == 1

    with ThreadPoolExecutor(1) as pool:  # aiohttp beside Playwright's own loop
        reason = pool.submit(asyncio.run, _agent_sees_it_and_sends_a_photo(stack, session_id))
        assert reason.result(timeout=60) == "attachment"
    w.page.wait_for_function(
        "() => [...document.querySelectorAll('.aaw-msg--agent img')]"
        ".some(i => i.complete && i.naturalWidth > 0)",
        timeout=60_000,
    )
    agent = w.page.locator(".aaw-msg--agent").last
    assert AGENT_PHOTO_TEXT in agent.inner_text()
    assert "/media/" in (agent.locator("img").get_attribute("src") or "")
    w.page.wait_for_function(
        "() => [...document.querySelectorAll('.aaw-log img')].every(i => i.naturalWidth)"
    )
    w.log.evaluate("log => { log.scrollTop = log.scrollHeight; }")  # the pictures took room
    w.page.evaluate("document.activeElement.blur()")
    data = w.page.screenshot()
    assert w.page.evaluate("document.documentElement.scrollWidth") <= width
    save_screenshot(data, "widget-photo.png", tmp_path)
