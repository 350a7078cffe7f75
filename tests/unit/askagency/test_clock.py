"""The product's clock and the shifted-clock guard that ``make test`` runs.

The delivery tests once froze their own clock at a literal date while the code stamped rows with
the real time; they broke by themselves nine days later. These tests pin the two defences: one
clock that the code under test and the test share, and a unit-suite run with the wall clock moved.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from askagency import clock as product_clock
from askagency.clock import FakeClock, now_utc, use_clock
from askagency.config import PROJECT_ROOT
from tests.clock_shift import SHIFT_ZONE, destination


def test_code_reads_the_installed_clock_and_the_previous_one_comes_back() -> None:
    fake = FakeClock(datetime(2031, 2, 3, 4, 5, tzinfo=UTC))
    before = product_clock.installed_clock()
    with use_clock(fake):
        assert now_utc() == datetime(2031, 2, 3, 4, 5, tzinfo=UTC)
        fake.advance(minutes=5)
        assert now_utc() == datetime(2031, 2, 3, 4, 10, tzinfo=UTC)
    assert product_clock.installed_clock() is before


def test_now_is_always_utc_and_aware() -> None:
    paris = datetime(2031, 2, 3, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
    with use_clock(lambda: paris):
        assert now_utc() == paris and now_utc().tzinfo is UTC
    with use_clock(lambda: datetime(2031, 2, 3)), pytest.raises(ValueError, match="naive"):  # noqa: DTZ001
        now_utc()
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2031, 2, 3))  # noqa: DTZ001


def test_the_clock_fixture_is_what_models_stamp(db_session, clock) -> None:
    from knowledge_base.models import AuditLog

    entry = AuditLog(actor="t", action="create", entity_type="faq", entity_id="1")
    db_session.add(entry)
    db_session.flush()
    assert entry.at == clock.now


@pytest.mark.parametrize(
    "real_now",
    [
        datetime(2026, 12, 4, 20, 0, tzinfo=UTC),
        datetime(2027, 2, 28, 23, 59, tzinfo=UTC),
        datetime(2028, 2, 29, 0, 0, tzinfo=UTC),
    ],
)
def test_year_ahead_sunday_is_a_sunday_night_a_year_on(real_now: datetime) -> None:
    target = destination("year-ahead-sunday", real_now)
    assert target.tzinfo == ZoneInfo(SHIFT_ZONE)
    assert (target.weekday(), target.hour, target.minute) == (6, 3, 0)
    assert timedelta(days=364) <= target - real_now <= timedelta(days=373)
    assert target.astimezone(UTC).date() != target.date()  # local date differs from UTC date
    assert destination("+10d", real_now) == real_now + timedelta(days=10)


def test_shifted_run_catches_a_date_bomb(tmp_path: Path) -> None:
    """A test that compares the real time with a literal date passes today and fails shifted."""
    soon = datetime.now(UTC) + timedelta(days=30)
    bomb = tmp_path / "test_bomb.py"
    bomb.write_text(
        textwrap.dedent(
            f"""
            from datetime import UTC, datetime

            def test_written_today():
                deadline = datetime({soon.year}, {soon.month}, {soon.day}, tzinfo=UTC)
                assert datetime.now(UTC) < deadline
            """
        )
    )

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(bomb)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run().returncode == 0
    shifted = run("-p", "tests.clock_shift", "--clock-shift=+1000d")
    assert shifted.returncode == 1, shifted.stdout
    assert "1 failed" in shifted.stdout
