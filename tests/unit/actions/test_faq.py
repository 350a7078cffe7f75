"""The custom actions with rasa-sdk's own dispatcher and tracker; the knowledge base is faked.

The fakes stand in for ``RetrieverHandle``/``Retriever`` (``knowledge_base.retriever``) and
``decide`` (``knowledge_base.decision``) so these tests check only what the actions add: one
message per turn with text, buttons and ``custom`` metadata, slots, and the failure paths.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import kb
from actions.faq import ActionAnswerFaq, choose_payload
from actions.feedback import ActionFeedback
from askagency.bot_messages import MessageType
from askagency.config import Settings, get_settings
from askagency.ports import free_port
from knowledge_base.types import Decision, FaqHit, Outcome
from tests.fakes import FakeHandle, FakeRetriever
from tests.unit.action_calls import faq_call

ROOT = Path(__file__).resolve().parents[3]


def hit(faq_id: str, score: float, url: str | None = "https://example.gov/faq") -> FaqHit:
    return FaqHit(
        faq_id=faq_id,
        score=score,
        question=f"Question {faq_id}?",
        answer=f"Answer {faq_id}.",
        language="en",
        category="items",
        source_url=url,
        matched_text=f"Question {faq_id}?",
    )


@pytest.fixture
def settings(tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("ASKAGENCY_MAX_MESSAGE_CHARS", "50")
    monkeypatch.setenv("ASKAGENCY_SEARCH_TOP_K", "7")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[FaqHit], Settings]]:
    """Replace decide() by the rule "the test's next Decision"; records what it was given."""
    seen: list[tuple[list[FaqHit], Settings]] = []
    monkeypatch.setattr(kb, "_decide", lambda hits, s: seen.append((hits, s)) or NEXT[0])
    return seen


NEXT: list[Decision] = [Decision(outcome=Outcome.HANDOFF)]


@pytest.fixture(autouse=True)
def _reset_handle() -> Iterator[None]:
    yield
    kb.set_handle(None)


def use(decision: Decision, retriever: FakeRetriever | None = None) -> FakeRetriever:
    NEXT[0] = decision
    retriever = retriever or FakeRetriever(list(decision.hits))
    kb.set_handle(FakeHandle(retriever))
    return retriever


def tracker(
    text: str = "can I bring a knife",
    intent: str = "ask_question",
    metadata: dict[str, Any] | None = None,
    slots: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
        "metadata": metadata or {},
    }
    return Tracker(
        sender_id="citizen-1",
        slots=slots or {},
        latest_message=latest,
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def run(t: Tracker) -> tuple[list[dict[str, Any]], list[Any]]:
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerFaq().run(dispatcher, t, {})
    return dispatcher.messages, events


def slot_events(events: list[Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


async def test_answer_message_has_text_source_and_metadata(settings, decisions) -> None:
    top = hit("knives", 0.83456)
    retriever = use(Decision(Outcome.ANSWER, (top, hit("tools", 0.5)), top_score=0.83456))

    messages, events = await run(tracker(metadata={"language": "en"}))

    assert len(messages) == 1
    message = messages[0]
    assert message["text"] == "Answer knives.\nSource: https://example.gov/faq"
    assert message["buttons"] == []
    assert message["custom"] == {
        "type": MessageType.FAQ_ANSWER,
        "faq_id": "knives",
        "score": 0.835,
        "source_url": "https://example.gov/faq",
        "language": "en",
    }
    assert retriever.calls == [("can I bring a knife", 7, "en")]
    assert decisions[0][0] == [top, hit("tools", 0.5)]
    assert slot_events(events) == {
        "language": "en",
        "last_faq_id": "knives",
        "consecutive_fallbacks": 0,
        "clarify_options": None,
    }


async def test_answer_without_source_url_has_no_source_line(settings, decisions) -> None:
    top = hit("knives", 0.9, url=None)
    use(Decision(Outcome.ANSWER, (top,), top_score=0.9))

    messages, _ = await run(tracker())

    assert messages[0]["text"] == "Answer knives."
    assert messages[0]["custom"]["source_url"] is None


async def test_clarify_offers_at_most_the_configured_options_as_buttons(
    settings, decisions
) -> None:
    hits = tuple(hit(f"faq{i}", 0.55 - i / 100) for i in range(4))
    use(Decision(Outcome.CLARIFY, hits, top_score=0.55))

    messages, events = await run(tracker())

    assert len(messages) == 1
    message = messages[0]
    assert message["text"] == "Did you mean one of these?"
    assert message["buttons"] == [
        *(
            {"title": f"Question faq{i}?", "payload": f'/choose_faq{{"faq_id":"faq{i}"}}'}
            for i in range(3)
        ),
        {"title": "None of these", "payload": '/choose_faq{"faq_id":"-none"}'},
    ]
    assert message["custom"] == {
        "type": MessageType.CLARIFY,
        "options": [
            {"faq_id": "faq0", "title": "Question faq0?", "score": 0.55},
            {"faq_id": "faq1", "title": "Question faq1?", "score": 0.54},
            {"faq_id": "faq2", "title": "Question faq2?", "score": 0.53},
        ],
    }
    remembered = slot_events(events)["clarify_options"]
    assert [o["faq_id"] for o in remembered] == ["faq0", "faq1", "faq2"]
    assert remembered[0]["answer"] == "Answer faq0."


async def test_a_single_clarify_option_is_a_yes_no_question(settings, decisions) -> None:
    use(Decision(Outcome.CLARIFY, (hit("faq0", 0.55),), top_score=0.55))

    messages, events = await run(tracker())

    message = messages[0]
    assert message["text"] == "Did you mean: Question faq0?"
    assert message["buttons"] == [
        {"title": "Yes", "payload": '/choose_faq{"faq_id":"faq0"}'},
        {"title": "No", "payload": '/choose_faq{"faq_id":"-none"}'},
    ]
    assert message["custom"]["type"] == MessageType.CLARIFY
    assert [o["faq_id"] for o in message["custom"]["options"]] == ["faq0"]
    assert [o["faq_id"] for o in slot_events(events)["clarify_options"]] == ["faq0"]


async def test_none_of_these_invites_a_rephrasing_and_offers_a_person(settings, decisions) -> None:
    retriever = use(Decision(Outcome.HANDOFF))
    t = tracker(
        text='/choose_faq{"faq_id":"-none"}',
        intent="choose_faq",
        entities=[{"entity": "faq_id", "value": "-none"}],
        slots={"clarify_options": [{"faq_id": "faq0", "answer": "x"}], "language": "en"},
    )

    messages, events = await run(t)

    assert retriever.calls == []
    assert messages[0]["custom"] == {"type": MessageType.FALLBACK, "reason": "none_of_these"}
    assert "other words" in messages[0]["text"]
    assert messages[0]["buttons"] == [{"title": "Talk to a person", "payload": "/ask_human"}]
    slots = slot_events(events)
    assert slots["clarify_options"] is None and slots["consecutive_fallbacks"] == 1
    assert "last_faq_id" not in slots


def test_choose_payload_is_the_choose_faq_intent_with_a_json_entity() -> None:
    payload = choose_payload('id with "quotes"')
    assert payload.startswith("/choose_faq{")
    assert json.loads(payload[len("/choose_faq") :]) == {"faq_id": 'id with "quotes"'}


async def test_low_confidence_offers_a_person_and_counts_fallbacks(settings, decisions) -> None:
    use(Decision(Outcome.HANDOFF, (hit("far", 0.21234),), top_score=0.21234))

    # (a second fallback in a row hands over to a person: tests/unit/actions/test_handoff.py)
    messages, events = await run(tracker(slots={"consecutive_fallbacks": 0.0}))

    assert len(messages) == 1
    message = messages[0]
    assert "talk to a person" in message["text"]
    assert message["buttons"] == [{"title": "Talk to a person", "payload": "/ask_human"}]
    assert message["custom"] == {
        "type": MessageType.FALLBACK,
        "reason": "low_confidence",
        "score": 0.212,
    }
    assert slot_events(events)["consecutive_fallbacks"] == 1


async def test_low_confidence_suggests_the_near_misses_and_a_press_answers(
    settings, decisions
) -> None:
    near = (hit("liquids", 0.46789), hit("aerosols", 0.4))
    use(Decision(Outcome.HANDOFF, (*near, hit("far", 0.2)), 0.46789, suggestions=near))

    messages, events = await run(tracker(slots={"consecutive_fallbacks": 0.0}))

    assert len(messages) == 1
    message = messages[0]
    assert message["text"].startswith("Sorry, I don't have a sure answer")
    assert message["buttons"] == [
        {"title": "Question liquids?", "payload": '/choose_faq{"faq_id":"liquids"}'},
        {"title": "Question aerosols?", "payload": '/choose_faq{"faq_id":"aerosols"}'},
        {"title": "Talk to a person", "payload": "/ask_human"},
    ]
    assert message["custom"] == {
        "type": MessageType.FALLBACK,
        "reason": "low_confidence",
        "score": 0.468,
        "suggestions": [
            {"faq_id": "liquids", "title": "Question liquids?", "score": 0.468},
            {"faq_id": "aerosols", "title": "Question aerosols?", "score": 0.4},
        ],
    }
    slots = slot_events(events)
    assert slots["consecutive_fallbacks"] == 1  # still no answer until a press
    assert [o["faq_id"] for o in slots["clarify_options"]] == ["liquids", "aerosols"]

    # Pressing a suggestion answers it from the remembered list, without another search.
    retriever = use(Decision(Outcome.HANDOFF))
    pressed = tracker(
        text='/choose_faq{"faq_id":"liquids"}',
        intent="choose_faq",
        entities=[{"entity": "faq_id", "value": "liquids"}],
        slots={"clarify_options": slots["clarify_options"], "language": "en"},
    )
    messages, events = await run(pressed)
    assert retriever.calls == []
    assert messages[0]["custom"]["faq_id"] == "liquids"
    assert messages[0]["text"].startswith("Answer liquids.")
    assert slot_events(events)["consecutive_fallbacks"] == 0


async def test_clarify_without_options_falls_back(settings, decisions) -> None:
    use(Decision(Outcome.CLARIFY, (), top_score=0.45))

    messages, _ = await run(tracker())

    assert messages[0]["custom"]["reason"] == "low_confidence"


async def test_too_long_message_is_not_searched(settings, decisions) -> None:
    retriever = use(Decision(Outcome.ANSWER, (hit("x", 0.9),), top_score=0.9))

    messages, events = await run(tracker(text="x" * 51))

    assert retriever.calls == []
    assert len(messages) == 1
    assert "51 characters" in messages[0]["text"] and "50" in messages[0]["text"]
    assert messages[0]["custom"] == {"type": MessageType.FALLBACK, "reason": "too_long"}
    assert messages[0]["buttons"][0]["payload"] == "/ask_human"
    assert "last_faq_id" not in slot_events(events)


async def test_message_at_the_limit_is_searched(settings, decisions) -> None:
    retriever = use(Decision(Outcome.ANSWER, (hit("x", 0.9),), top_score=0.9))

    await run(tracker(text="y" * 50))

    assert len(retriever.calls) == 1


@pytest.mark.parametrize("text", ["", "   \n\t "])
async def test_empty_message_gets_a_prompt(settings, decisions, text: str) -> None:
    retriever = use(Decision(Outcome.ANSWER, (hit("x", 0.9),), top_score=0.9))

    messages, _ = await run(tracker(text=text))

    assert retriever.calls == []
    assert len(messages) == 1
    assert "question" in messages[0]["text"]
    assert messages[0]["custom"] == {"type": MessageType.PROMPT, "reason": "empty"}


@pytest.mark.parametrize(
    "handle",
    [
        FakeHandle(error=FileNotFoundError("no index in /nowhere")),
        FakeHandle(FakeRetriever([], error=RuntimeError("faiss exploded"))),
    ],
    ids=["index-missing", "search-fails"],
)
async def test_unavailable_knowledge_base_answers_gracefully(
    settings, decisions, caplog: pytest.LogCaptureFixture, handle: FakeHandle
) -> None:
    kb.set_handle(handle)

    with caplog.at_level(logging.ERROR, logger="actions.faq"):
        messages, events = await run(tracker())

    assert len(messages) == 1
    assert "can't look that up" in messages[0]["text"]
    assert messages[0]["buttons"] == [{"title": "Talk to a person", "payload": "/ask_human"}]
    assert messages[0]["custom"] == {"type": MessageType.FALLBACK, "reason": "unavailable"}
    assert any("FAQ lookup failed" in r.getMessage() for r in caplog.records)
    assert "consecutive_fallbacks" not in slot_events(events)


async def test_failing_decide_is_reported_as_unavailable(settings, monkeypatch) -> None:
    kb.set_handle(FakeHandle(FakeRetriever([hit("a", 0.9)])))

    def broken(hits, s):
        raise ValueError("bad thresholds")

    monkeypatch.setattr(kb, "_decide", broken)

    messages, _ = await run(tracker())

    assert messages[0]["custom"]["reason"] == "unavailable"


async def test_choose_faq_answers_from_the_remembered_options(settings, decisions) -> None:
    retriever = use(Decision(Outcome.HANDOFF))
    options = [
        {
            "faq_id": "liquids",
            "question": "Liquids?",
            "answer": "3-1-1 rule.",
            "source_url": "https://example.gov/liquids",
            "language": "en",
            "category": "items",
            "score": 0.51234,
        },
        {"faq_id": "food", "question": "Food?", "answer": "Solid food is fine.", "score": 0.5},
    ]
    t = tracker(
        text='/choose_faq{"faq_id":"liquids"}',
        intent="choose_faq",
        entities=[{"entity": "faq_id", "value": "liquids"}],
        slots={"clarify_options": options, "faq_id": "liquids", "language": "en"},
    )

    messages, events = await run(t)

    assert retriever.calls == []
    assert len(messages) == 1
    assert messages[0]["text"] == "3-1-1 rule.\nSource: https://example.gov/liquids"
    assert messages[0]["custom"] == {
        "type": MessageType.FAQ_ANSWER,
        "faq_id": "liquids",
        "score": 0.512,
        "source_url": "https://example.gov/liquids",
        "language": "en",
    }
    assert slot_events(events)["last_faq_id"] == "liquids"


async def test_choose_faq_for_an_unknown_option_asks_again(settings, decisions) -> None:
    retriever = use(Decision(Outcome.HANDOFF))
    t = tracker(
        text='/choose_faq{"faq_id":"gone"}',
        intent="choose_faq",
        entities=[{"entity": "faq_id", "value": "gone"}],
        slots={"clarify_options": [{"faq_id": "other", "answer": "x"}]},
    )

    messages, events = await run(t)

    assert retriever.calls == []
    assert messages[0]["custom"] == {"type": MessageType.FALLBACK, "reason": "unknown_option"}
    assert "last_faq_id" not in slot_events(events)


@pytest.mark.parametrize(
    ("metadata", "slot", "expected"),
    [
        ({"language": "es-MX"}, "en", "es"),
        ({}, "es", "es"),
        ({"language": 42}, None, "en"),
        (None, None, "en"),
    ],
)
async def test_language_comes_from_metadata_then_slot_then_default(
    settings, decisions, metadata, slot, expected
) -> None:
    retriever = use(Decision(Outcome.HANDOFF))

    _, events = await run(tracker(metadata=metadata, slots={"language": slot}))

    assert retriever.calls[0][2] == expected
    assert slot_events(events).get("language", slot) == expected


def test_failed_handle_creation_is_retried(settings, monkeypatch) -> None:
    attempts: list[int] = []

    def create(s: Settings) -> FakeHandle:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("model files missing")
        return FakeHandle(FakeRetriever([]))

    monkeypatch.setattr(kb, "_create_handle", create)

    assert kb.warm_up() is False
    assert kb.warm_up() is True
    assert len(attempts) == 2
    assert kb.warm_up() is True
    assert len(attempts) == 2


@pytest.mark.parametrize(
    ("intent", "verdict"), [("feedback_good", "good"), ("feedback_bad", "bad")]
)
async def test_feedback_replies_with_the_domain_response_and_sets_the_slot(
    intent: str, verdict: str
) -> None:
    dispatcher = CollectingDispatcher()

    events = await ActionFeedback().run(dispatcher, tracker(text="x", intent=intent), {})

    assert [m["response"] for m in dispatcher.messages] == [f"utter_feedback_{verdict}"]
    assert events == [SlotSet("last_feedback", verdict)]


async def test_feedback_for_another_intent_does_nothing() -> None:
    dispatcher = CollectingDispatcher()

    events = await ActionFeedback().run(dispatcher, tracker(intent="greet"), {})

    assert dispatcher.messages == [] and events == []


def test_every_domain_response_carries_a_custom_type() -> None:
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    assert domain["responses"]
    for name, variants in domain["responses"].items():
        for variant in variants:
            assert variant.get("text"), name
            assert isinstance(variant.get("custom", {}).get("type"), str), name


def test_domain_declares_the_actions_and_slots_the_actions_use() -> None:
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    assert {"action_answer_faq", "action_feedback"} <= set(domain["actions"])
    for slot in ("language", "last_faq_id", "consecutive_fallbacks", "clarify_options"):
        assert domain["slots"][slot]["influence_conversation"] is False
    assert domain["slots"]["handoff_active"]["influence_conversation"] is True
    assert {"utter_feedback_good", "utter_feedback_bad"} <= set(domain["responses"])


def test_every_rule_is_off_while_a_person_has_the_conversation() -> None:
    rules = yaml.safe_load((ROOT / "bot" / "data" / "rules.yml").read_text())["rules"]
    for rule in rules:
        assert {"slot_was_set": [{"handoff_active": False}]} in rule.get("condition", []), rule


def _post_json(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_action_server_process_starts_without_an_index_and_answers(tmp_path: Path) -> None:
    """The real ``python -m actions.server`` in one process: healthy although the index is
    missing, and the FAQ action answers with the "unavailable" fallback instead of failing.
    L1: only a caller with the installation's shared secret (what Rasa sends) runs actions,
    and no browser origin is allowed (no CORS header)."""
    from askagency.secrets import ACTION_SECRET_ENV, ACTION_SECRET_HEADER, load_or_create_secret

    port = free_port()
    env = {
        **os.environ,
        "ASKAGENCY_DATA_DIR": str(tmp_path),
        "ASKAGENCY_INDEX_DIR": str(tmp_path / "no-index-here"),
    }
    env.pop(ACTION_SECRET_ENV, None)
    secret = {ACTION_SECRET_HEADER: load_or_create_secret(tmp_path, "action_secret")}
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "actions.server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert json.loads(r.read()) == {"status": "ok"}
                    break
            except OSError:
                assert time.monotonic() < deadline, "action server did not become healthy"
                time.sleep(0.3)

        call = faq_call("can I bring a knife")
        # The review's L1 test: a forged tracker from anyone who can reach the port.
        forged = {
            **call,
            "next_action": "action_relay_to_agent",
            "sender_id": "sms-15551234567",
        }
        assert _post_json(f"http://127.0.0.1:{port}/webhook", forged)[0] == 401
        wrong = {ACTION_SECRET_HEADER: "askagency-dev-token"}
        assert _post_json(f"http://127.0.0.1:{port}/webhook", forged, wrong)[0] == 401
        preflight = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhook",
            method="OPTIONS",
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        try:
            with urllib.request.urlopen(preflight, timeout=10) as r:
                allowed = r.headers.get("Access-Control-Allow-Origin")
        except urllib.error.HTTPError as exc:
            allowed = exc.headers.get("Access-Control-Allow-Origin")
        assert allowed is None

        status, body = _post_json(f"http://127.0.0.1:{port}/webhook", call, secret)
        assert status == 200, body
        assert len(body["responses"]) == 1
        assert body["responses"][0]["custom"] == {
            "type": MessageType.FALLBACK,
            "reason": "unavailable",
        }
        assert body["responses"][0]["buttons"][0]["payload"] == "/ask_human"

        status, body = _post_json(
            f"http://127.0.0.1:{port}/webhook", {**call, "next_action": "action_nope"}, secret
        )
        assert status == 404
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
    assert "knowledge base warm-up skipped" in (tmp_path / "server.log").read_text()


async def test_fixed_texts_follow_the_language_and_fall_back_to_english(
    settings, decisions
) -> None:
    use(Decision(Outcome.CLARIFY, (hit("a", 0.5), hit("b", 0.45)), top_score=0.5))

    spanish, _ = await run(tracker(metadata={"language": "es"}))
    german, _ = await run(tracker(metadata={"language": "de"}))

    assert spanish[0]["text"] == "¿Quiso decir alguna de estas?"
    assert german[0]["text"] == "Did you mean one of these?"


def test_every_language_has_every_text() -> None:
    from actions.messages import TEXTS

    for language, table in TEXTS.items():
        assert set(table) == set(TEXTS["en"]), language


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ((0.9, 0.5), "faq_answer"),
        ((0.6, 0.58), "clarify"),
        ((0.2,), "fallback"),
        ((), "fallback"),
    ],
)
async def test_real_decide_drives_the_message_type(
    settings, scores: tuple[float, ...], expected: str
) -> None:
    """With the real ``knowledge_base.decision.decide`` and the configured thresholds."""
    kb.set_handle(FakeHandle(FakeRetriever([hit(f"f{i}", s) for i, s in enumerate(scores)])))

    messages, _ = await run(tracker())

    assert len(messages) == 1
    assert messages[0]["custom"]["type"] == expected
