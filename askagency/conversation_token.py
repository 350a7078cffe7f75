"""Who owns a web conversation: server-issued ids and the signed token that proves it.

Why: the widget (socket.io) and REST integrations used to name their conversation themselves,
so anyone who knew or guessed an id could write into it, read its history and receive the
agent's replies. Now the server issues the id (``web-`` + 128 random bits) together with a
token ``v1.<HMAC-SHA256(secret, id)>``; every message, history read and socket.io join must
carry both, and the server recomputes the HMAC. The token is stateless, so every Rasa replica
and the console accept it as long as they share the secret.

The secret comes from ``ASKAGENCY_CONVERSATION_SECRET`` when set (at least
`MIN_SECRET_CHARS` characters), else from ``<data_dir>/secrets/conversation_secret``,
generated once with mode 0600. There is no fixed default: a public one would let anyone sign ids.

No dependencies beyond the standard library: imported by the Rasa channels (Python 3.10 env)
and the console alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from askagency.secrets import load_or_create_secret

SECRET_ENV = "ASKAGENCY_CONVERSATION_SECRET"
SECRET_NAME = "conversation_secret"  # <data_dir>/secrets/<name> (askagency/secrets.py)
MIN_SECRET_CHARS = 32
WEB_PREFIX = "web-"
TOKEN_VERSION = "v1"
_TOKEN_LABEL = b"askagency-web-conversation\x00"
_CLIENT_LABEL = b"askagency-client-address\x00"


class SecretError(ValueError):
    """The configured secret is unusable; the message names the setting."""


def load_secret(data_dir: Path, configured: str | None = None) -> bytes:
    """The server secret: ``configured`` (the setting) when given, else the generated file."""
    configured = (configured or "").strip()
    if configured:
        if len(configured) < MIN_SECRET_CHARS:
            raise SecretError(
                f"{SECRET_ENV} must be at least {MIN_SECRET_CHARS} characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return configured.encode()
    value = load_or_create_secret(Path(data_dir), SECRET_NAME)
    if len(value) < MIN_SECRET_CHARS:
        raise SecretError(f"the {SECRET_NAME} secret is too short; delete it to generate a new one")
    return value.encode()


def secret_from_environment(data_dir: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """For processes without :mod:`askagency.config` (Rasa): the variable, else the file."""
    environ = os.environ if environ is None else environ
    return load_secret(data_dir, environ.get(SECRET_ENV))


class ConversationSigner:
    """Issues web conversation ids with their token, and checks tokens."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise SecretError("the conversation secret is empty")
        self._secret = secret

    def token(self, conversation_id: str) -> str:
        digest = hmac.new(
            self._secret, _TOKEN_LABEL + conversation_id.encode(), hashlib.sha256
        ).digest()
        return f"{TOKEN_VERSION}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"

    def verify(self, conversation_id: str | None, token: object) -> bool:
        """Constant-time check that ``token`` was issued for ``conversation_id``."""
        if not conversation_id or not isinstance(token, str) or len(token) > 128:
            return False
        return hmac.compare_digest(token.encode(), self.token(conversation_id).encode())

    def issue(self) -> tuple[str, str]:
        """A fresh, unguessable conversation id and its token."""
        conversation_id = WEB_PREFIX + secrets.token_hex(16)
        return conversation_id, self.token(conversation_id)

    def client_key(self, address: str) -> str:
        """A keyed hash of a client address: lets the handoff count tickets per address
        without storing the address, and cannot be reversed without the secret."""
        digest = hmac.new(self._secret, _CLIENT_LABEL + address.encode(), hashlib.sha256)
        return digest.hexdigest()[:32]
