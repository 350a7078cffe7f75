"""Staffed hours: time zones, holidays, openings across weekends and midnight, bad config."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from handoff.hours import MAX_LOOKAHEAD_DAYS, HoursConfigError, StaffedHours, build_hours

NY = "America/New_York"
WEEK = "mon-fri 08:00-18:00; sat 09:00-13:00"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_time_zone_is_applied() -> None:
    hours = build_hours(NY, WEEK)
    # Wednesday 2026-11-25 12:30 UTC = 07:30 in New York (EST, UTC-5): not yet open.
    assert not hours.is_staffed(utc(2026, 11, 25, 12, 30))
    assert hours.is_staffed(utc(2026, 11, 25, 13, 0))  # 08:00 NY
    assert hours.is_staffed(utc(2026, 11, 25, 22, 59))  # 17:59 NY
    assert not hours.is_staffed(utc(2026, 11, 25, 23, 0))  # 18:00 NY: closed (end exclusive)


def test_next_opening_across_the_weekend() -> None:
    hours = build_hours(NY, "mon-fri 08:00-18:00")
    friday_evening = utc(2026, 11, 27, 23, 30)  # Fri 18:30 NY
    assert hours.next_staffed_start(friday_evening) == utc(2026, 11, 30, 13, 0)  # Mon 08:00 NY
    saturday = build_hours(NY, WEEK)
    assert saturday.next_staffed_start(friday_evening) == utc(2026, 11, 28, 14, 0)  # Sat 09:00


def test_holidays_close_all_day_and_are_skipped() -> None:
    hours = build_hours(NY, "mon-fri 08:00-18:00", "2026-12-25, 2026-12-28")
    assert not hours.is_staffed(utc(2026, 12, 25, 16, 0))  # Friday noon, Christmas
    # Thursday 24th after closing -> Fri 25th holiday -> weekend -> Mon 28th holiday -> Tue 29th.
    assert hours.next_staffed_start(utc(2026, 12, 24, 23, 30)) == utc(2026, 12, 29, 13, 0)


def test_staffed_now_returns_now_and_daylight_saving_is_wall_clock() -> None:
    hours = build_hours(NY, "mon-fri 08:00-18:00")
    now = utc(2026, 11, 25, 15, 0)
    assert hours.next_staffed_start(now) == now
    # In July New York is UTC-4: 08:00 local is 12:00 UTC.
    assert hours.is_staffed(utc(2026, 7, 8, 12, 0))
    assert not hours.is_staffed(utc(2026, 7, 8, 11, 59))


def test_empty_schedule_means_always_but_holidays_still_close() -> None:
    hours = build_hours("UTC", "", "2026-12-25")
    assert hours.is_staffed(utc(2026, 12, 24, 3, 0))
    assert not hours.is_staffed(utc(2026, 12, 25, 3, 0))
    assert hours.next_staffed_start(utc(2026, 12, 25, 3, 0)) == utc(2026, 12, 26, 0, 0)


def test_overnight_rule_and_day_lists() -> None:
    hours = build_hours("UTC", "fri 22:00-02:00; sun, tue 10:00-11:00")
    assert hours.is_staffed(utc(2026, 11, 27, 23, 0))  # Friday night
    assert hours.is_staffed(utc(2026, 11, 28, 1, 59))  # Saturday early morning
    assert not hours.is_staffed(utc(2026, 11, 28, 2, 0))
    assert hours.is_staffed(utc(2026, 11, 29, 10, 30))  # Sunday
    assert hours.is_staffed(utc(2026, 12, 1, 10, 30))  # Tuesday


@pytest.mark.parametrize(
    ("zone", "spec", "holidays", "message"),
    [
        ("Mars/Olympus", WEEK, "", "unknown time zone"),
        ("UTC", "weekdays 08:00-18:00", "", "rule 1"),
        ("UTC", "mon-fri 08:00-25:00", "", "not a time of day"),
        ("UTC", "mon-fri 08:00-08:00", "", "empty"),
        ("UTC", "mon-fri 08:00-18:00; xyz 09:00-10:00", "", "rule 2"),
        ("UTC", WEEK, "2026-13-01", "not an ISO date"),
    ],
)
def test_bad_configuration_is_explained(zone: str, spec: str, holidays: str, message: str) -> None:
    with pytest.raises(HoursConfigError, match=message):
        build_hours(zone, spec, holidays)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        build_hours("UTC", WEEK).is_staffed(datetime(2026, 11, 25, 12, 0))  # noqa: DTZ001


def _at(text: str, zone: str = "America/New_York") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def test_staffed_seconds_count_only_open_hours() -> None:
    """Business-hours first response (as Chatwoot reports it): the weekend and the night do not
    count, a holiday does not count, and an always-open schedule counts everything."""
    hours = build_hours("America/New_York", "mon-fri 09:00-17:00", "2026-03-04")
    # Within one opening: 30 minutes.
    assert hours.staffed_seconds(_at("2026-03-02T10:00"), _at("2026-03-02T10:30")) == 1800
    # Friday 16:30 -> Monday 09:15: 30 min on Friday + 15 min on Monday.
    assert hours.staffed_seconds(_at("2026-03-06T16:30"), _at("2026-03-09T09:15")) == 2700
    # Tuesday 16:00 -> Thursday 10:00 across the Wednesday holiday: 1 h + 1 h.
    assert hours.staffed_seconds(_at("2026-03-03T16:00"), _at("2026-03-05T10:00")) == 7200
    # Opened at night, answered before opening: no staffed time passed.
    assert hours.staffed_seconds(_at("2026-03-02T20:00"), _at("2026-03-03T08:00")) == 0
    assert hours.staffed_seconds(_at("2026-03-02T11:00"), _at("2026-03-02T10:00")) == 0
    # Given in UTC, counted on the agency's clock: 13:00Z is 08:00 in New York (EST).
    start = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert hours.staffed_seconds(start, start + timedelta(hours=2)) == 3600
    always = build_hours("Europe/Paris", "")
    assert always.staffed_seconds(start, start + timedelta(days=2)) == 2 * 86400


def test_staffed_seconds_across_daylight_saving() -> None:
    """New York springs forward on 2026-03-08: an always-open Sunday has 23 hours."""
    always = build_hours("America/New_York", "")
    assert always.staffed_seconds(_at("2026-03-08T00:00"), _at("2026-03-09T00:00")) == 23 * 3600
    night = build_hours("America/New_York", "sat-sun 22:00-24:00")
    # Saturday 22:00 -> Sunday 23:00: Saturday's two hours + Sunday's first hour of its window.
    assert night.staffed_seconds(_at("2026-03-07T22:00"), _at("2026-03-08T23:00")) == 3 * 3600


def _walked_staffed_seconds(hours: StaffedHours, start: datetime, end: datetime) -> float:
    """The definition, walked day by day: the overlap of [start, end) with every window of every
    local day from the one before the start's to the end's (at most MAX_LOOKAHEAD_DAYS on)."""
    if end <= start:
        return 0.0
    first = start.astimezone(hours.timezone).date()
    last = end.astimezone(hours.timezone).date()
    total = timedelta()
    day = first - timedelta(days=1)
    while day <= last and (day - first).days <= MAX_LOOKAHEAD_DAYS:
        if day not in hours.holidays:
            for w in hours.windows:
                if w.weekday != day.weekday():
                    continue
                opens = _normalised(day, w.start, hours)
                closes = _normalised(day, w.end, hours)
                total += max(min(end, closes) - max(start, opens), timedelta())
        day += timedelta(days=1)
    return total.total_seconds()


def _normalised(day: date, minute: int, hours: StaffedHours) -> datetime:
    """Wall-clock ``minute`` of ``day`` (24:00 = next midnight); in a DST gap, the first valid
    instant after it."""
    if minute >= 24 * 60:
        day, minute = day + timedelta(days=1), 0
    naive = datetime.combine(day, time(minute // 60, minute % 60))
    return naive.replace(tzinfo=hours.timezone).astimezone(UTC)


@pytest.mark.parametrize(
    ("zone", "schedule", "holidays"),
    [
        ("America/New_York", "mon-fri 08:00-18:00; sat 09:00-13:00", "2026-03-04,2026-11-26"),
        ("Europe/London", "mon-fri 00:30-02:30; mon-fri 01:00-24:00", ""),  # overlapping windows
        ("Australia/Lord_Howe", "", "2026-04-05"),  # half-hour DST shifts, always open
        ("America/Denver", "sun 01:00-03:00; wed 22:00-24:00", ""),  # windows over DST changes
    ],
)
def test_staffed_seconds_equal_the_day_by_day_definition(
    zone: str, schedule: str, holidays: str
) -> None:
    """The running-total computation against the definition walked day by day, for random
    spans from seconds to weeks (and past the look-ahead limit), in either order, given in UTC
    or in another zone, and asked in random order so the running total grows both ways."""
    rng = random.Random(f"{zone}{schedule}")
    hours = build_hours(zone, schedule, holidays)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    other = ZoneInfo("Asia/Kolkata")
    for _ in range(600):
        start = base + timedelta(
            seconds=rng.randrange(365 * 86400), microseconds=rng.randrange(10**6)
        )
        span = rng.choice(
            (rng.randrange(3600), rng.randrange(4 * 86400), rng.randrange(40 * 86400))
        )
        end = start + timedelta(seconds=span, microseconds=rng.randrange(10**6))
        if rng.random() < 0.1:
            start, end = end, start
        if rng.random() < 0.3:
            start = start.astimezone(other)
        assert hours.staffed_seconds(start, end) == pytest.approx(
            _walked_staffed_seconds(hours, start, end), abs=1e-6
        )
    far = base + timedelta(days=MAX_LOOKAHEAD_DAYS + 30)
    assert hours.staffed_seconds(base, far) == pytest.approx(
        _walked_staffed_seconds(hours, base, far), abs=1e-6
    )
