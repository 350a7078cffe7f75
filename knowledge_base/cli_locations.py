"""``askagency kb locations``: list, import and export the location list (airports, offices).

The same store as the console's Locations page (``knowledge_base.locations.store``), so the same
checks: an import with any bad line, or an alias another location uses, writes nothing. The
CSV format is ``code,name,aliases,active`` with aliases separated by ``|``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from askagency.db import session_scope
from knowledge_base.cli_store import _default_actor, _ready, console, err_console
from knowledge_base.locations import store as locations

app = typer.Typer(no_args_is_help=True, help="The location list: list, import, export.")


@app.command("list")
def list_command() -> None:
    """Every location with its aliases, by code."""
    _ready()
    with session_scope() as session:
        rows = [locations.to_out(r) for r in locations.list_locations(session)]
    table = Table(title=f"{len(rows)} location{'' if len(rows) == 1 else 's'}")
    for column in ("code", "name", "aliases", "active", "updated"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.code,
            row.name,
            " | ".join(row.aliases),
            "yes" if row.active else "no",
            f"{row.updated_at:%Y-%m-%d %H:%M} {row.updated_by or ''}".strip(),
        )
    console.print(table)


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="CSV file: code,name,aliases,active (aliases: a|b)."),
    actor: str = typer.Option(_default_actor(), "--actor", help="Name recorded in the audit log."),
) -> None:
    """Create or replace the file's locations (the others stay). Any error: nothing is written."""
    _ready()
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        err_console.print(f"[red]cannot read {file}: {exc}[/red]")
        raise typer.Exit(1) from exc
    try:
        items = locations.read_csv(text)
        with session_scope() as session:
            existing = {row.code for row in locations.list_locations(session)}
            count = locations.import_items(session, items, actor)
    except locations.LocationError as exc:
        err_console.print(f"[red]{file}: {exc}; nothing was imported[/red]")
        raise typer.Exit(1) from exc
    created = sum(item.code not in existing for item in items)
    console.print(f"{file}: {count} locations imported ({created} new, {count - created} replaced)")


@app.command("export")
def export_command(
    out: Path | None = typer.Option(None, "--out", help="Destination file (default: stdout)."),
) -> None:
    """Write the location list as CSV (the import format)."""
    _ready()
    with session_scope() as session:
        rows = locations.list_locations(session)
        text = locations.write_csv(rows)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    err_console.print(f"exported {len(rows)} locations to {out}")


def register(parent: typer.Typer) -> None:
    """Adds ``locations`` to ``parent`` (the ``askagency kb`` group)."""
    parent.add_typer(app, name="locations")
