"""Faults reproduced against the real processes of the session stack.

* the action server killed mid-conversation, and hung (SIGSTOP): Rasa answers with the
  "can't look that up right now" fallback and a person offer, stays up, and answers again once
  the action server is back, without a Rasa restart;
* the index's CURRENT pointer moved to a corrupt bundle, or removed: the previous index keeps
  answering, the action server's /ready and the console's /api/health/index report the error,
  editors see the banner; restoring CURRENT clears the alert;
* /health and /ready of every process.

Every test leaves the stack as it found it (processes running, index restored).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from askagency.bot_messages import MessageType
from askagency.launcher import Stack, analytics_port
from knowledge_base.index import CURRENT_FILE, read_current, write_current
from tests.e2e.test_kb_console import ConsoleClient
from tests.e2e.test_kb_console import console as console  # noqa: F401 (fixture)
from tests.stack import RestClient, custom_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUESTION = "can I bring my laptop in my carry-on"
FAQ_ID = "electronics-laptop-carry-on"


def new_sender() -> str:
    return f"fault-{uuid.uuid4().hex[:10]}"


def get_json(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def action_base(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.cfg.action_port}"


def assert_answered(messages: list[dict]) -> None:
    customs = custom_of(messages)
    assert any(
        c.get("type") == MessageType.FAQ_ANSWER and c.get("faq_id") == FAQ_ID for c in customs
    ), messages


def assert_unavailable_fallback(messages: list[dict]) -> None:
    assert messages, "the citizen got no reply at all"
    fallback = [m for m in messages if (m.get("custom") or {}).get("reason") == "unavailable"]
    assert fallback, messages
    message = fallback[0]
    assert message["custom"] == {"type": MessageType.FALLBACK, "reason": "unavailable"}
    assert "can't look that up right now" in message["text"]
    assert {"title": "Talk to a person", "payload": "/ask_human"} in message["buttons"]


def rasa_pid(stack: Stack) -> int:
    return stack.procs["rasa"].pid


def test_every_process_reports_health_and_readiness(stack: Stack) -> None:
    status, body = get_json(action_base(stack) + "/health")
    assert status == 200, body
    status, body = get_json(action_base(stack) + "/ready")
    assert status == 200 and body["status"] == "ready", body
    assert body["index"]["serving"] and body["index"]["last_error"] is None
    assert body["database"] == {"ok": True}

    status, body = get_json(stack.cfg.console_url + "/ready")
    assert (status, body["database"]) == (200, {"ok": True}), body

    analytics = f"http://127.0.0.1:{analytics_port(stack.cfg)}"
    status, body = get_json(analytics + "/ready")
    assert status == 200 and body["database"] == {"ok": True}, body


def test_action_server_killed_mid_conversation_then_recovers(
    stack: Stack, rest: RestClient
) -> None:
    sender = new_sender()
    rasa_before = rasa_pid(stack)
    assert_answered(rest.send(sender, QUESTION))
    stack.stop("actions")
    try:
        started = time.monotonic()
        # Same conversation, server gone (other wording: identical texts are rate-limited).
        messages = rest.send(sender, "is a laptop allowed in my carry-on bag")
        assert time.monotonic() - started < 10, "a refused connection must answer fast"
        assert_unavailable_fallback(messages)
        # Rasa itself is unharmed and still answers what needs no custom action.
        assert rest.send(sender, "hello"), "Rasa stopped answering"
        assert stack.procs["rasa"].poll() is None
    finally:
        stack.restart("actions")  # waits for /ready
    # A new conversation: in the old one, asking the same thing again counts as frustration.
    assert_answered(rest.send(new_sender(), QUESTION))
    assert rasa_pid(stack) == rasa_before, "Rasa must not need a restart"

    # The failed turn is in the tracker (and so in the event broker) as a fallback.
    request = urllib.request.Request(
        f"{stack.cfg.rasa_url}/conversations/{sender}/tracker?token={stack.cfg.rasa_token}"
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        events = json.loads(resp.read())["events"]
    reasons = [
        ((e.get("data") or {}).get("custom") or {}).get("reason")
        for e in events
        if e.get("event") == "bot"
    ]
    assert "unavailable" in reasons


def test_hung_action_server_is_cut_off_and_recovers(stack: Stack, rest: RestClient) -> None:
    pid = stack.procs["actions"].pid
    sender = new_sender()
    os.killpg(pid, signal.SIGSTOP)  # accepts connections (kernel) but never answers
    try:
        started = time.monotonic()
        messages = rest.send(sender, QUESTION)
        elapsed = time.monotonic() - started
    finally:
        os.killpg(pid, signal.SIGCONT)
    assert_unavailable_fallback(messages)
    assert elapsed < 30, f"the citizen waited {elapsed:.1f} s"
    assert_answered(rest.send(new_sender(), QUESTION))


@pytest.fixture
def index_dir(stack: Stack) -> Iterator[Path]:
    """The stack's index folder; CURRENT is restored after the test whatever happens."""
    folder = stack.cfg.data_dir / "index"
    good = read_current(folder)
    yield folder
    write_current(folder, good)
    # The next question makes the action server notice CURRENT moved back.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        RestClient(stack.cfg.rasa_url).send(new_sender(), QUESTION)
        _, body = get_json(action_base(stack) + "/ready")
        if body["index"]["last_error"] is None:
            break
        time.sleep(0.5)
    for leftover in folder.glob("corrupt-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def test_corrupt_index_keeps_the_previous_one_serving_and_alerts_editors(
    stack: Stack,
    rest: RestClient,
    index_dir: Path,
    console: ConsoleClient,  # noqa: F811
) -> None:
    good = read_current(index_dir)
    bad = f"corrupt-{uuid.uuid4().hex[:8]}"
    shutil.copytree(index_dir / good, index_dir / bad)
    vectors = index_dir / bad / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])
    write_current(index_dir, bad)

    assert_answered(rest.send(new_sender(), QUESTION))  # the old bundle answers
    status, body = get_json(action_base(stack) + "/ready")
    assert status == 200, body  # still able to answer: ready, but with an error to report
    assert body["index"]["serving"] == good
    assert body["index"]["last_error"]

    status, health = console.call("GET", "/api/health/index")
    assert status == 200, health
    assert health["ok"] is False and health["serving"] == good and health["last_error"]
    page = console.opener.open(stack.cfg.console_url + "/console", timeout=30).read().decode()
    assert 'id="index-alert"' in page and "/static/console/index_alert.js" in page

    write_current(index_dir, good)
    assert_answered(rest.send(new_sender(), QUESTION))
    _, body = get_json(action_base(stack) + "/ready")
    assert body["index"]["last_error"] is None
    status, health = console.call("GET", "/api/health/index")
    assert health["ok"] is True, health


def test_missing_index_pointer_keeps_serving(
    stack: Stack, rest: RestClient, index_dir: Path
) -> None:
    good = read_current(index_dir)
    (index_dir / CURRENT_FILE).unlink()
    assert_answered(rest.send(new_sender(), QUESTION))
    _, body = get_json(action_base(stack) + "/ready")
    assert body["index"]["serving"] == good and body["index"]["last_error"], body


def test_index_health_needs_an_editor(stack: Stack) -> None:
    status, body = get_json(stack.cfg.console_url + "/api/health/index")
    assert status == 401, body
