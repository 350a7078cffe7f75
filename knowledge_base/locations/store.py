"""Reading and changing the location list, with the checks staff input needs.

Every write goes through :func:`save` / :func:`delete`, so the console API, the CLI import and
the sample loader refuse the same things: a malformed code, an empty name, an alias that
another location already uses (a text naming it would be counted for either). Both record the
change in the audit log (``entity_type`` ``location``) with who made it.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from askagency.clock import now_utc
from askagency.csv_safe import csv_safe, csv_unguard
from knowledge_base.locations.matching import LocationMatcher, Place, fold, normalise_code
from knowledge_base.locations.models import (
    ACTOR_MAX_LEN,
    ALIAS_MAX_LEN,
    MAX_ALIASES,
    NAME_MAX_LEN,
    Location,
)
from knowledge_base.models import AuditAction, AuditLog

CSV_COLUMNS = ("code", "name", "aliases", "active")
ALIAS_SEPARATOR = "|"
MAX_CSV_BYTES = 1_000_000
ENTITY_LOCATION = "location"  # AuditLog.entity_type of location changes
SYSTEM_ACTOR = "system"  # the audit log's actor when a change names none


class LocationError(ValueError):
    """A location that cannot be saved; the message says why, for the person who typed it."""


class LocationIn(BaseModel):
    """A location as staff enter it."""

    code: str = Field(min_length=1, max_length=16)
    name: str = Field(min_length=1, max_length=NAME_MAX_LEN)
    aliases: list[str] = Field(default_factory=list, max_length=MAX_ALIASES)
    active: bool = True

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        code = normalise_code(value)
        if code is None:
            raise ValueError("a code is 1-16 letters, digits, '-' or '_' (for example DEN)")
        return code

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("the name is empty")
        return value

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, values: list[str]) -> list[str]:
        cleaned: list[str] = []
        seen: set[str] = set()
        for raw in values:
            alias = " ".join(str(raw).split())
            if not alias:
                continue
            if len(alias) > ALIAS_MAX_LEN:
                raise ValueError(f"an alias is at most {ALIAS_MAX_LEN} characters: {alias[:40]!r}")
            if len(fold(alias)) < 2:
                raise ValueError(f"an alias needs at least two letters or digits: {alias!r}")
            if fold(alias) not in seen:
                seen.add(fold(alias))
                cleaned.append(alias)
        return cleaned


class LocationOut(LocationIn):
    updated_at: datetime
    updated_by: str | None


def to_out(row: Location) -> LocationOut:
    return LocationOut(
        code=row.code,
        name=row.name,
        aliases=list(row.aliases or []),
        active=row.active,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def list_locations(session: Session) -> list[Location]:
    return list(session.scalars(select(Location).order_by(Location.code)))


def _phrases(item: LocationIn) -> set[str]:
    return {fold(p) for p in (item.name, *item.aliases)} - {""}


def _check_unique(session: Session, item: LocationIn) -> None:
    """An alias or name that another location uses is refused: the text "Chicago" cannot be
    counted for both ORD and MDW."""
    mine = _phrases(item)
    typed = {fold(p): p for p in reversed((item.name, *item.aliases))}  # as staff wrote it
    for other in list_locations(session):
        if other.code == item.code:
            continue
        theirs = _phrases(LocationIn(code=other.code, name=other.name, aliases=other.aliases))
        clash = sorted(mine & (theirs | {fold(other.code)}))
        if clash:
            shown = typed.get(clash[0], clash[0])
            raise LocationError(f"{shown!r} already names {other.code} ({other.name})")


def _snapshot(row: Location) -> dict[str, object]:
    return {"name": row.name, "aliases": list(row.aliases or []), "active": row.active}


def _audit(
    session: Session,
    actor: str | None,
    action: AuditAction,
    code: str,
    before: dict[str, object] | None,
    after: dict[str, object] | None,
) -> None:
    session.add(
        AuditLog(
            at=now_utc(),
            actor=(actor or SYSTEM_ACTOR)[:ACTOR_MAX_LEN],
            action=action.value,
            entity_type=ENTITY_LOCATION,
            entity_id=code,
            before=before,
            after=after,
        )
    )


def save(session: Session, item: LocationIn, actor: str | None) -> tuple[Location, bool]:
    """Creates or replaces the location ``item.code``; returns it and whether it is new."""
    _check_unique(session, item)
    row = session.get(Location, item.code)
    created = row is None
    before = None if row is None else _snapshot(row)
    if row is None:
        row = Location(code=item.code)
        session.add(row)
    row.name = item.name
    row.aliases = list(item.aliases)
    row.active = item.active
    row.updated_at = now_utc()
    row.updated_by = actor[:ACTOR_MAX_LEN] if actor else None
    if before != _snapshot(row):
        action = AuditAction.CREATE if created else AuditAction.UPDATE
        _audit(session, actor, action, row.code, before, _snapshot(row))
    session.flush()
    return row, created


def delete(session: Session, code: str, actor: str | None = None) -> bool:
    """Removes a location from the list; reports keep the code on past conversations."""
    row = session.get(Location, normalise_code(code) or "")
    if row is None:
        return False
    _audit(session, actor, AuditAction.DELETE, row.code, _snapshot(row), None)
    session.delete(row)
    session.flush()
    return True


# --- CSV -------------------------------------------------------------------------------------


def read_csv(text: str) -> list[LocationIn]:
    """Locations from a CSV with the header ``code,name,aliases[,active]`` (aliases separated
    by ``|``). Raises :class:`LocationError` naming the first bad line. Cells that
    :func:`write_csv` guarded against spreadsheet formulas come back as they were."""
    if len(text.encode("utf-8", "replace")) > MAX_CSV_BYTES:
        raise LocationError(f"the file is larger than {MAX_CSV_BYTES // 1000} kB")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = {"code", "name"} - set(reader.fieldnames or ())
    if missing:
        raise LocationError(f"the header lacks {', '.join(sorted(missing))} (code,name,aliases)")
    items: list[LocationIn] = []
    seen: set[str] = set()
    for number, row in enumerate(reader, start=2):
        try:
            item = LocationIn(
                code=row.get("code") or "",
                name=csv_unguard(row.get("name") or ""),
                aliases=csv_unguard(row.get("aliases") or "").split(ALIAS_SEPARATOR),
                active=(row.get("active") or "true").strip().lower() not in ("false", "0", "no"),
            )
        except ValueError as exc:
            raise LocationError(f"line {number}: {_first_error(exc)}") from exc
        if item.code in seen:
            raise LocationError(f"line {number}: {item.code} appears twice")
        seen.add(item.code)
        items.append(item)
    return items


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        reason = str(first.get("msg")).removeprefix("Value error, ")
        return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {reason}"
    return str(exc)


def write_csv(rows: Iterable[Location]) -> str:
    """The :func:`read_csv` format; text a spreadsheet would run as a formula is guarded
    (``askagency.csv_safe``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.code,
                csv_safe(row.name),
                csv_safe(ALIAS_SEPARATOR.join(row.aliases or [])),
                str(row.active).lower(),
            ]
        )
    return out.getvalue()


