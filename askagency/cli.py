"""The ``askagency`` command line: one Typer app that mounts each package's commands."""

from __future__ import annotations

import typer

from knowledge_base.cli import app as kb_app

app = typer.Typer(help="AskAgency command line.", no_args_is_help=True)
app.add_typer(kb_app, name="kb", help="FAQ knowledge base: import, index, search, evaluate.")

if __name__ == "__main__":
    app()
