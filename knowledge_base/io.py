"""Import and export of FAQs as CSV and JSONL.

Agencies keep FAQs in spreadsheets, so the importer is strict but explains
every problem with the file line and column staff must fix; it never writes
part of a file. Parsing (``parse_file``/``parse_bytes``) is pure; writing
(``import_rows``) happens in the caller's transaction. Exports use exactly the
import columns so a file can be exported, edited and imported back.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import ValidationError
from sqlalchemy.orm import Session

from askagency.csv_safe import csv_safe, csv_unguard
from knowledge_base.atomic_file import replace_atomically
from knowledge_base.models import AuditAction, Faq, FaqStatus
from knowledge_base.store import (
    VARIANT_SEPARATOR,
    FaqInput,
    RelatedInvalid,
    batch_related_problems,
    list_faqs,
    load_faqs,
    omitted_fields,
    snapshot,
    stored_values,
    upsert_faqs,
)

COLUMNS: tuple[str, ...] = (
    "id",
    "language",
    "category",
    "question",
    "answer",
    "variants",
    "source_url",
    "status",
    "review_by",
    "translation_group",
    "related",
    "kind",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("id", "language", "category", "question", "answer")
MAX_FILE_BYTES = 20 * 1024 * 1024
CSV_VARIANT_JOIN = f" {VARIANT_SEPARATOR} "
FORMATS = ("csv", "jsonl")

Format = Literal["auto", "csv", "jsonl"]
ImportMode = Literal["upsert", "create"]


@dataclass(frozen=True)
class RowError:
    """One problem in an import file. ``line`` is 1-based (0: the whole file);
    ``field`` is ``None`` when the problem is not about one column."""

    line: int
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = "file" if self.line <= 0 else f"line {self.line}"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.reason}"


@dataclass
class ParseResult:
    rows: list[FaqInput] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # file line of each row
    format: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


class ImportRefused(ValueError):
    """``import_rows`` was handed rows that cannot be written as a whole."""


# --- parsing -----------------------------------------------------------------


def detect_format(name: str, text: str) -> str:
    """Format from the file extension, else from the content (JSONL starts with ``{``)."""
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def parse_file(path: str | os.PathLike[str], fmt: Format = "auto") -> ParseResult:
    """Read and validate an import file without touching the database."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return ParseResult(errors=[RowError(0, None, f"cannot read {path}: {exc.strerror}")])
    if size > MAX_FILE_BYTES:
        return ParseResult(errors=[_too_large(size)])
    return parse_bytes(path.read_bytes(), fmt=fmt, name=path.name)


def parse_bytes(data: bytes, fmt: Format = "auto", name: str = "") -> ParseResult:
    """Validate file contents (e.g. an upload in the console)."""
    if len(data) > MAX_FILE_BYTES:
        return ParseResult(errors=[_too_large(len(data))])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return ParseResult(errors=[_decode_error(data, exc)])
    if fmt not in ("auto", *FORMATS):
        raise ValueError(f"format must be auto, csv or jsonl (got {fmt!r})")
    resolved = detect_format(name, text) if fmt == "auto" else fmt
    if not text.strip():
        return ParseResult(errors=[RowError(0, None, "file is empty")], format=resolved)
    raw_rows = _csv_rows(text) if resolved == "csv" else _jsonl_rows(text)
    result = _validate(raw_rows)
    result.format = resolved
    return result


def _too_large(size: int) -> RowError:
    mb = MAX_FILE_BYTES // (1024 * 1024)
    return RowError(
        0, None, f"file is {size / 1024 / 1024:.1f} MB; the limit is {mb} MB, split it into parts"
    )


def _decode_error(data: bytes, exc: UnicodeDecodeError) -> RowError:
    start = exc.start
    line_start = data.rfind(b"\n", 0, start) + 1
    line = data.count(b"\n", 0, start) + 1
    column = len(data[line_start:start].decode("utf-8", errors="replace")) + 1
    return RowError(
        line,
        None,
        f"not valid UTF-8 (byte 0x{data[start]:02x} at column {column}); "
        "save the file with UTF-8 encoding",
    )


# A raw row: (line, values, problems found before validation).
_RawRow = tuple[int, dict[str, Any] | None, list[RowError]]


def _physical_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _jsonl_rows(text: str) -> Iterable[_RawRow]:
    allowed = ", ".join(COLUMNS)
    for number, line in enumerate(_physical_lines(text), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield (
                number,
                None,
                [RowError(number, None, f"invalid JSON: {exc.msg} (column {exc.colno})")],
            )
            continue
        if not isinstance(value, dict):
            yield number, None, [RowError(number, None, "each line must be one JSON object {...}")]
            continue
        problems = [
            RowError(number, key, f"unknown field (allowed: {allowed})")
            for key in value
            if key not in COLUMNS
        ]
        yield number, {k: v for k, v in value.items() if k in COLUMNS}, problems


def _sniff_delimiter(header_line: str) -> str:
    """Spreadsheets in many locales save ``;``-separated CSV; pick the
    delimiter that splits the header into the most known columns."""

    def known(delimiter: str) -> int:
        cells = next(csv.reader([header_line], delimiter=delimiter), [])
        return sum(cell.strip().lower() in COLUMNS for cell in cells)

    return max((",", ";", "\t"), key=known)


def _csv_rows(text: str) -> Iterable[_RawRow]:
    stream = io.StringIO(text, newline="")
    first_line = stream.readline()
    stream.seek(0)
    reader = csv.reader(stream, delimiter=_sniff_delimiter(first_line), strict=True)
    consumed = 0  # physical lines read so far: the next record starts at consumed + 1
    header: list[str] | None = None
    while True:
        start = consumed + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield start, None, [RowError(start, None, f"malformed CSV: {exc}")]
            return
        consumed = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in cells]
            problems = _header_problems(start, header)
            if problems:
                yield start, None, problems
                return
            continue
        if len(cells) != len(header):
            yield (
                start,
                None,
                [
                    RowError(
                        start,
                        None,
                        f"expected {len(header)} fields like the header but found {len(cells)} "
                        "(a value containing a comma must be in double quotes)",
                    )
                ],
            )
            continue
        values: dict[str, Any] = dict(zip(header, map(csv_unguard, cells), strict=True))
        raw_variants = values.get("variants", "")
        values["variants"] = (
            [part.strip() for part in raw_variants.split(VARIANT_SEPARATOR)]
            if raw_variants.strip()
            else []
        )
        yield start, values, []


def _header_problems(line: int, header: Sequence[str]) -> list[RowError]:
    allowed = ", ".join(COLUMNS)
    problems: list[RowError] = []
    seen: set[str] = set()
    for name in header:
        if name not in COLUMNS:
            problems.append(
                RowError(line, name or "(blank)", f"unknown column (allowed: {allowed})")
            )
        elif name in seen:
            problems.append(RowError(line, name, "column appears twice"))
        seen.add(name)
    problems += [
        RowError(line, name, "required column is missing")
        for name in REQUIRED_COLUMNS
        if name not in seen
    ]
    return problems


def _reason(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if error.get("input") is None:
        return "must not be empty"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _validate(raw_rows: Iterable[_RawRow]) -> ParseResult:
    result = ParseResult()
    first_line_of_id: dict[str, int] = {}
    found_any = False
    for line, values, problems in raw_rows:
        found_any = True
        result.errors.extend(problems)
        if values is None:
            continue
        for keeps in ("status", "kind"):
            if isinstance(values.get(keeps), str) and not values[keeps].strip():
                # Not given: new FAQs become drafts (answers), existing ones keep theirs.
                del values[keeps]
        raw_id = values.get("id")
        if isinstance(raw_id, str) and raw_id.strip():
            key = raw_id.strip()
            if key in first_line_of_id:
                problems = [
                    *problems,
                    RowError(
                        line, "id", f"duplicate id {key!r} (first on line {first_line_of_id[key]})"
                    ),
                ]
                result.errors.append(problems[-1])
            else:
                first_line_of_id[key] = line
        try:
            row = FaqInput.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors():
                loc = error.get("loc", ())
                name = str(loc[0]) if loc else None
                result.errors.append(RowError(line, name, _reason(error)))
            continue
        if not problems:
            result.rows.append(row)
            result.lines.append(line)
    if not found_any:
        result.errors.append(RowError(0, None, "file has no FAQ rows"))
    result.errors.sort(key=lambda e: e.line)
    return result


# --- importing ---------------------------------------------------------------


def import_rows(
    session: Session,
    rows: Sequence[FaqInput],
    actor: str,
    publish: bool = False,
    mode: ImportMode = "upsert",
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Write validated rows in the caller's transaction (commit or roll back
    as a whole). ``mode="upsert"`` creates new ids and updates existing ones;
    ``mode="create"`` refuses the whole batch if any id already exists.
    ``publish`` publishes every row; otherwise a row without a status keeps the
    existing FAQ's status (new ones are drafts)."""
    if mode not in ("upsert", "create"):
        raise ValueError(f"mode must be 'upsert' or 'create' (got {mode!r})")
    ids = [row.id for row in rows]
    if len(set(ids)) != len(ids):
        dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
        raise ImportRefused(f"duplicate ids in import: {', '.join(dupes)}")
    existing = load_faqs(session, ids)
    if mode == "create" and existing:
        names = sorted(existing)
        more = f" and {len(names) - 10} more" if len(names) > 10 else ""
        raise ImportRefused(f"these FAQs already exist: {', '.join(names[:10])}{more}")
    items: list[FaqInput] = []
    for row in rows:
        current = existing.get(row.id)
        if publish:
            status = FaqStatus.PUBLISHED
        elif "status" in row.model_fields_set or current is None:
            status = row.status
        else:
            status = FaqStatus(current.status)
        update: dict[str, Any] = {"status": status}
        if current is not None:
            # A file without the related or kind column keeps the stored ones.
            update.update(stored_values(current, omitted_fields(row)))
        items.append(row.model_copy(update=update))
    _refuse_bad_related(session, items)
    created, updated, unchanged = upsert_faqs(
        session, items, actor, action=AuditAction.IMPORT, progress=progress
    )
    return ImportSummary(created=created, updated=updated, unchanged=unchanged)


def _refuse_bad_related(session: Session, items: Sequence[FaqInput]) -> None:
    """Every related FAQ must exist (already, or in this file) in the row's language; all the
    problems are reported at once, so staff fix the file in one go."""
    problems = [
        str(RelatedInvalid(faq_id, found))
        for faq_id, found in batch_related_problems(session, items).items()
    ]
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ImportRefused("; ".join(problems[:10]) + more)


# --- exporting ---------------------------------------------------------------


def faq_to_row(faq: Faq) -> dict[str, Any]:
    """The export/import columns of one FAQ (JSON-ready)."""
    snap = snapshot(faq)
    return {column: snap[column] for column in COLUMNS}


def _rows_for_export(session: Session, status: str | None) -> list[dict[str, Any]]:
    if status is not None and status not in {s.value for s in FaqStatus}:
        raise ValueError(f"status must be draft, published, archived or None (got {status!r})")
    return [faq_to_row(faq) for faq in list_faqs(session, status=status)]


def _write(dest: str | os.PathLike[str] | TextIO, writer: Callable[[TextIO], None]) -> None:
    """Write to a stream, or to a path atomically (a crash never leaves half a file)."""
    if not isinstance(dest, str | os.PathLike):
        writer(dest)
        return
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, writer)


def export_jsonl(
    session: Session,
    dest: str | os.PathLike[str] | TextIO,
    status: str | None = FaqStatus.PUBLISHED.value,
) -> int:
    """Write FAQs (``status=None``: all) as JSONL ordered by id; returns the count."""
    rows = _rows_for_export(session, status)

    def write(handle: TextIO) -> None:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    _write(dest, write)
    return len(rows)


def export_csv(
    session: Session,
    dest: str | os.PathLike[str] | TextIO,
    status: str | None = FaqStatus.PUBLISHED.value,
) -> int:
    """Write FAQs as CSV (variants joined with `` | ``); returns the count."""
    rows = _rows_for_export(session, status)

    def write(handle: TextIO) -> None:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row in rows:
            cells = dict(
                row,
                variants=CSV_VARIANT_JOIN.join(row["variants"]),
                related=CSV_VARIANT_JOIN.join(row["related"]),
            )
            # Citizen wording reaches FAQ text via the unanswered queue: no formulas (L10).
            writer.writerow(["" if cells[c] is None else csv_safe(cells[c]) for c in COLUMNS])

    _write(dest, write)
    return len(rows)


def export_file(
    session: Session,
    path: str | os.PathLike[str],
    fmt: Format = "auto",
    status: str | None = FaqStatus.PUBLISHED.value,
) -> int:
    """Export to ``path`` in ``fmt`` (auto: from the extension, default JSONL)."""
    resolved = fmt if fmt != "auto" else ("csv" if str(path).lower().endswith(".csv") else "jsonl")
    exporter = export_csv if resolved == "csv" else export_jsonl
    return exporter(session, path, status=status)
