"""Widget language switching against the real stack: the picker's Spanish reaches Rasa as
message metadata, the action server answers from the Spanish FAQ of the translation group."""

from __future__ import annotations

import pytest

from askagency.bot_messages import MessageType
from askagency.launcher import Stack
from tests.browser.conftest import PageFactory
from tests.browser.widget import Widget

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_spanish_picker_gets_spanish_answers(pages: PageFactory, stack: Stack) -> None:
    w = Widget(pages.page()).load(stack.cfg.console_url).open()
    w.page.get_by_label("Language").select_option("es")
    box = w.page.get_by_label("Su pregunta")
    before = w.messages("bot").count()
    box.fill("¿puedo llevar un cuchillo en el avión?")
    box.press("Enter")
    answer = w.wait_for_reply(before)
    assert answer.get_attribute("data-type") == MessageType.FAQ_ANSWER, answer.inner_text()
    assert answer.get_attribute("data-faq-id") == "sharp-knives-carry-on-es"
    assert "Fuente:" in answer.inner_text() or answer.locator("a.aaw-source-link").count() == 1

    before = w.messages("bot").count()
    box.fill("hola")
    box.press("Enter")
    greeting = w.wait_for_reply(before)
    assert greeting.locator(".aaw-text").inner_text().startswith("¡Hola!"), greeting.inner_text()
