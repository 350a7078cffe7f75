"""``askagency privacy export|delete|purge`` on data produced through Rasa's REST webhook, in
every store of the running stack (tracker DB, event-broker DB, tickets, analytics)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from askagency.bot_messages import MessageType
from askagency.launcher import Stack
from tests.stack import ConsoleClient, RestClient, cli, custom_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAY = 86_400


def export(stack: Stack, sender: str) -> dict[str, Any]:
    return json.loads(cli(stack.cfg.data_dir, "privacy", "export", sender).stdout)


def wait_for_analytics(stack: Stack, sender: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data = export(stack, sender)
        if data["analytics_events"] and data["analytics_conversations"]:
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"analytics never saw {sender}: {data}")
        time.sleep(1.0)


def tracker_events(stack: Stack, sender: str) -> list[dict[str, Any]]:
    url = f"{stack.cfg.rasa_url}/conversations/{sender}/tracker?token={stack.cfg.rasa_token}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())["events"]


def citizen_with_ticket(rest: RestClient) -> str:
    sender = f"privacy-{uuid.uuid4().hex[:10]}"
    assert custom_of(rest.send(sender, "can I bring my laptop in my carry-on"))[0]["type"] == (
        "faq_answer"
    )
    handoff = custom_of(rest.send(sender, "I want to talk to a person"))[0]
    assert handoff["type"] == MessageType.HANDOFF, handoff
    return sender


def test_export_then_delete_a_citizen_across_all_stores(stack: Stack, rest: RestClient) -> None:
    sender = citizen_with_ticket(rest)
    bystander = citizen_with_ticket(rest)
    data = wait_for_analytics(stack, sender)

    texts = [e.get("text") for e in data["tracker_events"] if e.get("event") == "user"]
    assert "can I bring my laptop in my carry-on" in texts
    assert any(e.get("event") == "user" for e in data["event_broker_events"])
    assert len(data["tickets"]) == 1 and data["tickets"][0]["conversation_id"] == sender
    assert data["analytics_conversations"][0]["sender_id"] == sender

    proc = cli(stack.cfg.data_dir, "privacy", "delete", sender, "--yes")
    deleted = json.loads(proc.stdout)["deleted"]
    assert deleted["tracker_events"] > 0 and deleted["event_broker_events"] > 0
    assert deleted["tickets"] == 1 and deleted["analytics_conversations"] >= 1

    after = export(stack, sender)
    for key, value in after.items():
        if isinstance(value, list):
            assert value == [], (key, value)
    assert after["spooled_writes"] == {"pending": [], "dead": []}
    # Rasa reads the tracker store on every request: the conversation is gone there too.
    assert not [e for e in tracker_events(stack, sender) if e.get("event") == "user"]
    # Nobody else lost anything.
    other = export(stack, bystander)
    assert other["tracker_events"] and other["tickets"]
    # Deleting again is harmless.
    again = json.loads(cli(stack.cfg.data_dir, "privacy", "delete", sender, "--yes").stdout)
    assert set(again["deleted"].values()) == {0}


def _backdate(stack: Stack, sender: str, days: int) -> None:
    """Make one real conversation look ``days`` old in Rasa's two databases and analytics."""
    shift = days * DAY
    data_dir: Path = stack.cfg.data_dir
    with sqlite3.connect(data_dir / "rasa_tracker.db") as db:
        db.execute(
            "UPDATE events SET timestamp = timestamp - ? WHERE sender_id = ?", (shift, sender)
        )
    with sqlite3.connect(data_dir / "rasa_events.db") as db:
        rows = db.execute("SELECT id, data FROM events WHERE sender_id = ?", (sender,)).fetchall()
        for row_id, raw in rows:
            event = json.loads(raw)
            event["timestamp"] = float(event.get("timestamp") or time.time()) - shift
            db.execute("UPDATE events SET data = ? WHERE id = ?", (json.dumps(event), row_id))
    with sqlite3.connect(data_dir / "askagency.db") as db:
        db.execute("UPDATE analytics_event SET ts = ts - ? WHERE sender_id = ?", (shift, sender))


