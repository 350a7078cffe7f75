"""Browser fixtures: Debian's Chromium driven by Playwright, plus the end-to-end stack.

Playwright cannot download its own browsers here, so the tests launch ``/usr/bin/chromium``
(``ASKAGENCY_CHROMIUM`` overrides it; ``make test`` installs it via scripts/ensure-browser.sh).
A missing browser fails the run under ``CI=true`` and skips the browser tests otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from askagency.config import PROJECT_ROOT
from askagency.launcher import OFFLINE_ENV, http_ok

# The real stack (Rasa server, action server, console with the sample KB), shared with tests/e2e.
from askagency.ports import free_port

# The real stack (Rasa server, action server, console with the sample KB), shared with tests/e2e.
from tests.services import unavailable
from tests.stack import cli  # noqa: F401

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
AXE_JS = HERE / "vendor" / "axe.min.js"
FAKE_TOKEN = "fake-token"
# Signs widget conversations in the fake stack (fake Rasa issues, the console checks).
FAKE_CONVERSATION_SECRET = "browser-tests-conversation-secret-0123456789"


def chromium_path() -> str:
    path = os.environ.get("ASKAGENCY_CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        unavailable(f"Chromium not found at {path} (run `make browser` or apt install chromium)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped on purpose: Playwright's sync API keeps an asyncio loop running while it is
    open, which would break every pytest-asyncio test collected after the browser tests."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class PageFactory:
    """New pages in fresh browser profiles (own localStorage, so own conversation).

    Every page fails the test on an uncaught JavaScript error. ``bypass_csp=True`` switches off
    the console's Content-Security-Policy for that profile: the XSS tests need it so that only
    the widget's own rendering (not the CSP) stands between a payload and its execution, and axe
    is injected as an inline script.
    """

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.errors: list[str] = []
        # Every page's console output and failed requests, shown when the test fails (a
        # widget warning such as "history not loaded" is otherwise invisible).
        self.console: list[str] = []

    def context(self, width: int = 1280, height: int = 800, **kwargs: Any) -> Any:
        ctx = self.browser.new_context(
            viewport={"width": width, "height": height}, locale="en-US", **kwargs
        )
        ctx.set_default_timeout(30_000)
        self.contexts.append(ctx)
        return ctx

    def page(self, ctx: Any = None, **kwargs: Any) -> Any:
        pg = (ctx or self.context(**kwargs)).new_page()
        pg.on("pageerror", lambda exc: self.errors.append(str(exc)))
        pg.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        pg.on(
            "requestfailed",
            lambda req: self.console.append(f"request failed: {req.url} {req.failure}"),
        )
        return pg

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failed browser test, the report also shows what the pages logged and the end of the
    fake stack's logs, so a failure seen once in CI can be read afterwards."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    factory = funcargs.get("pages")
    if isinstance(factory, PageFactory) and factory.console:
        report.sections.append(("browser console", "\n".join(factory.console[-200:])))
    for value in funcargs.values():
        if isinstance(value, FakeStack):
            for name, tail in value.log_tails().items():
                report.sections.append((f"fake stack {name}", tail))


@pytest.fixture
def pages(browser: Any) -> Iterator[PageFactory]:
    factory = PageFactory(browser)
    yield factory
    factory.close()
    assert not factory.errors, f"JavaScript errors on the page: {factory.errors}"


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited: {log.read_text(errors='replace')[-2000:]}")
        if http_ok(url):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready; log: {log.read_text(errors='replace')[-2000:]}")


class FakeStack:
    """The scripted fake Rasa (tests/browser/fake_rasa.py) and a real console pointing at it."""

    def __init__(self, rasa_url: str, console_url: str, log_dir: Path | None = None) -> None:
        self.rasa_url = rasa_url
        self.console_url = console_url
        self.log_dir = log_dir

    def log_tails(self, chars: int = 4000) -> dict[str, str]:
        """The end of each process's log (shown when a test fails: pytest keeps only the last
        three temporary folders, so a CI failure's logs are gone by the time anyone looks)."""
        if self.log_dir is None:
            return {}
        return {
            log.name: log.read_text(errors="replace")[-chars:]
            for log in sorted(self.log_dir.glob("*.log"))
        }

    def agent_says(self, session_id: str, text: str, **extra: object) -> None:
        import json

        body = json.dumps({"text": text, **extra}).encode()
        req = urllib.request.Request(
            f"{self.rasa_url}/test/agent/{session_id}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
            assert resp.status == 200

    def wait_until_disconnected(self, session_id: str, timeout: float = 30) -> None:
        """Returns once no socket of the conversation is joined at the fake Rasa. A closed tab's
        socket can outlive ``page.close()`` for a moment under load; a message sent then still
        reaches the closing page, which counts it as seen."""
        import json

        url = f"{self.rasa_url}/test/sockets/{session_id}"
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback)
                joined = json.loads(resp.read())["sockets"]
            if joined == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{joined} socket(s) still joined to {session_id}")
            time.sleep(0.1)

    def received(self) -> list[dict[str, Any]]:
        import json

        with urllib.request.urlopen(f"{self.rasa_url}/test/received", timeout=10) as resp:  # noqa: S310
            return json.loads(resp.read())


@contextmanager
def running_fake_stack(tmp: Path, env: dict[str, str] | None = None) -> Iterator[FakeStack]:
    """The scripted Rasa and a real console on free ports, data in ``tmp/data`` and logs in
    ``tmp``; ``env`` adds settings (a database, say). Stopped on exit."""
    rasa_python = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
    if not rasa_python.exists():
        pytest.skip(".venv-rasa is missing (run `make setup`)")
    rasa_port, console_port = free_port(), free_port()
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    console_url = f"http://127.0.0.1:{console_port}"
    full_env = {
        **os.environ,
        **OFFLINE_ENV,
        "ASKAGENCY_DATA_DIR": str(tmp / "data"),
        "ASKAGENCY_RASA_URL": rasa_url,
        "ASKAGENCY_RASA_TOKEN": FAKE_TOKEN,
        "ASKAGENCY_CONVERSATION_SECRET": FAKE_CONVERSATION_SECRET,
        **(env or {}),
    }
    commands = {
        "fake_rasa": (
            [str(rasa_python), str(HERE / "fake_rasa.py"), str(rasa_port), FAKE_TOKEN],
            rasa_url + "/",
        ),
        "console": (
            [sys.executable, "-m", "console", "--port", str(console_port)],
            console_url + "/health",
        ),
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, (command, ready_url) in commands.items():
            log = tmp / f"{name}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    command, cwd=PROJECT_ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
                )
            procs.append(proc)
            _wait_http(ready_url, proc, log)
        yield FakeStack(rasa_url, console_url, tmp)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def fake_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeStack]:
    with running_fake_stack(tmp_path_factory.mktemp("widget-fake")) as stack:
        yield stack
