"""The weekly report e-mail, sent once per week however often or wherever it is asked for.

When: ``report_schedule`` ("mon 08:00") on the agency's clock (``staffed_timezone``). A week is
Monday to Sunday there; :func:`is_due` is true once this week's scheduled moment has passed, and
what is then sent is the week before (the last full week). The moment is resolved in the zone on
its own day, so it stays at 08:00 local across a daylight-saving change; a time that does not
exist that day (02:30 when clocks jump from 02:00 to 03:00) is taken as the same time after the
jump (03:30), and a time that happens twice as the first one.

Once: every scheduled delivery is a row of ``report_delivery``, unique on (week_start, scope).
A sender first *claims* the row in its own transaction (inserts it as ``sending``, or moves a
``failed`` one to ``sending`` with a conditional update), then renders and sends, then records
``sent`` or ``failed`` with the error. A second run, a second replica, or the CronJob and the
consumer at the same time find the row sent or being sent and do nothing; a failed attempt is
tried again by the next run (with ``if_due``, not sooner than :data:`RETRY_AFTER`). The one gap:
a process that dies after the SMTP server accepted the message and before ``sent`` is written
leaves ``sending``, which another run takes over after :data:`CLAIM_LEASE` and sends again.

Who asks: ``askagency report send --if-due`` (a Kubernetes CronJob) and, on a single machine,
the analytics consumer, which calls :func:`send_weekly` at most once a minute.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import CheckConstraint, Date, Integer, String, Text, UniqueConstraint, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from analytics.dashboard import compute_dashboard
from analytics.mailer import compose
from analytics.metrics import Assumptions, Dashboard, MetricFilter, time_zone
from analytics.report import ReportFiles, write_report
from analytics.weekly import WeeklyTrend, compute_weekly
from askagency.clock import now_utc
from askagency.config import Settings, parse_report_schedule
from askagency.db import Base, UtcDateTime, session_scope
from askagency.smtp import MailError, send
from handoff.hours import hours_from_settings

log = logging.getLogger("analytics.delivery")

SCOPE_ALL = "all"  # the agency-wide report (no channel, language or location filter)
STATUSES = ("sending", "sent", "failed")
# A "sending" row older than this belongs to a process that died: another run takes it over.
CLAIM_LEASE = timedelta(minutes=30)
# With if_due (the CronJob, the consumer), a failed delivery is tried again after this long.
RETRY_AFTER = timedelta(minutes=10)
ERROR_MAX_CHARS = 2000

SessionFactory = Callable[[], AbstractContextManager[Session]]


class ReportDelivery(Base):
    """One week's scheduled e-mail of one scope: claimed, sent or failed."""

    __tablename__ = "report_delivery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    week_start: Mapped[date] = mapped_column(Date)  # the Monday, on the agency's clock
    scope: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[str] = mapped_column(Text)  # comma-separated, as sent
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("week_start", "scope", name="uq_report_delivery_week_scope"),
        CheckConstraint("status IN ('sending', 'sent', 'failed')", name="status"),
    )


# --- when ------------------------------------------------------------------------------------


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def scheduled_at(monday: date, schedule: str, zone: str) -> datetime:
    """The moment ``schedule`` names in the week starting ``monday`` (a Monday in ``zone``), in
    UTC. Raises ValueError when ``schedule`` is empty or malformed."""
    parsed = parse_report_schedule(schedule)
    if parsed is None:
        raise ValueError("no report_schedule is set")
    weekday, at = parsed
    local = datetime.combine(monday + timedelta(days=weekday), at, tzinfo=time_zone(zone))
    return local.astimezone(UTC)


def is_due(now: datetime, schedule: str, zone: str) -> bool:
    """Whether this week's scheduled moment (the week of ``now`` in ``zone``) has passed."""
    if not parse_report_schedule(schedule):
        return False
    monday = week_monday(now.astimezone(time_zone(zone)).date())
    return now >= scheduled_at(monday, schedule, zone)


def next_due(now: datetime, schedule: str, zone: str) -> datetime:
    """The next scheduled moment after ``now`` (UTC), for messages."""
    monday = week_monday(now.astimezone(time_zone(zone)).date())
    moment = scheduled_at(monday, schedule, zone)
    return moment if moment > now else scheduled_at(monday + timedelta(days=7), schedule, zone)


def report_week(now: datetime, zone: str) -> date:
    """The Monday of the last full week (Monday to Sunday in ``zone``) that ended before
    ``now``: the week before the current one."""
    return week_monday(now.astimezone(time_zone(zone)).date()) - timedelta(days=7)


# --- once ------------------------------------------------------------------------------------


def delivery(session: Session, week_start: date, scope: str = SCOPE_ALL) -> ReportDelivery | None:
    query = select(ReportDelivery).where(
        ReportDelivery.week_start == week_start, ReportDelivery.scope == scope
    )
    return session.scalars(query).one_or_none()


Claim = Literal["claimed", "sent", "sending", "retry_later"]


