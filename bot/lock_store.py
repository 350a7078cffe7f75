"""A Redis ticket lock store whose updates are atomic, for several Rasa replicas.

Rasa 3.6's ``RedisLockStore`` reads the conversation's ticket lock, changes it in Python and
writes it back. Two replicas receiving messages of one conversation at the same moment both read
"no lock", both issue ticket 0 and both process at once: one turn is then lost from the tracker
store (each replica saves the events it has on top of what it read). tests/e2e/test_scale_load.py
caught exactly that (RasaHQ/rasa#9213; the upstream fix, ``ConcurrentRedisLockStore``, is not in
Rasa Open Source 3.6).

This store keeps Rasa's data format and waiting logic and makes every read-modify-write of a
lock one optimistic Redis transaction (WATCH/MULTI/EXEC, retried when another replica changed
the lock in between): issuing a ticket, dropping expired tickets, finishing a ticket and
deleting the lock when nobody waits. Use it in endpoints.yml with
``lock_store: type: bot.lock_store.AtomicRedisLockStore`` (PYTHONPATH must contain the project
root, as for the custom channels).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 1000  # optimistic retries; contention on one conversation is a handful of replicas


class AtomicRedisLockStore(RedisLockStore):
    """``RedisLockStore`` with atomic lock updates (same keys and JSON as the stock store)."""

    def __init__(self, endpoint_config: Any = None, **kwargs: Any) -> None:
        if endpoint_config is not None:
            kwargs = {
                "host": endpoint_config.url or "localhost",
                **endpoint_config.kwargs,
                **kwargs,
            }
        super().__init__(**kwargs)

    def _key(self, conversation_id: str) -> str:
        return self.key_prefix + conversation_id

    def _transact(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[TicketLock | None, T]],
    ) -> T:
        """Applies ``change`` to the stored lock atomically. ``change`` returns the lock to store
        (``None``: delete it) and a result; it is re-run when the key changed meanwhile."""
        import redis

        key = self._key(conversation_id)
        with self.red.pipeline() as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    new_lock, result = change(lock)
                    pipe.multi()
                    if new_lock is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, new_lock.dumps())
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise LockError(f"lock of conversation '{conversation_id}' kept changing; giving up")

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(lock: TicketLock | None) -> tuple[TicketLock, int]:
            lock = lock or TicketLock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        try:
            return self._transact(conversation_id, change)
        except LockError:
            raise
        except Exception as exc:
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc

    def update_lock(self, conversation_id: str) -> None:
        def change(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is not None:
                lock.remove_expired_tickets()
            return lock, None

        self._transact(conversation_id, change)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def change(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._transact(conversation_id, change)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finishes the ticket and deletes the lock if nobody waits, in one step: a ticket
        another replica issues in between is never deleted with the lock."""

        def change(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return (lock if lock.is_someone_waiting() else None), None

        self._transact(conversation_id, change)
