"""Fault drill: ``kill -9`` of each process of the real embedded stack, in turn, under a steady
stream of REST questions; the supervisor (supervisord, started by the launcher as ``make run``
does) brings it back by itself.

A stack of its own (the drill would leave the shared session stack without Rasa for a while).
For each of the action server, Rasa, the console and the analytics consumer:

* a citizen is handed to a person first (a ticket); a steady stream of questions runs, each from
  a new citizen, retried like a channel platform redelivers a webhook when the connection is
  refused or dropped;
* the process is killed with SIGKILL; while it is down the agent replies to the ticket (retried
  while the console is the one down) and the citizen writes to the team;
* within ``RECOVERY_S`` every process answers its readiness URL again, with no help;
* every question got the FAQ answer or the graceful "can't look that up right now" fallback
  (nothing else, nothing lost); the ticket is there, the agent's reply reached the citizen's
  conversation exactly once, the citizen's message is in the ticket exactly once (or the citizen
  was given the fallback and knows it did not go through); every user turn of the drill's
  conversations is in the analytics tables exactly once.

The loop is bounded: at most ``MAX_QUESTIONS`` questions and ``PHASE_LIMIT_S`` per process.
Measured recovery times are printed (docs/scale.md, "Fault drill").
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from askagency.bot_messages import MessageType
from askagency.db import make_engine
from askagency.launcher import Stack, http_ok, service_specs
from askagency.paths import embedded_database_url
from bench.throwaway import stack_config
from handoff.models import Ticket
from tests.stack import (
    NO_TICKET_CAP_ENV,
    ConsoleClient,
    cli,
    ensure_rasa_model,
    signed_body,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "drill-token"
PASSWORD = "drill agent password"
RECOVERY_S = 30.0  # issue #18: the stack recovers by itself within 30 s
PHASE_LIMIT_S = 150.0  # the question stream of one phase never runs longer
MAX_QUESTIONS = 80  # nor asks more per phase
RETRY_FOR_S = 120.0  # a channel platform redelivers a refused webhook this long
QUESTIONS = {
    "can I bring my laptop in my carry-on": "electronics-laptop-carry-on",
    "can I bring a knife in my carry on": "sharp-knives-carry-on",
    "do I need a REAL ID to fly": "id-real-id",
    "can I fly with my gun": "firearms-checked-rules",
}
VICTIMS = ("actions", "rasa", "console", "analytics")


@dataclass
class Asked:
    sender: str
    text: str
    attempts: int = 0
    outcome: str = "pending"  # answer, fallback, other, lost
    reply: Any = None
    sent_at: float = field(default_factory=time.monotonic)


@dataclass
class Phase:
    victim: str
    asked: list[Asked] = field(default_factory=list)
    recovered_at: float = 0.0
    recovery_s: float | None = None
    supervisor_s: float | None = None


def post_json(url: str, payload: dict[str, Any], timeout: float = 60.0) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def send_until_delivered(stack: Stack, sender: str, text: str) -> tuple[int, Any]:
    """A REST message, redelivered while the connection is refused or dropped (Rasa down) the
    way Telegram, Twilio or Messenger redeliver an unacknowledged webhook."""
    deadline = time.monotonic() + RETRY_FOR_S
    attempts = 0
    while True:
        attempts += 1
        try:
            status, body = post_json(
                stack.cfg.rasa_url + "/webhooks/rest/webhook", signed_body(sender, text)
            )
            if status != 502 and status != 503:
                return attempts, (status, body)
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            pass
        if time.monotonic() > deadline:
            return attempts, None
        time.sleep(0.5)


def classify(asked: Asked, result: tuple[int, Any] | None) -> None:
    if result is None:
        asked.outcome = "lost"
        return
    status, body = result
    asked.reply = body
    customs = [m.get("custom") or {} for m in body] if status == 200 and body else []
    if any(
        c.get("type") == MessageType.FAQ_ANSWER and c.get("faq_id") == QUESTIONS[asked.text]
        for c in customs
    ):
        asked.outcome = "answer"
    elif any(
        c.get("type") == MessageType.FALLBACK and c.get("reason") == "unavailable" for c in customs
    ):
        asked.outcome = "fallback"
    else:
        asked.outcome = "other"


class QuestionStream(threading.Thread):
    """Citizens asking, one new citizen every ``interval_s``, until stopped or bounded."""

    def __init__(self, stack: Stack, phase: Phase, interval_s: float = 1.5) -> None:
        super().__init__(daemon=True)
        self.stack, self.phase, self.interval_s = stack, phase, interval_s
        self.stopping = threading.Event()
        self.workers: list[threading.Thread] = []

    def run(self) -> None:
        started = time.monotonic()
        texts = list(QUESTIONS)
        while (
            not self.stopping.is_set()
            and len(self.phase.asked) < MAX_QUESTIONS
            and time.monotonic() - started < PHASE_LIMIT_S
        ):
            asked = Asked(f"drill-{uuid.uuid4().hex[:10]}", texts[len(self.phase.asked) % 4])
            self.phase.asked.append(asked)
            worker = threading.Thread(target=self._ask, args=(asked,), daemon=True)
            worker.start()
            self.workers.append(worker)
            self.stopping.wait(self.interval_s)

    def _ask(self, asked: Asked) -> None:
        attempts, result = send_until_delivered(self.stack, asked.sender, asked.text)
        asked.attempts = attempts
        classify(asked, result)

    def finish(self) -> None:
        self.stopping.set()
        self.join(PHASE_LIMIT_S)
        for worker in self.workers:
            worker.join(RETRY_FOR_S + 70)


def console_call(console: ConsoleClient, method: str, path: str, body: object = None) -> Any:
    """A console API call, retried while the console is down (it may be the one killed)."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            status, result = console.call(method, path, body)
            if status < 500:
                return status, result
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            pass
        assert time.monotonic() < deadline, f"console {method} {path} never answered"
        time.sleep(0.5)


