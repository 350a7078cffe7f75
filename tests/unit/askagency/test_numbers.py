"""Whole numbers from client text: ASCII digits only, and row ids within 64 bits."""

from __future__ import annotations

import pytest

from askagency.numbers import MAX_ROW_ID, ascii_int, row_id


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("0", 0),
        ("007", 7),
        ("12", 12),
        ("9" * 19, int("9" * 19)),
        ("9" * 20, None),  # longer than any 64-bit number: not read at all
        ("²", None),  # str.isdigit() says yes, int() refuses it
        ("٣", None),  # int() reads it as 3: another spelling of 3 is not 3 here
        ("１２", None),  # full-width digits
        ("", None),
        (None, None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1_000", None),  # int() accepts underscores
        ("1.0", None),
    ],
)
def test_ascii_int(raw: str | None, value: int | None) -> None:
    assert ascii_int(raw) == value


def test_ascii_int_takes_a_shorter_limit() -> None:
    assert ascii_int("1234", max_digits=3) is None
    assert ascii_int("123", max_digits=3) == 123


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1", 1),
        (str(MAX_ROW_ID), MAX_ROW_ID),
        (str(MAX_ROW_ID + 1), None),  # 19 digits, past a signed 64-bit integer
        ("0", None),
        ("²", None),
        ("26153092151044734976", None),
    ],
)
def test_row_id(raw: str, value: int | None) -> None:
    assert row_id(raw) == value
