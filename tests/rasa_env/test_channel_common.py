"""bot/channels/common.py and http.py: configuration, expiring memory, splitting, retries."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channel_kit import FakePlatform, free_port

from bot.channels.choices import PendingChoices
from bot.channels.common import (
    Choice,
    ConfigError,
    Option,
    TtlMap,
    TtlSet,
    language_tag,
    resolve_options,
    split_text,
    truncate,
    user_text,
)
from bot.channels.http import PlatformHttp, RetryPolicy
from bot.channels.shared_state import LocalState

OPTIONS = (Option("token"), Option("attempts", 3, int), Option("replies", True, bool))


def test_environment_wins_over_credentials_which_win_over_defaults() -> None:
    env = {"ASKAGENCY_SMS_TOKEN": "from-env", "ASKAGENCY_TWILIO_ATTEMPTS": "5"}
    values = resolve_options(("SMS", "TWILIO"), {"token": "yml", "replies": "no"}, OPTIONS, env)
    assert values == {"token": "from-env", "attempts": 5, "replies": False}

    assert resolve_options(("SMS",), None, OPTIONS, {}) == {
        "token": None,
        "attempts": 3,
        "replies": True,
    }
    # Empty values count as unset (an exported but empty variable, a blank YAML key).
    blank = resolve_options(("SMS",), {"token": " "}, OPTIONS, {"ASKAGENCY_SMS_TOKEN": ""})
    assert blank["token"] is None


def test_bad_typed_values_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="ASKAGENCY_SMS_ATTEMPTS"):
        resolve_options(("SMS",), {}, OPTIONS, {"ASKAGENCY_SMS_ATTEMPTS": "three"})
    with pytest.raises(ConfigError, match="'replies'"):
        resolve_options(("SMS",), {"replies": "maybe"}, OPTIONS, {})


def test_ttl_set_forgets_after_ttl_and_stays_bounded() -> None:
    now = [0.0]
    seen = TtlSet(ttl_s=10, max_entries=3, clock=lambda: now[0])
    assert seen.add("a") is True
    assert seen.add("a") is False
    now[0] = 11
    assert seen.add("a") is True  # expired: a redelivery this late is processed again
    for key in "bcd":
        seen.add(key)
    assert len(seen) == 3 and "a" not in seen  # the oldest went first


def test_ttl_map_get_pop_and_expiry() -> None:
    now = [0.0]
    items: TtlMap[int] = TtlMap(ttl_s=5, clock=lambda: now[0])
    items.set("x", 1)
    assert items.get("x") == 1
    now[0] = 6
    assert items.get("x") is None
    items.set("y", 2)
    assert items.pop("y") == 2 and items.pop("y") is None


def test_pending_choices_select_by_number_or_title_once() -> None:
    choices = PendingChoices(LocalState(), "sms")
    options = [Choice("Lighter in carry-on", "/a"), Choice("Lighter in checked bag", "/b")]
    choices.remember("sms-1", options)
    assert choices.resolve("sms-1", " 2 ") == "/b"
    assert choices.resolve("sms-1", "2") is None  # used up
    choices.remember("sms-1", options)
    assert choices.resolve("sms-1", "lighter IN carry-on") == "/a"
    choices.remember("sms-1", options)
    assert choices.resolve("sms-1", "7") is None  # out of range
    choices.remember("sms-1", options)
    assert choices.resolve("sms-1", "²") is None  # a digit, not a number (found by fuzzing)
    choices.remember("sms-1", options)
    assert choices.resolve("sms-1", "something else") is None
    assert choices.resolve("sms-1", "1") is None  # a different reply cleared them
    assert choices.resolve("sms-2", "1") is None


def test_typed_text_cannot_trigger_intents() -> None:
    assert user_text('/agent_message{"handoff_text": "x"}') == 'agent_message{"handoff_text": "x"}'
    assert user_text("  //start") == "start"
    assert user_text("can I bring 3/4 oz?") == "can I bring 3/4 oz?"


@pytest.mark.parametrize(
    ("value", "tag"),
    [("en", "en"), ("pt-br", "pt"), ("es_MX", "es"), ("", None), ("12", None), (None, None)],
)
def test_language_tag(value: object, tag: str | None) -> None:
    assert language_tag(value) == tag


def test_split_text_keeps_words_whole_and_respects_the_limit() -> None:
    text = "Liquids must be 3.4 ounces or less per container " * 10
    parts = split_text(text, 60)
    assert all(len(p) <= 60 for p in parts)
    assert " ".join(parts).split() == text.split()
    for part in parts:
        assert all(word in text.split() for word in part.split())


def test_split_text_marks_parts_inside_the_limit_and_only_cuts_overlong_words() -> None:
    url = "https://www.tsa.gov/" + "x" * 200
    parts = split_text(f"See {url} for details", 70, mark_parts=True)
    assert all(len(p) <= 70 for p in parts)
    total = len(parts)
    assert [p.rsplit(" ", 1)[1] for p in parts] == [f"({i}/{total})" for i in range(1, total + 1)]
    rebuilt = "".join(p.rsplit(" ", 1)[0] for p in parts)
    assert url in rebuilt.replace(" ", "")
    assert split_text("short", 70, mark_parts=True) == ["short"]
    assert split_text("   ", 10) == []


def test_truncate_adds_an_ellipsis_within_the_limit() -> None:
    assert truncate("Can I bring a lighter?", 20) == "Can I bring a light…"
    assert len(truncate("Can I bring a lighter?", 20)) <= 20
    assert truncate("Short", 20) == "Short"


# --- outgoing HTTP: retries ------------------------------------------------------------------


def _run(coro):  # noqa: ANN001, ANN202 - tiny helper
    return asyncio.run(coro)


def test_retries_5xx_and_429_then_succeeds() -> None:
    async def scenario():  # noqa: ANN202
        fake = FakePlatform(
            script=[(500, {"error": "boom"}, {}), (429, {"error": "slow"}, {"Retry-After": "0"})]
        )
        url = await fake.start()
        http = PlatformHttp("test", RetryPolicy(timeout_s=2, max_attempts=3, backoff_s=0.01))
        try:
            result = await http.request("POST", url + "/send", label="send", json_body={"a": 1})
        finally:
            await http.close()
            await fake.stop()
        return result, fake

    result, fake = _run(scenario())
    assert result.ok and result.attempts == 3
    assert [r.json() for r in fake.requests] == [{"a": 1}] * 3


def test_4xx_is_not_retried_and_nothing_raises(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario():  # noqa: ANN202
        fake = FakePlatform(script=[(400, {"error": {"message": "bad recipient"}}, {})])
        url = await fake.start()
        http = PlatformHttp("test", RetryPolicy(timeout_s=2, max_attempts=3, backoff_s=0.01))
        try:
            result = await http.request("POST", url + "/send?access_token=SECRET", label="send")
        finally:
            await http.close()
            await fake.stop()
        return result, fake

    with caplog.at_level(logging.ERROR):
        result, fake = _run(scenario())
    assert not result.ok and result.status == 400 and result.attempts == 1
    assert len(fake.requests) == 1
    assert "bad recipient" in caplog.text and "SECRET" not in caplog.text


def test_timeouts_and_refused_connections_are_bounded() -> None:
    async def scenario():  # noqa: ANN202
        fake = FakePlatform(delay_s=1.0)
        url = await fake.start()
        http = PlatformHttp("test", RetryPolicy(timeout_s=0.2, max_attempts=2, backoff_s=0.01))
        try:
            slow = await http.request("POST", url + "/send", label="send")
            closed = await http.request(
                "POST", f"http://127.0.0.1:{free_port()}/send", label="send"
            )
        finally:
            await http.close()
            await fake.stop()
        return slow, closed, fake

    slow, closed, fake = _run(scenario())
    assert not slow.ok and slow.status is None and "no answer" in (slow.error or "")
    assert len(fake.requests) == 2
    assert not closed.ok and closed.attempts == 2 and "Connect" in (closed.error or "")


def test_retry_delay_honours_retry_after_with_a_cap() -> None:
    policy = RetryPolicy(backoff_s=0.5, max_wait_s=30)
    assert policy.delay(1, None) == 0.5 and policy.delay(3, None) == 2.0
    assert policy.delay(1, 7) == 7 and policy.delay(1, 3600) == 30
