"""bot/action_guard.py against a real HTTP action endpoint: down, slow, failing, rejecting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from channel_kit import free_port
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot import action_guard

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
slots:
  language:
    type: text
    mappings: [{type: custom}]
actions: [action_answer_faq]
"""
)


async def _serve(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/webhook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/webhook"


async def _run(url: str, language: str | None = None) -> list[Any]:
    action_guard.install()
    tracker = DialogueStateTracker("citizen-1", DOMAIN.slots)
    if language:
        tracker.update(SlotSet("language", language))
    action = RemoteAction("action_answer_faq", EndpointConfig(url))
    return await action.run(
        CollectingOutputChannel(), TemplatedNaturalLanguageGenerator({}), tracker, DOMAIN
    )


def _assert_fallback(events: list[Any], text_start: str = "Sorry, I can't look") -> None:
    assert len(events) == 1 and isinstance(events[0], BotUttered)
    event = events[0]
    assert event.text.startswith(text_start)
    assert event.data["custom"] == {"type": "fallback", "reason": "unavailable"}
    assert event.data["buttons"][0]["payload"] == "/ask_human"


def test_install_is_idempotent() -> None:
    action_guard.install()
    first = RemoteAction.run
    action_guard.install()
    assert RemoteAction.run is first


def test_action_server_down_gives_the_fallback_reply() -> None:
    url = f"http://127.0.0.1:{free_port()}/webhook"  # nobody listens
    _assert_fallback(asyncio.run(_run(url)))


def test_fallback_speaks_the_conversation_language() -> None:
    url = f"http://127.0.0.1:{free_port()}/webhook"
    _assert_fallback(asyncio.run(_run(url, language="es")), "Lo siento")


def test_slow_action_server_is_cut_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASKAGENCY_ACTION_TIMEOUT_S", "0.5")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"events": [], "responses": []})

    async def scenario() -> tuple[list[Any], float]:
        runner, url = await _serve(slow)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            events = await _run(url)
            return events, loop.time() - started
        finally:
            await runner.cleanup()

    events, elapsed = asyncio.run(scenario())
    _assert_fallback(events)
    assert elapsed < 2.0


def test_server_error_gives_the_fallback_and_success_passes_through() -> None:
    calls = {"n": 0}

    async def flaky(_: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return web.json_response({"error": "boom"}, status=500)
        return web.json_response(
            {"events": [], "responses": [{"text": "Yes, laptops are allowed."}]}
        )

    async def scenario() -> tuple[list[Any], list[Any]]:
        runner, url = await _serve(flaky)
        try:
            return await _run(url), await _run(url)
        finally:
            await runner.cleanup()

    failed, recovered = asyncio.run(scenario())
    _assert_fallback(failed)
    assert [e.text for e in recovered] == ["Yes, laptops are allowed."]


def test_form_rejection_is_not_swallowed() -> None:
    async def reject(_: web.Request) -> web.Response:
        return web.json_response(
            {"action_name": "action_answer_faq", "error": "rejected"}, status=400
        )

    async def scenario() -> None:
        runner, url = await _serve(reject)
        try:
            await _run(url)
        finally:
            await runner.cleanup()

    with pytest.raises(ActionExecutionRejection):
        asyncio.run(scenario())


def test_timeout_setting_falls_back_on_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw in ("abc", "-1", "0"):
        monkeypatch.setenv("ASKAGENCY_ACTION_TIMEOUT_S", raw)
        assert action_guard.action_timeout_s() == action_guard.DEFAULT_TIMEOUT_S
    monkeypatch.setenv("ASKAGENCY_ACTION_TIMEOUT_S", "2.5")
    assert action_guard.action_timeout_s() == 2.5