def test_retention_purge_removes_only_old_transcripts(stack: Stack, rest: RestClient) -> None:
    old = f"privacy-old-{uuid.uuid4().hex[:8]}"
    recent = f"privacy-new-{uuid.uuid4().hex[:8]}"
    rest.send(old, "can I bring my laptop in my carry-on")
    rest.send(recent, "can I bring my laptop in my carry-on")
    wait_for_analytics(stack, old)
    wait_for_analytics(stack, recent)
    _backdate(stack, old, days=120)

    proc = cli(stack.cfg.data_dir, "privacy", "purge", "--older-than", "90")
    deleted = json.loads(proc.stdout)["deleted"]
    assert deleted["tracker_events"] > 0 and deleted["event_broker_events"] > 0
    assert deleted["analytics_text_cleared"] > 0

    gone = export(stack, old)
    assert gone["tracker_events"] == [] and gone["event_broker_events"] == []
    assert all(e["text"] is None for e in gone["analytics_events"])  # counts kept, text gone
    kept = export(stack, recent)
    assert kept["tracker_events"] and kept["event_broker_events"]
    assert any(e["text"] for e in kept["analytics_events"])

    bad = cli(stack.cfg.data_dir, "privacy", "purge", "--older-than", "-1", check=False)
    assert bad.returncode == 2 and "zero or more days" in bad.stderr


# --- review finding M6: the identifiers the redaction missed, on the real stack ------------------

# The review's inputs, each with a fragment that must never be stored in clear.
REVIEW_PII = [
    ("Mi pasaporte es C12345678", "12345678"),
    ("pass C1234567", "1234567"),
    ("licencia de conducir D1234567", "1234567"),
    ("A-number A123456789", "123456789"),
    ("card 4111.1111.1111.1111", "4111.1111"),
    ("IBAN DE89370400440532013000", "370400440532013000"),
    ("DOB 03/12/1985", "03/12/1985"),
    ("born 1985-03-12", "1985-03-12"),
    ("vivo en Calle Mayor 12, Madrid", "Mayor 12"),
]
# Questions no FAQ answers (so each lands in the unanswered queue), far apart in meaning.
ODD_QUESTIONS = [
    "where can I moor my zeppelin",
    "can my parrot sing opera at the gate",
    "do you rent submarines by the hour",
    "may I juggle torches in the lounge",
    "is llama insurance sold here",
    "can my robot vacuum travel alone",
    "is there a sauna behind terminal nine",
    "can I bring a harp made of ice",
    "do wizards get a discount",
]
VIEWER = "privacy-e2e-viewer"
VIEWER_PASSWORD = "privacy e2e viewer password"


def test_review_identifiers_never_reach_the_queue_or_analytics_in_clear(
    stack: Stack, rest: RestClient
) -> None:
    """The review's live test: odd questions carrying each identifier the old redaction kept; a
    viewer reads the unanswered queue (the ones the bot was unsure about) and analytics exports
    every one of them: none of the numbers is there in clear (each was on the old code)."""
    os.environ["ASKAGENCY_NEW_PASSWORD"] = VIEWER_PASSWORD
    try:
        proc = cli(stack.cfg.data_dir, "users", "create", VIEWER, "--role", "viewer", check=False)
    finally:
        os.environ.pop("ASKAGENCY_NEW_PASSWORD", None)
    assert proc.returncode == 0 or "already exists" in proc.stdout, proc.stdout + proc.stderr
    viewer = ConsoleClient(stack.cfg.console_url)
    viewer.login(VIEWER, VIEWER_PASSWORD)

    marker = uuid.uuid4().hex[:6]
    senders = []
    unsure = 0  # questions the bot was not sure about: each goes to the unanswered queue
    for question, (pii, _secret) in zip(ODD_QUESTIONS, REVIEW_PII, strict=True):
        sender = f"privacy-m6-{uuid.uuid4().hex[:10]}"
        senders.append(sender)
        replies = custom_of(rest.send(sender, f"{question} {marker}? {pii}"))
        unsure += any(r.get("type") in ("clarify", "fallback") for r in replies)
    assert unsure >= len(REVIEW_PII) // 2

    def queued() -> list[str]:
        # Distinct questions and the tightest clustering: every question shows as an example;
        # both lists: those that need an answer and those an out-of-scope entry took.
        texts = []
        for taken in ("false", "true"):
            query = f"limit=1000&threshold=0.99&out_of_scope={taken}"
            status, body = viewer.call("GET", f"/api/kb/unanswered?{query}")
            assert status == 200, body
            texts += [
                example["text"]
                for cluster in body["clusters"]  # type: ignore[index]
                for example in cluster["examples"]
                if marker in example["text"]
            ]
        return texts

    deadline = time.monotonic() + 60
    texts = queued()
    while len(texts) < unsure and time.monotonic() < deadline:
        time.sleep(0.5)
        texts = queued()
    assert len(texts) >= unsure, texts
    exported = [
        json.dumps(wait_for_analytics(stack, sender)["analytics_events"]) for sender in senders
    ]
    for (pii, secret), stored in zip(REVIEW_PII, exported, strict=True):
        assert not any(secret in text for text in texts), (pii, texts)
        assert secret not in stored, (pii, stored)
