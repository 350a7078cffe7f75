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
    Assumptions,
    Dashboard,
    MetricFilter,
    Summary,
    exact_dashboard,
    exact_summary,
)
from analytics.rollup_dashboard import dashboard_from_rollups, summary_from_rollups


def compute_dashboard(session: Session, flt: MetricFilter, assumptions: Assumptions) -> Dashboard:
    """The dashboard for ``flt``; FilterError for assumptions no agency means."""
    assumptions.check()
    fast = dashboard_from_rollups(session, flt, assumptions)
    return fast if fast is not None else exact_dashboard(session, flt, assumptions)


def compute_summary(session: Session, flt: MetricFilter, assumptions: Assumptions) -> Summary:
    """Only ``compute_dashboard(...).summary``, the same numbers for less work: the weekly
    trend asks for one per week and per location."""
    assumptions.check()
    fast = summary_from_rollups(session, flt, assumptions)
    return fast if fast is not None else exact_summary(session, flt, assumptions)
