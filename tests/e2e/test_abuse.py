"""Abuse limits on the real Rasa server (bot/channels/ratelimit.py, default settings), and a load
of bad requests that leaves it answering normal ones."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from askagency.launcher import Stack
from tests.e2e.conftest import RestClient, custom_of

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
    assert custom_of(replies[0])[0]["type"] == "greeting"
    assert custom_of(replies[2]) == [{"type": "fallback", "reason": "repeated"}]
    assert replies[3] == [] and replies[4] == []


def test_one_client_address_behind_the_proxy_is_rate_limited(stack: Stack) -> None:
    # Default ip_burst is 100 (then 5/s). One client, as reported by our loopback proxy in
    # X-Forwarded-For, sends 150 copies of one message: after the first two they are stopped
    # before Rasa (cheap), but each one spends the address's tokens. Then a NEW conversation
    # from that address is refused, while one from another address is answered.
    address = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    spam = json.dumps({"sender": f"spam-{uuid.uuid4().hex[:8]}", "message": "/greet"}).encode()
    for _ in range(150):
        post(stack, spam, {"X-Forwarded-For": address})

    fresh = json.dumps({"sender": f"fresh-{uuid.uuid4().hex[:8]}", "message": "/greet"}).encode()
    status, body = post(stack, fresh, {"X-Forwarded-For": address})
    assert status == 429, (status, body[:200])
    assert json.loads(body)[0]["custom"] == {"type": "fallback", "reason": "rate_limited"}
    status, _ = post(stack, fresh, {"X-Forwarded-For": "198.51.100.200"})
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
]


def test_a_load_of_bad_requests_leaves_the_service_answering(
    stack: Stack, rest: RestClient
) -> None:
    def fire(i: int) -> int:
        return post(stack, BAD_BODIES[i % len(BAD_BODIES)])[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(fire, range(400)))
    assert 500 not in statuses, sorted(set(statuses))
    # 429: the many copies from sender "x" hit its per-sender limit, as they should.
    assert set(statuses) <= {200, 400, 413, 429}, sorted(set(statuses))
    messages = rest.send(
        f"after-load-{uuid.uuid4().hex[:8]}", "can I bring my laptop in my carry-on"
    )
    assert custom_of(messages)[0]["type"] == "faq_answer"
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