def all_ready(stack: Stack) -> bool:
    return all(http_ok(spec.wait_url, timeout=2.0) for spec in service_specs(stack.cfg))


@pytest.fixture(scope="module")
def drill_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ConsoleClient]]:
    data_dir = tmp_path_factory.mktemp("askagency-drill")
    cli(data_dir, "kb", "load-sample")
    cli(data_dir, "kb", "build-index")
    cli(
        data_dir,
        "users",
        "create",
        "dora",
        "--role",
        "agent",
        "--display-name",
        "Agent Dora",
        env={"ASKAGENCY_NEW_PASSWORD": PASSWORD},
    )
    # One ticket per phase, all from 127.0.0.1.
    cfg = stack_config(data_dir, TOKEN, ensure_rasa_model(), extra_env=NO_TICKET_CAP_ENV)
    with Stack(cfg) as stack:
        console = ConsoleClient(cfg.console_url)
        console.login("dora", PASSWORD)
        yield stack, console


def tracker_bot_texts(stack: Stack, sender: str) -> list[str]:
    url = f"{stack.cfg.rasa_url}/conversations/{sender}/tracker?token={stack.cfg.rasa_token}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        events = json.loads(resp.read())["events"]
    return [e.get("text") or "" for e in events if e.get("event") == "bot"]


def tracker_user_count(stack: Stack, sender: str) -> int:
    url = f"{stack.cfg.rasa_url}/conversations/{sender}/tracker?token={stack.cfg.rasa_token}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        events = json.loads(resp.read())["events"]
    return sum(1 for e in events if e.get("event") == "user")


def analytics_user_count(data_dir: Path, senders: list[str]) -> dict[str, int]:
    from analytics.models import AnalyticsEvent

    engine = make_engine(embedded_database_url(data_dir))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(AnalyticsEvent.sender_id, func.count())
                .where(AnalyticsEvent.sender_id.in_(senders), AnalyticsEvent.kind == "user")
                .group_by(AnalyticsEvent.sender_id)
            ).all()
    finally:
        engine.dispose()
    return {sender: count for sender, count in rows}


