"""Prometheus ``/metrics`` on the action server, the console and the analytics consumer, and
the JSON log option (askagency/metrics.py, askagency/logging_setup.py, docs/scale.md).

The action server runs as the real ``python -m actions.server`` process on a real tiny index;
the console is the real aiohttp app; the consumer is the real ``Consumer`` on a Rasa SQL broker
file with its real health listener."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import ActionAnswerFaq
from analytics.consumer import Consumer, start_health_server
from askagency.bot_messages import TURN_OUTCOMES
from askagency.config import Settings, embedded_database_url, get_settings
from askagency.logging_setup import configure_logging
from askagency.ports import free_port
from console.app import create_app
from knowledge_base.decision import decide
from knowledge_base.index import build_bundle, save_bundle
from tests.console_helpers import login
from tests.fakes import FakeHandle, FakeRetriever
from tests.unit.action_calls import faq_call
from tests.unit.actions.test_faq import hit, tracker
from tests.unit.analytics.test_ingest import rasa_broker_file
from tests.unit.analytics.test_scenario import scenario_events
from tests.unit.console.test_auth import users  # noqa: F401 (fixture)
from tests.unit.kb_tiny import TINY_KB, shared_embedder

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "prometheus-scrape-token-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of an exposition text."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post_json(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# --- action server -------------------------------------------------------------------------


@pytest.fixture
def action_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    """A real action server on a tiny real index; yields (base url, secret header, version)."""
    from askagency.migrate import upgrade
    from askagency.secrets import ACTION_SECRET_ENV, ACTION_SECRET_HEADER, load_or_create_secret

    data_dir = tmp_path / "data"
    index_dir = data_dir / "index"
    version = save_bundle(build_bundle(TINY_KB, shared_embedder()), index_dir)
    database_url = embedded_database_url(data_dir)
    upgrade(database_url)
    port = free_port()
    env = {
        **os.environ,
        "ASKAGENCY_DATA_DIR": str(data_dir),
        "ASKAGENCY_INDEX_DIR": str(index_dir),
        "ASKAGENCY_DATABASE_URL": database_url,
        "ASKAGENCY_METRICS_TOKEN": TOKEN,
        "ASKAGENCY_LOG_FORMAT": "json",
    }
    env.pop(ACTION_SECRET_ENV, None)
    secret = {ACTION_SECRET_HEADER: load_or_create_secret(data_dir, "action_secret")}
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "actions.server", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if get(f"{base}/health")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
            yield base, secret, version
        finally:
            process.terminate()
            process.wait(timeout=20)
    # ASKAGENCY_LOG_FORMAT=json: every line the server logged is one JSON object.
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    not_json = [line for line in lines if not line.startswith("{")]
    assert not_json == [], not_json[:5]
    records = [json.loads(line) for line in lines]
    assert any(r["logger"] == "actions.server" for r in records), lines[:20]


@pytest.mark.slow
def test_action_server_counts_a_faq_turn_and_guards_metrics(
    action_server: tuple[str, dict[str, str], str],
) -> None:
    base, secret, version = action_server
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    # Not public: neither anonymous, nor a wrong token, nor Rasa's action secret gets in.
    assert get(f"{base}/metrics")[0] == 401
    assert get(f"{base}/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    assert get(f"{base}/metrics", secret)[0] == 401

    status, text = get(f"{base}/metrics", bearer)
    assert status == 200, text
    before = samples(text)
    assert value(before, "askagency_index_info", version=version) == 1.0
    assert value(before, "askagency_index_loaded_timestamp_seconds") > 0
    assert ("askagency_spool_depth", ()) in before

    status, body = post_json(
        f"{base}/webhook", faq_call("Can I bring liquids in my carry-on bag?"), secret
    )
    assert status == 200, body
    # Whether the decision rules answer or clarify on this four-FAQ index is theirs to say
    # (tests/unit/knowledge_base/test_decision.py); the turn is counted under the outcome of the
    # reply it sent.
    sent = body["responses"][0]["custom"]["type"]
    outcome = TURN_OUTCOMES[sent]
    assert outcome in ("answered", "clarify"), body

    after = samples(get(f"{base}/metrics", bearer)[1])
    assert value(after, "askagency_turns_total", outcome=outcome) == (
        value(before, "askagency_turns_total", outcome=outcome) + 1
    )
    for other in {"answered", "clarify", "fallback", "handoff"} - {outcome}:
        assert value(after, "askagency_turns_total", outcome=other) == value(
            before, "askagency_turns_total", outcome=other
        )
    action = "askagency_action_duration_seconds_count"
    assert value(after, action, action="action_answer_faq") == (
        value(before, action, action="action_answer_faq") + 1
    )
    retrieval = "askagency_retrieval_duration_seconds_count"
    assert value(after, retrieval) == value(before, retrieval) + 1
    assert value(after, "askagency_spool_depth") == 0


def turn_counts(metrics: Any) -> dict[str, float]:
    found = samples(metrics.render().decode())
    return {
        outcome: value(found, "askagency_turns_total", outcome=outcome)
        for outcome in TURN_OUTCOMES.values()
    }


@pytest.mark.parametrize(
    ("hits", "outcome"),
    [
        ([hit("a", 0.95)], "answered"),
        ([hit("a", 0.55), hit("b", 0.54)], "clarify"),
        ([hit("a", 0.05)], "fallback"),
    ],
)
async def test_each_decision_is_counted_under_its_outcome(
    tmp_settings: Settings, hits: list[Any], outcome: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real decide() on retrieval hits with known scores; the counter follows the reply."""
    from actions import kb
    from askagency import metrics

    kb.set_handle(FakeHandle(FakeRetriever(hits)))
    monkeypatch.setattr(kb, "_decide", lambda found, settings: decide(found, settings))
    try:
        before = turn_counts(metrics)
        dispatcher = CollectingDispatcher()
        await ActionAnswerFaq().run(dispatcher, tracker(), {})
        after = turn_counts(metrics)
    finally:
        kb.set_handle(None)
    changed = {o: after[o] - before[o] for o in before if after[o] != before[o]}
    assert changed == {outcome: 1.0}, dispatcher.messages


