"""A page object for the chat widget: what a citizen sees and does, in Playwright calls.

The selectors are the widget's roles and labels wherever possible (so the tests also check that
controls are labelled); CSS classes are used only for message kinds, which have no role.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
XSS = "<img src=x onerror=window.__xss=1>"


class Widget:
    def __init__(self, page: Any) -> None:
        self.page = page

    # --- elements
    @property
    def launcher(self) -> Any:
        return self.page.locator(".aaw-launcher")

    @property
    def panel(self) -> Any:
        return self.page.get_by_role("dialog")

    @property
    def input(self) -> Any:
        return self.page.get_by_label("Your question")

    @property
    def log(self) -> Any:
        return self.page.get_by_role("log")

    def messages(self, kind: str) -> Any:
        """``kind``: citizen, bot or agent."""
        return self.page.locator(f".aaw-msg--{kind}")

    def bot_of_type(self, custom_type: str) -> Any:
        return self.page.locator(f".aaw-msg--bot[data-type='{custom_type}']")

    # --- actions
    def load(self, url: str) -> Widget:
        self.page.goto(url)
        self.launcher.wait_for()
        return self

    def open(self) -> Widget:
        self.launcher.click()
        self.input.wait_for()
        return self

    def ask(self, text: str) -> None:
        self.input.fill(text)
        self.input.press("Enter")

    def ask_and_wait(self, text: str, timeout: float = 60_000) -> Any:
        """Sends a question and returns the first bot/agent message that arrives after it."""
        before = self.page.locator(".aaw-msg--bot, .aaw-msg--agent").count()
        self.ask(text)
        return self.wait_for_reply(before, timeout)

    def wait_for_reply(self, before: int, timeout: float = 60_000) -> Any:
        self.page.wait_for_function(
            "n => document.querySelectorAll('.aaw-msg--bot, .aaw-msg--agent').length > n",
            arg=before,
            timeout=timeout,
        )
        return self.page.locator(".aaw-msg--bot, .aaw-msg--agent").nth(before)

    def session_id(self) -> str:
        return str(self.page.evaluate("window.AskAgencyWidget.sessionId()"))

    def axe(self) -> list[dict[str, Any]]:
        """axe-core (vendored) over the whole page with the widget open; returns violations."""
        return run_axe(self.page)


def run_axe(page: Any) -> list[dict[str, Any]]:
    """axe-core (vendored) over the whole page, WCAG 2.1 A and AA rules; returns violations.
    It is injected as an inline script: console pages need ``bypass_csp`` for that."""
    page.add_script_tag(content=AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
                resultTypes: ['violations'],
            });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary),
            }));
        }"""
    )
    return list(result)


def serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=2)[:6000]
