"""The widget in a real browser against a scripted socket.io server (tests/browser/fake_rasa.py).

Fast, and covers what the real stack cannot produce on demand: agent replies, after-hours
notices, a hostile ``source_url``, a lost connection. The same flows against the real Rasa
stack are in test_widget_e2e.py.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from askagency.bot_messages import MessageType
from tests.browser.conftest import FAKE_TOKEN, FakeStack, PageFactory
from tests.browser.widget import XSS, Widget, describe, serious

pytestmark = pytest.mark.slow


def unread_state(w: Widget, fake_stack: FakeStack, session_id: str) -> dict[str, Any]:
    """What decides the launcher's unread count: its label, the messages shown, the widget's
    stored state (session, seen count) and the bot events the fake holds for the session."""
    page_state = w.page.evaluate(
        """() => ({
            label: document.querySelector('.aaw-launcher').getAttribute('aria-label'),
            shown: document.querySelectorAll('.aaw-msg--bot, .aaw-msg--agent').length,
            storage: Object.fromEntries(Object.entries(localStorage)),
        })"""
    )
    url = f"{fake_stack.rasa_url}/conversations/{session_id}/tracker?token={FAKE_TOKEN}"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback)
        events = json.loads(resp.read())["events"]
    return {**page_state, "fake_bot_events": sum(e["event"] == "bot" for e in events)}


def test_answer_with_source_feedback_and_language_metadata(
    pages: PageFactory, fake_stack: FakeStack
) -> None:
    w = Widget(pages.page()).load(fake_stack.console_url).open()
    answer = w.ask_and_wait("can I bring my laptop in my carry-on")

    assert answer.get_attribute("data-type") == MessageType.FAQ_ANSWER
    # The "Source: <url>" line meant for text-only channels becomes the one source link.
    assert answer.locator(".aaw-text").inner_text() == "Yes, laptops are allowed."
    assert answer.get_by_role("link").count() == 1
    link = answer.get_by_role("link", name="example.gov/travel/laptop-carry-on")
    assert link.get_attribute("href") == "https://www.example.gov/travel/laptop-carry-on"
    assert link.get_attribute("rel") == "noopener noreferrer"

    before = w.messages("bot").count()
    answer.get_by_role("button", name="Yes, this answer was helpful").click()
    assert answer.locator(".aaw-feedback-thanks").inner_text() == "Thank you for your feedback."
    assert answer.get_by_role("button", name=re.compile("helpful")).count() == 0
    w.wait_for_reply(before)
    # Feedback is a control message: it is sent, but not shown as the citizen's words.
    assert w.messages("citizen").count() == 1

    sent = [m for m in fake_stack.received() if m["session_id"] == w.session_id()]
    assert sent[0]["message"] == "can I bring my laptop in my carry-on"
    assert sent[0]["metadata"] == {"language": "en"}
    assert sent[1]["message"] == "/feedback_good"
    assert sent[1]["metadata"] == {"language": "en", "faq_id": "laptop-carry-on"}


def test_clarify_buttons_send_payload_and_show_title(
    pages: PageFactory, fake_stack: FakeStack
) -> None:
    w = Widget(pages.page()).load(fake_stack.console_url).open()
    clarify = w.ask_and_wait("what about liquids")
    assert clarify.get_attribute("data-type") == MessageType.CLARIFY
    group = clarify.get_by_role("group", name="Suggested replies")
    assert group.get_by_role("button").all_inner_texts() == [
        "Liquids in carry-on",
        "Liquid medication",
    ]

    before = w.messages("bot").count()
    group.get_by_role("button", name="Liquid medication").click()
    w.wait_for_reply(before)
    assert w.messages("citizen").last.inner_text().endswith("Liquid medication")
    # Old options cannot be pressed again once the citizen moved on.
    assert group.get_by_role("button", name="Liquids in carry-on").is_disabled()
    # Focus returns to the input so the keyboard user can keep typing.
    assert w.page.evaluate("document.activeElement.classList.contains('aaw-input')")
    sent = [m for m in fake_stack.received() if m["session_id"] == w.session_id()]
    assert sent[-1]["message"] == '/choose_faq{"faq_id":"liquids-medication"}'


def test_handoff_after_hours_agent_label_and_history_after_tab_closed(
    pages: PageFactory, fake_stack: FakeStack
) -> None:
    ctx = pages.context()
    w = Widget(pages.page(ctx)).load(fake_stack.console_url).open()
    w.ask_and_wait("laptop")
    before = w.messages("bot").count()
    w.page.get_by_role("button", name="Talk to a person", exact=True).click()
    handoff = w.wait_for_reply(before)
    assert w.messages("citizen").last.inner_text().endswith("Talk to a person")
    notice = handoff.locator(".aaw-after-hours")
    assert "Our team is offline right now." in notice.inner_text()
    assert "A person will reply by" in notice.inner_text()
    session_id = w.session_id()

    # The agent answers while the citizen's tab is closed (and its socket gone: in CI under load
    # the closing tab once still received the message and stored it as seen) ...
    w.page.close()
    fake_stack.wait_until_disconnected(session_id)
    fake_stack.agent_says(session_id, "Hello, this is Maria. <b>not bold</b>", agent="Maria")

    # ... and the citizen sees it on return, announced on the launcher, in the same conversation.
    w2 = Widget(pages.page(ctx)).load(fake_stack.console_url)
    try:
        w2.page.wait_for_function(
            "() => document.querySelector('.aaw-launcher').getAttribute('aria-label')"
            ".includes('new')"
        )
    except PlaywrightTimeout:
        # Say what the widget saw: label, messages shown, stored seen count, the fake's events.
        pytest.fail(f"no unread count on the launcher: {unread_state(w2, fake_stack, session_id)}")
    assert "1 new message" in w2.launcher.get_attribute("aria-label")
    assert w2.session_id() == session_id
    w2.open()
    agent = w2.messages("agent").last
    assert agent.locator(".aaw-sender").inner_text() == "Maria (agent)"
    assert agent.locator(".aaw-text").inner_text() == "Hello, this is Maria. <b>not bold</b>"
    assert w2.page.locator(".aaw-log b").count() == 0
    assert "1 new" not in w2.launcher.get_attribute("aria-label")
    texts = w2.log.inner_text()
    assert texts.index("laptop") < texts.index("Talk to a person") < texts.index("Maria")


def test_the_pages_location_is_sent_with_every_message(
    pages: PageFactory, fake_stack: FakeStack
) -> None:
    """An airport's page embeds the widget with data-location (here the demo page's
    ``?location=``): every message carries the code, so reports count the conversation there."""
    w = Widget(pages.page()).load(fake_stack.console_url + "/?location=den").open()
    w.ask_and_wait("can I bring my laptop in my carry-on")
    sent = [m for m in fake_stack.received() if m["session_id"] == w.session_id()]
    assert sent[0]["metadata"] == {"language": "en", "location": "DEN"}

    hostile = Widget(pages.page()).load(fake_stack.console_url + '/?location="><b>x').open()
    hostile.ask_and_wait("can I bring my laptop in my carry-on")
    sent = [m for m in fake_stack.received() if m["session_id"] == hostile.session_id()]
    assert sent[0]["metadata"] == {"language": "en"}  # not a code: nothing sent


def test_spanish_from_picker_is_used_for_ui_and_sent_to_the_bot(
    pages: PageFactory, fake_stack: FakeStack
) -> None:
    w = Widget(pages.page()).load(fake_stack.console_url).open()
    w.page.get_by_label("Language").select_option("es")
    assert w.page.get_by_label("Su pregunta").is_visible()
    assert w.page.get_by_role("button", name="Hablar con una persona").is_visible()
    assert w.page.locator(".aaw-root").get_attribute("lang") == "es"
    before = w.messages("bot").count()
    w.page.get_by_label("Su pregunta").fill("¿puedo llevar mi laptop?")
    w.page.get_by_label("Su pregunta").press("Enter")
    answer = w.wait_for_reply(before)
    assert "Sí, puede llevar su portátil." in answer.inner_text()
    assert answer.get_by_role("button", name="Sí, esta respuesta fue útil").is_visible()
    sent = [m for m in fake_stack.received() if m["session_id"] == w.session_id()]
    assert sent[-1]["metadata"]["language"] == "es"

    # The choice survives a reload.
    w.page.reload()
    w.launcher.click()
    w.page.get_by_label("Su pregunta").wait_for()
    assert "Pregúntenos" in w.launcher.inner_text()


def test_hostile_text_and_links_render_inert(pages: PageFactory, fake_stack: FakeStack) -> None:
    w = Widget(pages.page(bypass_csp=True)).load(fake_stack.console_url).open()
    w.input.fill(XSS)
    w.input.press("Enter")
    answer = w.ask_and_wait("xss please")

    assert w.messages("citizen").first.locator(".aaw-text").inner_text() == XSS
    assert XSS in answer.locator(".aaw-text").inner_text()
    assert w.page.locator(".aaw-root img").count() == 0
    # The javascript: source URL is dropped; a plain https URL in the text becomes a link.
    hrefs = answer.get_by_role("link").evaluate_all("els => els.map(e => e.href)")
    assert hrefs == ["https://example.gov/ok"]
    w.page.wait_for_timeout(300)
    assert w.page.evaluate("typeof window.__xss") == "undefined"


def test_keyboard_only_focus_management(pages: PageFactory, fake_stack: FakeStack) -> None:
    page = pages.page()
    w = Widget(page).load(fake_stack.console_url)
    focused_class = "document.activeElement && document.activeElement.className"
    for _ in range(40):
        page.keyboard.press("Tab")
        if "aaw-launcher" in (page.evaluate(focused_class) or ""):
            break
    else:
        pytest.fail("the launcher is not reachable with Tab")
    page.keyboard.press("Enter")
    assert w.launcher.get_attribute("aria-expanded") == "true"
    assert "aaw-input" in page.evaluate(focused_class)

    page.keyboard.type("what about liquids")
    page.keyboard.press("Enter")
    page.locator(".aaw-quick-btn").first.wait_for()
    # Shift+Tab walks back from the input to the clarify buttons.
    for _ in range(10):
        page.keyboard.press("Shift+Tab")
        if "aaw-quick-btn" in page.evaluate(focused_class):
            break
    before = w.messages("bot").count()
    page.keyboard.press("Enter")
    w.wait_for_reply(before)
    assert w.messages("citizen").count() == 2

    page.keyboard.press("Escape")
    assert w.panel.is_hidden()
    assert "aaw-launcher" in page.evaluate(focused_class)
    assert w.launcher.get_attribute("aria-expanded") == "false"


def test_axe_no_serious_violations(pages: PageFactory, fake_stack: FakeStack) -> None:
    w = Widget(pages.page(bypass_csp=True)).load(fake_stack.console_url).open()
    w.ask_and_wait("laptop")
    w.ask_and_wait("liquids")
    w.page.get_by_role("button", name="Talk to a person", exact=True).click()
    w.page.locator(".aaw-after-hours").wait_for()
    violations = serious(w.axe())
    assert violations == [], describe(violations)


@pytest.mark.parametrize(("width", "height"), [(320, 640), (640, 400)])
def test_small_screens_and_zoom_have_no_horizontal_scroll(
    pages: PageFactory, fake_stack: FakeStack, width: int, height: int
) -> None:
    """320 px is WCAG's reflow width; 640x400 is a 1280x800 screen at 200% zoom."""
    w = Widget(pages.page(width=width, height=height)).load(fake_stack.console_url).open()
    w.ask_and_wait("what about liquids")
    w.page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    box = w.panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5
    assert box["y"] >= 0 and box["y"] + box["height"] <= height + 0.5
    overflow = w.page.evaluate(
        "() => [...document.querySelectorAll('.aaw-panel *')].filter(e => {"
        " const r = e.getBoundingClientRect(); return r.width && r.right > innerWidth + 0.5; })"
        ".map(e => e.className)"
    )
    assert overflow == []
    for control in (w.input, w.page.get_by_role("button", name="Send")):
        control_box = control.bounding_box()
        assert control_box["y"] + control_box["height"] <= height + 0.5


