"""``askagency users``: console accounts (admin, editor, agent, viewer)."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from askagency.db import session_scope
from askagency.migrate import upgrade
from console.auth import create_user, hash_password
from console.models import Role, User

app = typer.Typer(no_args_is_help=True, help="Console user accounts.")
out = Console()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    env = os.environ.get("ASKAGENCY_NEW_PASSWORD")
    if env:
        return env
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@app.command("create")
def create(
    username: str,
    role: Role = typer.Option(..., help="admin, editor, agent or viewer"),
    display_name: str = typer.Option("", help="Name shown to colleagues and citizens"),
    languages: str = typer.Option("en", help="Comma-separated languages the person serves"),
    password_stdin: bool = typer.Option(False, help="Read the password from standard input"),
) -> None:
    """Create a console account (password from --password-stdin, env or a prompt)."""
    upgrade()
    password = _read_password(password_stdin)
    langs = [code.strip() for code in languages.split(",") if code.strip()]
    try:
        with session_scope() as session:
            create_user(session, username, password, role, display_name or None, langs)
    except ValueError as exc:
        out.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    out.print(f"created {role.value} [bold]{username}[/bold]")


@app.command("set-password")
def set_password(
    username: str, password_stdin: bool = typer.Option(False, help="Read from standard input")
) -> None:
    """Replace a user's password and unlock the account."""
    upgrade()
    password = _read_password(password_stdin)
    try:
        with session_scope() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise ValueError(f"no user {username!r}")
            user.password_hash = hash_password(password)
            user.failed_logins = 0
            user.locked_until = None
    except ValueError as exc:
        out.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    out.print(f"password of [bold]{username}[/bold] changed")


@app.command("list")
def list_users() -> None:
    """List console accounts."""
    upgrade()
    table = Table("username", "name", "role", "languages", "active")
    with session_scope() as session:
        for user in session.scalars(select(User).order_by(User.username)):
            table.add_row(
                user.username,
                user.display_name,
                user.role,
                ",".join(user.languages or []),
                "yes" if user.active else "no",
            )
    out.print(table)
