"""The ticket figures analytics reads (issue 22, item 6): the staffed first response stored with
the first reply is the one reported, a ticket answered before it was stored gets it computed,
and the seconds PostgreSQL computes are exactly Python's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from analytics.metrics import MetricFilter, TicketFacts, load_tickets
from askagency.staff import Role
from handoff.hours import build_hours
from handoff.models import Ticket
from tests.console_helpers import add_staff_account
from tests.services import migrated_pg_session

HOURS = build_hours("America/New_York", "mon-fri 08:00-18:00")
FRIDAY = datetime(2026, 11, 27, 22, 30, 0, 123457, tzinfo=UTC)  # 17:30 in New York
MONDAY = datetime(2026, 11, 30, 13, 15, 0, 987651, tzinfo=UTC)  # 08:15
CLOSED_1 = MONDAY + timedelta(minutes=5, microseconds=3)
CLOSED_3 = FRIDAY + timedelta(hours=1, microseconds=999_999)
PERIOD = MetricFilter.parse("2026-11-23", "2026-11-29", zone="America/New_York")


def seed(session: Session) -> int:
    """Three tickets opened on Friday evening: one answered with its staffed time stored, one
    answered before it was stored (NULL), one closed unanswered; a fourth opened last month."""
    agent = add_staff_account(session, "ana", Role.AGENT.value)
    session.add_all(
        [
            Ticket(
                id=1,
                conversation_id="a",
                reason="requested",
                status="closed_resolved",
                assigned_agent_id=agent,
                created_at=FRIDAY,
                first_agent_reply_at=MONDAY,
                first_response_staffed_s=111.5,  # under the hours in force when it was answered
                closed_at=CLOSED_1,
            ),
            Ticket(
                id=2,
                conversation_id="b",
                reason="requested",
                status="assigned",
                assigned_agent_id=agent,
                created_at=FRIDAY + timedelta(seconds=1),
                first_agent_reply_at=MONDAY,
            ),
            Ticket(
                id=3,
                conversation_id="c",
                reason="low_confidence",
                status="closed_unresolved",
                created_at=FRIDAY + timedelta(seconds=2),
                closed_at=CLOSED_3,
            ),
            Ticket(
                id=4,
                conversation_id="d",
                reason="requested",
                status="waiting",
                created_at=FRIDAY - timedelta(days=30),
            ),
        ]
    )
    session.flush()
    return agent


def expected() -> list[TicketFacts]:
    """What Python computes from the rows' times (the definition)."""
    to_monday = (MONDAY - FRIDAY).total_seconds()
    return [
        TicketFacts(
            first_response_s=to_monday,
            time_to_close_s=(CLOSED_1 - FRIDAY).total_seconds(),
            resolved=True,
            agent="ana",
            team=None,
            first_response_staffed_s=111.5,
        ),
        TicketFacts(
            first_response_s=to_monday - 1,
            time_to_close_s=None,
            resolved=None,
            agent="ana",
            team=None,
            # Not stored: computed under the staffed hours given (29 min 59.876543 s on Friday,
            # 15 min 0.987651 s on Monday).
            first_response_staffed_s=HOURS.staffed_seconds(FRIDAY + timedelta(seconds=1), MONDAY),
        ),
        TicketFacts(
            first_response_s=None,
            time_to_close_s=(CLOSED_3 - FRIDAY - timedelta(seconds=2)).total_seconds(),
            resolved=False,
            agent=None,
            team=None,
            first_response_staffed_s=None,
        ),
    ]


def check(session: Session) -> None:
    seed(session)
    got = sorted(load_tickets(session, PERIOD, [], HOURS), key=lambda t: t.first_response_s or 0)
    want = sorted(expected(), key=lambda t: t.first_response_s or 0)
    assert got == want
    assert want[1].first_response_staffed_s == pytest.approx(45 * 60 - 1 + 0.864194, abs=1e-6)


def test_stored_and_computed_staffed_times_on_sqlite(db_session: Session) -> None:
    check(db_session)


@pytest.fixture
def pg_session() -> Iterator[Session]:
    with migrated_pg_session("tickets") as session:
        yield session


def test_postgresql_computes_the_same_seconds(pg_session: Session) -> None:
    """PostgreSQL subtracts the times itself (a year's tickets): to the microsecond, the same
    floats as Python's timedelta."""
    check(pg_session)
