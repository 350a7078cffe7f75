"""Secrets AskAgency generates for itself, and the rule for API tokens an operator supplies.

One function creates every generated secret (the Rasa API token, and any shared secret between
our own processes) so they all get the same treatment: random, 256 bits, stored in
``<data_dir>/secrets/<name>`` with mode 0600 in a 0700 folder, created once and then reused by
every process that reads the same data folder. A fixed default token in the code would be public
(it was: ``askagency-dev-token`` was printed in the README); a generated one is known only to
the machine.

Standard library only: Rasa's own environment (``.venv-rasa``) imports this module too, to start
Rasa with the same token (bot/serve.py).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path

SECRETS_FOLDER = "secrets"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# The Rasa HTTP API token (``rasa run --auth-token``): setting ``rasa_token`` /
# ``ASKAGENCY_RASA_TOKEN`` when an operator supplies one, else this generated secret.
RASA_TOKEN_SECRET = "rasa_token"
RASA_TOKEN_ENV = "ASKAGENCY_RASA_TOKEN"
# The action-server secret: Rasa sends it in a header on every call to the action server
# (``headers:`` of ``action_endpoint`` in bot/endpoints*.yml, filled from ACTION_SECRET_ENV), and
# the action server refuses ``/webhook`` without it, so nobody else who can reach the port can run
# actions (open tickets, inject "citizen" messages).
ACTION_SECRET_NAME = "action_secret"
ACTION_SECRET_ENV = "ASKAGENCY_ACTION_SECRET"
# Also spelled out in bot/endpoints.yml and bot/endpoints.scale.yml (YAML cannot import it);
# tests/unit/actions/test_server.py checks they agree.
ACTION_SECRET_HEADER = "X-AskAgency-Action-Secret"
# Shorter tokens are refused on a listener other hosts can reach (a generated one has 43).
MIN_TOKEN_CHARS = 24
# Tokens that were published in this project's code or docs, or are obvious guesses: refused on
# every listener, loopback included (any web page can reach a loopback port from a browser).
KNOWN_DEFAULT_TOKENS = frozenset(
    {
        "askagency-dev-token",
        "askagency",
        "changeme",
        "change-me",
        "secret",
        "token",
        "password",
        "rasa",
        "rasa-token",
    }
)


class WeakSecretError(ValueError):
    """A supplied token is public or too short for where it would be used."""


def load_or_create_secret(data_dir: Path, name: str) -> str:
    """The secret ``name`` of this installation, created (random, 256 bits, url-safe) on first
    use as ``<data_dir>/secrets/<name>`` with mode 0600 in a 0700 folder. Safe when several
    processes start at once: the file appears complete or not at all, and the first one wins."""
    if not _NAME.match(name):
        raise ValueError(f"invalid secret name {name!r}")
    folder = Path(data_dir) / SECRETS_FOLDER
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
        raise WeakSecretError(f"{path} is empty; delete it to generate a new secret")
    return value


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:  # a host name: loopback only if every address it resolves to is
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_api_token(token: str, listen_host: str, what: str = "the Rasa API token") -> None:
    """Refuses a public default token anywhere, and a short one on a non-loopback listener.

    ``listen_host`` is the interface the server that checks the token listens on.
    """
    advice = (
        "unset ASKAGENCY_RASA_TOKEN to use the generated one in <data_dir>/secrets/, or set a "
        "random value: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )
    if not token:
        raise WeakSecretError(f"{what} is empty; {advice}")
    if token.strip().lower() in KNOWN_DEFAULT_TOKENS:
        raise WeakSecretError(f"{what} is a published default ({token!r}); {advice}")
    if len(token) < MIN_TOKEN_CHARS and not is_loopback(listen_host):
        raise WeakSecretError(
            f"{what} has {len(token)} characters and the server listens on {listen_host}, "
            f"which other machines can reach; it needs at least {MIN_TOKEN_CHARS}. {advice}"
        )


def private_umask() -> None:
    """New files of this process are readable by its user only (databases, logs, exports):
    they hold citizens' messages. Called first thing by every entry point."""
    os.umask(0o077)


def action_secret(data_dir: Path, environ: Mapping[str, str] | None = None) -> str:
    """:data:`ACTION_SECRET_ENV` when set, else this installation's generated secret."""
    environ = os.environ if environ is None else environ
    configured = environ.get(ACTION_SECRET_ENV, "").strip()
    return configured or load_or_create_secret(data_dir, ACTION_SECRET_NAME)
