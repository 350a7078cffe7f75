"""Secrets the product generates for itself, kept 0600 in ``<data dir>/secrets/``.

Why generated: a fixed default (like the old ``askagency-dev-token``) is public the moment the
code is, so every installation that keeps it is open. A random value made on first start and
stored next to the data needs no operator step and differs per installation; an operator (or
compose/Kubernetes, where processes do not share a data folder) can still set the value through
the environment, which always wins.

The action-server secret: Rasa sends it in a header on every call to the action server
(``headers:`` of ``action_endpoint`` in bot/endpoints*.yml, filled from
:data:`ACTION_SECRET_ENV`), and the action server refuses ``/webhook`` without it, so nobody
else who can reach the port can run actions (open tickets, inject "citizen" messages).

No dependencies beyond the standard library.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

SECRETS_DIR = "secrets"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

ACTION_SECRET_NAME = "action_secret"
ACTION_SECRET_ENV = "ASKAGENCY_ACTION_SECRET"
# Also spelled out in bot/endpoints.yml and bot/endpoints.scale.yml (YAML cannot import it);
# tests/unit/test_action_secret.py checks they agree.
ACTION_SECRET_HEADER = "X-AskAgency-Action-Secret"


def load_or_create_secret(data_dir: Path, name: str) -> str:
    """The secret ``name`` of this installation, created (random, 256 bits, url-safe) on first
    use as ``<data_dir>/secrets/<name>`` with mode 0600 in a 0700 folder. Safe when several
    processes start at once: the file appears complete or not at all, and the first one wins."""
    if not _NAME.match(name):
        raise ValueError(f"invalid secret name {name!r}")
    folder = Path(data_dir) / SECRETS_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / name
    if not path.exists():
        temporary = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
            with contextlib.suppress(FileExistsError):  # another process won: use its secret
                os.link(temporary, path)  # atomic
        finally:
            temporary.unlink(missing_ok=True)
    value = path.read_text().strip()
    if not value:
        raise ValueError(f"secret file {path} is empty: delete it to generate a new one")
    return value


def action_secret(data_dir: Path, environ: Mapping[str, str] | None = None) -> str:
    """:data:`ACTION_SECRET_ENV` when set, else this installation's generated secret."""
    environ = os.environ if environ is None else environ
    configured = environ.get(ACTION_SECRET_ENV, "").strip()
    return configured or load_or_create_secret(data_dir, ACTION_SECRET_NAME)
