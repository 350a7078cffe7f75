"""``compute_dashboard``: every number the dashboard, API, exports, report and e-mail show, for
one filter, from whichever source answers it best.

Small periods are computed exactly from the conversation, turn and ticket rows
(:func:`analytics.metrics.exact_dashboard`). Large ones add up the daily roll-ups
(:func:`analytics.rollup_dashboard.dashboard_from_rollups`) when those are built in the
filter's time zone; docs/metrics.md, "Speed at volume". Both return the same
:class:`analytics.metrics.Dashboard`, so no caller knows which one answered.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from analytics.metrics import (
    ALWAYS_STAFFED,
    Dashboard,
    FilterError,
    MetricFilter,
    Summary,
    exact_dashboard,
    exact_summary,
)
from analytics.rollup_dashboard import dashboard_from_rollups, summary_from_rollups
from handoff.hours import StaffedHours


def compute_dashboard(
    session: Session,
    flt: MetricFilter,
    minutes_per_contact: float,
    hours_per_fte: float,
    cost_per_contact: float | None = None,
    currency: str = "USD",
    staffed: StaffedHours = ALWAYS_STAFFED,
) -> Dashboard:
    """The dashboard for ``flt``. ``staffed`` is the agency's staffed-hours schedule
    (``handoff.hours.hours_from_settings``) for first-response times in staffed hours only;
    the other arguments are the mission-value assumptions (docs/metrics.md)."""
    check_assumptions(minutes_per_contact, hours_per_fte, cost_per_contact)
    assumptions = (minutes_per_contact, hours_per_fte, cost_per_contact, currency, staffed)
    fast = dashboard_from_rollups(session, flt, *assumptions)
    if fast is not None:
        return fast
    return exact_dashboard(session, flt, *assumptions)


def compute_summary(
    session: Session,
    flt: MetricFilter,
    minutes_per_contact: float,
    hours_per_fte: float,
    cost_per_contact: float | None = None,
    currency: str = "USD",
    staffed: StaffedHours = ALWAYS_STAFFED,
) -> Summary:
    """Only ``compute_dashboard(...).summary``, the same numbers for less work: the weekly
    trend asks for one per week and per location."""
    check_assumptions(minutes_per_contact, hours_per_fte, cost_per_contact)
    assumptions = (minutes_per_contact, hours_per_fte, cost_per_contact, currency, staffed)
    fast = summary_from_rollups(session, flt, *assumptions)
    if fast is not None:
        return fast
    return exact_summary(session, flt, *assumptions)


def check_assumptions(
    minutes_per_contact: float, hours_per_fte: float, cost_per_contact: float | None
) -> None:
    if minutes_per_contact < 0 or hours_per_fte <= 0:
        raise FilterError("minutes per contact must be >= 0 and hours per FTE > 0")
    if cost_per_contact is not None and cost_per_contact < 0:
        raise FilterError("cost per contact must be >= 0")
