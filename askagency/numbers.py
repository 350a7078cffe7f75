"""Whole numbers read from text a client or an operator wrote: ids in URL paths, header values,
settings.

Why not ``str.isdigit()`` then ``int()``: ``isdigit`` accepts "²" and other Unicode digits that
``int`` refuses (a 500 where a 404 belongs, found by fuzzing the console), and ``int`` reads
"٣" (Arabic-Indic three) as 3, so a path "/api/tickets/٣" would name ticket 3 under another
spelling. Only ASCII digits are numbers here. And a database id has a range: twenty digits
overflow PostgreSQL's bigint and SQLite's integer, so a longer number is no row either.
"""

from __future__ import annotations

# The largest row id either database can hold (a signed 64-bit integer).
MAX_ROW_ID = 2**63 - 1
# Enough digits for any 64-bit value; a longer string is refused before int() reads it.
MAX_DIGITS = 19


def ascii_int(raw: str | None, max_digits: int = MAX_DIGITS) -> int | None:
    """``raw`` as a non-negative whole number when it is 1 to ``max_digits`` ASCII digits and
    nothing else (no sign, space or underscore), else None."""
    if raw is None or not 0 < len(raw) <= max_digits:
        return None
    if not (raw.isascii() and raw.isdecimal()):
        return None
    return int(raw)


def row_id(raw: str | None) -> int | None:
    """A database row id named by a client (a URL path segment): 1 to :data:`MAX_ROW_ID` in
    ASCII digits, else None (the caller answers 404: no such row)."""
    value = ascii_int(raw)
    return value if value is not None and 1 <= value <= MAX_ROW_ID else None
