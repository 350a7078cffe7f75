"""Pseudonymous conversation ids for exports: a keyed hash of the sender id.

Why keyed: SMS and WhatsApp sender ids are phone numbers. A plain hash of ``sms-1<10 digits>``
is reversed by hashing every number of an area code in seconds, so a viewer who downloads
``conversations.csv`` could recover the citizens' numbers (review finding L8). An HMAC-SHA-256
under a secret the viewer never sees cannot be recomputed. The key is generated on first use
(0600 under ``<data dir>/secrets/``, :mod:`askagency.secrets`), so the same sender keeps the same
pseudonym across exports of one installation; replicas that do not share a data folder set
:data:`PSEUDONYM_KEY_ENV` to one value so their exports agree.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from askagency.secrets import load_or_create_secret

PSEUDONYM_SECRET_NAME = "export_pseudonym_key"
PSEUDONYM_KEY_ENV = "ASKAGENCY_EXPORT_PSEUDONYM_KEY"
PREFIX = "c_"
HEX_CHARS = 16  # 64 bits: no collisions in practice, short enough for a spreadsheet column


def pseudonym_key(data_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> bytes:
    """:data:`PSEUDONYM_KEY_ENV` when set, else this installation's generated key."""
    environ = os.environ if environ is None else environ
    configured = environ.get(PSEUDONYM_KEY_ENV, "").strip()
    if configured:
        return configured.encode("utf-8")
    if data_dir is None:
        from askagency.config import get_settings

        data_dir = get_settings().data_dir
    return load_or_create_secret(data_dir, PSEUDONYM_SECRET_NAME).encode("utf-8")


def pseudonym(sender_id: str, key: bytes) -> str:
    """``c_`` + the first 16 hex digits of HMAC-SHA-256(key, sender id)."""
    digest = hmac.new(key, sender_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:HEX_CHARS]
