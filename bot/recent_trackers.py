"""Keeps the decoded tracker of recent conversations between their turns (issue 19, docs/scale.md).

Rasa 3.6's SQL tracker store rebuilds a conversation's tracker from the database twice per turn:
once to handle the message (``retrieve``) and once more while saving it, to find which events
the event broker has not seen (``stream_events``). Each rebuild decodes and replays every event
of the session, so the cost of a turn grows with the conversation: at 200 question turns (about
1,000 events) one rebuild took 60 ms in Rasa's Python, against 3.5 ms at 20 turns.

Here the tracker a turn saved is kept in memory (the latest ``RECENT_TRACKERS`` conversations of
this process) and handed to the next turn of the same conversation when the database still holds
exactly what it held when the tracker was last read or saved:

* the conversation's latest session in the database has the number of events the tracker
  holds, and the same newest row id and event time (one query: another process's writes, a
  citizen's data deleted by the console, or a new session change them; SQLite may give a new
  row the id of a deleted one, but not its time, so a deletion followed by as many new rows
  is seen too), and
* the tracker's last event is the very event object it ended with then (a turn that failed
  before saving left events in memory that the database does not have).

Otherwise the tracker is rebuilt from the database, as before. While saving, the events to
publish are those after the kept position, instead of a difference with a rebuilt tracker.
Rows, events and published messages are exactly Rasa's.

A new conversation's tracker holds its first session start twice over (the ``action_listen``
Rasa saves when it creates the tracker, then the session start), so it holds more events than
the database's latest session: it is kept for publishing the turn's events, and the next turn
reads it from the database once. A conversation without any row is known from the check
alone, without Rasa's query. The check is one SQL statement built once (Rasa's ORM query for
the same rows costs about seven times more in SQLAlchemy's Python); Rasa's save counts the
rows it already holds with it too.

Only one process may write a conversation at a time for this to hold, which Rasa's lock store
already guarantees for turns (and which the scale profile's Redis lock store guarantees across
replicas). Used by the embedded profile's SQLite store (bot/sqlite_stores.py) and, as
``KeptSQLTrackerStore``, by the scale profile's PostgreSQL store.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SessionStarted

RECENT_TRACKERS = 512


@dataclass
class _Kept:
    tracker: Any  # rasa.shared.core.trackers.DialogueStateTracker
    stored: tuple[int, int, float]  # (events, newest id, newest time) of its latest session
    position: int  # how many of the tracker's events the database held then
    last: Any  # its last event then (compared by identity)

    @property
    def whole_session(self) -> bool:
        """The tracker holds the latest session only, as Rasa's ``retrieve`` would build it."""
        return self.stored[0] == self.position


def stored_state_statement(events: sa.Table) -> Any:
    """``SELECT count, max(id), max(timestamp)`` of one conversation's latest session: the rows
    of Rasa 3.6's ``SQLTrackerStore._event_query(..., fetch_events_from_all_sessions=False)``
    (events from the latest ``session_started`` on, or all of them when there is none)."""
    sender = sa.bindparam("sender_id")
    session_start = (
        sa.select(sa.func.max(events.c.timestamp))
        .where(events.c.sender_id == sender, events.c.type_name == SessionStarted.type_name)
        .scalar_subquery()
    )
    return sa.select(
        sa.func.count(), sa.func.max(events.c.id), sa.func.max(events.c.timestamp)
    ).where(
        events.c.sender_id == sender,
        sa.or_(events.c.timestamp >= session_start, session_start.is_(None)),
    )


def _last_event(tracker: Any) -> Any:
    return tracker.events[-1] if tracker.events else None


