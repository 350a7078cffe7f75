"""Signed, expiring links to one attachment, for the citizen's side.

Messaging platforms fetch an agent's image or PDF by URL, and the web widget shows it by URL, so
the citizen's side cannot present a console login. A link is ``{base}/media/{id}?exp=&sig=``:
an HMAC-SHA256 over the id and the expiry, under a secret created once in the data folder and
shared by every process that reads it. Changing the id or the expiry breaks the signature, an
expired link is refused, and the comparison takes the same time whatever the guess.

"Now" is always handed in (``askagency.clock`` in production, a fixed instant in tests).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from askagency.bot_messages import ATTACHMENT_ID_PATTERN
from askagency.secrets import load_or_create_secret

LINK_SECRET_NAME = "attachment_link_secret"
MEDIA_PATH = "/media"
MIN_SECRET_CHARS = 32  # as openssl rand -base64 32 gives 44
_ID = re.compile(ATTACHMENT_ID_PATTERN)
_EXP = re.compile(r"[0-9]{1,12}")
_SIG = re.compile(r"[0-9a-f]{64}")


def link_secret(settings: Any) -> bytes:
    """This installation's link-signing key: the ``attachment_link_secret`` setting (the same
    on every replica of the scale profile), else ``<data_dir>/secrets/attachment_link_secret``.
    Read once per process and folder (the action server signs a link per agent file)."""
    configured = str(getattr(settings, "attachment_link_secret", "") or "").strip()
    return _secret(configured, str(settings.data_dir))


@lru_cache(maxsize=8)
def _secret(configured: str, data_dir: str) -> bytes:
    if configured:
        if len(configured) < MIN_SECRET_CHARS:
            raise ValueError(
                f"attachment_link_secret must be at least {MIN_SECRET_CHARS} characters"
            )
        return configured.encode()
    return load_or_create_secret(data_dir, LINK_SECRET_NAME).encode()


def _signature(attachment_id: str, exp: int, secret: bytes) -> str:
    message = f"attachment:{attachment_id}:{exp}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signed_url(
    base_url: str, attachment_id: str, *, secret: bytes, now: datetime, ttl_s: int
) -> str:
    """A link to the attachment valid for ``ttl_s`` seconds from ``now``."""
    if not _ID.fullmatch(attachment_id):
        raise ValueError("invalid attachment id")
    if not secret:
        raise ValueError("empty link secret")
    exp = int(now.timestamp()) + int(ttl_s)
    query = urlencode({"exp": exp, "sig": _signature(attachment_id, exp, secret)})
    return f"{base_url.rstrip('/')}{MEDIA_PATH}/{attachment_id}?{query}"


def verify(
    attachment_id: str, exp: str | int | None, sig: str | None, *, secret: bytes, now: datetime
) -> bool:
    """True when ``sig`` was made by :func:`signed_url` for this id and expiry and the expiry
    is still ahead of ``now``. Malformed input is simply False."""
    if not secret or not isinstance(attachment_id, str) or not _ID.fullmatch(attachment_id):
        return False
    exp_text = str(exp) if exp is not None else ""
    if not _EXP.fullmatch(exp_text) or not isinstance(sig, str) or not _SIG.fullmatch(sig):
        return False
    expected = _signature(attachment_id, int(exp_text), secret)
    if not hmac.compare_digest(expected, sig):
        return False
    return now.timestamp() < int(exp_text)
