"""Abuse limits on the real Rasa server (bot/channels/ratelimit.py, default settings), and a load
of bad requests that leaves it answering normal ones."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from askagency.bot_messages import MessageType
from askagency.launcher import Stack
from bot.channels.ratelimit import Limits
from tests.stack import RestClient, custom_of, signed_body

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WEBHOOK = "/webhooks/rest/webhook"


def post(stack: Stack, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        stack.cfg.rasa_url + WEBHOOK,
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_same_text_in_a_loop_is_answered_twice_then_noticed_then_ignored(rest: RestClient) -> None:
    sender = f"loop-{uuid.uuid4().hex[:8]}"
    replies = [rest.send(sender, "hello") for _ in range(5)]
    assert custom_of(replies[0])[0]["type"] == MessageType.GREETING
    assert custom_of(replies[2]) == [{"type": MessageType.FALLBACK, "reason": "repeated"}]
    assert replies[3] == [] and replies[4] == []


def test_one_client_address_behind_the_proxy_is_rate_limited(stack: Stack) -> None:
    """One client, as reported by our loopback proxy in X-Forwarded-For, floods one message.

    After the first copies the sender's own limits refuse them before Rasa (cheap), but each
    one spends the address's tokens too (default: a burst of 100, refilled at 5/s), until the
    address itself is refused: a NEW conversation from it then gets 429, while one from another
    address is answered. The test does not assume how fast this machine sends (a slow CI machine
    once let the bucket refill faster than 150 copies could empty it): every ten copies it tries
    a new conversation, and checks that the first one refused came neither before the burst
    was spent nor later than the bucket allows for the time the flood took.
    """
    defaults = Limits.from_credentials(None)  # what the REST channel builds: no block, no env
    burst, per_second, probe_every = defaults.ip_burst, defaults.ip_per_minute / 60, 10
    address = {"X-Forwarded-For": f"203.0.113.{uuid.uuid4().int % 250 + 1}"}
    spam = json.dumps(signed_body(f"spam-{uuid.uuid4().hex[:8]}", "/greet")).encode()
    started = time.monotonic()
    sent = 0
    while True:
        for _ in range(probe_every):
            post(stack, spam, address)
        fresh = json.dumps(signed_body(f"fresh-{uuid.uuid4().hex[:8]}", "/greet")).encode()
        status, body = post(stack, fresh, address)
        sent += probe_every + 1
        elapsed = time.monotonic() - started
        if status == 429:
            break
        assert status == 200, (status, body[:200])
        assert sent <= burst + per_second * elapsed + probe_every + 1, f"{sent} in {elapsed:.1f} s"
        # Slower than the refill, a client is never refused (as it should be); say so.
        assert elapsed < 120, f"only {sent} requests in {elapsed:.0f} s: this machine is too slow"
    assert sent >= burst, f"a new conversation was refused after {sent} requests"
    assert json.loads(body)[0]["custom"] == {"type": MessageType.FALLBACK, "reason": "rate_limited"}
    other = json.dumps(signed_body(f"other-{uuid.uuid4().hex[:8]}", "/greet")).encode()
    status, _ = post(stack, other, {"X-Forwarded-For": "198.51.100.200"})
    assert status == 200


BAD_BODIES = [
    b"",
    b"not json",
    b"[]",
    b'{"message": 5}',
    b'{"sender": {"a": 1}, "message": "x"}',
    b'{"sender": "x", "message": "y", "metadata": "no"}',
    b"\xff\xfe\x00garbage",
    b'{"sender": "x", "message": "' + b"a" * 300_000 + b'"}',
    json.dumps(signed_body("x", "y", metadata="no")).encode(),
    json.dumps(signed_body("x", "a" * 300_000)).encode(),
]


def test_a_load_of_bad_requests_leaves_the_service_answering(
    stack: Stack, rest: RestClient
) -> None:
    def fire(i: int) -> int:
        return post(stack, BAD_BODIES[i % len(BAD_BODIES)])[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(fire, range(400)))
    assert 500 not in statuses, sorted(set(statuses))
    # 429: the many copies from sender "x" hit its per-sender limit, as they should;
    # 403: a sender without its conversation token.
    assert set(statuses) <= {200, 400, 403, 413, 429}, sorted(set(statuses))
    messages = rest.send(
        f"after-load-{uuid.uuid4().hex[:8]}", "can I bring my laptop in my carry-on"
    )
    assert custom_of(messages)[0]["type"] == MessageType.FAQ_ANSWER
    assert stack.procs["rasa"].poll() is None
    assert os.path.exists(stack.log_path("rasa"))


def test_rasa_http_api_needs_the_token_and_listens_on_loopback_only(stack: Stack) -> None:
    url = f"{stack.cfg.rasa_url}/conversations/someone/tracker"
    for suffix in ("", "?token=wrong"):
        try:
            urllib.request.urlopen(url + suffix, timeout=30)
            raise AssertionError("the tracker was readable without the token")
        except urllib.error.HTTPError as err:
            assert err.code == 401, err.code
    with urllib.request.urlopen(f"{url}?token={stack.cfg.rasa_token}", timeout=30) as resp:
        assert resp.status == 200
    argv = stack.procs["rasa"].args
    assert argv[argv.index("--interface") + 1] == "127.0.0.1"


# --- issue 17: the review's live attacks against the real stack ---------------------------------


def _tracker_user_texts(stack: Stack, conversation_id: str) -> list[str]:
    url = (
        f"{stack.cfg.rasa_url}/conversations/{conversation_id}/tracker?token={stack.cfg.rasa_token}"
    )
    with urllib.request.urlopen(url, timeout=30) as resp:
        events = json.loads(resp.read()).get("events") or []
    return [e.get("text") for e in events if e.get("event") == "user"]


def test_rest_cannot_open_a_ticket_in_an_sms_conversation(stack: Stack) -> None:
    """H1/H2: the issue's live test (``sender: sms-+15550001111``, ``input_channel: sms``)
    opened ticket #7 on channel sms; now refused before Rasa, with or without a token."""
    victim = "sms-15550001111"
    attempts = [
        {
            "sender": "sms-+15550001111",
            "message": "I want to talk to a person",
            "input_channel": "sms",
        },
        {"sender": victim, "message": "/ask_human", "input_channel": "sms"},
        signed_body(victim, "/ask_human", input_channel="sms"),
        signed_body("telegram-4242", "/ask_human"),
    ]
    for body in attempts:
        status, raw = post(stack, json.dumps(body).encode())
        assert status == 403, (status, raw[:200])
    assert _tracker_user_texts(stack, victim) == []


