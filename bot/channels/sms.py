"""Text-message rules: segment lengths, opt-out keywords and the persistent opt-out list.

A single SMS segment holds 160 GSM-7 characters (the extension characters ``^{}\\[~]|€`` take
two) or, as soon as one character is outside GSM-7, 70 UCS-2 code units (emoji take two).
Answers are split into one-segment messages between words, so no phone shows a word cut in two.

Opt-out follows the carriers' keywords (the same ones Twilio's Advanced Opt-Out uses): STOP and
its synonyms stop every message to that number until START. The list is a small SQLite file in
the data directory, not memory: forgetting a STOP on restart would break the law (TCPA/CTIA).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

logger = logging.getLogger(__name__)

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")
GSM7_SEGMENT = 160
UCS2_SEGMENT = 70


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def gsm7_length(text: str) -> int:
    return sum(2 if char in GSM7_EXTENSION else 1 for char in text)


def ucs2_length(text: str) -> int:
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def segment_rule(text: str) -> tuple[int, object]:
    """(characters per single-segment message, length function) for ``text``'s encoding."""
    if is_gsm7(text):
        return GSM7_SEGMENT, gsm7_length
    return UCS2_SEGMENT, ucs2_length


class Keyword(Enum):
    STOP = "stop"
    START = "start"
    HELP = "help"


STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
START_WORDS = {"START", "UNSTOP"}
# "YES" re-subscribes only an opted-out number: otherwise it is an answer to the bot.
START_WORDS_WHEN_OPTED_OUT = {"YES"}
HELP_WORDS = {"HELP", "INFO"}


def keyword_of(text: str, opted_out: bool) -> Keyword | None:
    """The keyword a message is, compared like carriers do: the whole message, any case."""
    word = text.strip().strip(".!").upper()
    if word in STOP_WORDS:
        return Keyword.STOP
    if word in START_WORDS or (opted_out and word in START_WORDS_WHEN_OPTED_OUT):
        return Keyword.START
    if word in HELP_WORDS:
        return Keyword.HELP
    return None


class OptOutStore:
    """Numbers that sent STOP, by conversation id (``sms-1555...`` and ``whatsapp-1555...``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS channel_opt_out ("
                "address TEXT PRIMARY KEY, opted_out_at REAL NOT NULL)"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=5.0)
        try:
            with db:  # commits, or rolls back on error
                yield db
        finally:
            db.close()

    def is_opted_out(self, address: str) -> bool:
        with self._lock, self._connect() as db:
            row = db.execute(
                "SELECT 1 FROM channel_opt_out WHERE address = ?", (address,)
            ).fetchone()
        return row is not None

    def opt_out(self, address: str) -> None:
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO channel_opt_out (address, opted_out_at) VALUES (?, ?)",
                (address, time.time()),
            )
        logger.info("%s opted out (STOP)", address)

    def opt_in(self, address: str) -> None:
        with self._lock, self._connect() as db:
            db.execute("DELETE FROM channel_opt_out WHERE address = ?", (address,))
        logger.info("%s opted in again (START)", address)
