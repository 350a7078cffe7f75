"""Running one slow query of a report on its own connection while the rest is computed.

Why: a year's top unanswered questions is one SQL aggregate over a million queue rows (0.4 s on
PostgreSQL) that nothing else in the dashboard waits for. A database server runs it in its own
process while this one assembles the rest, so the dashboard waits for the longer of the two, not
their sum. SQLite runs inside this process: there it simply runs first, on the caller's session.
Used by analytics.rollup_dashboard for the aggregates nothing before them needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

T = TypeVar("T")


@contextmanager
def alongside(session: Session, work: Callable[[Session], T]) -> Iterator[Callable[[], T]]:
    """Starts ``work`` and yields the function that waits for its result (its exception is
    raised there). On PostgreSQL ``work`` gets a session of its own, on a connection of the
    same engine: it reads its own snapshot of the data, as a report's separate queries may."""
    if session.get_bind().dialect.name != "postgresql":
        result = work(session)
        yield lambda: result
        return

    def on_own_connection() -> T:
        with Session(session.get_bind()) as own:
            # One core for it: the caller's queries and this process need the others, and
            # PostgreSQL's parallel workers for a report aggregate took them (measured on two
            # cores: the year's dashboard 1.7 s with them, 1.3 s without; docs/scale.md).
            own.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            return work(own)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics") as pool:
        yield pool.submit(on_own_connection).result
