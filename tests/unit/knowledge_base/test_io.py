"""CSV/JSONL import and export, and the store commands of `askagency kb`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from askagency.db import session_scope
from knowledge_base import cli_store, store
from knowledge_base import io as kbio
from knowledge_base.cli import app
from knowledge_base.io import RowError, import_rows, parse_bytes, parse_file
from knowledge_base.models import AuditLog, Faq
from knowledge_base.store import FaqInput

HEADER = "id,language,category,question,answer,variants,source_url,status,review_by"


def jsonl_line(**changes: object) -> str:
    row: dict[str, object] = {
        "id": "liquids",
        "language": "en",
        "category": "security",
        "question": "Can I bring liquids?",
        "answer": "Up to 100 ml.",
        "variants": ["Are liquids allowed?", "Water bottle?"],
        "source_url": "https://www.example.gov/liquids",
        "status": "published",
        "review_by": "2030-01-31",
        "translation_group": "liquids",
    }
    row.update(changes)
    return json.dumps({k: v for k, v in row.items() if v is not ...}, ensure_ascii=False)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def errors_of(result: kbio.ParseResult) -> list[tuple[int, str | None, str]]:
    return [(e.line, e.field, e.reason) for e in result.errors]


def faq_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Faq)) or 0


def audit_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditLog)) or 0


# --- parsing good files ------------------------------------------------------------


def test_parse_jsonl_with_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    content = "\ufeff" + jsonl_line() + "\r\n\r\n" + jsonl_line(id="knives", variants=[]) + "\r\n"
    result = parse_file(write(tmp_path, "faqs.jsonl", content))
    assert result.ok, result.errors
    assert result.format == "jsonl"
    assert [r.id for r in result.rows] == ["liquids", "knives"]
    assert result.lines == [1, 3]
    assert result.rows[0].variants == ("Are liquids allowed?", "Water bottle?")
    assert result.rows[0].status == "published"


def test_parse_csv_multiline_quotes_semicolons_and_cr_endings(tmp_path: Path) -> None:
    content = (
        "\ufeffid;language;category;question;answer;variants\r"
        'liquids;en;security;"Can I bring liquids; gels?";"Line one\rLine ""two""";a | b\r'
        "knives;es;seguridad;¿Puedo llevar un cuchillo?;No.;\r"
    )
    result = parse_file(write(tmp_path, "faqs.txt", content))
    assert result.ok, result.errors
    assert result.format == "csv"
    first, second = result.rows
    assert first.question == "Can I bring liquids; gels?"
    assert first.answer == 'Line one\nLine "two"'
    assert first.variants == ("a", "b")
    assert "status" not in first.model_fields_set
    assert second.question == "¿Puedo llevar un cuchillo?" and second.variants == ()
    assert result.lines == [2, 4]  # the first record spans physical lines 2-3


def test_format_detection_by_content(tmp_path: Path) -> None:
    assert parse_file(write(tmp_path, "x.data", jsonl_line())).format == "jsonl"
    with pytest.raises(ValueError, match="format must be"):
        parse_bytes(b"x", fmt="xml")  # type: ignore[arg-type]


# --- parsing bad files -------------------------------------------------------------


def test_row_error_text() -> None:
    assert str(RowError(7, "source_url", "must start with http:// or https://")) == (
        "line 7, field 'source_url': must start with http:// or https://"
    )
    assert str(RowError(3, None, "invalid JSON")) == "line 3: invalid JSON"
    assert str(RowError(0, None, "file is empty")) == "file: file is empty"


