"""pytest plugin: run the suite with the clock moved, to catch date bombs the day they are written.

A test that mixes a literal date with the real time passes on the day it is written and fails
weeks later, when the real date passes the literal one. ``make test`` therefore runs the unit
suite with this plugin (``make test-unit-shifted``; ``make test-unit`` runs it on the real
clock), which moves the process's wall clock (``time.time``,
``datetime.now``, ``date.today``, the local time zone) with time-machine, while monotonic clocks
(asyncio, timeouts) keep running normally:

    pytest -p tests.clock_shift --clock-shift=year-ahead-sunday tests/unit

``year-ahead-sunday`` lands at least 365 days ahead of today, on the next Sunday at 03:00 in
``Pacific/Kiritimati`` (UTC+14), so one run also catches tests that assume a weekday, office
hours, or that the local date equals the UTC date. ``+<N>d`` moves the clock N days, same zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

SHIFT_ZONE = "Pacific/Kiritimati"
SUNDAY = 6  # datetime.weekday()


def destination(spec: str, real_now: datetime) -> datetime:
    """Where ``spec`` moves a clock that reads ``real_now`` (tz-aware)."""
    if spec == "year-ahead-sunday":
        zone = ZoneInfo(SHIFT_ZONE)
        day = (real_now + timedelta(days=365)).astimezone(zone).date()
        day += timedelta(days=(SUNDAY - day.weekday()) % 7)
        return datetime.combine(day, time(3, 0), tzinfo=zone)
    match = re.fullmatch(r"\+(\d+)d", spec)
    if match:
        return real_now + timedelta(days=int(match.group(1)))
    raise pytest.UsageError(f"--clock-shift: unknown value {spec!r} (year-ahead-sunday or +<N>d)")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-shift",
        default=None,
        help="move the wall clock for the whole run: year-ahead-sunday or +<N>d",
    )


def pytest_configure(config: pytest.Config) -> None:
    spec = config.getoption("--clock-shift")
    if not spec:
        return
    import time_machine

    target = destination(spec, datetime.now(UTC))
    traveller = time_machine.travel(target, tick=True)
    traveller.start()
    config.stash[_TRAVELLER] = traveller
    config.stash[_TARGET] = target


def pytest_report_header(config: pytest.Config) -> str | None:
    target = config.stash.get(_TARGET, None)
    if target is None:
        return None
    return f"clock shifted to {target.isoformat()} ({target:%A} local, zone {target.tzinfo})"


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_TRAVELLER, None)
    if traveller is not None:
        traveller.stop()


_TRAVELLER = pytest.StashKey[object]()
_TARGET = pytest.StashKey[datetime]()
