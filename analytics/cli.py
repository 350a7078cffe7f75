"""``askagency report``: the leadership summary for a date range, as files; ``askagency report
send``: the weekly report by e-mail, once per week (analytics/delivery.py).

Mounted by agencyctl/cli.py. Reads the configured database (ASKAGENCY_DATA_DIR /
ASKAGENCY_DATABASE_URL), migrating it first so a fresh data directory gives an empty report
rather than an error.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Leadership summary report (Markdown + PNG charts + CSV).")


@app.callback(invoke_without_command=True)
def report(
    ctx: typer.Context,
    start: str = typer.Option(None, "--from", help="First day, e.g. 2026-03-01 (default: 30 days)"),
    end: str = typer.Option(
        None, "--to", help="Last day, inclusive (default: today in the agency's time zone)"
    ),
    out: Path = typer.Option(
        None, "--out", help="Folder to write report.md, charts and CSVs to (required)"
    ),
    channel: str = typer.Option(None, help="Only this channel (e.g. rest)"),
    language: str = typer.Option(None, help="Only this language (e.g. en)"),
    location: str = typer.Option(None, help="Only this location (a code, e.g. DEN, or unknown)"),
    minutes_per_contact: float = typer.Option(
        None, help="Staff minutes per human-handled contact (default: settings)"
    ),
    hours_per_fte: float = typer.Option(
        None, help="Working hours per FTE per week (default: settings)"
    ),
    cost_per_contact: float = typer.Option(
        None, help="Cost of one staff-handled contact, for a money figure (default: settings)"
    ),
    weeks: int = typer.Option(
        8,
        min=0,
        max=104,
        help="Week-over-week and a trend of this many full weeks ending on or before --to "
        "(0: none)",
    ),
) -> None:
    # `report` writes files; `report send` (a subcommand) e-mails the weekly report. Click runs
    # this callback before a subcommand too: then it does nothing.
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise typer.BadParameter(
            "Missing option: the folder to write the report to ('report send' e-mails it)",
            param_hint="'--out'",
        )
    from analytics.dashboard import compute_dashboard
    from analytics.metrics import Assumptions, FilterError, MetricFilter
    from analytics.report import write_report
    from analytics.weekly import compute_weekly
    from askagency.config import get_settings
    from askagency.db import session_scope
    from askagency.migrate import upgrade
    from handoff.hours import hours_from_settings

    settings = get_settings()
    try:
        flt = MetricFilter.parse(
            start, end, channel, language, zone=settings.staffed_timezone, location=location
        )
    except FilterError as exc:
        raise typer.BadParameter(str(exc)) from exc
    minutes = (
        settings.metrics_minutes_per_contact if minutes_per_contact is None else minutes_per_contact
    )
    hours = settings.metrics_hours_per_fte if hours_per_fte is None else hours_per_fte
    if weeks == 1:
        raise typer.BadParameter("--weeks: a trend needs at least 2 weeks (or 0 for none)")
    cost = settings.metrics_cost_per_contact if cost_per_contact is None else cost_per_contact
    assumptions = Assumptions(
        minutes, hours, cost, settings.metrics_currency, hours_from_settings(settings)
    )
    upgrade(settings.database_url)
    weekly = None
    try:
        with session_scope(settings.database_url) as session:
            dashboard = compute_dashboard(session, flt, assumptions)
            if weeks:
                weekly = compute_weekly(session, flt, assumptions, weeks=weeks)
    except FilterError as exc:
        raise typer.BadParameter(str(exc)) from exc
    files = write_report(dashboard, out, weekly)
    s = dashboard.summary
    typer.echo(
        f"{s.conversations} conversations from {flt.start} to {flt.end}; "
        f"{s.mission.staff_hours_saved:.1f} staff hours saved"
        + (f" ({s.mission.money()})." if s.mission.money() else ".")
    )
    typer.echo(
        f"Wrote {files.markdown}, {files.pdf.name}, {len(files.charts)} charts and "
        f"{len(files.csvs)} CSVs."
    )


@app.command("send")
def send(
    week_of: str = typer.Option(
        None,
        "--week-of",
        help="Send the week (Monday to Sunday) containing this day, e.g. 2026-03-02 "
        "(default: the last full week)",
    ),
    if_due: bool = typer.Option(
        False,
        "--if-due",
        help="Only when this week's ASKAGENCY_REPORT_SCHEDULE moment has passed (for a "
        "scheduler; exits 0 when not due)",
    ),
    to: list[str] = typer.Option(
        None,
        "--to",
        help="Send a copy to this address instead of ASKAGENCY_REPORT_RECIPIENTS (repeatable; "
        "not recorded as the week's delivery)",
    ),
) -> None:
    """E-mail the weekly report (one-page PDF + CSV zip) once per week; see docs/metrics.md."""
    from datetime import date

    from analytics.delivery import DeliveryError, send_weekly
    from analytics.metrics import FilterError
    from askagency.config import get_settings
    from askagency.migrate import upgrade
    from handoff.hours import HoursConfigError

    settings = get_settings()
    day = None
    if week_of:
        try:
            day = date.fromisoformat(week_of)
        except ValueError as exc:
            raise typer.BadParameter(f"--week-of must look like 2026-03-02: {exc}") from exc
    addresses = [a.strip() for a in to or [] if a.strip()]
    bad = [a for a in addresses if "@" not in a or any(c in a for c in " ,;<>\r\n")]
    if bad:
        raise typer.BadParameter(f"--to {bad[0]!r} is not an e-mail address")
    upgrade(settings.database_url)
    try:
        result = send_weekly(settings, week_of=day, to=addresses, if_due=if_due)
    except (DeliveryError, FilterError, HoursConfigError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(result.message)
    if not result.ok:
        raise typer.Exit(1)


rebuild_app = typer.Typer(help="Analytics data: rebuild conversations from stored events.")


@rebuild_app.command("rebuild")
def rebuild(
    start: str = typer.Option(
        ..., "--from", help="Rebuild conversations that started on or after this day (ISO)"
    ),
) -> None:
    """Recompute stored conversations (their location, after the location list changed)."""
    from datetime import date, datetime, time

    from analytics import rollup
    from analytics.ingest import rebuild_since
    from analytics.metrics import time_zone
    from askagency.config import get_settings
    from askagency.db import session_scope
    from askagency.migrate import upgrade

    settings = get_settings()
    try:
        day = date.fromisoformat(start)
    except ValueError as exc:
        raise typer.BadParameter(f"--from must look like 2026-01-31: {exc}") from exc
    since = datetime.combine(day, time.min, tzinfo=time_zone(settings.staffed_timezone))
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        written = rebuild_since(session, since)
    typer.echo(f"Rebuilt {written} conversations since {day} ({settings.staffed_timezone}).")
    # Ingest kept the roll-ups in step with every rebuilt conversation; recounting the days
    # from ``day`` on also repairs them if they were ever edited by hand.
    with session_scope(settings.database_url) as session:
        built = rollup.rebuild(session, settings.staffed_timezone, since=day)
    typer.echo(f"Daily roll-ups recounted from {day}: {built.daily_rows} day rows ({built.zone}).")


@rebuild_app.command("rollup")
def rollup_command(
    rebuild_all: bool = typer.Option(
        False, "--rebuild", help="Recount every day from the conversation rows"
    ),
) -> None:
    """Show the daily roll-ups' time zone; with --rebuild, recount them (also done by the
    analytics consumer when the time zone setting changed)."""
    from analytics import rollup
    from askagency.config import get_settings
    from askagency.db import session_scope
    from askagency.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        zone = rollup.built_zone(session)
        if not rebuild_all:
            current = "current" if zone == settings.staffed_timezone else "STALE: use --rebuild"
            typer.echo(f"Daily roll-ups: {zone or 'never built'} ({current}).")
            return
        built = rollup.rebuild(session, settings.staffed_timezone)
    typer.echo(
        f"Daily roll-ups rebuilt in {built.zone}: {built.conversations} conversations, "
        f"{built.daily_rows} day rows, {built.count_rows} labelled counts."
    )
