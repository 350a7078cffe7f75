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

import ipaddress
import os
import secrets
import socket
from pathlib import Path

SECRETS_FOLDER = "secrets"
# The Rasa HTTP API token (``rasa run --auth-token``): setting ``rasa_token`` /
# ``ASKAGENCY_RASA_TOKEN`` when an operator supplies one, else this generated secret.
RASA_TOKEN_SECRET = "rasa_token"
RASA_TOKEN_ENV = "ASKAGENCY_RASA_TOKEN"
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


def _secret_path(data_dir: Path, name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"secret name must be a plain file name, got {name!r}")
    return Path(data_dir) / SECRETS_FOLDER / name


def load_or_create_secret(data_dir: Path, name: str) -> str:
    """The secret ``name`` of this data folder, generated on first use.

    The file is created with ``O_EXCL`` and mode 0600 (never world-readable, not even for a
    moment), so two processes starting together agree on one value: the loser of the race
    reads the winner's file.
    """
    path = _secret_path(data_dir, name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.parent.stat().st_mode & 0o077:
        os.chmod(path.parent, 0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text(encoding="utf-8").strip()
        if not value:
            raise WeakSecretError(f"{path} is empty; delete it to generate a new secret") from None
        return value
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
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
