"""Staffed hours: when people answer handed-off conversations.

Configured as text so an agency edits one environment variable, e.g.
``ASKAGENCY_STAFFED_HOURS="mon-fri 08:00-20:00; sat 09:00-13:00"``, a time zone
(``ASKAGENCY_STAFFED_TIMEZONE=America/New_York``) and holidays, closed all day
(``ASKAGENCY_STAFFED_HOLIDAYS=2026-12-25,2027-01-01``). An empty schedule means every day,
all day (holidays still close): availability then depends only on agents being online.
Times are wall-clock times in the agency's zone, so daylight-saving changes need no
configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RULE_RE = re.compile(
    r"^(?P<days>[a-z]{3}(?:\s*-\s*[a-z]{3})?(?:\s*,\s*[a-z]{3}(?:\s*-\s*[a-z]{3})?)*)\s+"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$"
)
ALWAYS = "mon-sun 00:00-24:00"
MAX_LOOKAHEAD_DAYS = 400  # a schedule with holidays covering every opening has no next start


class HoursConfigError(ValueError):
    """The staffed-hours configuration cannot be understood; the message says where."""


@dataclass(frozen=True)
class Window:
    """Open from ``start`` to ``end`` (minutes after midnight; end may be 1440) on ``weekday``."""

    weekday: int
    start: int
    end: int


@dataclass(frozen=True)
class StaffedHours:
    timezone: ZoneInfo
    windows: tuple[Window, ...] = ()
    holidays: frozenset[date] = field(default_factory=frozenset)
    # Each local day's openings (microseconds since the epoch) and the running total of staffed
    # time at the start of each day, computed once: reports ask for tens of thousands of
    # tickets' staffed seconds, nearly all on the same few hundred days.
    _openings: dict[date, tuple[tuple[int, int], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _running: dict[date, int] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def _local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("naive datetime given; use now_utc()")
        return now.astimezone(self.timezone)

    def is_staffed(self, now: datetime) -> bool:
        """True when ``now`` (any time zone) falls inside an opening that is not a holiday."""
        local = self._local(now)
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(w.weekday == local.weekday() and w.start <= minute < w.end for w in self.windows)

    def next_staffed_start(self, now: datetime) -> datetime:
        """``now`` when staffed, else the start of the next opening (UTC)."""
        if self.is_staffed(now):
            return now.astimezone(UTC)
        local = self._local(now)
        for offset in range(MAX_LOOKAHEAD_DAYS):
            day = local.date() + timedelta(days=offset)
            if day in self.holidays:
                continue
            starts = sorted(w.start for w in self.windows if w.weekday == day.weekday())
            for start in starts:
                candidate = _wall_clock(day, start, self.timezone)
                if candidate > local:
                    return candidate.astimezone(UTC)
        raise HoursConfigError("the staffed hours never open (check hours and holidays)")

    def staffed_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds between ``start`` and ``end`` that fall inside staffed hours (holidays
        excluded): the business-hours first-response time, as Chatwoot reports it. A ticket
        opened on Friday evening and answered Monday at opening counts the minutes it waited
        while someone could have answered, not the weekend. Counts at most
        :data:`MAX_LOOKAHEAD_DAYS` days after the start's day.

        Computed as the difference of a running total (staffed microseconds from a fixed day up
        to an instant): each day's total is summed once, so a report's tens of thousands of
        tickets cost two look-ups each, not a walk over every day they waited."""
        if end <= start:
            return 0.0
        first = self._local(start).date()
        last = self._local(end).date()
        if (last - first).days > MAX_LOOKAHEAD_DAYS:
            last = first + timedelta(days=MAX_LOOKAHEAD_DAYS + 1)
            end = _wall_clock(last, 0, self.timezone)
        return (self._running_total(end, last) - self._running_total(start, first)) / 1e6

    def _running_total(self, instant: datetime, day: date) -> int:
        """Staffed microseconds from the start of the first day ever asked about to ``instant``
        (negative before it), ``day`` being ``instant``'s local date."""
        at = _microseconds(instant)
        total = self._total_before(day)
        for opens, closes in self._openings_us(day):
            total += min(max(at - opens, 0), closes - opens)
        return total

    def _total_before(self, day: date) -> int:
        """Staffed microseconds of the days from the anchor (the first day ever asked about) up
        to ``day``, exclusive; negative for days before the anchor. Extended one day at a time
        and kept, so each day's openings are summed once."""
        running = self._running
        if not running:
            running[day] = 0
            return 0
        if day in running:
            return running[day]
        low, high = min(running), max(running)
        while day > high:
            running[high + timedelta(days=1)] = running[high] + self._day_total(high)
            high += timedelta(days=1)
        while day < low:
            running[low - timedelta(days=1)] = running[low] - self._day_total(
                low - timedelta(days=1)
            )
            low -= timedelta(days=1)
        return running[day]

    def _day_total(self, day: date) -> int:
        return sum(closes - opens for opens, closes in self._openings_us(day))

    def _openings_us(self, day: date) -> tuple[tuple[int, int], ...]:
        """``day``'s windows as (opens, closes) in microseconds since the Unix epoch."""
        cached = self._openings.get(day)
        if cached is not None:
            return cached
        openings = []
        if day not in self.holidays:
            for w in self.windows:
                if w.weekday != day.weekday():
                    continue
                opens = _wall_clock(day, w.start, self.timezone)
                closes = (
                    _wall_clock(day + timedelta(days=1), 0, self.timezone)
                    if w.end >= 24 * 60
                    else _wall_clock(day, w.end, self.timezone)
                )
                openings.append((_microseconds(opens), _microseconds(closes)))
        self._openings[day] = found = tuple(openings)
        return found


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _microseconds(instant: datetime) -> int:
    """Exact microseconds since the Unix epoch (integers: no float rounding in the totals)."""
    return (instant - _EPOCH) // _MICROSECOND