def test_csv_validation_errors_point_at_record_start_line(tmp_path: Path) -> None:
    content = "\n".join(
        [
            HEADER,
            'ok-1,en,security,Question one?,"Answer spanning',
            'two lines",,,,',
            "bad-url,en,security,Question two?,Answer.,,ftp://x.gov,,",
            "Bad Id,en,security,Question three?,Answer.,,,,",
            "bad-date,en,security,Question four?,Answer.,,,,2030-02-30",
            "bad-status,en,security,Question five?,Answer.,,,live,",
            "short-q,en,security,Hi,Answer.,,,,",
            "no-answer,en,security,Question six?,,,,,",
            "bad-variants,en,security,Question seven?,Answer.,a || b,,,",
            "bad-lang,english,security,Question eight?,Answer.,,,,",
            "no-cat,en,,Question nine?,Answer.,,,,",
        ]
    )
    result = parse_file(write(tmp_path, "faqs.csv", content))
    assert [r.id for r in result.rows] == ["ok-1"]
    assert errors_of(result) == [
        (4, "source_url", "must start with http:// or https://"),
        (
            5,
            "id",
            "must be 1-64 characters of lowercase letters a-z, digits and hyphens, "
            "not starting or ending with a hyphen (got 'Bad Id')",
        ),
        (6, "review_by", "must be a date written YYYY-MM-DD, e.g. 2025-12-31 (got '2030-02-30')"),
        (7, "status", "must be one of draft, published, archived (got 'live')"),
        (8, "question", "must be 3 to 500 characters (got 2)"),
        (9, "answer", "must be 1 to 2000 characters (got 0)"),
        (10, "variants", "variant 2 is empty"),
        (11, "language", "must be a language code like 'en', 'es' or 'pt-br' (got 'english')"),
        (12, "category", "must not be empty"),
    ]
    assert (
        str(result.errors[0]) == "line 4, field 'source_url': must start with http:// or https://"
    )


def test_csv_header_problems(tmp_path: Path) -> None:
    content = "id,language,colour,question,question\nx,en,red,Q?,Q?\n"
    result = parse_file(write(tmp_path, "faqs.csv", content))
    assert result.rows == []
    assert errors_of(result) == [
        (1, "colour", f"unknown column (allowed: {', '.join(kbio.COLUMNS)})"),
        (1, "question", "column appears twice"),
        (1, "category", "required column is missing"),
        (1, "answer", "required column is missing"),
    ]


def test_csv_wrong_field_count_and_malformed_quotes(tmp_path: Path) -> None:
    content = f"{HEADER}\nx,en,security,Question?,Answer, with comma,,,,\n"
    result = parse_file(write(tmp_path, "a.csv", content))
    assert errors_of(result) == [
        (
            2,
            None,
            "expected 9 fields like the header but found 10 "
            "(a value containing a comma must be in double quotes)",
        )
    ]
    content = f'{HEADER}\ny,en,security,Question?,Answer.,,,,\nx,en,security,"Question?,A\n'
    result = parse_file(write(tmp_path, "b.csv", content))
    assert [r.id for r in result.rows] == ["y"]
    assert [(e.line, e.field) for e in result.errors] == [(3, None)]
    assert result.errors[0].reason.startswith("malformed CSV: ")


def test_csv_skips_fully_blank_rows(tmp_path: Path) -> None:
    content = f"{HEADER}\n,,,,,,,,\nx,en,security,Question?,Answer.,,,,\n"
    result = parse_file(write(tmp_path, "a.csv", content))
    assert result.ok and result.lines == [3]


def test_jsonl_errors(tmp_path: Path) -> None:
    lines = [
        jsonl_line(),
        '{"id": "broken",',
        "[1, 2]",
        jsonl_line(id="extra", colour="red"),
        jsonl_line(id="missing", answer=...),
        jsonl_line(id="null-question", question=None),
        jsonl_line(id="liquids"),
        jsonl_line(id="string-variants", variants="a | b"),
        jsonl_line(id="number-category", category=5),
    ]
    result = parse_file(write(tmp_path, "faqs.jsonl", "\n".join(lines)))
    assert [r.id for r in result.rows] == ["liquids"]
    assert errors_of(result) == [
        (2, None, "invalid JSON: Expecting property name enclosed in double quotes (column 17)"),
        (3, None, "each line must be one JSON object {...}"),
        (4, "colour", f"unknown field (allowed: {', '.join(kbio.COLUMNS)})"),
        (5, "answer", "required field is missing"),
        (6, "question", "must not be empty"),
        (7, "id", "duplicate id 'liquids' (first on line 1)"),
        (8, "variants", "must be a list of questions"),
        (9, "category", "Input should be a valid string"),
    ]


def test_duplicate_row_still_reports_its_other_errors(tmp_path: Path) -> None:
    content = f"{HEADER}\nx,en,security,Question?,Answer.,,,,\nx,en,security,Hi,Answer.,,,,\n"
    result = parse_file(write(tmp_path, "a.csv", content))
    assert errors_of(result) == [
        (3, "id", "duplicate id 'x' (first on line 2)"),
        (3, "question", "must be 3 to 500 characters (got 2)"),
    ]


