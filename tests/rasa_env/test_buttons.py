"""Button tokens (C1): a press is turned back into a payload only for the conversation the
button was sent to, only while it is valid, only for citizen intents, and on any replica."""

from __future__ import annotations

import redis
from redis_kit import URL

from bot.channels.buttons import ButtonTokens, looks_like_token
from bot.channels.shared_state import LocalState, RedisState


def test_a_token_stands_for_its_payload_in_its_conversation_only() -> None:
    tokens = ButtonTokens("x", LocalState(), ttl_s=60)
    token = tokens.issue("x-2000", '/choose_faq{"faq_id": "a"}')
    assert looks_like_token(token) and "choose_faq" not in token
    assert tokens.redeem("x-2000", token) == '/choose_faq{"faq_id": "a"}'
    assert tokens.redeem("x-2000", token) is not None  # a button can be pressed twice
    assert tokens.redeem("x-3000", token) is None  # another user replaying it
    assert ButtonTokens("messenger", tokens.state, 60).redeem("x-2000", token) is None
    assert tokens.redeem("x-2000", "b:" + "A" * 16) is None  # never issued
    assert tokens.redeem("x-2000", '/agent_message{"handoff_text": "x"}') is None


def test_a_stored_payload_is_still_held_to_the_citizen_allow_list() -> None:
    tokens = ButtonTokens("x", LocalState(), ttl_s=60)
    token = tokens.issue("x-1", '/agent_message{"handoff_text": "x"}')
    assert tokens.redeem("x-1", token) == 'agent_message{"handoff_text": "x"}'  # plain text


def test_tokens_expire() -> None:
    tokens = ButtonTokens("x", LocalState(), ttl_s=0.0)
    token = tokens.issue("x-1", "/ask_human")
    assert tokens.redeem("x-1", token) is None


def test_a_press_reaching_another_replica_works(prefix: str) -> None:
    sent_by = ButtonTokens("telegram", RedisState(URL, prefix), ttl_s=60)
    pressed_on = ButtonTokens("telegram", RedisState(URL, prefix), ttl_s=60)
    token = sent_by.issue("telegram-42", "/ask_human")
    assert pressed_on.redeem("telegram-42", token) == "/ask_human"
    assert pressed_on.redeem("telegram-43", token) is None
    client = redis.Redis.from_url(URL)
    stored = b"".join(client.mget(list(client.scan_iter(f"{prefix}:*"))))
    assert b"/ask_human" in stored and b"telegram-42" not in stored  # the owner is hashed