# --- console -------------------------------------------------------------------------------


@pytest.fixture
async def console(
    tmp_settings: Settings,
    users: None,  # noqa: F811
) -> AsyncIterator[TestClient]:
    settings = tmp_settings.model_copy(
        update={"metrics_token": TOKEN, "login_burst": 1000, "login_per_minute": 1000.0}
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_console_metrics_need_the_token_or_an_admin(console: TestClient) -> None:
    assert (await console.get("/metrics")).status == 401
    assert (await console.get("/metrics", headers={"Authorization": "Bearer nope"})).status == 401
    resp = await console.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    found = samples(await resp.text())
    assert value(found, "askagency_delivery_backlog") == 0.0
    assert ("askagency_delivery_backlog", ()) in found

    await login(console, "editor")
    assert (await console.get("/metrics")).status == 403
    await console.post("/console/logout")
    console.session.cookie_jar.clear()
    await login(console, "admin")
    assert (await console.get("/metrics")).status == 200


async def test_console_without_a_token_setting_refuses_every_bearer(
    tmp_settings: Settings,
    users: None,  # noqa: F811
) -> None:
    async with TestClient(TestServer(create_app(tmp_settings))) as client:
        assert (await client.get("/metrics", headers={"Authorization": "Bearer "})).status == 401


async def test_handoffs_opened_and_the_delivery_backlog(
    tmp_settings: Settings,
    users: None,  # noqa: F811
) -> None:
    """A real ticket (the handoff code the action runs) and a real agent reply that cannot be
    delivered (Rasa refuses connections): one handoff opened, one message in the backlog."""
    from askagency.db import session_scope
    from askagency.staff import User
    from handoff import conversation, service
    from handoff.models import Reason
    from tests.net import closed_port

    def opened(found: dict[Any, float]) -> float:
        return value(found, "askagency_handoffs_opened_total", reason="frustration")

    with closed_port() as port:
        settings = tmp_settings.model_copy(
            update={"metrics_token": TOKEN, "rasa_url": f"http://127.0.0.1:{port}"}
        )
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with TestClient(TestServer(create_app(settings))) as client:
            before = samples(await (await client.get("/metrics", headers=bearer)).text())
            first = await conversation.start_handoff(
                conversation_id="c-metrics",
                reason=Reason.FRUSTRATION,
                channel="rest",
                language="en",
                trigger_text="this is useless",
                settings=settings,
            )
            # The same conversation again re-uses its ticket: not a second handoff.
            await conversation.start_handoff(
                conversation_id="c-metrics",
                reason=Reason.FRUSTRATION,
                channel="rest",
                language="en",
                trigger_text="still useless",
                settings=settings,
            )
            with session_scope() as session:
                agent = session.query(User).filter_by(username="agent").one()
                service.add_agent_reply(session, first.internal["ticket_id"], agent.id, "Hi")
            after = samples(await (await client.get("/metrics", headers=bearer)).text())
    assert opened(after) == opened(before) + 1
    assert value(after, "askagency_delivery_backlog") == 1.0


# --- analytics consumer --------------------------------------------------------------------


def test_consumer_counts_ingested_and_rejected_events(db_url: str, tmp_settings: Settings) -> None:

    events = scenario_events()
    rasa_broker_file(tmp_settings.events_db, events)
    with sqlite3.connect(tmp_settings.events_db) as connection:  # one row Rasa never writes
        connection.execute(
            "INSERT INTO events (sender_id, data) VALUES (?, ?)", ("x", '{"event": "user"')
        )
    consumer = Consumer(tmp_settings, "sql", once=True)
    server = start_health_server("127.0.0.1", 0, consumer.status, metrics_token=TOKEN)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    try:
        assert get(f"{base}/metrics")[0] == 401
        before = samples(get(f"{base}/metrics", bearer)[1])
        consumer.run()
        status, text = get(f"{base}/metrics", bearer)
        assert status == 200
        after = samples(text)
    finally:
        server.shutdown()
    status_now = consumer.status
    name = "askagency_analytics_events_ingested_total"
    assert value(after, name) - value(before, name) == status_now.events_stored > 0
    name = "askagency_analytics_events_rejected_total"
    assert value(after, name) - value(before, name) == status_now.rejected == 1
    name = "askagency_analytics_batches_total"
    assert value(after, name) - value(before, name) == status_now.batches
    assert value(after, "askagency_analytics_batch_lag_seconds") >= 0
    assert ("askagency_analytics_batch_lag_seconds", ()) in after


# --- logs ----------------------------------------------------------------------------------


def test_json_log_lines_have_a_fixed_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASKAGENCY_LOG_FORMAT", "json")
    get_settings.cache_clear()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        configure_logging(logging.INFO, stream=stream)
        logging.getLogger("actions.faq").info("lookup for %s: %d hits", "conv-1", 3)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("analytics.consumer").exception("batch failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        get_settings.cache_clear()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "INFO" and first["logger"] == "actions.faq"
    assert first["message"] == "lookup for conv-1: 3 hits"
    assert first["time"].endswith("+00:00")
    assert set(second) == {"time", "level", "logger", "message", "exception"}
    assert "ValueError: boom" in second["exception"]


def test_text_logs_stay_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASKAGENCY_LOG_FORMAT", raising=False)
    get_settings.cache_clear()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        configure_logging(logging.INFO, stream=stream)
        logging.getLogger("console").info("hello")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert stream.getvalue().rstrip().endswith("INFO console: hello")