@pytest.mark.parametrize("content", ["", "  \n\r\n", "\ufeff"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    result = parse_file(write(tmp_path, "faqs.csv", content))
    assert errors_of(result) == [(0, None, "file is empty")]


def test_header_only_csv(tmp_path: Path) -> None:
    result = parse_file(write(tmp_path, "faqs.csv", HEADER + "\n"))
    assert errors_of(result) == [(0, None, "file has no FAQ rows")]


def test_non_utf8_bytes_report_line_and_column(tmp_path: Path) -> None:
    content = (HEADER + "\nx,en,security,Caf\xe9?,Answer.,,,,\n").encode("latin-1")
    result = parse_file(write(tmp_path, "faqs.csv", content))
    assert errors_of(result) == [
        (
            2,
            None,
            "not valid UTF-8 (byte 0xe9 at column 18); save the file with UTF-8 encoding",
        )
    ]


def test_oversized_file_is_refused_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:  # sparse: no 20 MB written to disk
        handle.truncate(kbio.MAX_FILE_BYTES + 1)
    result = parse_file(path)
    assert result.rows == []
    assert len(result.errors) == 1
    assert result.errors[0].line == 0
    assert "the limit is 20 MB" in result.errors[0].reason
    assert "limit is 20 MB" in str(parse_bytes(b" " * (kbio.MAX_FILE_BYTES + 1)).errors[0])


def test_missing_file(tmp_path: Path) -> None:
    result = parse_file(tmp_path / "nope.csv")
    assert result.errors[0].line == 0 and "cannot read" in result.errors[0].reason


# --- importing ---------------------------------------------------------------------


def rows(*lines: str) -> list[FaqInput]:
    result = parse_bytes("\n".join(lines).encode(), fmt="jsonl")
    assert result.ok, result.errors
    return result.rows


def test_import_creates_updates_and_skips_unchanged(db_session: Session) -> None:
    summary = import_rows(
        db_session, rows(jsonl_line(), jsonl_line(id="knives", status="draft")), "alice"
    )
    assert (summary.created, summary.updated, summary.unchanged) == (2, 0, 0)
    db_session.commit()

    summary = import_rows(
        db_session,
        rows(jsonl_line(), jsonl_line(id="knives", status="draft", answer="No knives.")),
        "bob",
    )
    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 1)
    assert str(summary) == "0 created, 1 updated, 1 unchanged"
    knives = store.get_faq(db_session, "knives")
    assert knives.answer == "No knives." and knives.version == 2
    actions = [e.action for e in store.faq_history(db_session, "knives")]
    assert actions == ["import", "import"]


def test_import_publish_flag_and_missing_status(db_session: Session) -> None:
    import_rows(db_session, rows(jsonl_line(status=...)), "alice")
    assert store.get_faq(db_session, "liquids").status == "draft"
    import_rows(db_session, rows(jsonl_line(status=...)), "alice", publish=True)
    assert store.get_faq(db_session, "liquids").status == "published"
    # A file without a status keeps the existing FAQ's status.
    summary = import_rows(db_session, rows(jsonl_line(status=..., answer="New.")), "alice")
    faq = store.get_faq(db_session, "liquids")
    assert (faq.status, faq.answer, summary.updated) == ("published", "New.", 1)


def test_import_kind_is_kept_when_a_file_does_not_give_it(db_session: Session) -> None:
    """Out-of-scope entries (issue 20) survive a file written before the kind column existed,
    or a CSV row whose kind cell is empty; a bad kind is refused with the choices."""
    import_rows(db_session, rows(jsonl_line(kind="out-of-scope")), "alice")
    assert store.get_faq(db_session, "liquids").kind == "out_of_scope"
    import_rows(db_session, rows(jsonl_line(kind=..., answer="Changed.")), "alice")
    faq = store.get_faq(db_session, "liquids")
    assert (faq.kind, faq.answer) == ("out_of_scope", "Changed.")
    csv_text = HEADER + ",kind\nliquids,en,security,Liquids?,Up to 100 ml.,,,published,,\n"
    parsed = parse_bytes(csv_text.encode(), fmt="csv")
    assert parsed.ok, parsed.errors
    import_rows(db_session, parsed.rows, "alice")
    assert store.get_faq(db_session, "liquids").kind == "out_of_scope"
    import_rows(db_session, rows(jsonl_line(kind="answer")), "alice")
    assert store.get_faq(db_session, "liquids").kind == "answer"
    # A new entry without a kind is an answer.
    import_rows(db_session, rows(jsonl_line(id="knives", kind=...)), "alice")
    assert store.get_faq(db_session, "knives").kind == "answer"
    bad = parse_bytes(jsonl_line(kind="maybe").encode(), fmt="jsonl")
    assert errors_of(bad) == [(1, "kind", "must be one of answer, out_of_scope (got 'maybe')")]


def test_import_create_mode_refuses_existing(db_session: Session) -> None:
    import_rows(db_session, rows(jsonl_line()), "alice")
    db_session.commit()
    with pytest.raises(kbio.ImportRefused, match="already exist: liquids"):
        import_rows(db_session, rows(jsonl_line(), jsonl_line(id="new")), "b", mode="create")
    with pytest.raises(kbio.ImportRefused, match="duplicate ids"):
        import_rows(db_session, [*rows(jsonl_line(id="n")), *rows(jsonl_line(id="n"))], "b")
    with pytest.raises(ValueError, match="mode must be"):
        import_rows(db_session, [], "b", mode="merge")  # type: ignore[arg-type]
    assert faq_count(db_session) == 1


def test_failed_import_leaves_database_unchanged(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(db_url) as session:
        import_rows(session, rows(jsonl_line()), "alice")
    real_insert = store._insert
    calls = {"n": 0}

    def failing_insert(*args: object, **kwargs: object) -> Faq:
        calls["n"] += 1
        if calls["n"] == 230:  # after the first batch of 200 was flushed
            raise RuntimeError("disk full")
        return real_insert(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_insert", failing_insert)
    batch = rows(
        jsonl_line(answer="Changed."),
        *(jsonl_line(id=f"new-{i}") for i in range(240)),
    )
    with pytest.raises(RuntimeError, match="disk full"), session_scope(db_url) as session:
        import_rows(session, batch, "bob")
    with session_scope(db_url) as session:
        assert faq_count(session) == 1
        assert audit_count(session) == 1
        assert store.get_faq(session, "liquids").answer == "Up to 100 ml."


# --- exporting and round trips ---------------------------------------------------------


def tricky_rows() -> list[FaqInput]:
    return rows(
        jsonl_line(),
        jsonl_line(
            id="quotes",
            kind="out_of_scope",
            question='What is a "carry-on", exactly?',
            answer='Line one, with comma\nLine "two"; ünïcødé — 東京\n\nLast line',
            variants=["Carry-on meaning?", "Hand luggage, what is it?"],
            source_url=None,
            review_by=None,
            status="draft",
        ),
        jsonl_line(
            id="fees-es",
            language="es",
            category="tasas",
            question="¿Cuánto cuesta?",
            answer="Depende.",
            variants=[],
            translation_group="fees",
            status="archived",
        ),
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_import_round_trip_is_exact(
    db_session: Session, tmp_path: Path, fmt: str, tmp_settings: object
) -> None:
    original = tricky_rows()
    import_rows(db_session, original, "alice")
    db_session.commit()

    first = tmp_path / f"first.{fmt}"
    assert kbio.export_file(db_session, first, status=None) == 3
    parsed = parse_file(first)
    assert parsed.ok, parsed.errors
    assert parsed.format == fmt
    by_id = {r.id: r for r in original}
    assert [r.content() for r in parsed.rows] == [by_id[i].content() for i in sorted(by_id)]

    # Re-importing the export changes nothing.
    summary = import_rows(db_session, parsed.rows, "bob")
    assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 3)

    # Into an empty database and out again: byte-identical.
    for faq in store.list_faqs(db_session):
        store.delete_faq(db_session, faq.id, "bob")
    import_rows(db_session, parsed.rows, "carol")
    second = tmp_path / f"second.{fmt}"
    kbio.export_file(db_session, second, status=None)
    assert second.read_bytes() == first.read_bytes()


def test_export_status_filter_and_streams(db_session: Session) -> None:
    import_rows(db_session, tricky_rows(), "alice")
    stream = io.StringIO()
    assert kbio.export_jsonl(db_session, stream) == 1  # published only by default
    assert json.loads(stream.getvalue())["id"] == "liquids"
    stream = io.StringIO()
    assert kbio.export_csv(db_session, stream, status="draft") == 1
    text = stream.getvalue()
    assert text.startswith(",".join(kbio.COLUMNS) + "\r\n")
    assert '"Line one, with comma\nLine ""two""' in text
    with pytest.raises(ValueError, match="status must be"):
        kbio.export_csv(db_session, io.StringIO(), status="live")


# --- CLI ---------------------------------------------------------------------------


@pytest.fixture
def runner(tmp_settings: object, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(cli_store.err_console, "width", 250)
    monkeypatch.setattr(cli_store.console, "width", 250)
    return CliRunner()


def db_faq_ids() -> list[str]:
    with session_scope() as session:
        return [f.id for f in store.list_faqs(session)]


def test_cli_import_bad_file_exits_1_and_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    bad = write(
        tmp_path, "bad.jsonl", jsonl_line() + "\n" + jsonl_line(id="x", source_url="ftp://a")
    )
    result = runner.invoke(app, ["import", str(bad), "--publish"])
    assert result.exit_code == 1, result.output
    assert "1 problem(s)" in result.output and "nothing was imported" in result.output
    assert "source_url" in result.output and "must start with http:// or https://" in result.output
    assert db_faq_ids() == []


def test_cli_import_dry_run_then_real(runner: CliRunner, tmp_path: Path) -> None:
    good = write(tmp_path, "good.csv", f"{HEADER}\nx,en,security,Question?,Answer.,a | b,,,\n")
    result = runner.invoke(app, ["import", str(good), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run, nothing written: would be 1 created" in result.output
    assert db_faq_ids() == []

    result = runner.invoke(app, ["import", str(good), "--publish", "--actor", "tester"])
    assert result.exit_code == 0, result.output
    assert "1 created, 0 updated, 0 unchanged" in result.output
    with session_scope() as session:
        faq = store.get_faq(session, "x")
        assert (faq.status, faq.created_by) == ("published", "tester")

    result = runner.invoke(app, ["import", str(good), "--format", "xml"])
    assert result.exit_code == 2


def test_cli_export_and_stats(runner: CliRunner, tmp_path: Path) -> None:
    source = write(tmp_path, "in.jsonl", jsonl_line() + "\n" + jsonl_line(id="d", status="draft"))
    assert runner.invoke(app, ["import", str(source)]).exit_code == 0
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["export", str(out)])
    assert result.exit_code == 0 and "exported 1 FAQs" in result.output
    assert [r.id for r in parse_file(out).rows] == ["liquids"]
    result = runner.invoke(app, ["export", str(tmp_path / "all.jsonl"), "--status", "all"])
    assert "exported 2 FAQs" in result.output

    result = runner.invoke(app, ["export", "-", "--format", "csv", "--status", "draft"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(",".join(kbio.COLUMNS)) and "\nd,en," in result.stdout

    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 0, result.output
    assert "2 FAQs, 4 variants" in result.output
    assert "published" in result.output and "draft" in result.output


def test_cli_load_sample(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = tmp_path / "sample"
    sample.mkdir()
    write(sample, "faqs.jsonl", jsonl_line(status="draft"))
    write(sample, "faqs_es.jsonl", jsonl_line(id="liquidos", language="es"))
    monkeypatch.setattr(cli_store, "SAMPLE_DIR", sample)

    result = runner.invoke(app, ["load-sample", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output
    with session_scope() as session:
        assert [r.id for r in store.published_records(session)] == ["liquidos", "liquids"]

    result = runner.invoke(app, ["load-sample", "--if-empty"])
    assert result.exit_code == 0 and "already has 2 FAQs" in result.output

    write(sample, "faqs_es.jsonl", jsonl_line(id="liquids", language="es"))
    result = runner.invoke(app, ["load-sample"])
    assert result.exit_code == 1 and "also in faqs.jsonl" in result.output


@pytest.mark.parametrize("name", cli_store.SAMPLE_FILES)
def test_bundled_sample_files_are_valid(name: str) -> None:
    result = parse_file(cli_store.SAMPLE_DIR / name)
    assert result.errors == []
    assert len(result.rows) >= 10


def test_cli_migrate(runner: CliRunner) -> None:
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "database at revision" in result.output
