"""The ``askagency`` command line: one Typer app that mounts each package's commands.

The console script ``askagency`` and ``python -m agencyctl.cli`` both run :data:`app`.
"""

from __future__ import annotations

import typer

from agencyctl.privacy_cli import app as privacy_app
from agencyctl.spool_cli import app as spool_app
from analytics.cli import app as report_app
from analytics.cli import rebuild_app as analytics_app
from askagency.secrets import private_umask
from console.cli import app as users_app
from knowledge_base.cli import app as kb_app

app = typer.Typer(help="AskAgency command line.", no_args_is_help=True)


@app.callback()
def _private_files() -> None:
    """AskAgency command line."""
    # Databases, exports and index files it creates hold citizens' data: this user's only.
    private_umask()


app.add_typer(kb_app, name="kb", help="FAQ knowledge base: import, index, search, evaluate.")
app.add_typer(users_app, name="users", help="Console accounts and roles.")
app.add_typer(
    report_app,
    name="report",
    help="Leadership summary: Markdown + PDF + PNG charts; `report send` e-mails the weekly one.",
)
app.add_typer(analytics_app, name="analytics", help="Analytics data: rebuild stored conversations.")
app.add_typer(
    privacy_app, name="privacy", help="Retention purge; export or delete a citizen's data."
)

app.add_typer(
    spool_app, name="spool", help="Writes kept while the database was down: status, replay."
)

if __name__ == "__main__":
    app()
