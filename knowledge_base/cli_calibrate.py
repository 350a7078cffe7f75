"""``askagency kb calibrate``: thresholds for this KB from its own wordings, before any labelled
question exists (knowledge_base/calibrate.py says how and how far to trust it).

Builds its indexes in memory from the published FAQs (nothing is saved or made live, so it
takes no index lock) and recommends like ``kb evaluate --sweep``; ``--apply`` writes the
recommendation the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import typer
from rich.table import Table

from askagency.config import Settings
from knowledge_base.calibrate import (
    CALIBRATION_LIMITS,
    CalibrationError,
    CalibrationReport,
    calibrate,
)
from knowledge_base.cli_index import (
    APPLY_OPTION,
    DATA_DIR_OPTION,
    ENV_FILE_OPTION,
    MAX_WRONG_OPTION,
    _fmt,
    _settings,
    apply_row,
    console,
    err_console,
    min_oos_recall_option,
    prepare_database,
)
from knowledge_base.decision import confidence_floor, for_index, thresholds_for
from knowledge_base.evaluate import SweepLimits, SweepRow
from knowledge_base.retriever import Retriever
from knowledge_base.tuning import env_lines, recommendation_env, recommended_values, target_env_file
from knowledge_base.types import FaqRecord


def _published(settings: Settings) -> list[FaqRecord]:
    from askagency.db import session_scope
    from knowledge_base.store import published_records

    prepare_database(settings)
    try:
        with session_scope(settings.database_url) as session:
            return published_records(session)
    except Exception as exc:  # noqa: BLE001 - any driver error ends the command the same way
        err_console.print(f"[red]cannot read the knowledge base: {exc}[/red]")
        raise typer.Exit(2) from exc


def _current(settings: Settings, language: str, records: Sequence[FaqRecord]) -> dict[str, float]:
    """The thresholds the KB's questions in ``language`` are decided at now (the classifier
    rule's floor as decide() applies it: never below the clarify threshold, as on the grid)."""
    entries = {r.language for r in records if r.out_of_scope}
    own = thresholds_for(for_index(settings, entries), language)
    return {
        "answer_threshold": own.answer_threshold,
        "clarify_threshold": own.clarify_threshold,
        "answer_confidence": own.answer_confidence,
        "answer_confidence_floor": confidence_floor(own),
    }


def _row_cells(row: SweepRow | None) -> list[str]:
    if row is None:
        return ["-"] * 5
    return [
        _fmt(row.answered_correct),
        _fmt(row.answered_wrong),
        _fmt(row.oos_recall),
        _fmt(row.within_one_click),
        "yes" if row.meets_constraints else "no",
    ]


def _print(report: CalibrationReport, current: dict[str, float], settings: Settings) -> None:
    console.print(
        f"{report.language}: {report.n_answers} FAQs; asked {report.n_in_scope} of their "
        f"wordings left out of the index and {report.n_out_of_scope} questions it does not "
        f"answer (FAQs left out, out-of-scope entries' examples) in {report.seconds:.0f} s"
    )
    table = Table(title="estimated from the KB's own wordings (not citizens' questions)")
    for col in ("thresholds", "answered right", "wrong", "OOS recall", "one click", "meets rule"):
        table.add_column(col, justify="left" if col == "thresholds" else "right")
    table.add_row("current", *_row_cells(report.row_at(current)))
    table.add_row("recommended", *_row_cells(report.recommended))
    console.print(table)
    console.print(f"rule: {report.limits.rule()}")
    if report.recommended is None:
        console.print("[yellow]no thresholds meet the constraints[/yellow]")
        return
    console.print(
        "recommended: "
        + " ".join(env_lines(recommendation_env(report.recommended, settings, report.language)))
    )
    console.print(
        "a development file of real questions measures better: `askagency kb evaluate FILE "
        "--sweep` (docs/quality.md)"
    )


def calibrate_command(
    language: str | None = typer.Option(
        None, "--language", help="The language to calibrate (default: the main language)."
    ),
    data_dir: Path | None = DATA_DIR_OPTION,
    apply: bool = APPLY_OPTION,
    env_file: Path | None = ENV_FILE_OPTION,
    max_wrong: float = MAX_WRONG_OPTION,
    min_oos_recall: float = min_oos_recall_option(CALIBRATION_LIMITS.min_oos_recall),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON."),
) -> None:
    """Recommend thresholds from the KB's own wordings, without labelled questions."""
    from knowledge_base.factory import embedder_for, retriever_over

    settings = _settings(data_dir)
    lang = language or settings.default_language
    records = _published(settings)
    embedder = embedder_for(settings)

    def retriever_for(kb: Sequence[FaqRecord]) -> Retriever:
        return retriever_over(kb, settings, embedder)

    limits = SweepLimits(max_wrong=max_wrong, min_oos_recall=min_oos_recall)
    if lang != settings.default_language:
        err_console.print(
            f"[yellow]{lang} is not the main language: its questions are scored by the language "
            "scorer, whose scores its own wordings calibrate poorly (the sample's Spanish: 31.5% "
            "answered right on its development file at the calibrated thresholds, 48.0% at "
            "those chosen on that file); prefer `askagency kb evaluate FILE --language "
            f"{lang} --sweep` (docs/quality.md)[/yellow]"
        )
    try:
        with console.status("calibrating") as status:
            report = calibrate(
                records,
                retriever_for,
                settings,
                lang,
                limits=limits,
                progress=lambda text: status.update(f"calibrating: {text}"),
            )
    except CalibrationError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    current = _current(settings, lang, records)
    _print(report, current, settings)
    if json_out is not None:
        data = {
            "language": report.language,
            "n_answers": report.n_answers,
            "n_in_scope": report.n_in_scope,
            "n_out_of_scope": report.n_out_of_scope,
            "seconds": round(report.seconds, 2),
            "rule": limits.rule(),
            "recommended": recommended_values(report.recommended) if report.recommended else None,
            "estimate": _row_dict(report.recommended),
            "current": _row_dict(report.row_at(current)),
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        console.print(f"report written to {json_out}")
    if apply:
        apply_row(report.recommended, settings, lang, target_env_file(env_file), embedder.model_id)


def _row_dict(row: SweepRow | None) -> dict[str, float | None] | None:
    if row is None:
        return None
    return {
        "answered_correct": row.answered_correct,
        "answered_wrong": row.answered_wrong,
        "oos_recall": None if row.oos_recall is None else float(row.oos_recall),
        "within_one_click": None if row.within_one_click is None else float(row.within_one_click),
    }


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_command)