def _claim_row(
    session: Session,
    week_start: date,
    scope: str,
    recipients: str,
    now: datetime,
    retry_after: timedelta | None,
) -> Claim:
    row = delivery(session, week_start, scope)
    if row is None:
        session.add(
            ReportDelivery(
                week_start=week_start,
                scope=scope,
                recipients=recipients,
                status="sending",
                attempts=1,
                attempted_at=now,
            )
        )
        try:
            session.flush()  # the unique key decides between two senders
        except IntegrityError:
            session.rollback()
            return "sending"
        return "claimed"
    if row.status == "sent":
        return "sent"
    age = now - row.attempted_at
    if row.status == "sending" and age < CLAIM_LEASE:
        return "sending"
    if row.status == "failed" and retry_after is not None and age < retry_after:
        return "retry_later"
    taken = session.execute(
        sql_update(ReportDelivery)
        .where(
            ReportDelivery.id == row.id,
            ReportDelivery.status == row.status,
            ReportDelivery.attempts == row.attempts,
        )
        .values(
            status="sending",
            attempts=row.attempts + 1,
            attempted_at=now,
            recipients=recipients,
            error=None,
        )
    )
    return "claimed" if taken.rowcount == 1 else "sending"  # type: ignore[attr-defined]


def claim(
    open_session: SessionFactory,
    week_start: date,
    recipients: Sequence[str],
    now: datetime,
    scope: str = SCOPE_ALL,
    retry_after: timedelta | None = None,
) -> Claim:
    """Takes the week's delivery for this process, in its own committed transaction."""
    with open_session() as session:
        return _claim_row(session, week_start, scope, ", ".join(recipients), now, retry_after)


def record(
    open_session: SessionFactory,
    week_start: date,
    status: Literal["sent", "failed"],
    now: datetime,
    error: str | None = None,
    scope: str = SCOPE_ALL,
) -> None:
    with open_session() as session:
        session.execute(
            sql_update(ReportDelivery)
            .where(ReportDelivery.week_start == week_start, ReportDelivery.scope == scope)
            .values(
                status=status,
                error=error[:ERROR_MAX_CHARS] if error else None,
                sent_at=now if status == "sent" else None,
            )
        )


# --- what ------------------------------------------------------------------------------------


Outcome = Literal["sent", "already_sent", "in_progress", "retry_later", "not_due", "failed"]


@dataclass(frozen=True)
class DeliveryResult:
    week_start: date
    outcome: Outcome
    recipients: tuple[str, ...]
    message: str  # one sentence for people (CLI output, logs)
    recorded: bool = True  # False: an ad-hoc send to --to addresses, not the scheduled one

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


class DeliveryError(ValueError):
    """A request that cannot be served as given (a week that has not ended, no recipients)."""


def render_week(
    session: Session, settings: Settings, week_start: date, out_dir: Path
) -> tuple[Dashboard, WeeklyTrend, ReportFiles]:
    """The week's dashboard, its trend of ``report_weeks`` weeks and the report files (PDF, CSVs,
    charts) written into ``out_dir``: the same numbers as ``askagency report`` for that week."""
    flt = MetricFilter(
        start=week_start, end=week_start + timedelta(days=6), zone=settings.staffed_timezone
    )
    assumptions = Assumptions(
        settings.metrics_minutes_per_contact,
        settings.metrics_hours_per_fte,
        settings.metrics_cost_per_contact,
        settings.metrics_currency,
        hours_from_settings(settings),
    )
    dashboard = compute_dashboard(session, flt, assumptions)
    weekly = compute_weekly(session, flt, assumptions, weeks=settings.report_weeks)
    return dashboard, weekly, write_report(dashboard, out_dir, weekly)


def _send(
    open_session: SessionFactory, settings: Settings, week_start: date, recipients: Sequence[str]
) -> dict[str, tuple[int, bytes]]:
    with tempfile.TemporaryDirectory(prefix="askagency-report-") as folder:
        with open_session() as session:
            dashboard, weekly, files = render_week(session, settings, week_start, Path(folder))
        message = compose(
            dashboard,
            weekly,
            files.pdf,
            files.csvs,
            week_start,
            settings.report_from,
            recipients,
        )
    return send(message, settings)


def _when(moment: datetime, zone: str) -> str:
    return f"{moment.astimezone(time_zone(zone)):%Y-%m-%d %H:%M} {zone}"