def test_reduced_motion_disables_animation(pages: PageFactory, fake_stack: FakeStack) -> None:
    ctx = pages.context(reduced_motion="reduce")
    w = Widget(pages.page(ctx)).load(fake_stack.console_url).open()
    panel_animation = "getComputedStyle(document.querySelector('.aaw-panel')).animationName"
    assert w.page.evaluate(panel_animation) == "none"


def test_lost_connection_is_announced_and_messages_wait(
    pages: PageFactory, fake_stack: FakeStack
) -> None:
    ctx = pages.context()
    down = {"yes": True}
    socket_io = re.compile(r".*/socket\.io/.*")

    def http_route(route: Any) -> None:  # the long-polling fallback
        if down["yes"]:
            route.abort()
        else:
            route.continue_()

    def ws_route(ws: Any) -> None:
        if down["yes"]:
            ws.close(code=1011, reason="test: server down")
        else:
            ws.connect_to_server()

    ctx.route(socket_io, http_route)
    ctx.route_web_socket(socket_io, ws_route)
    w = Widget(pages.page(ctx)).load(fake_stack.console_url).open()
    w.page.wait_for_function(
        "() => document.querySelector('.aaw-conn').textContent.includes('Connection lost')"
    )
    assert w.page.locator(".aaw-conn").get_attribute("role") == "status"
    before = w.messages("bot").count()
    w.ask("laptop")
    assert w.messages("citizen").count() == 1  # shown at once ...

    down["yes"] = False  # ... and sent, then answered, when the server is back
    answer = w.wait_for_reply(before, timeout=30_000)
    assert answer.get_attribute("data-type") == MessageType.FAQ_ANSWER
    assert w.page.locator(".aaw-conn").is_hidden()


def test_history_endpoint_rejects_bad_ids_and_unknown_sessions(fake_stack: FakeStack) -> None:
    import json
    import urllib.error
    import urllib.request

    from askagency.conversation_token import ConversationSigner
    from tests.browser.conftest import FAKE_CONVERSATION_SECRET

    signer = ConversationSigner(FAKE_CONVERSATION_SECRET.encode())

    def get(session_id: str, token: str | None = None) -> tuple[int, dict]:
        url = f"{fake_stack.console_url}/api/widget/history?session_id={session_id}"
        headers = {"X-Conversation-Token": signer.token(session_id) if token is None else token}
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (loopback)
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    assert get("../../etc")[0] == 400
    assert get("a" * 200)[0] == 400
    assert get("sms-15551234567")[0] == 400
    assert get("web-0123456789abcdef0123456789abcdef", token="v1.guess")[0] == 403
    status, body = get("web-0123456789abcdef0123456789abcdef")
    assert status == 404 and "error" in body