def open_ticket_id(data_dir: Path, conversation_id: str) -> int:
    """The id of the conversation's open ticket, from the stack's database."""
    engine = make_engine(embedded_database_url(data_dir))
    try:
        with engine.connect() as conn:
            ticket_id = conn.execute(
                select(Ticket.id).where(
                    Ticket.conversation_id == conversation_id, Ticket.open_marker.is_not(None)
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return int(ticket_id)


def run_phase(stack: Stack, console: ConsoleClient, victim: str) -> tuple[Phase, dict[str, Any]]:
    phase = Phase(victim)
    citizen = f"drill-ticket-{victim}-{uuid.uuid4().hex[:6]}"
    _, result = send_until_delivered(stack, citizen, "I want to talk to a person")
    assert result and result[0] == 200, result
    handoff = (result[1][0].get("custom") or {}) if result[1] else {}
    assert handoff.get("type") == MessageType.HANDOFF, result
    # Citizens are not told the ticket number (security review L9): read it where staff do.
    ticket_id = open_ticket_id(stack.cfg.data_dir, citizen)

    stream = QuestionStream(stack, phase)
    stream.start()
    time.sleep(3)  # questions already flowing when the process dies
    pid = stack.procs[victim].pid
    events_before = len(stack.events)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)

    reply_text = f"Agent reply while {victim} was down"
    status, _ = console_call(
        console, "POST", f"/api/tickets/{ticket_id}/replies", {"text": reply_text}
    )
    assert status == 201, status
    citizen_text = f"citizen message while {victim} was down"
    _, citizen_result = send_until_delivered(stack, citizen, citizen_text)

    while not all_ready(stack):
        assert time.monotonic() - killed_at < recovery_bound(stack, victim) + 30, (
            f"{victim} never came back"
        )
        time.sleep(0.25)
    phase.recovered_at = time.monotonic()
    phase.recovery_s = phase.recovered_at - killed_at
    assert stack.procs[victim].pid != pid, f"{victim} was not restarted"
    time.sleep(3)  # a few questions after the recovery too
    # The launcher's own report of the recovery (it checks readiness every 0.5 s).
    deadline = time.monotonic() + 10
    while not (recovered := [e for e in stack.events[events_before:] if e.kind == "recovered"]):
        assert time.monotonic() < deadline, stack.events[events_before:]
        time.sleep(0.5)
    assert [e.name for e in recovered] == [victim], stack.events[events_before:]
    phase.supervisor_s = recovered[0].seconds
    stream.finish()
    return phase, {
        "ticket_id": ticket_id,
        "citizen": citizen,
        "reply_text": reply_text,
        "citizen_text": citizen_text,
        "citizen_result": citizen_result,
        "crashes": [e for e in stack.events[events_before:] if e.kind != "recovered"],
    }


def recovery_bound(stack: Stack, victim: str) -> float:
    """30 s, or on a machine too busy for that, what the process's first start took (+50%):
    a restart must cost no more than a start, however slow the cores are (the first start
    loads all processes at once, so it is the slower of the two)."""
    return max(RECOVERY_S, 1.5 * stack.ready_after_s[victim])


@pytest.mark.timeout(1200)
def test_kill_each_process_in_turn_under_load(
    drill_stack: tuple[Stack, ConsoleClient],
) -> None:
    stack, console = drill_stack
    phases: list[Phase] = []
    for victim in VICTIMS:
        phase, ticket = run_phase(stack, console, victim)
        phases.append(phase)
        print(
            f"drill {victim}: first start {stack.ready_after_s[victim]:.1f} s; "
            f"ready again {phase.recovery_s:.1f} s after kill -9 "
            f"(launcher reported it ready {phase.supervisor_s:.1f} s after the crash); "
            f"{len(phase.asked)} questions: "
            + ", ".join(
                f"{o}={sum(a.outcome == o for a in phase.asked)}"
                for o in ("answer", "fallback", "other", "lost")
            )
            + f", max attempts {max(a.attempts for a in phase.asked)}"
        )
        # Reported as a crash (not a stop), with the process name.
        assert [(e.name, e.kind) for e in ticket["crashes"]] == [(victim, "crashed")], ticket[
            "crashes"
        ]
        bound = recovery_bound(stack, victim)
        assert phase.recovery_s is not None and phase.recovery_s < bound, (
            f"{victim} took {phase.recovery_s:.1f} s to recover (bound {bound:.0f} s)"
        )
        bad = [a for a in phase.asked if a.outcome not in ("answer", "fallback")]
        assert not bad, [(a.text, a.outcome, a.attempts, a.reply) for a in bad]
        # And the stack really serves again: questions asked after the recovery are answered.
        after = [a.outcome for a in phase.asked if a.sent_at > phase.recovered_at]
        assert "answer" in after, after

        # The ticket and the relayed messages, both ways.
        status, detail = console_call(console, "GET", f"/api/tickets/{ticket['ticket_id']}")
        assert status == 200, detail
        deadline = time.monotonic() + RECOVERY_S
        while not all(
            m["delivery_status"] == "delivered" for m in detail["messages"] if m["delivery_status"]
        ):
            assert time.monotonic() < deadline, detail["messages"]
            time.sleep(0.5)
            _, detail = console_call(console, "GET", f"/api/tickets/{ticket['ticket_id']}")
        assert tracker_bot_texts(stack, ticket["citizen"]).count(ticket["reply_text"]) == 1
        citizen_messages = [m["text"] for m in detail["messages"] if m["direction"] == "citizen"]
        result = ticket["citizen_result"]
        assert result is not None and result[0] == 200, result
        if result[1] == []:  # relayed to the team (no bot reply)
            assert citizen_messages.count(ticket["citizen_text"]) == 1, detail["messages"]
        else:  # the action server was down: the citizen was told, nothing silently dropped
            customs = [m.get("custom") or {} for m in result[1]]
            assert {"type": MessageType.FALLBACK, "reason": "unavailable"} in customs, result
            assert ticket["citizen_text"] not in citizen_messages

    # Every user turn of the drill is in the analytics tables exactly once (the consumer was
    # killed too and resumes where it stopped).
    senders = [a.sender for p in phases for a in p.asked]
    expected = {s: tracker_user_count(stack, s) for s in senders}
    deadline = time.monotonic() + RECOVERY_S
    while (stored := analytics_user_count(stack.cfg.data_dir, senders)) != expected:
        assert time.monotonic() < deadline, {
            s: (expected[s], stored.get(s)) for s in senders if expected[s] != stored.get(s)
        }
        time.sleep(1)