def send_weekly(
    settings: Settings,
    now: datetime | None = None,
    *,
    week_of: date | None = None,
    to: Sequence[str] = (),
    if_due: bool = False,
    open_session: SessionFactory | None = None,
) -> DeliveryResult:
    """Sends the weekly report of the last full week before ``now`` (or of the week containing
    ``week_of``) to ``report_recipients``, once: see the module's docstring. With ``if_due``,
    only when the schedule's moment of this week has passed (one SELECT when it has, none
    before). With ``to``, an ad-hoc copy to those addresses: always sent, never recorded.

    Raises :class:`DeliveryError` for a request that cannot be served; a failed send is
    recorded and returned as ``outcome="failed"`` with the reason in ``message``."""
    now = now or now_utc()
    zone = settings.staffed_timezone
    time_zone(zone)  # a clear error for a bad zone before anything else
    if open_session is None:
        url = settings.database_url
        open_session = lambda: session_scope(url)  # noqa: E731
    if if_due and week_of is not None:
        raise DeliveryError("--if-due sends the week the schedule is for; leave out --week-of")
    if if_due and not settings.report_schedule:
        return DeliveryResult(
            report_week(now, zone),
            "not_due",
            (),
            "No scheduled e-mail: ASKAGENCY_REPORT_SCHEDULE is empty.",
        )
    if week_of is not None:
        week_start = week_monday(week_of)
        week_end = datetime.combine(week_start + timedelta(days=7), time.min, time_zone(zone))
        if week_end > now:
            raise DeliveryError(
                f"the week of {week_start} ends on {_when(week_end, zone)}; only a full week "
                "is sent"
            )
    else:
        week_start = report_week(now, zone)
    adhoc = bool(to)
    recipients = tuple(to) if adhoc else tuple(settings.report_recipients)
    if not recipients:
        raise DeliveryError(
            "no recipients: set ASKAGENCY_REPORT_RECIPIENTS (a JSON list of addresses) or pass "
            "--to ADDRESS"
        )
    if if_due and not is_due(now, settings.report_schedule, zone):
        upcoming = next_due(now, settings.report_schedule, zone)
        return DeliveryResult(
            week_start,
            "not_due",
            recipients,
            f"Not due yet: the next e-mail goes out on {_when(upcoming, zone)} "
            f"({settings.report_schedule}).",
            recorded=not adhoc,
        )
    week = f"week of {week_start}"
    if adhoc:
        try:
            refused = _send(open_session, settings, week_start, recipients)
        except MailError as exc:
            return DeliveryResult(week_start, "failed", recipients, str(exc), recorded=False)
        return DeliveryResult(
            week_start,
            "sent",
            recipients,
            f"Sent the report of the {week} to {', '.join(recipients)} (not recorded as the "
            f"scheduled delivery){_refused(refused)}.",
            recorded=False,
        )
    if if_due:  # the cheap check first: one SELECT, no lock, nothing written
        with open_session() as session:
            row = delivery(session, week_start)
            if row is not None and row.status == "sent":
                return _already(week_start, recipients, row, zone)
    claimed = claim(
        open_session, week_start, recipients, now, retry_after=RETRY_AFTER if if_due else None
    )
    if claimed != "claimed":
        with open_session() as session:
            row = delivery(session, week_start)
        if claimed == "sent" and row is not None:
            return _already(week_start, recipients, row, zone)
        if claimed == "retry_later" and row is not None:
            return DeliveryResult(
                week_start,
                "retry_later",
                recipients,
                f"The {week} failed at {_when(row.attempted_at, zone)} ({row.error}); it is tried "
                f"again {RETRY_AFTER.seconds // 60} minutes after that.",
            )
        return DeliveryResult(
            week_start,
            "in_progress",
            recipients,
            f"Another process is sending the {week}"
            + (f" (since {_when(row.attempted_at, zone)})." if row is not None else "."),
        )
    started = now_utc()  # the recorded times are ``now`` plus however long sending took

    def later() -> datetime:
        return now + max(timedelta(0), now_utc() - started)

    try:
        refused = _send(open_session, settings, week_start, recipients)
    except MailError as exc:
        record(open_session, week_start, "failed", later(), str(exc))
        log.error("weekly report of the %s not sent: %s", week, exc)
        return DeliveryResult(
            week_start,
            "failed",
            recipients,
            f"{exc}. Recorded as failed; the next run tries again.",
        )
    except Exception as exc:
        record(open_session, week_start, "failed", later(), f"{type(exc).__name__}: {exc}")
        raise
    record(open_session, week_start, "sent", later(), _refused(refused).strip(" ;") or None)
    log.info("weekly report of the %s sent to %d recipients", week, len(recipients))
    return DeliveryResult(
        week_start,
        "sent",
        recipients,
        f"Sent the report of the {week} to {', '.join(recipients)}{_refused(refused)}.",
    )


def _refused(refused: dict[str, tuple[int, bytes]]) -> str:
    if not refused:
        return ""
    parts = [
        f"{r} ({code} {reply.decode('utf-8', 'replace')})" for r, (code, reply) in refused.items()
    ]
    return "; the server refused " + ", ".join(parts)


def _already(
    week_start: date, recipients: tuple[str, ...], row: ReportDelivery, zone: str
) -> DeliveryResult:
    when = _when(row.sent_at or row.attempted_at, zone)
    return DeliveryResult(
        week_start,
        "already_sent",
        recipients,
        f"The report of the week of {week_start} was already sent on {when} to "
        f"{row.recipients}; nothing sent.",
    )
