"""``askagency users``: console accounts (admin, editor, agent, viewer)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from askagency.db import session_scope
from askagency.migrate import upgrade
from askagency.staff import Role, User, team_name
from console.auth import create_user, hash_password, revoke_sessions, unlock

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
    team: str = typer.Option("", help="Team the person's figures are reported under"),
    password_stdin: bool = typer.Option(False, help="Read the password from standard input"),
) -> None:
    """Create a console account (password from --password-stdin, env or a prompt)."""
    upgrade()
    password = _read_password(password_stdin)
    langs = [code.strip() for code in languages.split(",") if code.strip()]
    try:
        with session_scope() as session:
            create_user(session, username, password, role, display_name or None, langs, team)
    except ValueError as exc:
        out.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    out.print(f"created {role.value} [bold]{username}[/bold]")


def _user_named(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValueError(f"no user {username!r}")
    return user


def _change(username: str, change: Callable[[Session, User], str]) -> None:
    """Applies ``change`` to the user in one transaction; prints its message or the error."""
    upgrade()
    try:
        with session_scope() as session:
            message = change(session, _user_named(session, username))
    except ValueError as exc:
        out.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    out.print(message)


@app.command("set-password")
def set_password(
    username: str, password_stdin: bool = typer.Option(False, help="Read from standard input")
) -> None:
    """Replace a user's password, log them out everywhere and forget failed logins."""
    password = _read_password(password_stdin)

    def change(session: Session, user: User) -> str:
        user.password_hash = hash_password(password)
        revoked = revoke_sessions(session, user.id)
        unlock(session, user.username)
        return f"password of [bold]{username}[/bold] changed; {revoked} session(s) ended"

    _change(username, change)


@app.command("unlock")
def unlock_user(username: str) -> None:
    """Forget the user's failed logins (from every address), so no delay applies."""

    def change(session: Session, user: User) -> str:
        count = unlock(session, user.username)
        return f"[bold]{username}[/bold] unlocked ({count} address(es) had failures)"

    _change(username, change)


@app.command("deactivate")
def deactivate(username: str) -> None:
    """Disable the account and end its sessions (the history stays; `activate` undoes it)."""

    def change(session: Session, user: User) -> str:
        user.active = False
        revoked = revoke_sessions(session, user.id)
        return f"[bold]{username}[/bold] deactivated; {revoked} session(s) ended"

    _change(username, change)


@app.command("activate")
def activate(username: str) -> None:
    """Enable a deactivated account again."""

    def change(session: Session, user: User) -> str:
        user.active = True
        return f"[bold]{username}[/bold] activated"

    _change(username, change)


@app.command("set-role")
def set_role(
    username: str, role: Role = typer.Option(..., help="admin, editor, agent or viewer")
) -> None:
    """Change the user's role; their sessions end, so the new role applies at once."""

    def change(session: Session, user: User) -> str:
        user.role = Role(role).value
        revoked = revoke_sessions(session, user.id)
        return f"[bold]{username}[/bold] is now {role.value}; {revoked} session(s) ended"

    _change(username, change)


@app.command("set-team")
def set_team(
    username: str,
    team: str = typer.Argument(..., help='Team name; "" removes the person from their team'),
) -> None:
    """Put the user in a team (the dashboard and report show figures per team)."""
    try:  # validated before the transaction: a bad name changes nothing
        name = team_name(team)
    except ValueError as exc:
        out.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc

    def change(session: Session, user: User) -> str:
        user.team = name
        if name is None:
            return f"[bold]{username}[/bold] is in no team"
        return f"[bold]{username}[/bold] is now in team {name!r}"

    _change(username, change)


@app.command("revoke-sessions")
def revoke(username: str) -> None:
    """Log the user out on every device."""

    def change(session: Session, user: User) -> str:
        return f"{revoke_sessions(session, user.id)} session(s) of [bold]{username}[/bold] ended"

    _change(username, change)


@app.command("list")
def list_users() -> None:
    """List console accounts."""
    upgrade()
    table = Table("username", "name", "role", "languages", "team", "active")
    with session_scope() as session:
        for user in session.scalars(select(User).order_by(User.username)):
            table.add_row(
                user.username,
                user.display_name,
                user.role,
                ",".join(user.languages or []),
                user.team or "",
                "yes" if user.active else "no",
            )
    out.print(table)
