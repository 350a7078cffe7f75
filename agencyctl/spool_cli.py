"""``askagency spool``: what the write spool holds, and replaying it by hand.

The action server replays the spool by itself every ``ASKAGENCY_SPOOL_RETRY_SECONDS`` once the
database answers again; these commands are for operators (after an outage with the action
server stopped, or to see what waits and what was dead-lettered).
"""

from __future__ import annotations

import json
from collections import Counter

import typer
from rich.console import Console
from rich.table import Table

from actions.spool_kinds import SPOOL_KINDS
from askagency.spool import get_spool

app = typer.Typer(help="Writes kept on disk while the database was unavailable.")
console = Console()


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Pending and dead-lettered records, by kind."""
    spool = get_spool()
    pending = spool.pending()
    summary = spool.status()
    by_kind = Counter(record.kind for record in pending)
    if as_json:
        summary["pending_by_kind"] = dict(by_kind)
        summary["oldest_pending"] = pending[0].created_at if pending else None
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"Write spool ({spool.directory})")
    table.add_column("kind")
    table.add_column("pending", justify="right")
    for kind, count in sorted(by_kind.items()):
        table.add_row(kind, str(count))
    console.print(table)
    unreadable = summary["pending"] - len(pending)
    console.print(
        f"pending: {summary['pending']}" + (f" ({unreadable} unreadable)" if unreadable else "")
    )
    if pending:
        console.print(f"oldest pending: {pending[0].created_at}")
    dead = summary["dead"]
    style = "red" if dead else "green"
    console.print(f"[{style}]dead letters: {dead}[/{style}] ({spool.dead_path})")


@app.command()
def replay() -> None:
    """Write the pending records to the database now, in order (exit 1 if some still wait)."""
    result = get_spool().replay(SPOOL_KINDS)
    if result.busy:
        console.print("[yellow]another process is replaying the spool right now[/yellow]")
        raise typer.Exit(1)
    console.print(
        f"replayed {result.replayed}, dead-lettered {result.dead}, still pending {result.remaining}"
    )
    if result.error:
        console.print(f"[red]stopped: database unavailable ({result.error})[/red]")
    if result.remaining:
        raise typer.Exit(1)
