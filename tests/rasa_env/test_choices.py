"""Numbered choices (bot/channels/choices.py) in the channels' shared state: the "2" a citizen
texts back selects option 2 on whichever Rasa replica receives it, once, while valid.

Two :class:`RedisState` instances with separate connections to the real Redis on
127.0.0.1:6379 stand for two replicas; each test uses its own key prefix. The Redis tests skip
when Redis is unreachable, unless CI is set.
"""

from __future__ import annotations

import threading
import time

import redis
from redis_kit import URL

from bot.channels.choices import PendingChoices
from bot.channels.common import Choice
from bot.channels.shared_state import LocalState, RedisState
from tests.net import closed_port

OPTIONS = [Choice("Lighter in carry-on", "b:token-carry-on"), Choice("Torch lighters", "b:t2")]


def replicas(prefix: str, ttl_s: float = 60.0) -> tuple[PendingChoices, PendingChoices]:
    """The SMS channel's choices on two replicas, each with its own Redis connection."""
    return (
        PendingChoices(RedisState(URL, prefix), "sms", ttl_s),
        PendingChoices(RedisState(URL, prefix), "sms", ttl_s),
    )


def test_choices_shown_by_one_replica_are_picked_on_the_other_once(prefix: str) -> None:
    replica_a, replica_b = replicas(prefix)
    replica_a.remember("sms-15551112222", OPTIONS)
    assert replica_b.resolve("sms-15551112222", "2") == "b:t2"
    assert replica_a.resolve("sms-15551112222", "2") is None  # used up for both replicas
    assert replica_b.resolve("sms-15551112222", "2") is None
    replica_b.remember("sms-15551112222", OPTIONS)
    assert replica_a.resolve("sms-15551112222", "torch LIGHTERS.") == "b:t2"  # by exact title
    replica_a.remember("sms-15551112222", OPTIONS)
    assert replica_b.resolve("sms-15551112222", "how about matches?") is None
    assert replica_a.resolve("sms-15551112222", "1") is None  # another reply used them up
    replica_a.remember("sms-15551112222", OPTIONS)
    replica_a.remember("sms-15551112222", [])  # a message without options clears them
    assert replica_b.resolve("sms-15551112222", "1") is None


def test_conversations_and_channels_do_not_share_choices(prefix: str) -> None:
    state = RedisState(URL, prefix)
    sms, whatsapp = PendingChoices(state, "sms", 60), PendingChoices(state, "whatsapp", 60)
    sms.remember("15551112222", OPTIONS)
    assert whatsapp.resolve("15551112222", "1") is None  # same id, another channel
    assert sms.resolve("15553334444", "1") is None  # another conversation
    assert sms.resolve("15551112222", "1") == "b:token-carry-on"


def test_only_one_replica_gets_a_list_picked_on_two_at_once(prefix: str) -> None:
    """The same "1" delivered to several replicas at the same moment (a platform redelivery
    racing the original): GETDEL hands the list to one of them only."""
    choices = [PendingChoices(RedisState(URL, prefix), "sms", 60) for _ in range(4)]

    def pick(replica: PendingChoices, start: threading.Barrier, picked: list) -> None:
        start.wait()
        picked.append(replica.resolve("sms-1", "1"))

    for _ in range(20):
        choices[0].remember("sms-1", OPTIONS)
        start = threading.Barrier(len(choices))
        picked: list[str | None] = []
        threads = [threading.Thread(target=pick, args=(c, start, picked)) for c in choices]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert picked.count("b:token-carry-on") == 1 and picked.count(None) == 3


def test_choices_expire_in_redis(prefix: str) -> None:
    replica_a, replica_b = replicas(prefix, ttl_s=0.2)
    replica_a.remember("sms-1", OPTIONS)
    client = redis.Redis.from_url(URL)
    (key,) = client.scan_iter(f"{prefix}:*")
    assert 0 < client.pttl(key) <= 200
    time.sleep(0.3)
    assert replica_b.resolve("sms-1", "1") is None
    assert list(client.scan_iter(f"{prefix}:*")) == []


def test_choices_expire_in_local_memory() -> None:
    now = [1000.0]
    choices = PendingChoices(LocalState(clock=lambda: now[0]), "sms", ttl_s=3600)
    choices.remember("sms-1", OPTIONS)
    now[0] += 3599
    assert choices.resolve("sms-1", "1") == "b:token-carry-on"
    choices.remember("sms-1", OPTIONS)
    now[0] += 3600
    assert choices.resolve("sms-1", "1") is None


def test_redis_holds_no_conversation_id(prefix: str) -> None:
    replica_a, _ = replicas(prefix)
    replica_a.remember("sms-15551112222", OPTIONS)
    client = redis.Redis.from_url(URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    assert len(keys) == 1
    stored = keys[0] + b" " + client.get(keys[0])
    assert b"Torch lighters" in stored and b"b:t2" in stored  # what the citizen was shown
    assert b"15551112222" not in stored and b"sms-" not in stored


def test_redis_down_falls_back_to_this_replicas_memory() -> None:
    with closed_port() as port:
        choices = PendingChoices(RedisState(f"redis://127.0.0.1:{port}/2"), "sms", 60)
        choices.remember("sms-1", OPTIONS)  # fails open: kept in this process
        assert choices.resolve("sms-1", "2") == "b:t2"
        assert choices.resolve("sms-1", "2") is None  # still used up
        choices.remember("sms-1", OPTIONS)
        choices.remember("sms-1", [])
        assert choices.resolve("sms-1", "1") is None