def import_items(session: Session, items: Sequence[LocationIn], actor: str | None) -> int:
    """Saves every item (in the caller's transaction, so a refused one saves none)."""
    for item in items:
        try:
            save(session, item, actor)
        except LocationError as exc:
            raise LocationError(f"{item.code}: {exc}") from exc
    return len(items)


def add_missing(
    session: Session, items: Sequence[LocationIn], actor: str | None
) -> tuple[int, list[str]]:
    """Saves the items whose code is not in the list yet, keeping what staff changed (the
    sample loader). Returns how many were added and, for each item skipped, why."""
    present = {row.code for row in list_locations(session)}
    added = 0
    skipped: list[str] = []
    for item in items:
        if item.code in present:
            skipped.append(f"{item.code}: already in the list")
            continue
        try:
            save(session, item, actor)  # checks before it writes: a refusal changes nothing
        except LocationError as exc:
            skipped.append(f"{item.code}: {exc}")
            continue
        added += 1
    return added, skipped


# --- the matcher, built once per version of the list -----------------------------------------

_CACHE_SIZE = 8
_cache_lock = threading.Lock()
_cache: dict[tuple[Place, ...], LocationMatcher] = {}


def matcher(session: Session) -> LocationMatcher:
    """A matcher over the active locations. The list is small (an agency's sites) and read on
    every call; the matcher's regular expressions are rebuilt only when it changed."""
    rows = session.execute(
        select(Location.code, Location.name, Location.aliases)
        .where(Location.active.is_(True))
        .order_by(Location.code)
    ).all()
    places = tuple(Place(code=c, name=n, aliases=tuple(a or ())) for c, n, a in rows)
    with _cache_lock:
        cached = _cache.get(places)
        if cached is None:
            cached = LocationMatcher(places)
            if len(_cache) >= _CACHE_SIZE:
                _cache.pop(next(iter(_cache)))
            _cache[places] = cached
        return cached
