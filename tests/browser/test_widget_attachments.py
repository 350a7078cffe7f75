"""Photos and files in the widget, in Chromium (issue 21, item 1): the citizen attaches a PNG
(file picker, paste, drag and drop), sees it before sending and can take it off, the file goes to
the console's real upload endpoint with the conversation's token and the socket.io message
carries the returned id; a refused file is explained in the citizen's language without losing
what they typed; an agent's image and PDF render as an image that opens full size and a download
link. The widget keeps 0 serious axe violations with all of that on screen.

The scripted Rasa (tests/browser/fake_rasa.py) and a real console on a migrated database of this
module's own (the shared fake stack has no product database: nothing there stores files).

The pictures of the documentation screenshot are drawn here (``bottle_photo``, ``rule_card``);
the screenshot itself is taken on the real stack (test_widget_e2e.py).
"""

from __future__ import annotations

import base64
import io
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from askagency.migrate import upgrade
from console.widget_api import ATTACHMENTS_PATH, TOKEN_HEADER
from tests.browser.conftest import FakeStack, PageFactory, running_fake_stack
from tests.browser.widget import Widget, describe, serious

pytestmark = pytest.mark.slow

CAPTION = "can I bring this in my carry-on?"
MEDIA = re.compile(r".*/media/.*")
SOCKET = re.compile(r".*/socket\.io/.*")


