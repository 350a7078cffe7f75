"""Hypothesis fuzzing of the FAQ importers (knowledge_base.io.parse_bytes): any bytes, any
CSV/JSONL-shaped text, either format: a ParseResult with rows or row errors, never an exception."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge_base.io import ParseResult, parse_bytes

EXAMPLES = int(os.environ.get("ASKAGENCY_FUZZ_EXAMPLES", "5")) * 20
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = ["id", "question", "answer", "language", "category", "source_url", "status", "variants"]

CSV_TEXT = st.lists(
    st.lists(st.text(max_size=30), min_size=0, max_size=9).map(
        lambda cells: ",".join(
            '"' + c.replace('"', '""') + '"' if i % 2 else c for i, c in enumerate(cells)
        )
    ),
    max_size=6,
).map(lambda rows: "\n".join([",".join(FIELDS), *rows]))
JSONL_TEXT = st.lists(
    st.dictionaries(
        st.sampled_from(FIELDS) | st.text(max_size=6),
        st.none()
        | st.integers()
        | st.text(max_size=40)
        | st.lists(st.text(max_size=10), max_size=3),
        max_size=9,
    ).map(json.dumps)
    | st.text(max_size=40),
    max_size=6,
).map("\n".join)


def _check(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    assert result.rows or result.errors  # something to show the editor
    for error in result.errors:
        assert str(error)


@FUZZ
@given(data=st.binary(max_size=400), fmt=st.sampled_from(["auto", "csv", "jsonl"]))
def test_any_bytes(data: bytes, fmt: str) -> None:
    _check(parse_bytes(data, fmt, name="upload"))


@FUZZ
@given(text=CSV_TEXT | JSONL_TEXT, fmt=st.sampled_from(["auto", "csv", "jsonl"]))
def test_structured_text(text: str, fmt: str) -> None:
    _check(
        parse_bytes(text.encode("utf-8"), fmt, name="faqs.csv" if fmt == "csv" else "faqs.jsonl")
    )
