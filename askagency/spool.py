"""Durable write spool: writes the database could not take are kept on disk and replayed later.

Why: the action server keeps answering citizens while the application database is down, and some
of what it writes on the way (unanswered questions, FAQ answer counts, handoff tickets and the
citizen messages relayed to them) exists nowhere else. Instead of logging and dropping such a
write, the caller describes it as a *record* (a ``kind`` plus a JSON payload) and hands it to
:func:`store`: it is written to the database at once when possible, else appended to
``<data_dir>/spool/pending.jsonl``. A replayer (the action server's background task, or
``askagency spool replay``) writes the pending records to the database in their original order
once it answers again.

Files under ``<data_dir>/spool/`` (mode 0600: they may hold citizen text, like the database):

* ``pending.jsonl``: one record per line, appended with flush + fsync under an exclusive
  ``fcntl.flock`` on ``.lock``, so several processes (two action servers sharing ``data_dir``)
  can append safely;
* ``replayed.ids``: ids of records already written by the replay in progress (fsynced one by
  one), so a crash in the middle of a replay does not write them a second time;
* ``dead.jsonl``: records that can never be written (unknown kind, bad payload, a constraint
  they violate) and unreadable lines, each with its error; never deleted automatically;
* ``.replay.lock``: held by the one replayer at work (others skip their turn).

Crash safety: a record is appended before the caller is told it was kept. A crash between a
record's database commit and the fsync of its id in ``replayed.ids`` replays that one record
again; the replay functions make that a no-op where it is cheap (tickets re-use the
conversation's open ticket, relayed messages and unanswered questions are matched on their
original time and text), so only an FAQ answer count can be one too high. A torn last line from
a crash during an append is moved to ``dead.jsonl`` on the next replay.

Which function writes a record of a given kind is the caller's to say: :func:`store` and
:meth:`Spool.replay` take a ``kinds`` mapping (kind -> function taking ``(session, payload)``,
run in its own transaction). The product's mapping is ``actions.spool_kinds.SPOOL_KINDS``, next
to the action server that makes these writes; this module knows none of the feature packages.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from askagency.clock import now_utc
from askagency.config import Settings, get_settings
from askagency.db import session_scope

logger = logging.getLogger(__name__)

ReplayFunction = Callable[[Session, dict[str, Any]], None]
ReplayKinds = Mapping[str, ReplayFunction]
"""Record kind -> the function that writes such a record's payload to the database."""

PENDING_FILE = "pending.jsonl"
DEAD_FILE = "dead.jsonl"
REPLAYED_FILE = "replayed.ids"
LOCK_FILE = ".lock"
REPLAY_LOCK_FILE = ".replay.lock"

# Errors that mean "the database cannot take writes right now": keep the record and retry.
# ProgrammingError covers a schema not migrated yet (PostgreSQL); SQLite reports that, a locked
# file and an unreachable file alike as OperationalError.
_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    sa_exc.InternalError,
    sa_exc.ProgrammingError,
    ConnectionError,
    TimeoutError,
)


class SpoolRejected(Exception):
    """Raised by a replay function for a record that can never be written (goes to dead)."""


def is_database_unavailable(exc: BaseException) -> bool:
    """True for failures a later retry can fix (server down, connection lost, not migrated)."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError)


def resolve(kinds: ReplayKinds, kind: str) -> ReplayFunction:
    """The function writing records of ``kind``; SpoolRejected (the record goes to dead) for a
    kind ``kinds`` does not know."""
    function = kinds.get(kind)
    if function is None:
        raise SpoolRejected(f"unknown record kind {kind!r}")
    return function


def payload_time(payload: dict[str, Any], name: str) -> datetime:
    """A time a replay function reads back from a record's payload (written with
    ``isoformat()`` when the write was first tried). A missing or naive value makes the record
    unwritable (ValueError: it goes to dead) rather than filed at the wrong time."""
    value = payload.get(name)
    if not isinstance(value, str):
        raise ValueError(f"payload has no {name} timestamp")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{name} has no time zone: {value!r}")
    return moment


def _now_iso() -> str:
    return now_utc().isoformat()


def _error_text(exc: BaseException) -> str:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"[:500]


@dataclass(frozen=True)
class SpoolRecord:
    """One write waiting for the database. ``key`` (a conversation id) orders a conversation's
    later writes behind its pending ones."""

    kind: str
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(default_factory=_now_iso)
    key: str | None = None

    def to_line(self) -> str:
        body = {
            "id": self.id,
            "kind": self.kind,
            "created_at": self.created_at,
            "key": self.key,
            "payload": self.payload,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, line: str) -> SpoolRecord:
        """Parses one line; ValueError (with the reason) for anything that is not a record."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        kind, payload, record_id = data.get("kind"), data.get("payload"), data.get("id")
        if not isinstance(kind, str) or not isinstance(record_id, str):
            raise ValueError("missing kind or id")
        if not isinstance(payload, dict):
            raise ValueError("payload is not an object")
        key = data.get("key")
        return cls(
            kind=kind,
            payload=payload,
            id=record_id,
            created_at=str(data.get("created_at") or ""),
            key=key if isinstance(key, str) else None,
        )