def png(color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (120, 80)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def bottle(draw: ImageDraw.ImageDraw, cx: int, top: int, s: float, water: bool) -> None:
    """A plastic water bottle, cap at ``top``, centred on ``cx``; ``s`` pixels per unit."""
    tint, outline, cap, cap_edge = (205, 228, 244), (88, 132, 170), (28, 84, 160), (18, 56, 110)
    thin = max(1, int(s // 3))

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (cx + x0 * s, top + y0 * s, cx + x1 * s, top + y1 * s)

    def across(y: float, color: tuple[int, int, int]) -> None:
        draw.line([cx - 23 * s, top + y * s, cx + 23 * s, top + y * s], fill=color, width=thin)

    draw.rounded_rectangle(box(-11, 0, 11, 12), radius=2 * s, fill=cap, outline=cap_edge)
    for i in range(1, 6):  # the cap's ridges
        x = cx + (-11 + i * 22 / 6) * s
        draw.line([x, top + 2 * s, x, top + 10 * s], fill=cap_edge, width=thin)
    draw.rectangle(box(-9, 12, 9, 20), fill=tint, outline=outline)
    shoulders = [(-9, 20), (9, 20), (24, 38), (-24, 38)]
    draw.polygon([(cx + x * s, top + y * s) for x, y in shoulders], fill=tint, outline=outline)
    draw.rounded_rectangle(box(-24, 36, 24, 128), radius=7 * s, fill=tint, outline=outline)
    if water:
        draw.rounded_rectangle(box(-23, 62, 23, 127), radius=6 * s, fill=(120, 186, 232))
        across(62, (90, 160, 215))
    draw.rectangle(box(-24, 74, 24, 98), fill=(245, 248, 250), outline=outline)  # the label
    draw.rectangle(box(-24, 82, 24, 90), fill=(40, 120, 200))
    for y in (50, 108, 116):
        across(y, outline)
    draw.line(
        [cx - 16 * s, top + 42 * s, cx - 16 * s, top + 70 * s], fill="white", width=int(3 * s)
    )


def encoded(image: Image.Image, size: tuple[int, int]) -> bytes:
    """Drawn at twice the size and scaled down: smooth edges."""
    out = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(out, format="PNG")
    return out.getvalue()


def bottle_photo() -> bytes:
    """The citizen's photo: a half-full water bottle on a table."""
    k = 2
    image = Image.new("RGB", (480 * k, 300 * k))
    draw = ImageDraw.Draw(image)
    for y in range(215 * k):  # the wall, a little darker towards the table
        c = 242 - y // (22 * k)
        draw.line([0, y, 480 * k, y], fill=(c, c - 3, c - 9))
    draw.rectangle([0, 215 * k, 480 * k, 300 * k], fill=(206, 192, 168))
    draw.line([0, 215 * k, 480 * k, 215 * k], fill=(176, 160, 134), width=2 * k)
    draw.ellipse([170 * k, 248 * k, 310 * k, 268 * k], fill=(180, 166, 142))  # its shadow
    bottle(draw, 240 * k, 40 * k, 1.7 * k, water=True)
    return encoded(image, (480, 300))


def rule_card() -> bytes:
    """The agent's picture: an empty bottle is fine, a full one is not."""
    k = 2
    image = Image.new("RGB", (480 * k, 250 * k), (250, 251, 252))
    draw = ImageDraw.Draw(image)
    draw.line([240 * k, 20 * k, 240 * k, 230 * k], fill=(210, 214, 220), width=2 * k)
    bottle(draw, 120 * k, 25 * k, 1.5 * k, water=False)
    bottle(draw, 360 * k, 25 * k, 1.5 * k, water=True)
    draw.ellipse([162 * k, 160 * k, 218 * k, 216 * k], fill=(26, 127, 55))
    tick = [(175 * k, 188 * k), (187 * k, 201 * k), (206 * k, 174 * k)]
    draw.line(tick, fill="white", width=7 * k, joint="curve")
    draw.ellipse([402 * k, 160 * k, 458 * k, 216 * k], fill=(196, 32, 32))
    draw.line([(417 * k, 175 * k), (443 * k, 201 * k)], fill="white", width=7 * k)
    draw.line([(443 * k, 175 * k), (417 * k, 201 * k)], fill="white", width=7 * k)
    return encoded(image, (480, 250))


@dataclass
class Stack:
    fake: FakeStack
    database: Path

    def stored(self) -> list[tuple[str, str, str, str]]:
        """(id, conversation_id, direction, name) of every stored file."""
        with sqlite3.connect(self.database) as db:
            rows = db.execute("SELECT id, conversation_id, direction, name FROM attachment")
            return [tuple(row) for row in rows]

    def sent(self, session_id: str) -> list[dict[str, Any]]:
        return [m for m in self.fake.received() if m["session_id"] == session_id]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The fake stack with a migrated database, which uploads are stored in."""
    tmp = tmp_path_factory.mktemp("widget-attachments")
    (tmp / "data").mkdir()
    database = tmp / "data" / "askagency.db"
    upgrade(f"sqlite:///{database}")
    env = {"ASKAGENCY_DATABASE_URL": f"sqlite:///{database}"}
    with running_fake_stack(tmp, env) as fake:
        yield Stack(fake, database)


def connected(w: Widget) -> str:
    """Waits until the assistant issued the conversation (uploads need its token)."""
    w.page.wait_for_function("() => !!window.AskAgencyWidget.sessionId()")
    return w.session_id()


def replies(w: Widget) -> int:
    """Messages of the assistant and agents so far (Widget.wait_for_reply counts these)."""
    return int(w.page.locator(".aaw-msg--bot, .aaw-msg--agent").count())


def choose(w: Widget, name: str, data: bytes, mime: str = "image/png") -> None:
    """The citizen picks a file in the paper clip's file picker (the picker's input is set
    directly: headless Chromium's file-chooser event is not reliable enough to wait for)."""
    picker = w.page.locator(".aaw-file-input")
    picker.set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])


def test_attach_a_png_upload_then_send_its_id(pages: PageFactory, stack: Stack) -> None:
    w = Widget(pages.page()).load(stack.fake.console_url).open()
    session_id = connected(w)
    uploads: list[Any] = []
    w.page.on("request", lambda r: uploads.append(r) if ATTACHMENTS_PATH in r.url else None)

    # The paper clip is a real button: reachable and usable from the keyboard; it opens the
    # file picker, which offers the accepted types only.
    w.page.evaluate(
        """() => document.querySelector('.aaw-file-input').addEventListener('click', e => {
            window.__pickerOpened = true;
            e.preventDefault();
        })"""
    )
    w.page.get_by_role("button", name="Attach a photo or PDF").focus()
    w.page.keyboard.press("Enter")
    assert w.page.evaluate("window.__pickerOpened") is True
    accept = w.page.locator(".aaw-file-input").get_attribute("accept")
    assert accept.startswith("image/jpeg,") and "application/pdf" in accept
    assert "image/gif" not in accept
    choose(w, "bag.png", png())

    preview = w.page.get_by_role("group", name="File to send")
    preview.get_by_role("button", name="Remove bag.png").wait_for()
    assert preview.locator("img").get_attribute("src").startswith("data:image/png")
    assert w.messages("citizen").count() == 0  # nothing is sent before the citizen sends it

    before = w.messages("bot").count()
    with w.page.expect_response(lambda r: ATTACHMENTS_PATH in r.url) as answer:
        w.ask(CAPTION)
    assert answer.value.status == 201
    stored_id = answer.value.json()["id"]
    w.wait_for_reply(before)

    [request] = uploads
    assert request.method == "POST"
    assert f"session_id={session_id}" in request.url
    assert request.headers[TOKEN_HEADER.lower()]
    assert request.headers["content-type"] == "image/png"  # the raw file is the body
    assert request.headers["x-attachment-name"] == "bag.png"
    assert (stored_id, session_id, "citizen", "bag.png") in stack.stored()

    message = stack.sent(session_id)[-1]
    assert message["attachments"] == [stored_id]
    assert message["message"] == CAPTION
    # The citizen's own photo and caption in their bubble; input and preview are cleared.
    mine = w.messages("citizen").last
    assert mine.locator("img.aaw-photo").get_attribute("alt") == "Your photo: bag.png"
    assert mine.locator(".aaw-text").inner_text() == CAPTION
    assert w.input.input_value() == ""
    assert preview.is_hidden()


def test_a_photo_alone_and_the_remove_control(pages: PageFactory, stack: Stack) -> None:
    w = Widget(pages.page()).load(stack.fake.console_url).open()
    session_id = connected(w)
    choose(w, "first.png", png((10, 120, 10)))
    w.page.get_by_role("button", name="Remove first.png").click()
    assert w.page.get_by_role("group", name="File to send").is_hidden()
    assert w.page.evaluate("document.activeElement.classList.contains('aaw-input')")

    before = w.messages("bot").count()
    w.ask("just text")
    w.wait_for_reply(before)
    assert "attachments" not in stack.sent(session_id)[-1]

    choose(w, "second.png", png((10, 10, 120)))
    before = w.messages("bot").count()
    w.page.get_by_role("button", name="Send").click()  # no caption: the photo alone
    w.wait_for_reply(before)
    message = stack.sent(session_id)[-1]
    assert message["message"] == "" and len(message["attachments"]) == 1
    assert w.messages("citizen").last.locator("img.aaw-photo").count() == 1


def test_paste_and_drop_choose_the_file(pages: PageFactory, stack: Stack) -> None:
    w = Widget(pages.page()).load(stack.fake.console_url).open()
    connected(w)
    event = """([kind, name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], name, {type: "image/png"}));
        const target = document.querySelector(kind === "paste" ? ".aaw-input" : ".aaw-log");
        const init = {bubbles: true, cancelable: true};
        const e = kind === "paste"
            ? new ClipboardEvent("paste", {...init, clipboardData: data})
            : new DragEvent("drop", {...init, dataTransfer: data});
        return target.dispatchEvent(e);
    }"""
    photo = base64.b64encode(png()).decode()
    # dispatchEvent is false when the widget took the event (the browser pastes nothing).
    assert w.page.evaluate(event, ["paste", "screenshot.png", photo]) is False
    w.page.get_by_role("button", name="Remove screenshot.png").click()
    assert w.page.evaluate(event, ["drop", "dropped.png", photo]) is False
    w.page.get_by_role("button", name="Remove dropped.png").wait_for()
    assert w.input.input_value() == ""  # no file name or data pasted into the text


def test_a_refused_file_is_explained_in_spanish_and_nothing_typed_is_lost(
    pages: PageFactory, stack: Stack
) -> None:
    w = Widget(pages.page()).load(stack.fake.console_url).open()
    session_id = connected(w)
    w.page.evaluate("window.AskAgencyWidget.setLanguage('es')")
    field = w.page.get_by_label("Su pregunta")
    before_files = len(stack.stored())

    # A GIF is refused in the browser already; a "PNG" that is not one, by the server (422).
    choose(w, "anim.gif", b"GIF89a\x01\x00\x01\x00", mime="image/gif")
    error = w.page.locator(".aaw-error")
    assert "No se puede enviar este tipo de archivo" in error.inner_text()

    choose(w, "roto.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    field.fill("¿puedo llevar esto?")
    with w.page.expect_response(lambda r: ATTACHMENTS_PATH in r.url) as answer:
        field.press("Enter")
    assert answer.value.status == 422
    w.page.wait_for_function("() => document.querySelector('.aaw-error').textContent")
    assert "No se pudo leer este archivo" in error.inner_text()
    assert field.get_attribute("aria-invalid") == "true"
    assert field.input_value() == "¿puedo llevar esto?"
    w.page.get_by_role("button", name="Quitar roto.png").wait_for()  # still there to remove
    assert w.messages("citizen").count() == 0
    assert stack.sent(session_id) == []
    assert len(stack.stored()) == before_files


def test_an_agents_image_and_pdf_render_safely(pages: PageFactory, stack: Stack) -> None:
    page = pages.page()
    page.route(MEDIA, lambda route: route.fulfill(status=200, content_type="image/png", body=png()))
    w = Widget(page).load(stack.fake.console_url).open()
    session_id = connected(w)
    base = stack.fake.console_url
    before = replies(w)
    stack.fake.agent_says(
        session_id,
        "This is the rule:",
        agent="Maria",
        image=f"{base}/media/{'a' * 32}?exp=1&sig=x",
        attachment={
            "type": "file",
            "url": f"{base}/media/{'b' * 32}?exp=1&sig=y",
            "name": "rules.pdf",
            "mime": "application/pdf",
        },
    )
    agent = w.wait_for_reply(before)
    image = agent.get_by_role("img", name="Image sent by Maria (agent)")
    image.wait_for()
    w.page.wait_for_function(
        "() => [...document.querySelectorAll('.aaw-msg--agent img')].every(i => i.naturalWidth)"
    )
    full_size = agent.locator("a.aaw-image-link")
    assert full_size.get_attribute("href") == f"{base}/media/{'a' * 32}?exp=1&sig=x"
    assert full_size.get_attribute("target") == "_blank"
    width = w.page.evaluate("() => document.querySelector('.aaw-msg--agent img').clientWidth")
    bubble = w.page.evaluate(
        "() => document.querySelector('.aaw-msg--agent .aaw-bubble').clientWidth"
    )
    assert width <= bubble  # never wider than the conversation
    download = agent.get_by_role("link", name=re.compile("Download rules.pdf"))
    assert download.get_attribute("href") == f"{base}/media/{'b' * 32}?exp=1&sig=y"
    assert agent.locator(".aaw-text").inner_text() == "This is the rule:"

    # A hostile URL is never used as an image or a link.
    before = replies(w)
    stack.fake.agent_says(
        session_id,
        "again",
        image="javascript:window.__xss=1",
        attachment={"type": "file", "url": "data:text/html,<script>1</script>", "name": "x"},
    )
    hostile = w.wait_for_reply(before)
    assert hostile.locator("img, a").count() == 0


def test_axe_no_serious_violations_with_files(pages: PageFactory, stack: Stack) -> None:
    page = pages.page(bypass_csp=True)
    page.route(MEDIA, lambda route: route.fulfill(status=200, content_type="image/png", body=png()))
    w = Widget(page).load(stack.fake.console_url).open()
    session_id = connected(w)
    choose(w, "bag.png", png())
    before = w.messages("bot").count()
    w.ask(CAPTION)
    w.wait_for_reply(before)
    before = replies(w)
    stack.fake.agent_says(
        session_id,
        "Here it is",
        image=f"{stack.fake.console_url}/media/{'c' * 32}?exp=1&sig=z",
        attachment={"type": "file", "url": f"{stack.fake.console_url}/media/x", "name": "a.pdf"},
    )
    w.wait_for_reply(before)
    choose(w, "next.png", png((0, 0, 0)))  # a preview on screen too
    w.page.get_by_role("button", name="Remove next.png").wait_for()
    violations = serious(w.axe())
    assert violations == [], describe(violations)