def _wall_clock(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """Local wall-clock time; a start inside a DST gap moves to the first valid instant."""
    naive = datetime.combine(day, time(minute // 60, minute % 60))
    aware = naive.replace(tzinfo=zone)
    # Round-trip through UTC to normalise times that do not exist (spring-forward gap).
    return aware.astimezone(UTC).astimezone(zone)


def _minutes(text: str, where: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    if not (0 <= minutes < 60 and (0 <= hours < 24 or (hours == 24 and minutes == 0))):
        raise HoursConfigError(f"{where}: {text!r} is not a time of day (00:00-24:00)")
    return hours * 60 + minutes


def _day_index(name: str, where: str) -> int:
    try:
        return DAYS.index(name.strip())
    except ValueError as exc:
        raise HoursConfigError(
            f"{where}: {name.strip()!r} is not a day ({', '.join(DAYS)})"
        ) from exc


def _days(spec: str, where: str) -> list[int]:
    result: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            first, last = (_day_index(p, where) for p in part.split("-"))
            span = (last - first) % 7
            result += [(first + i) % 7 for i in range(span + 1)]
        else:
            result.append(_day_index(part, where))
    return result


def parse_windows(spec: str) -> tuple[Window, ...]:
    """``"mon-fri 08:00-20:00; sat 09:00-13:00"`` -> windows. ``;`` or newlines separate rules;
    a rule whose end is before its start runs past midnight (``fri 22:00-02:00``)."""
    windows: list[Window] = []
    for number, raw in enumerate(re.split(r"[;\n]", spec), start=1):
        rule = raw.strip().lower()
        if not rule:
            continue
        where = f"staffed hours rule {number} ({raw.strip()!r})"
        match = _RULE_RE.match(rule)
        if not match:
            raise HoursConfigError(f"{where}: expected e.g. 'mon-fri 08:00-18:00'")
        start = _minutes(match["start"], where)
        end = _minutes(match["end"], where)
        if start == end:
            raise HoursConfigError(f"{where}: the opening is empty")
        for day in _days(match["days"], where):
            if end > start:
                windows.append(Window(day, start, end))
            else:  # past midnight: split into today's evening and tomorrow's morning
                windows.append(Window(day, start, 24 * 60))
                if end > 0:
                    windows.append(Window((day + 1) % 7, 0, end))
    return tuple(windows)


def parse_holidays(spec: str) -> frozenset[date]:
    days: set[date] = set()
    for raw in re.split(r"[,;\s]+", spec.strip()):
        if not raw:
            continue
        try:
            days.add(date.fromisoformat(raw))
        except ValueError as exc:
            raise HoursConfigError(f"holiday {raw!r} is not an ISO date (YYYY-MM-DD)") from exc
    return frozenset(days)


def build_hours(timezone: str, hours: str, holidays: str = "") -> StaffedHours:
    """Validated schedule; raises :class:`HoursConfigError` with the offending part."""
    try:
        zone = ZoneInfo(timezone.strip() or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HoursConfigError(f"unknown time zone {timezone!r} (use e.g. Europe/Paris)") from exc
    windows = parse_windows(hours.strip() or ALWAYS)
    return StaffedHours(timezone=zone, windows=windows, holidays=parse_holidays(holidays))


def hours_from_settings(settings: object) -> StaffedHours:
    return build_hours(
        str(settings.staffed_timezone),  # type: ignore[attr-defined]
        str(settings.staffed_hours),  # type: ignore[attr-defined]
        str(settings.staffed_holidays),  # type: ignore[attr-defined]
    )
