"""Store commands of `askagency kb`: import, export, stats, load-sample, migrate.

``load-sample`` also adds the sample locations (``sample/locations.csv``) that are not in the
location list yet.

Every command first migrates the database (a no-op when it is current) so a
newcomer can run any of them on a fresh data directory. Import refuses a file
with any error and writes nothing: staff fix the file and run it again.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from askagency import migrate as migrations
from askagency.config import get_settings
from askagency.db import session_scope
from knowledge_base.io import (
    ImportSummary,
    ParseResult,
    RowError,
    export_csv,
    export_file,
    export_jsonl,
    import_rows,
    parse_file,
)
from knowledge_base.locations import store as location_store
from knowledge_base.store import StoreError, count_faqs, stats

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_FILES = ("faqs.jsonl", "faqs_es.jsonl")
SAMPLE_LOCATIONS = "locations.csv"
SAMPLE_ACTOR = "sample"
MAX_ERRORS_SHOWN = 200

console = Console()
err_console = Console(stderr=True)


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _safe(url: str) -> str:
    """The URL without its password, for printing."""
    return make_url(url).render_as_string(hide_password=True)


def _ready() -> None:
    """Migrate to head; fail with a readable message instead of a traceback."""
    try:
        migrations.upgrade()
    except Exception as exc:  # noqa: BLE001 - any driver error ends the command the same way
        err_console.print(
            f"[red]cannot prepare the database {_safe(get_settings().database_url)}: {exc}[/red]"
        )
        raise typer.Exit(2) from exc


def _print_errors(errors: list[RowError], source: str) -> None:
    table = Table(title=f"{len(errors)} problem(s) in {source}; nothing was imported")
    table.add_column("line", justify="right")
    table.add_column("field")
    table.add_column("problem", overflow="fold")
    for error in errors[:MAX_ERRORS_SHOWN]:
        table.add_row(str(error.line) if error.line > 0 else "-", error.field or "", error.reason)
    err_console.print(table)
    if len(errors) > MAX_ERRORS_SHOWN:
        err_console.print(f"... and {len(errors) - MAX_ERRORS_SHOWN} more")


def _import(
    parsed: ParseResult, actor: str, publish: bool, dry_run: bool, label: str
) -> ImportSummary:
    """Write the rows in one transaction (rolled back for a dry run)."""
    with session_scope() as session:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=len(parsed.rows))
            summary = import_rows(
                session,
                parsed.rows,
                actor=actor,
                publish=publish,
                progress=lambda n: bar.advance(task, n),
            )
        if dry_run:
            session.rollback()
    return summary


def import_command(
    file: Path = typer.Argument(..., help="CSV or JSONL file of FAQs."),
    fmt: str = typer.Option("auto", "--format", help="auto, csv or jsonl."),
    publish: bool = typer.Option(False, "--publish", help="Publish every imported FAQ."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing."),
    actor: str = typer.Option(_default_actor(), "--actor", help="Name recorded in the audit log."),
) -> None:
    """Import FAQs (new ids are created, existing ids updated). Any error: nothing is written."""
    if fmt not in ("auto", "csv", "jsonl"):
        raise typer.BadParameter("must be auto, csv or jsonl", param_hint="--format")
    _ready()
    parsed = parse_file(file, fmt=fmt)  # type: ignore[arg-type]
    if parsed.errors:
        _print_errors(parsed.errors, str(file))
        raise typer.Exit(1)
    try:
        summary = _import(parsed, actor, publish, dry_run, f"importing {file.name}")
    except (StoreError, ValueError) as exc:
        err_console.print(f"[red]import failed, nothing was written: {exc}[/red]")
        raise typer.Exit(1) from exc
    prefix = "dry run, nothing written: would be " if dry_run else ""
    console.print(f"{file}: {len(parsed.rows)} FAQs ({parsed.format}); {prefix}{summary}")


def export_command(
    file: Path = typer.Argument(..., help="Destination file (.csv or .jsonl); - for stdout."),
    fmt: str = typer.Option("auto", "--format", help="auto (from extension), csv or jsonl."),
    status: str = typer.Option("published", "--status", help="published, draft, archived or all."),
) -> None:
    """Export FAQs in the import format, ordered by id."""
    if fmt not in ("auto", "csv", "jsonl"):
        raise typer.BadParameter("must be auto, csv or jsonl", param_hint="--format")
    if status not in ("published", "draft", "archived", "all"):
        raise typer.BadParameter("must be published, draft, archived or all", param_hint="--status")
    _ready()
    selected = None if status == "all" else status
    with session_scope() as session:
        if str(file) == "-":  # standard output, e.g. to pipe into another tool
            exporter = export_csv if fmt == "csv" else export_jsonl
            count = exporter(session, sys.stdout, status=selected)
        else:
            count = export_file(session, file, fmt=fmt, status=selected)  # type: ignore[arg-type]
    err_console.print(f"exported {count} FAQs to {'standard output' if str(file) == '-' else file}")


def stats_command() -> None:
    """Counts of FAQs by status, language and category."""
    _ready()
    with session_scope() as session:
        numbers = stats(session)
    console.print(f"Knowledge base: {numbers['total']} FAQs, {numbers['variants']} variants")
    table = Table()
    table.add_column("group")
    table.add_column("value")
    table.add_column("FAQs", justify="right")
    for group in ("by_status", "by_language", "by_category"):
        for key, count in numbers[group].items():
            table.add_row(group.removeprefix("by_"), key, str(count))
    table.add_row("review", "overdue", str(numbers["review_overdue"]))
    console.print(table)


def load_sample_command(
    if_empty: bool = typer.Option(
        False,
        "--if-empty",
        help="Load the sample FAQs only into an empty knowledge base, and the sample locations "
        "only into an empty location list.",
    ),
) -> None:
    """Import and publish the bundled sample FAQs (English and Spanish); add the sample
    locations that are not in the location list yet."""
    _ready()
    with session_scope() as session:
        existing = count_faqs(session) if if_empty else 0
    if existing:
        console.print(f"knowledge base already has {existing} FAQs; sample not loaded")
    else:
        _load_sample_faqs()
    _load_sample_locations(if_empty)


def _load_sample_faqs() -> None:
    files = [SAMPLE_DIR / name for name in SAMPLE_FILES if (SAMPLE_DIR / name).is_file()]
    if not files:
        err_console.print(f"[red]no sample files found in {SAMPLE_DIR}[/red]")
        raise typer.Exit(1)
    combined = ParseResult()
    seen: dict[str, str] = {}
    for path in files:
        parsed = parse_file(path)
        errors = list(parsed.errors)
        for row, line in zip(parsed.rows, parsed.lines, strict=True):
            if row.id in seen:
                errors.append(RowError(line, "id", f"id {row.id!r} also in {seen[row.id]}"))
            seen[row.id] = path.name
        if errors:
            _print_errors(errors, str(path))
            raise typer.Exit(1)
        combined.rows.extend(parsed.rows)
    summary = _import(combined, "sample", publish=True, dry_run=False, label="loading sample")
    names = ", ".join(path.name for path in files)
    console.print(f"sample FAQs from {names}: {summary}")


def _load_sample_locations(if_empty: bool) -> None:
    """Adds the sample locations whose code is not in the list (staff changes are kept)."""
    path = SAMPLE_DIR / SAMPLE_LOCATIONS
    if not path.is_file():
        return
    try:
        items = location_store.read_csv(path.read_text(encoding="utf-8-sig"))
    except location_store.LocationError as exc:
        err_console.print(f"[red]{path}: {exc}[/red]")
        raise typer.Exit(1) from exc
    with session_scope() as session:
        present = len(location_store.list_locations(session))
        if if_empty and present:
            console.print(f"location list already has {present} locations; sample not loaded")
            return
        added, skipped = location_store.add_missing(session, items, SAMPLE_ACTOR)
    console.print(f"sample locations from {path.name}: {added} added, {len(skipped)} skipped")
    for reason in skipped:
        console.print(f"  skipped {reason}")


def migrate_command() -> None:
    """Bring the database schema to the latest version."""
    _ready()
    url = get_settings().database_url
    console.print(f"database at revision {migrations.current_revision(url)}: {_safe(url)}")


def register(app: typer.Typer) -> None:
    """Adds the store commands to ``app`` (the ``askagency kb`` group), in help order."""
    app.command("import")(import_command)
    app.command("export")(export_command)
    app.command("stats")(stats_command)
    app.command("load-sample")(load_sample_command)
    app.command("migrate")(migrate_command)
