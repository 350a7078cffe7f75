"""bot.lock_store.AtomicRedisLockStore against the real Redis on 127.0.0.1:6379 (db 1).

Several "replicas" (separate store instances, separate connections, threads) issue tickets for
one conversation at the same moment: every ticket must be distinct, and two lock holders must
never overlap. Skips when Redis is unreachable, unless CI is set.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from redis_kit import REDIS, require_redis

from bot.lock_store import AtomicRedisLockStore


@pytest.fixture
def stores() -> list[AtomicRedisLockStore]:
    require_redis()
    return [
        AtomicRedisLockStore(host=REDIS[0], port=REDIS[1], db=1, key_prefix="askagencytest")
        for _ in range(4)
    ]


def test_concurrent_tickets_are_all_distinct(stores: list[AtomicRedisLockStore]) -> None:
    conversation = f"c-{uuid.uuid4().hex}"
    tickets: list[int] = []
    start = threading.Barrier(len(stores) * 5)

    def issue(store: AtomicRedisLockStore) -> None:
        start.wait()
        for _ in range(10):
            tickets.append(store.issue_ticket(conversation, 30))

    threads = [threading.Thread(target=issue, args=(s,)) for s in stores for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len(tickets) == 200 and len(set(tickets)) == 200
        assert stores[0].get_lock(conversation).last_issued == 199
    finally:
        stores[0].delete_lock(conversation)


def test_holders_on_different_replicas_never_overlap(stores: list[AtomicRedisLockStore]) -> None:
    conversation = f"c-{uuid.uuid4().hex}"
    active: list[int] = []
    overlaps: list[int] = []
    done: list[int] = []

    async def turn(store: AtomicRedisLockStore, n: int) -> None:
        async with store.lock(conversation, lock_lifetime=30, wait_time_in_seconds=0.01):
            active.append(n)
            if len(active) > 1:
                overlaps.append(n)
            await asyncio.sleep(0.02)
            active.remove(n)
            done.append(n)

    async def main() -> None:
        await asyncio.gather(*(turn(stores[n % len(stores)], n) for n in range(12)))

    asyncio.run(main())
    assert sorted(done) == list(range(12)) and overlaps == []
    assert stores[0].get_lock(conversation) is None  # cleaned up when nobody waits


def test_loads_from_an_endpoint_config() -> None:
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import EndpointConfig

    config = EndpointConfig(
        url="127.0.0.1",
        type="bot.lock_store.AtomicRedisLockStore",
        port=6379,
        db=1,
        key_prefix="askagency",
    )
    store = LockStore.create(config)
    assert isinstance(store, AtomicRedisLockStore)
    assert store.key_prefix.startswith("askagency:")
