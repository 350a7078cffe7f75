"""Spreadsheet formula neutralisation for every CSV the product writes (and reads back).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets (CSV injection: ``=HYPERLINK(...)`` exfiltrates
the sheet, DDE runs commands). Text written to a CSV gets a leading apostrophe when it would
start a formula, which spreadsheets show as text. Text that citizens wrote reaches staff
exports (FAQ variants from the unanswered queue, dashboard tables), so every CSV writer uses
:func:`csv_safe`; the FAQ import undoes it with :func:`csv_unguard`, so an export re-imports
unchanged (a value that itself starts with apostrophes before a formula character gets one
more on export and loses exactly that one on import).
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _needs_guard(text: str) -> bool:
    return text.lstrip("'")[:1] in FORMULA_START


def csv_safe(value: T) -> T | str:
    """``value`` with a leading apostrophe if it is text a spreadsheet would run; other values
    (numbers, None) unchanged."""
    if isinstance(value, str) and _needs_guard(value):
        return "'" + value
    return value


def csv_unguard(text: str) -> str:
    """Undoes :func:`csv_safe` on a cell read from a CSV the product may have written."""
    if text.startswith("'") and _needs_guard(text[1:]):
        return text[1:]
    return text