class RecentTrackers:
    """Mixin for a ``rasa.core.tracker_store.SQLTrackerStore`` subclass (listed first)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._stored_state_sql = stored_state_statement(
            self.SQLEvent.__table__  # type: ignore[attr-defined]
        )

    def stored_state(self, sender_id: str, session: Any = None) -> tuple[int, int, float]:
        """(number of events, newest row id, newest event time) of the conversation's latest
        session in the database (the rows Rasa reads for that session); zeros when it has none."""
        if session is None:
            with self.session_scope() as own:  # type: ignore[attr-defined]
                return self.stored_state(sender_id, own)
        count, newest, latest = session.execute(
            self._stored_state_sql, {"sender_id": sender_id}
        ).one()
        return int(count or 0), int(newest or 0), float(latest or 0.0)

    def _additional_events(self, session: Any, tracker: Any) -> Iterator[Any]:
        """Rasa's: the tracker's events after as many as the latest session has rows (counted
        with the check's statement instead of Rasa's ORM query)."""
        stored = self.stored_state(tracker.sender_id, session)[0]
        return itertools.islice(tracker.events, stored, len(tracker.events))

    def _unchanged(self, sender_id: str, stored: tuple[int, int, float]) -> _Kept | None:
        kept = self._kept.get(sender_id)
        if kept is None or kept.stored != stored or kept.position != len(kept.tracker.events):
            return None
        return kept if _last_event(kept.tracker) is kept.last else None

    def _keep(self, tracker: Any, stored: tuple[int, int, float]) -> None:
        kept = self._kept
        sender_id = tracker.sender_id
        kept.pop(sender_id, None)
        kept[sender_id] = _Kept(tracker, stored, len(tracker.events), _last_event(tracker))
        while len(kept) > RECENT_TRACKERS:
            kept.popitem(last=False)

    async def retrieve(self, sender_id: str) -> Any:
        stored = self.stored_state(sender_id)
        kept = self._unchanged(sender_id, stored)
        if kept is not None and kept.whole_session:
            self._kept.move_to_end(sender_id)
            return kept.tracker
        self._kept.pop(sender_id, None)
        if stored[0] == 0:
            return None  # no row at all: Rasa's retrieve would find nothing either
        tracker = await super().retrieve(sender_id)  # type: ignore[misc]
        if tracker is not None:
            self._keep(tracker, stored)
        return tracker

    async def stream_events(self, tracker: Any) -> None:
        broker = self.event_broker  # type: ignore[attr-defined]
        kept = self._kept.get(tracker.sender_id)
        if broker is None or kept is None or kept.tracker is not tracker:
            await super().stream_events(tracker)  # type: ignore[misc]
            return
        events, position = tracker.events, kept.position
        unchanged_start = 0 < position <= len(events) and events[position - 1] is kept.last
        if not unchanged_start or self.stored_state(tracker.sender_id) != kept.stored:
            await super().stream_events(tracker)  # type: ignore[misc]
            return
        new_events = list(itertools.islice(events, position, len(events)))
        await self._stream_new_events(broker, new_events, tracker.sender_id)

    async def _stream_new_events(self, broker: Any, new_events: list[Any], sender_id: str) -> None:
        """Rasa's messages, one per event; a broker with ``publish_many`` (the embedded SQLite
        broker) writes a turn's events in one transaction instead of one commit each."""
        publish_many = getattr(broker, "publish_many", None)
        if publish_many is None:
            await super()._stream_new_events(broker, new_events, sender_id)  # type: ignore[misc]
            return
        publish_many([{"sender_id": sender_id, **event.as_dict()} for event in new_events])

    async def save(self, tracker: Any) -> None:
        try:
            await super().save(tracker)  # type: ignore[misc]
        except BaseException:
            self._kept.pop(tracker.sender_id, None)
            raise
        self._keep(tracker, self.stored_state(tracker.sender_id))


class KeptSQLTrackerStore(RecentTrackers, SQLTrackerStore):
    """Rasa's SQL tracker store keeping recent trackers between turns: the scale profile's
    store on PostgreSQL (``type: bot.recent_trackers.KeptSQLTrackerStore`` in
    bot/endpoints.scale.yml). Replicas share the database; each keeps its own trackers, and
    the check against the database reads a conversation again after another replica's turn
    (turns of one conversation never overlap: bot/lock_store.py)."""