@dataclass
class ReplayResult:
    replayed: int = 0
    dead: int = 0
    remaining: int = 0
    error: str | None = None  # the database error that stopped the replay
    busy: bool = False  # another replayer holds the replay lock

    def to_dict(self) -> dict[str, Any]:
        return {
            "replayed": self.replayed,
            "dead": self.dead,
            "remaining": self.remaining,
            "error": self.error,
            "busy": self.busy,
        }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """The spool folder of one data directory; cheap to create, safe across processes."""

    def __init__(self, directory: Path, retry_seconds: float = 5.0) -> None:
        self.directory = Path(directory)
        self.retry_seconds = retry_seconds
        self.pending_path = self.directory / PENDING_FILE
        self.dead_path = self.directory / DEAD_FILE
        self.replayed_path = self.directory / REPLAYED_FILE
        # Per-process view of the outage: when the database last failed (monotonic), and
        # whether "database down, spooling" has been logged for this outage.
        self._state_lock = threading.Lock()
        self._failed_at: float | None = None
        self.down_since: str | None = None
        self.last_error: str | None = None

    # --- locking and files ------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        if not self.directory.exists():
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextmanager
    def _flock(self, name: str, blocking: bool = True) -> Iterator[bool]:
        """Exclusive ``flock`` on ``name``; yields False when ``blocking`` is off and it is
        taken. flock locks belong to the open file, so threads of one process exclude each
        other too."""
        self._ensure_dir()
        fd = os.open(self.directory / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    yield False
                    return
                raise
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _append_line(self, path: Path, line: str) -> None:
        """Appends ``line`` durably (caller holds the append lock). A torn last line left by a
        crash gets its newline first, so it stays one unreadable line instead of spoiling the
        new record."""
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            prefix = ""
            if size and os.pread(fd, 1, size - 1) != b"\n":
                prefix = "\n"
            data = (prefix + line).encode("utf-8")
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.directory)

    def _lines(self, path: Path) -> list[str]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return []
        return [line for line in raw.decode("utf-8", "replace").split("\n") if line.strip()]

    def _replayed_ids(self) -> set[str]:
        return {line.strip() for line in self._lines(self.replayed_path)}

    def _parse(self, lines: list[str]) -> list[tuple[str, SpoolRecord | None, str | None]]:
        parsed: list[tuple[str, SpoolRecord | None, str | None]] = []
        for line in lines:
            try:
                parsed.append((line, SpoolRecord.from_line(line), None))
            except ValueError as exc:
                parsed.append((line, None, f"unreadable spool line: {exc}"))
        return parsed

    # --- writing ----------------------------------------------------------------------------

    def append(self, kind: str, payload: dict[str, Any], key: str | None = None) -> SpoolRecord:
        """Keeps one record on disk (fsynced before returning)."""
        record = SpoolRecord(kind=kind, payload=payload, key=key)
        line = record.to_line()
        with self._flock(LOCK_FILE):
            self._append_line(self.pending_path, line)
        return record

    def dead_letter(self, record: SpoolRecord | None, error: str, raw: str | None = None) -> None:
        """Moves a record (or an unreadable line) to ``dead.jsonl`` with why; logged loudly."""
        entry: dict[str, Any] = {"dead_at": _now_iso(), "error": error}
        if record is not None:
            entry.update(
                id=record.id,
                kind=record.kind,
                created_at=record.created_at,
                key=record.key,
                payload=record.payload,
            )
        else:
            entry["raw"] = raw
        logger.error(
            "spool: record %s (%s) cannot be written and was moved to %s: %s",
            record.id if record else "-",
            record.kind if record else "unreadable line",
            self.dead_path,
            error,
        )
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._flock(LOCK_FILE):
            self._append_line(self.dead_path, line)

    # --- reading ----------------------------------------------------------------------------

    def pending(self) -> list[SpoolRecord]:
        """Records waiting for the database, oldest first (unreadable lines left out)."""
        done = self._replayed_ids()
        return [
            record
            for _line, record, _err in self._parse(self._lines(self.pending_path))
            if record is not None and record.id not in done
        ]

    def pending_count(self) -> int:
        if not self._has_data(self.pending_path):
            return 0
        done = self._replayed_ids()
        count = 0
        for _line, record, _err in self._parse(self._lines(self.pending_path)):
            if record is None or record.id not in done:
                count += 1
        return count

    def dead_count(self) -> int:
        return len(self._lines(self.dead_path)) if self._has_data(self.dead_path) else 0

    @staticmethod
    def _has_data(path: Path) -> bool:
        try:
            return path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def has_pending(self, key: str) -> bool:
        """True when a record of conversation ``key`` still waits (its later writes must wait
        behind it to stay in order)."""
        if not self._has_data(self.pending_path):
            return False
        return any(record.key == key for record in self.pending())

    def records_for(self, key: str) -> dict[str, list[dict[str, Any]]]:
        """A conversation's spooled and dead-lettered writes (privacy export)."""
        pending = [json.loads(record.to_line()) for record in self.pending() if record.key == key]
        dead = [entry for entry in self._dead_entries() if entry.get("key") == key]
        return {"pending": pending, "dead": dead}

    def forget(self, key: str) -> int:
        """Deletes every spooled and dead-lettered write of conversation ``key`` (a citizen's
        deletion request); returns how many. Holds the replay lock, so a replay cannot write
        them to the database afterwards: delete here first, then in the database."""
        removed = 0
        with self._flock(REPLAY_LOCK_FILE), self._flock(LOCK_FILE):
            for path in (self.pending_path, self.dead_path):
                lines = self._lines(path)
                keep = [line for line in lines if _line_key(line) != key]
                if len(keep) != len(lines):
                    removed += len(lines) - len(keep)
                    _rewrite(path, keep)
        if removed:
            logger.warning("spool: deleted %d writes of one conversation on request", removed)
        return removed

    def _dead_entries(self) -> list[dict[str, Any]]:
        entries = []
        for line in self._lines(self.dead_path):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def status(self) -> dict[str, Any]:
        """What health endpoints and the CLI show."""
        pending = self.pending_count()
        return {
            "pending": pending,
            "dead": self.dead_count(),
            "database_down_since": self.down_since,
            "last_error": self.last_error,
            "directory": str(self.directory),
        }

    # --- the outage, as this process sees it ------------------------------------------------

    def recently_failed(self) -> bool:
        """The database failed less than ``retry_seconds`` ago: spool without trying, so a
        citizen's turn does not wait for another connection attempt."""
        with self._state_lock:
            return (
                self._failed_at is not None
                and time.monotonic() - self._failed_at < self.retry_seconds
            )

    def note_failure(self, exc: BaseException) -> None:
        with self._state_lock:
            self._failed_at = time.monotonic()
            self.last_error = _error_text(exc)
            first = self.down_since is None
            if first:
                self.down_since = _now_iso()
        if first:
            logger.error(
                "database down, spooling writes to %s (%s)", self.pending_path, self.last_error
            )

    def note_recovery(self, replayed: int) -> None:
        with self._state_lock:
            was_down = self.down_since is not None
            self._failed_at = None
            self.down_since = None
            self.last_error = None
        if was_down or replayed:
            logger.warning("database back, replayed %d spooled writes", replayed)

    # --- replay -----------------------------------------------------------------------------

    def replay(self, kinds: ReplayKinds, database_url: str | None = None) -> ReplayResult:
        """Writes pending records in order with the function ``kinds`` names for each, one
        transaction each; stops at the first database error (the rest stay pending); records
        that can never be written (an unknown kind among them) go to dead."""
        result = ReplayResult()
        with self._flock(REPLAY_LOCK_FILE, blocking=False) as got:
            if not got:
                result.busy = True
                result.remaining = self.pending_count()
                return result
            if not self._has_data(self.pending_path):
                self._compact(set(), set())
                return result  # nothing written: says nothing about the database
            done = self._replayed_ids()
            dropped_lines: set[str] = set()
            for line, record, parse_error in self._parse(self._lines(self.pending_path)):
                if record is None:
                    self.dead_letter(None, parse_error or "unreadable", raw=line)
                    dropped_lines.add(line)
                    result.dead += 1
                    continue
                if record.id in done:
                    continue
                try:
                    function = resolve(kinds, record.kind)
                    with session_scope(database_url) as session:
                        function(session, record.payload)
                except Exception as exc:  # noqa: BLE001 - classified below, never lost
                    if is_database_unavailable(exc):
                        result.error = _error_text(exc)
                        self.note_failure(exc)
                        break
                    self.dead_letter(record, _error_text(exc))
                    result.dead += 1
                else:
                    result.replayed += 1
                self._mark_replayed(record.id)
                done.add(record.id)
            self._compact(done, dropped_lines)
            result.remaining = self.pending_count()
        if result.error is None and (result.replayed or result.dead):
            self.note_recovery(result.replayed)
        return result

    def _mark_replayed(self, record_id: str) -> None:
        with self._flock(LOCK_FILE):
            self._append_line(self.replayed_path, record_id + "\n")

    def _compact(self, done: set[str], dropped_lines: set[str]) -> None:
        """Rewrites ``pending.jsonl`` without the replayed records and dead-lettered lines
        (records appended meanwhile are kept), then forgets the replayed ids. Atomic: a
        temporary file renamed over the old one."""
        with self._flock(LOCK_FILE):
            lines = self._lines(self.pending_path)
            keep: list[str] = []
            for line, record, _err in self._parse(lines):
                if record is None:
                    if line not in dropped_lines:
                        keep.append(line)
                elif record.id not in done:
                    keep.append(line)
            if len(keep) != len(lines) or self._has_data(self.replayed_path):
                _rewrite(self.pending_path, keep)
                # Only now: the ids left in replayed.ids match no pending record any more.
                with open(self.replayed_path, "wb") as handle:
                    handle.flush()
                    os.fsync(handle.fileno())


