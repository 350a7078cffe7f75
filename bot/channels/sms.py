"""Text-message rules: segment lengths, opt-out keywords and the persistent opt-out list.

A single SMS segment holds 160 GSM-7 characters (the extension characters ``^{}\\[~]|€`` take
two) or, as soon as one character is outside GSM-7, 70 UCS-2 code units (emoji take two).
Answers are split into one-segment messages between words, so no phone shows a word cut in two.

Opt-out follows the carriers' keywords (the same ones Twilio's Advanced Opt-Out uses): STOP and
its synonyms stop every message to that number until START. The list is a table of the product
database (askagency/opt_out.py), keyed by the E.164 number, shared by every Rasa replica and
kept across restarts: forgetting a STOP would break the law (TCPA/CTIA).
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from enum import Enum
from pathlib import Path

from askagency.channels import platform_of
from askagency.opt_out import OPT_OUT_CHANNELS, OptOutList, normalise_number

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


def import_legacy_list(path: Path, opt_outs: OptOutList) -> int:
    """Copies the STOPs of the old per-process SQLite file (keyed by conversation id,
    ``sms-1555...``) into the shared list, then renames the file ``*.imported``. Returns how
    many numbers were copied; a missing file is 0."""
    if not path.is_file():
        return 0
    with closing(sqlite3.connect(path, timeout=5.0)) as db:
        try:
            rows = db.execute("SELECT address FROM channel_opt_out").fetchall()
        except sqlite3.DatabaseError:
            rows = []
    copied = 0
    for (address,) in rows:
        channel = platform_of(str(address))
        number = normalise_number(str(address))
        if channel in OPT_OUT_CHANNELS and number:
            opt_outs.opt_out(channel, number)
            copied += 1
    path.rename(path.with_name(path.name + ".imported"))
    logger.warning("imported %d opt-outs from %s into the database", copied, path.name)
    return copied
