"""The one source of "now" for the whole product.

Every timestamp the product writes (ticket and reply ``created_at``, a reply's
``next_attempt_at``, session expiry, spool entries, analytics checkpoints) and
every "is it due / expired / staffed yet" decision reads time through
:func:`now_utc`. Production uses the system clock; a test installs a
:class:`FakeClock` with :func:`use_clock` so that the code under test and the
test itself agree on what "now" is. Without one injectable clock a test that
froze its own clock at a literal date while the code stamped rows with the real
time broke by itself once the real date passed the literal one.

This module is part of the foundation package and imports nothing of the
product.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

# Not ``datetime.UTC``: the custom Rasa channels import this module on Python 3.10.
UTC = timezone.utc  # noqa: UP017

Clock = Callable[[], datetime]
"""A callable returning the current time as a timezone-aware UTC datetime."""


def system_clock() -> datetime:
    """The machine's clock, in UTC."""
    return datetime.now(UTC)


_current: Clock = system_clock


def now_utc() -> datetime:
    """The current time (tz-aware, UTC) from the installed clock."""
    value = _current()
    if value.tzinfo is None:
        raise ValueError("the installed clock returned a naive datetime")
    return value.astimezone(UTC)


def installed_clock() -> Clock:
    """The clock :func:`now_utc` reads (so a worker can default to it)."""
    return _current


def set_clock(clock: Clock) -> Clock:
    """Install ``clock`` for the whole process; returns the previous one."""
    global _current
    previous, _current = _current, clock
    return previous


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Install ``clock`` for the duration of a ``with`` block."""
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


class FakeClock:
    """A clock that only moves when told to.

    Tests create one at a point of their choosing (or relative to the real
    time) and move it with :meth:`advance`; everything that calls
    :func:`now_utc` while it is installed sees the same instant.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` (or ``timedelta(**kwargs)``); returns the new now."""
        self.now += delta if delta is not None else timedelta(**kwargs)
        return self.now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (tz-aware)."""
        if when.tzinfo is None:
            raise ValueError("FakeClock.set needs a timezone-aware datetime")
        self.now = when.astimezone(UTC)