def test_rest_conversation_ids_come_from_the_server_and_need_their_token(
    stack: Stack, rest: RestClient
) -> None:
    """H1/L13: a client without the secret gets an id and token from /webhooks/rest/session;
    the same id without (or with another) token is refused; no sender is a 400."""
    conversation_id, token = rest.new_conversation()
    other_id, other_token = rest.new_conversation()
    assert conversation_id.startswith("web-") and conversation_id != other_id
    body = {"sender": conversation_id, "message": "can I bring my laptop in my carry-on"}
    status, raw = post(stack, json.dumps({**body, "token": token}).encode())
    assert status == 200 and custom_of(json.loads(raw))[0]["type"] == MessageType.FAQ_ANSWER
    for forged in ({}, {"token": other_token}, {"token": token[:-2] + "AA"}):
        status, raw = post(stack, json.dumps({**body, "message": "intruder", **forged}).encode())
        assert status == 403, (forged, status, raw[:200])
    status, raw = post(stack, json.dumps({"message": "/ask_human"}).encode())
    assert status == 400 and '"sender" is required' in json.loads(raw)["error"]
    assert "intruder" not in _tracker_user_texts(stack, conversation_id)


@pytest.mark.parametrize("size", ["2 MB of short words", "300 kB message", "2001 characters"])
def test_oversized_messages_are_refused_at_the_channel(stack: Stack, size: str) -> None:
    """M1: the issue's 2 MB body of 400,000 short words took 31 s; now it is answered at once
    with the "too long" reply and never reaches NLU or the action server."""
    sender = f"big-{uuid.uuid4().hex[:8]}"
    message = {
        "2 MB of short words": "word " * 400_000,
        "300 kB message": "a" * 300_000,
        "2001 characters": "b" * 2001,
    }[size]
    body = json.dumps(signed_body(sender, message)).encode()
    started = time.perf_counter()
    status, raw = post(stack, body)
    elapsed = time.perf_counter() - started
    reply = json.loads(raw)
    assert status in (200, 413), (status, raw[:200])
    assert reply[0]["custom"] == {"type": MessageType.FALLBACK, "reason": "too_long"}
    assert "too long" in reply[0]["text"]
    assert elapsed < 1.0, elapsed  # generous for a shared CI machine; measured ~10-50 ms
    assert _tracker_user_texts(stack, sender) == []