def _line_key(line: str) -> str | None:
    """The conversation key of a pending record or dead entry (None when it has none or the
    line is unreadable: such lines stay for an operator)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    key = data.get("key") if isinstance(data, dict) else None
    return key if isinstance(key, str) else None


def _rewrite(path: Path, lines: list[str]) -> None:
    """Replaces ``path`` with ``lines`` atomically (temporary file, fsync, rename)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, "".join(line + "\n" for line in lines).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@lru_cache(maxsize=8)
def _spool_for(directory: str, retry_seconds: float) -> Spool:
    return Spool(Path(directory), retry_seconds)


def get_spool(settings: Settings | None = None) -> Spool:
    """The process's spool for ``<data_dir>/spool`` (one instance, so the outage state and
    its log lines are per process, not per call)."""
    settings = settings or get_settings()
    return _spool_for(str(Path(settings.data_dir) / "spool"), settings.spool_retry_seconds)


def store(
    kind: str,
    payload: dict[str, Any],
    kinds: ReplayKinds,
    *,
    key: str | None = None,
    database_url: str | None = None,
    spool: Spool | None = None,
) -> str:
    """Writes one record to the database now (with ``kinds[kind]``), or keeps it in the spool.

    Returns ``"stored"``, ``"spooled"`` (database unavailable, or an earlier write of the same
    conversation still waits) or ``"dead"`` (the write can never succeed; kept in dead.jsonl).
    Never raises for a storage problem: the caller is answering a citizen.
    """
    spool = spool or get_spool()
    if spool.recently_failed() or (key is not None and spool.has_pending(key)):
        spool.append(kind, payload, key)
        return "spooled"
    try:
        function = resolve(kinds, kind)
        with session_scope(database_url) as session:
            function(session, payload)
    except Exception as exc:  # noqa: BLE001 - classified below, never lost
        if is_database_unavailable(exc):
            spool.note_failure(exc)
            spool.append(kind, payload, key)
            return "spooled"
        spool.dead_letter(SpoolRecord(kind=kind, payload=payload, key=key), _error_text(exc))
        return "dead"
    return "stored"
